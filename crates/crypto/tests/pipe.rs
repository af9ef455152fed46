//! Device keys and the wire-format-v1 primitives of `crypto::pipe`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::os::unix::fs::PermissionsExt;

use crypto::pipe::{self, DeviceKeys, PipeError};

#[test]
fn device_keys_are_created_once_with_mode_0600_and_reload_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.key");
    let (first, created) = DeviceKeys::load_or_generate(&path).unwrap();
    assert!(created);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 96);
    let (again, created) = DeviceKeys::load_or_generate(&path).unwrap();
    assert!(!created);
    assert_eq!(first.kem_public_key(), again.kem_public_key());
    assert_eq!(first.signing_public_key(), again.signing_public_key());
    assert_eq!(first.kem_public_key().len(), pipe::ML_KEM_768_PUBLIC_KEY_LEN);

    std::fs::write(&path, [0u8; 95]).unwrap();
    assert!(matches!(DeviceKeys::load_or_generate(&path), Err(PipeError::DeviceFileFormat { len: 95, .. })));
}

#[test]
fn encapsulation_reaches_only_the_holder_of_the_key() {
    let alice = DeviceKeys::generate().unwrap();
    let (ct, shared) = pipe::encapsulate(&alice.kem_public_key()).unwrap();
    assert_eq!(ct.len(), pipe::ML_KEM_768_CIPHERTEXT_LEN);
    assert_eq!(*alice.decapsulate(&ct).unwrap(), *shared);
    let bob = DeviceKeys::generate().unwrap();
    assert_ne!(*bob.decapsulate(&ct).unwrap(), *shared, "implicit rejection gives another secret");
    assert!(matches!(alice.decapsulate(&ct[1..]), Err(PipeError::KemCiphertext { .. })));
    assert!(matches!(pipe::encapsulate(&[0u8; 100]), Err(PipeError::KemPublicKey { len: 100 })));
}

#[test]
fn hkdf_and_aes_gcm_match_published_vectors() {
    // RFC 5869 test case 1 (the first 32 bytes of its 42-byte OKM).
    let ikm = [0x0b; 22];
    let salt = hex::decode("000102030405060708090a0b0c").unwrap();
    let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
    assert_eq!(
        hex::encode(*pipe::hkdf_sha256(&ikm, &salt, &info)),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
    );
    // AES-256-GCM, NIST GCM spec test case 13 (zero key, zero nonce, empty message).
    let sealed = pipe::aes256gcm_seal(&[0; 32], &[0; 12], b"", b"");
    assert_eq!(hex::encode(&sealed), "530f8afbc74536b9a963b4f1c4cb738b");
    assert!(pipe::aes256gcm_open(&[0; 32], &[0; 12], b"", &sealed).unwrap().is_empty());
    assert!(matches!(pipe::aes256gcm_open(&[1; 32], &[0; 12], b"", &sealed), Err(PipeError::Decrypt)));
}

#[test]
fn aes_gcm_in_place_matches_the_copying_form_and_refuses_a_wrong_tag() {
    let (key, nonce, aad) = ([3u8; 32], [5u8; 12], b"PQHB-aad");
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let sealed = pipe::aes256gcm_seal(&key, &nonce, aad, &message);
    let mut buf = message.clone();
    let tag = pipe::aes256gcm_seal_in_place(&key, &nonce, aad, &mut buf);
    assert_eq!([&buf[..], &tag[..]].concat(), sealed);
    let mut wrong = tag;
    wrong[0] ^= 1;
    let mut copy = buf.clone();
    assert!(matches!(pipe::aes256gcm_open_in_place(&key, &nonce, aad, &mut copy, &wrong), Err(PipeError::Decrypt)));
    assert!(pipe::aes256gcm_open_in_place(&key, &nonce, b"other aad", &mut buf.clone(), &tag).is_err());
    pipe::aes256gcm_open_in_place(&key, &nonce, aad, &mut buf, &tag).unwrap();
    assert_eq!(buf, message);
}
