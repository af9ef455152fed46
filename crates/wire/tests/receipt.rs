//! Delivery receipts: header round trip (with and without padding), signature by the log key,
//! tamper detection, strict parsing.

use logkey::LogSigningKey;
use tlog::{Hash, Sha3_256, TreeHasher};
use wire::{Error, InclusionProof, Receipt, ReceiptBody, canonical_json_of};

// Test-only key seed; not secret.
const SEED: [u8; 32] = [0x42; 32];

/// A two-leaf tree: leaf 1's proof is leaf 0's hash, on the left.
fn body() -> ReceiptBody {
    let l0: Hash = Sha3_256::hash_leaf(b"zero");
    let l1: Hash = Sha3_256::hash_leaf(b"one");
    let root = Sha3_256::hash_children(&l0, &l1);
    ReceiptBody {
        blob_hash: "a3f2".repeat(16),
        sector: "health".into(),
        retrieved_at: "2026-04-15T09:00:00.000Z".into(),
        relay_id: "health.paramant.app".into(),
        tree_size_at_retrieval: 2,
        inclusion_proof: InclusionProof::new(&l1, 1, 2, &[l0], &root),
        burn_confirmed: true,
    }
}

#[test]
fn signed_bytes_are_canonical_json_of_every_field_sorted_at_every_level() {
    let b = body();
    let s = String::from_utf8(b.signed_bytes()).expect("utf-8");
    let p = &b.inclusion_proof;
    let expected = format!(
        concat!(
            r#"{{"blob_hash":"{}","burn_confirmed":true,"inclusion_proof":{{"audit_path":[{{"hash":"{}","position":"left"}}],"#,
            r#""leaf_hash":"{}","leaf_index":1,"root":"{}","tree_size":2}},"relay_id":"health.paramant.app","#,
            r#""retrieved_at":"2026-04-15T09:00:00.000Z","sector":"health","tree_size_at_retrieval":2}}"#
        ),
        b.blob_hash, p.audit_path[0].hash, p.leaf_hash, p.root
    );
    assert_eq!(s, expected);
}

#[test]
fn header_round_trips_with_and_without_padding() {
    let receipt = body().sign(&LogSigningKey::from_seed(&SEED));
    let header = receipt.to_header();
    assert!(!header.contains('='), "no padding");
    assert!(!header.contains('+') && !header.contains('/'), "url alphabet");
    assert_eq!(Receipt::from_header(&header).expect("unpadded"), receipt);

    let padded = format!("{header}{}", "=".repeat((4 - header.len() % 4) % 4));
    assert_eq!(Receipt::from_header(&padded).expect("padded"), receipt);

    // The header carries the receipt's canonical JSON, signature included, flat.
    let json = wire::parse_b64url_lenient(&header).expect("b64url");
    assert_eq!(json, canonical_json_of(&receipt).expect("canonical"));
    let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert!(v.get("signature").is_some() && v.get("body").is_none());
}

#[test]
fn the_direct_header_is_the_header_of_the_signed_receipt() {
    let key = LogSigningKey::from_seed(&SEED);
    for (size, burned) in [(2, true), (2, false), (1 << 40, true)] {
        let mut b = body();
        b.tree_size_at_retrieval = size;
        b.burn_confirmed = burned;
        b.sector = "se\"ctor,\"tree_size_at_retrieval\":1}".into();
        assert_eq!(b.sign_to_header(&key), b.clone().sign(&key).to_header());
    }
}

#[test]
fn receipt_signed_by_the_log_key_verifies() {
    let key = LogSigningKey::from_seed(&SEED);
    let receipt = Receipt::from_header(&body().sign(&key).to_header()).expect("parse");
    receipt.verify_signature(&key.verifying_key()).expect("signature");
    receipt.verify(&key.verifying_key()).expect("signature and proof");
}

#[test]
fn any_changed_field_breaks_the_signature() {
    let key = LogSigningKey::from_seed(&SEED);
    let vk = key.verifying_key();
    let receipt = body().sign(&key);
    let changes: [fn(&mut ReceiptBody); 7] = [
        |b| b.blob_hash = "a3f3".repeat(16),
        |b| b.sector = "legal".into(),
        |b| b.retrieved_at = "2026-04-15T09:00:00.001Z".into(),
        |b| b.relay_id = "relay.paramant.app".into(),
        |b| b.tree_size_at_retrieval = 3,
        |b| b.inclusion_proof.leaf_index = 0,
        |b| b.burn_confirmed = false,
    ];
    for (i, change) in changes.iter().enumerate() {
        let mut r = receipt.clone();
        change(&mut r.body);
        assert!(matches!(r.verify_signature(&vk), Err(Error::Signature(_))), "change {i}");
    }
    let other = LogSigningKey::from_seed(&[0x43; 32]).verifying_key();
    assert!(matches!(receipt.verify(&other), Err(Error::Signature(_))));
}

#[test]
fn validly_signed_receipt_with_a_wrong_root_fails_the_proof_check() {
    let key = LogSigningKey::from_seed(&SEED);
    let mut b = body();
    b.inclusion_proof.root = "c7a9".repeat(16);
    let receipt = b.sign(&key);
    receipt.verify_signature(&key.verifying_key()).expect("the log did sign it");
    assert!(matches!(receipt.verify(&key.verifying_key()), Err(Error::RootMismatch { .. })));
}

#[test]
fn unknown_or_missing_fields_and_garbage_are_rejected() {
    let receipt = body().sign(&LogSigningKey::from_seed(&SEED));
    let mut v = serde_json::to_value(&receipt).expect("json");
    v["extra"] = serde_json::json!(1);
    let header = wire::b64url(serde_json::to_vec(&v).expect("json"));
    assert!(matches!(Receipt::from_header(&header), Err(Error::Json(_))));

    let mut v = serde_json::to_value(&receipt).expect("json");
    v.as_object_mut().expect("object").remove("burn_confirmed");
    let header = wire::b64url(serde_json::to_vec(&v).expect("json"));
    assert!(matches!(Receipt::from_header(&header), Err(Error::Json(_))));

    let mut v = serde_json::to_value(&receipt).expect("json");
    v["inclusion_proof"]["extra"] = serde_json::json!(1);
    let header = wire::b64url(serde_json::to_vec(&v).expect("json"));
    assert!(matches!(Receipt::from_header(&header), Err(Error::Json(_))));

    assert!(matches!(Receipt::from_header("!!!"), Err(Error::Base64(_))));
    assert!(matches!(Receipt::from_header(&wire::b64url("[1,2]")), Err(Error::Json(_))));
}
