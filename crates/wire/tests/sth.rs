//! Signed tree heads: exact signed bytes, sign/verify with the log key, and rejection of a wrong
//! key, a wrong fingerprint, a changed field or an unknown version.

use logkey::LogSigningKey;
use wire::{Error, SignedSth, SthBody};

// Test-only key seed; not secret.
const SEED: [u8; 32] = [0x5a; 32];

fn body() -> SthBody {
    SthBody {
        relay_id: "health.paramant.app".into(),
        sha3_root: "c7a9ef34".repeat(8),
        timestamp: 1_744_123_456_789,
        tree_size: 43,
        version: 1,
    }
}

#[test]
fn signed_bytes_are_sorted_compact_json() {
    let expected = format!(
        r#"{{"relay_id":"health.paramant.app","sha3_root":"{}","timestamp":1744123456789,"tree_size":43,"version":1}}"#,
        "c7a9ef34".repeat(8)
    );
    assert_eq!(String::from_utf8(body().signed_bytes()).expect("utf-8"), expected);
}

#[test]
fn signed_bytes_keep_integers_above_2_pow_53_exact() {
    let b = SthBody { timestamp: u64::MAX, tree_size: (1 << 53) + 1, ..body() };
    let s = String::from_utf8(b.signed_bytes()).expect("utf-8");
    assert!(s.contains(r#""timestamp":18446744073709551615,"tree_size":9007199254740993,"#), "{s}");
}

#[test]
fn signed_sth_verifies_under_the_log_key_and_serializes_flat() {
    let key = LogSigningKey::from_seed(&SEED);
    let sth = body().sign(&key);
    sth.verify(&key.verifying_key()).expect("valid STH");

    let json: serde_json::Value = serde_json::to_value(&sth).expect("json");
    let mut keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["pk_hash", "relay_id", "sha3_root", "signature", "timestamp", "tree_size", "version"]);
    let back: SignedSth = serde_json::from_value(json).expect("parse");
    assert_eq!(back, sth);
    back.verify(&key.verifying_key()).expect("still valid");
}

#[test]
fn changed_field_or_other_key_or_wrong_fingerprint_fails() {
    let key = LogSigningKey::from_seed(&SEED);
    let vk = key.verifying_key();
    let sth = body().sign(&key);

    let mut changed = sth.clone();
    changed.body.tree_size += 1;
    assert!(matches!(changed.verify(&vk), Err(Error::Signature(_))));

    let other = LogSigningKey::from_seed(&[0x6b; 32]).verifying_key();
    assert!(matches!(sth.verify(&other), Err(Error::PkHashMismatch { .. })));

    // Right fingerprint claimed for the other key, but the signature is not the other key's.
    let mut relabelled = sth.clone();
    relabelled.pk_hash = wire::hash_hex(&other.pk_hash());
    assert!(matches!(relabelled.verify(&other), Err(Error::Signature(_))));

    let mut bad_sig = sth.clone();
    bad_sig.signature = "not base64!".into();
    assert!(matches!(bad_sig.verify(&vk), Err(Error::Base64(_))));

    let mut v2 = sth.clone();
    v2.body.version = 2;
    assert!(matches!(v2.verify(&vk), Err(Error::UnsupportedVersion(2))));
}

#[test]
fn uppercase_pk_hash_is_accepted() {
    let key = LogSigningKey::from_seed(&SEED);
    let mut sth = body().sign(&key);
    sth.pk_hash = sth.pk_hash.to_uppercase();
    sth.verify(&key.verifying_key()).expect("hex is case-insensitive");
}
