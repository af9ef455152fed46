//! The log as a client sees it: appends get proofs that verify against signed STHs, every
//! public endpoint answers in the API reference's shape, and a restart keeps the whole log.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::{Value, json};
use tlog::Sha3_256;

fn verify_sth(sth: &Value, public_key_b64: &str) {
    let key = crypto::LogVerifyingKey::from_bytes(&wire::parse_b64(public_key_b64).unwrap()).unwrap();
    let signed: wire::SignedSth = serde_json::from_value(sth.clone()).unwrap();
    signed.verify(&key).expect("STH signature verifies with /v2/pubkey");
}

fn audit_path(proof: &Value) -> Vec<[u8; 32]> {
    proof["audit_path"].as_array().unwrap().iter().map(|s| hex32(&s["hash"])).collect()
}

fn assert_consistent(log: &Log, old: &Value, new: &Value) {
    let (from, to) = (old["tree_size"].as_u64().unwrap(), new["tree_size"].as_u64().unwrap());
    if from == 0 {
        return;
    }
    let (status, body) = log.get(&format!("/v2/sth/consistency?from={from}&to={to}"));
    assert_eq!(status, 200, "{body}");
    let proof: Vec<[u8; 32]> = body["proof"].as_array().unwrap().iter().map(hex32).collect();
    tlog::verify_consistency::<Sha3_256>(from, to, &proof, &hex32(&old["sha3_root"]), &hex32(&new["sha3_root"]))
        .unwrap_or_else(|e| panic!("STH {from} -> {to} not consistent: {e}"));
}

#[test]
fn a_new_log_serves_a_signed_empty_tree_head() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    let (status, body) = log.get("/v2/sth");
    assert_eq!(status, 200);
    let sth = &body["sth"];
    assert_eq!(sth["tree_size"], 0);
    assert_eq!(sth["version"], 1);
    assert_eq!(sth["relay_id"], "health.example");
    // RFC 9162: the empty tree's root is the hash of the empty string, not zeros.
    assert_eq!(sth["sha3_root"], "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
    let (_, key) = log.get("/v2/pubkey");
    assert_eq!(key["alg"], "ML-DSA-65");
    assert_eq!(sth["pk_hash"], key["pk_hash"]);
    verify_sth(sth, key["public_key"].as_str().unwrap());
}

#[test]
fn appended_leaves_prove_against_signed_tree_heads() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    let (_, key) = log.get("/v2/pubkey");
    let public_key = key["public_key"].as_str().unwrap();
    for n in 0..20 {
        let appended = log.append_transfer(&blob_hash(n));
        assert_eq!(appended["leaf_index"], n);
        verify_sth(&appended["sth"], public_key);
        assert_eq!(appended["sth_signature"], appended["sth"]["signature"]);
        let size = appended["tree_size"].as_u64().unwrap();
        assert_eq!(appended["sth"]["tree_size"], size);
        assert_eq!(appended["root"], appended["sth"]["sha3_root"]);
        tlog::verify_inclusion::<Sha3_256>(
            n,
            size,
            &hex32(&appended["leaf_hash"]),
            &audit_path(&appended),
            &hex32(&appended["root"]),
        )
        .expect("merkle_proof from append verifies");
    }
    // The transfer leaf is exactly SHA3(0x02 ‖ sha256 ‖ SHA3(sector) ‖ ISO timestamp).
    let (_, log_page) = log.get("/v2/ct/log?from=3&limit=1");
    let entry = &log_page["entries"][0];
    assert_eq!(entry["index"], 3);
    assert_eq!(entry["type"], "transfer");
    let sector_hash = <Sha3_256 as tlog::TreeHasher>::digest(&[b"health"]);
    let expected = <Sha3_256 as tlog::TreeHasher>::digest(&[
        &[0x02],
        &hex32(&entry["blob_hash"]),
        &sector_hash,
        entry["timestamp"].as_str().unwrap().as_bytes(),
    ]);
    assert_eq!(entry["leaf_hash"], hex::encode(expected));

    let (status, proof) = log.get("/v2/ct/proof?index=7");
    assert_eq!(status, 200, "{proof}");
    assert_eq!(proof["tree_size"], 20);
    tlog::verify_inclusion::<Sha3_256>(7, 20, &hex32(&proof["leaf_hash"]), &audit_path(&proof), &hex32(&proof["root"]))
        .unwrap();
    assert_eq!(proof["sth"]["sha3_root"], proof["root"], "the proof's root is a signed root");
    let (_, by_hash) = log.get(&format!("/v2/ct/proof?leaf_hash={}", proof["leaf_hash"].as_str().unwrap()));
    assert_eq!(by_hash["leaf_index"], 7);

    let (_, history) = log.get("/v2/sth/history?limit=100");
    assert_eq!(history["count"], history["sths"].as_array().unwrap().len());
    assert!(history["total"].as_u64().unwrap() >= 21, "an STH per batch plus the empty one: {history}");
    let sths = history["sths"].as_array().unwrap();
    for pair in sths.windows(2) {
        assert!(pair[0]["timestamp"].as_u64() > pair[1]["timestamp"].as_u64(), "newest first, strictly ordered");
        assert_consistent(&log, &pair[1], &pair[0]);
    }
    let oldest_ts = sths.last().unwrap()["timestamp"].as_u64().unwrap();
    let (status, at) = log.get(&format!("/v2/sth/{oldest_ts}"));
    assert_eq!(status, 200);
    assert_eq!(at["sth"], *sths.last().unwrap());
    let (status, _) = log.get(&format!("/v2/sth/{}", u64::MAX / 2));
    assert_eq!(status, 404);
}

#[test]
fn restart_keeps_every_leaf_and_sth_and_the_new_head_extends_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::configure(dir.path(), "health.example", "").start();
    let mut appended = Vec::new();
    for n in 0..10 {
        appended.push(log.append_transfer(&blob_hash(n)));
    }
    let (_, before) = log.get("/v2/sth/history?limit=100");
    let (_, key_before) = log.get("/v2/pubkey");
    assert!(log.stop().success(), "SIGTERM is a clean exit");

    log.spawn();
    let (_, key_after) = log.get("/v2/pubkey");
    assert_eq!(key_before, key_after, "the key survives a restart");
    for n in 10..15 {
        appended.push(log.append_transfer(&blob_hash(n)));
    }
    let (_, after) = log.get("/v2/sth/history?limit=100");
    let after_sths = after["sths"].as_array().unwrap();
    for old in before["sths"].as_array().unwrap() {
        assert!(after_sths.contains(old), "STH {old} is still served after restart");
        assert_consistent(&log, old, &after_sths[0]);
    }
    for a in &appended {
        let (_, p) = log.get(&format!("/v2/ct/proof?index={}", a["leaf_index"]));
        assert_eq!(p["leaf_hash"], a["leaf_hash"]);
    }
}

#[test]
fn feeds_and_the_web_ui_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    for n in 0..3 {
        log.append_transfer(&blob_hash(n));
    }
    let (status, feed) = log.get("/ct/feed");
    assert_eq!(status, 200);
    assert_eq!(feed["tree_size"], 3);
    assert_eq!(feed["recent_entries"].as_array().unwrap().len(), 3);

    let (status, xml) = get_text(&format!("{}/ct/feed.xml", log.public));
    assert_eq!(status, 200);
    let doc = roxmltree::Document::parse(&xml).expect("the RSS feed is well-formed XML");
    let rss = doc.root_element();
    assert_eq!(rss.tag_name().name(), "rss");
    assert_eq!(rss.attribute("version"), Some("2.0"));
    let channel = rss.children().find(|n| n.has_tag_name("channel")).unwrap();
    for required in ["title", "link", "description"] {
        assert!(channel.children().any(|n| n.has_tag_name(required)), "channel has <{required}>");
    }
    let items: Vec<_> = channel.children().filter(|n| n.has_tag_name("item")).collect();
    assert!(!items.is_empty() && items.len() <= 20);
    let first: Value =
        serde_json::from_str(items[0].children().find(|n| n.has_tag_name("description")).unwrap().text().unwrap())
            .unwrap();
    assert_eq!(first["tree_size"], 3, "newest STH first, as signed JSON");

    let (status, html) = get_text(&format!("{}/ct/", log.public));
    assert_eq!(status, 200);
    assert!(html.contains("/ct/ui.js"));
    let (status, js) = get_text(&format!("{}/ct/ui.js", log.public));
    assert_eq!(status, 200);
    assert!(js.contains("function sha3_256"));
    let (_, health) = log.get("/health");
    assert_eq!(health["ok"], true);
    assert_eq!(health["sector"], "health");
}

/// The receipt object a header carries.
fn receipt_object(header: &str) -> Value {
    serde_json::from_slice(&wire::parse_b64url_lenient(header).unwrap()).unwrap()
}

#[test]
fn deliveries_get_receipts_that_verify_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    let transfer = log.append_transfer(&blob_hash(1));
    let (status, delivered) = log.internal(
        "/internal/receipt",
        &json!({ "blob_hash": blob_hash(1), "sector": "health", "transfer_leaf_hash": transfer["leaf_hash"] }),
    );
    assert_eq!(status, 200, "{delivered}");
    let header = delivered["receipt_header"].as_str().unwrap();
    assert!(!header.contains('=') && !header.contains('+') && !header.contains('/'), "base64url without padding");

    let (status, verdict) = log.post("/v2/verify-receipt", &json!({ "receipt": header }));
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["burn_confirmed"], false, "signed before the body: it confirms no burn");
    assert_eq!(verdict["blob_hash"], blob_hash(1));
    assert_eq!(verdict["tree_size_at_retrieval"], 1, "proved against the newest signed head");

    let padded = format!("{header}{}", "=".repeat((4 - header.len() % 4) % 4));
    assert_eq!(log.post("/v2/verify-receipt", &json!({ "receipt": padded })).1["valid"], true);
    let object = receipt_object(header);
    assert_eq!(log.post("/v2/verify-receipt", &json!({ "receipt": object })).1["valid"], true);

    let mut tampered = object.clone();
    tampered["burn_confirmed"] = json!(true);
    let (_, verdict) = log.post("/v2/verify-receipt", &json!({ "receipt": tampered }));
    assert_eq!((verdict["valid"].clone(), verdict["reason"].clone()), (json!(false), json!("signature_invalid")));

    let mut bad_path = object.clone();
    bad_path["inclusion_proof"]["root"] = json!("00".repeat(32));
    let (_, verdict) = log.post("/v2/verify-receipt", &json!({ "receipt": bad_path }));
    assert_eq!(verdict["valid"], false);

    let (_, verdict) = log.post("/v2/verify-receipt", &json!({ "receipt": "not-base64url!!" }));
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["reason"], "malformed_receipt");

    let (status, _) = log.internal(
        "/internal/receipt",
        &json!({ "blob_hash": blob_hash(9), "sector": "health", "transfer_leaf_hash": "ab".repeat(32) }),
    );
    assert_eq!(status, 404, "no receipt for a transfer the log never saw");
    // A relay cannot have a burn confirmed by saying so.
    let (status, _) = log.internal(
        "/internal/receipt",
        &json!({ "blob_hash": blob_hash(1), "sector": "health", "transfer_leaf_hash": transfer["leaf_hash"], "burned": true }),
    );
    assert_eq!(status, 400);
}

#[test]
fn a_burn_receipt_is_signed_only_for_a_logged_burn_and_is_the_same_whenever_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    let transfer = log.append_transfer(&blob_hash(1));
    let deliver = |blob: &str, sector: &str, burned: bool| {
        let (status, body) = log.internal(
            "/internal/append",
            &json!({ "event": { "type": "delivery", "blob_hash": blob, "sector": sector, "burned": burned } }),
        );
        assert_eq!(status, 200, "{body}");
        body
    };
    let ask = |delivery: &Value| {
        log.internal(
            "/internal/burn-receipt",
            &json!({ "blob_hash": blob_hash(1), "sector": "health", "transfer_leaf_hash": transfer["leaf_hash"],
                     "delivery_leaf_hash": delivery["leaf_hash"] }),
        )
    };
    // Not a burn: a view that left the blob, another blob's burn, another sector's, no leaf.
    for delivery in [
        deliver(&blob_hash(1), "health", false),
        deliver(&blob_hash(2), "health", true),
        deliver(&blob_hash(1), "legal", true),
        json!({ "leaf_hash": "cd".repeat(32) }),
        transfer.clone(),
    ] {
        let (status, body) = ask(&delivery);
        assert_eq!(status, 404, "{body}");
    }

    let burn = deliver(&blob_hash(1), "health", true);
    let (status, first) = ask(&burn);
    assert_eq!(status, 200, "{first}");
    let header = first["receipt_header"].as_str().unwrap();
    let (_, verdict) = log.post("/v2/verify-receipt", &json!({ "receipt": header }));
    assert_eq!(
        (verdict["valid"].clone(), verdict["burn_confirmed"].clone(), verdict["blob_hash"].clone()),
        (json!(true), json!(true), json!(blob_hash(1))),
        "{verdict}"
    );
    // Proved against the head of the commit that logged the burn, dated by the burn's leaf.
    assert_eq!(verdict["tree_size_at_retrieval"], burn["tree_size"]);
    let (_, entries) = log.get(&format!("/v2/ct/log?from={}&limit=1", burn["leaf_index"]));
    assert_eq!(verdict["retrieved_at"], entries["entries"][0]["timestamp"], "{entries}");

    // Later, with a bigger tree, the same receipt.
    log.append_transfer(&blob_hash(3));
    let (status, again) = ask(&burn);
    assert_eq!(status, 200);
    assert_eq!(again["receipt_header"], first["receipt_header"]);
}
