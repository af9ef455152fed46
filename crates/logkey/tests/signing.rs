//! Signing and verification behaviour of the log key: roundtrip, tamper detection, determinism,
//! key encoding, and that secrets never reach `Debug`.

use logkey::{Error, LogSigningKey, LogVerifyingKey, ML_DSA_65_PUBLIC_KEY_LEN, ML_DSA_65_SIGNATURE_LEN};

// Test-only seeds; not secret.
const SEED_A: [u8; 32] = [0x11; 32];
const SEED_B: [u8; 32] = [0x22; 32];

#[test]
fn signature_made_by_a_key_verifies_under_its_public_key() {
    let sk = LogSigningKey::from_seed(&SEED_A);
    let sig = sk.sign(b"tree head");
    assert_eq!(sig.len(), ML_DSA_65_SIGNATURE_LEN);
    sk.verifying_key().verify(b"tree head", &sig).expect("valid signature");
}

#[test]
fn keys_of_different_seeds_sign_and_differ() {
    let a = LogSigningKey::from_seed(&SEED_A);
    let b = LogSigningKey::from_seed(&SEED_B);
    assert_ne!(a.verifying_key(), b.verifying_key());
    let sig = a.sign(b"m");
    a.verifying_key().verify(b"m", &sig).expect("valid signature");
}

#[test]
fn signature_over_another_message_is_rejected() {
    let sk = LogSigningKey::from_seed(&SEED_A);
    let sig = sk.sign(b"tree head 1");
    let err = sk.verifying_key().verify(b"tree head 2", &sig).expect_err("wrong message");
    assert!(matches!(err, Error::BadSignature));
}

#[test]
fn signature_with_any_flipped_bit_is_rejected() {
    let sk = LogSigningKey::from_seed(&SEED_A);
    let vk = sk.verifying_key();
    let sig = sk.sign(b"m");
    // First byte (c~), a byte inside z, and the last byte (hint encoding).
    for (i, bit) in [(0, 0x01), (100, 0x80), (2000, 0x10), (ML_DSA_65_SIGNATURE_LEN - 1, 0x01)] {
        let mut bad = sig.clone();
        bad[i] ^= bit;
        assert!(vk.verify(b"m", &bad).is_err(), "flip at byte {i} accepted");
    }
}

#[test]
fn signature_under_another_key_is_rejected() {
    let sig = LogSigningKey::from_seed(&SEED_A).sign(b"m");
    let other = LogSigningKey::from_seed(&SEED_B).verifying_key();
    assert!(matches!(other.verify(b"m", &sig), Err(Error::BadSignature)));
}

#[test]
fn signature_of_wrong_length_is_rejected_without_panic() {
    let sk = LogSigningKey::from_seed(&SEED_A);
    let vk = sk.verifying_key();
    let sig = sk.sign(b"m");
    for len in [0, 1, ML_DSA_65_SIGNATURE_LEN - 1, ML_DSA_65_SIGNATURE_LEN + 1] {
        let mut s = sig.clone();
        s.resize(len, 0);
        assert!(matches!(vk.verify(b"m", &s), Err(Error::SignatureLength { len: l }) if l == len));
    }
    // Right length, garbage content (malformed hint): an error, not a panic.
    assert!(vk.verify(b"m", &[0xff; ML_DSA_65_SIGNATURE_LEN]).is_err());
}

#[test]
fn signing_is_deterministic() {
    let a = LogSigningKey::from_seed(&SEED_A).sign(b"same message");
    let b = LogSigningKey::from_seed(&SEED_A).sign(b"same message");
    assert_eq!(a, b);
    assert_ne!(a, LogSigningKey::from_seed(&SEED_A).sign(b"other message"));
}

#[test]
fn public_key_roundtrips_through_its_encoding() {
    let vk = LogSigningKey::from_seed(&SEED_A).verifying_key();
    let bytes = vk.to_bytes();
    assert_eq!(bytes.len(), ML_DSA_65_PUBLIC_KEY_LEN);
    let back = LogVerifyingKey::from_bytes(&bytes).expect("decodes");
    assert_eq!(back, vk);
    assert_eq!(back.pk_hash(), vk.pk_hash());
    let sig = LogSigningKey::from_seed(&SEED_A).sign(b"m");
    back.verify(b"m", &sig).expect("decoded key verifies");
}

#[test]
fn public_key_of_wrong_length_is_rejected() {
    let bytes = LogSigningKey::from_seed(&SEED_A).verifying_key().to_bytes();
    for len in [0, 32, ML_DSA_65_PUBLIC_KEY_LEN - 1, ML_DSA_65_PUBLIC_KEY_LEN + 1] {
        let mut b = bytes.clone();
        b.resize(len, 0);
        assert!(matches!(
            LogVerifyingKey::from_bytes(&b),
            Err(Error::PublicKeyLength { len: l }) if l == len
        ));
    }
}

#[test]
fn pk_hash_is_sha3_256_of_the_encoded_key() {
    use sha3::Digest;
    let vk = LogSigningKey::from_seed(&SEED_A).verifying_key();
    let expected: [u8; 32] = sha3::Sha3_256::digest(vk.to_bytes()).into();
    assert_eq!(vk.pk_hash(), expected);
}

#[test]
fn debug_output_never_shows_the_seed() {
    let seed: [u8; 32] = core::array::from_fn(|i| (i as u8) ^ 0xa5);
    let sk = LogSigningKey::from_seed(&seed);
    let pk_hash_hex = hex::encode(sk.verifying_key().pk_hash());
    // Exactly the fingerprint, nothing else, in both Debug forms.
    assert_eq!(format!("{sk:?}"), format!("LogSigningKey {{ pk_hash: {pk_hash_hex:?}, .. }}"));
    let pretty = format!("{sk:#?}");
    assert!(!pretty.contains(&hex::encode(seed)), "{pretty}");
    assert!(!pretty.contains("165,"), "a decimal seed byte (0xa5) shown: {pretty}");
    assert_eq!(format!("{:?}", sk.verifying_key()), format!("LogVerifyingKey {{ pk_hash: {pk_hash_hex:?} }}"));
}
