//! NIST ACVP vectors for ML-DSA-65 (FIPS 204), source recorded in `data/acvp-ml-dsa-65.json`:
//! 25 keyGen cases (seed ξ → public key) through [`LogSigningKey::from_seed`], and the 15
//! sigVer cases of the external/pure interface (with contexts, valid and modified signatures)
//! through libcrux, the implementation the log uses. (The sigGen file was not available; the
//! deterministic signatures are cross-checked against RustCrypto's `ml-dsa` in `cross_check.rs`.)

use libcrux_ml_dsa::ml_dsa_65::{self, MLDSA65Signature, MLDSA65VerificationKey};
use logkey::LogSigningKey;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vectors {
    key_gen: Vec<KeyGen>,
    sig_ver: Vec<SigVer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyGen {
    tc_id: u32,
    seed: String,
    pk: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigVer {
    tc_id: u32,
    test_passed: bool,
    pk: String,
    message: String,
    context: String,
    signature: String,
    reason: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("data/acvp-ml-dsa-65.json")).expect("vector file")
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

#[test]
fn acvp_key_generation_from_seed() {
    let v = vectors();
    assert_eq!(v.key_gen.len(), 25);
    for case in v.key_gen {
        let seed: [u8; 32] = unhex(&case.seed).try_into().expect("32-byte seed");
        let pk = LogSigningKey::from_seed(&seed).verifying_key().to_bytes();
        assert_eq!(pk, unhex(&case.pk), "keyGen tcId {}", case.tc_id);
    }
}

#[test]
fn acvp_signature_verification() {
    let v = vectors();
    assert_eq!(v.sig_ver.len(), 15);
    assert!(v.sig_ver.iter().any(|c| c.test_passed) && v.sig_ver.iter().any(|c| !c.test_passed));
    for case in v.sig_ver {
        let pk = MLDSA65VerificationKey::new(unhex(&case.pk).try_into().expect("pk length"));
        let signature = MLDSA65Signature::new(unhex(&case.signature).try_into().expect("signature length"));
        let verdict = ml_dsa_65::verify(&pk, &unhex(&case.message), &unhex(&case.context), &signature);
        assert_eq!(verdict.is_ok(), case.test_passed, "sigVer tcId {} ({})", case.tc_id, case.reason);
    }
}
