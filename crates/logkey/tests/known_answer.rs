//! FIPS 204 known-answer test: one published ML-DSA-65 key (seed -> public key) from the IETF
//! LAMPS examples. Source recorded in `data/lamps-mldsa65-keygen.json`.

use logkey::{LogSigningKey, LogVerifyingKey};

#[derive(serde::Deserialize)]
struct KeyGenVector {
    #[serde(rename = "parameterSet")]
    parameter_set: String,
    seed: String,
    pk: String,
}

#[test]
fn published_ml_dsa_65_seed_gives_published_public_key() {
    let v: KeyGenVector = serde_json::from_str(include_str!("data/lamps-mldsa65-keygen.json")).expect("vector");
    assert_eq!(v.parameter_set, "ML-DSA-65");
    let seed: [u8; 32] = hex::decode(&v.seed).expect("hex").try_into().expect("32 bytes");
    let expected_pk = hex::decode(&v.pk).expect("hex");

    let vk = LogSigningKey::from_seed(&seed).verifying_key();
    assert_eq!(hex::encode(vk.to_bytes()), v.pk);

    let decoded = LogVerifyingKey::from_bytes(&expected_pk).expect("decodes");
    assert_eq!(decoded, vk);
    let sig = LogSigningKey::from_seed(&seed).sign(b"paramant");
    decoded.verify(b"paramant", &sig).expect("published key verifies our signature");
}
