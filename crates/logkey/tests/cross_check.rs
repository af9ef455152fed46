//! Two independent ML-DSA-65 implementations must agree byte for byte: the one the log uses
//! (`libcrux-ml-dsa`, behind `logkey`) and RustCrypto's `ml-dsa`. Same seed → same public key;
//! same key and message → the same deterministic signature; each verifies the other's.

use logkey::{LogSigningKey, LogVerifyingKey};
use ml_dsa::{EncodedSignature, MlDsa65, Seed, Signature, Signer, Verifier};

fn seeds() -> impl Iterator<Item = [u8; 32]> {
    (0u8..6).map(|i| {
        let mut seed = [0u8; 32];
        for (j, b) in seed.iter_mut().enumerate() {
            *b = i.wrapping_mul(37).wrapping_add(j as u8).wrapping_mul(101);
        }
        seed
    })
}

fn messages() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"paramant".to_vec(),
        br#"{"relay_id":"health.example","sha3_root":"a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a","timestamp":1765000000000,"tree_size":0,"version":1}"#.to_vec(),
        (0..=255u8).cycle().take(5000).collect(),
    ]
}

#[test]
fn public_keys_and_deterministic_signatures_are_identical_in_both_implementations() {
    for seed in seeds() {
        let ours = LogSigningKey::from_seed(&seed);
        let theirs = ml_dsa::SigningKey::<MlDsa65>::from_seed(&Seed::from(seed));
        let their_key: &ml_dsa::VerifyingKey<MlDsa65> = theirs.as_ref();
        let their_vk = their_key.encode().to_vec();
        assert_eq!(ours.verifying_key().to_bytes(), their_vk, "public key of seed {seed:02x?}");
        for message in messages() {
            let our_sig = ours.sign(&message);
            let their_sig: Signature<MlDsa65> = theirs.sign(&message);
            let their_sig = their_sig.encode().to_vec();
            assert_eq!(our_sig, their_sig, "signature of a {}-byte message", message.len());
            // Each verifies the other's.
            LogVerifyingKey::from_bytes(&their_vk).unwrap().verify(&message, &their_sig).unwrap();
            let encoded = EncodedSignature::<MlDsa65>::try_from(our_sig.as_slice()).unwrap();
            let decoded = Signature::<MlDsa65>::decode(&encoded).unwrap();
            their_key.verify(&message, &decoded).unwrap();
        }
    }
}
