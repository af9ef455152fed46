//! `POST /internal/append-batch` of the real binary: many events in one request, each with an
//! inclusion proof against a signed STH of the answer; an invalid event is refused alone;
//! the batch needs the internal secret and stays within its limits.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::{Value, json};
use tlog::Sha3_256;

fn transfer(n: u64) -> Value {
    json!({ "type": "transfer", "blob_hash": blob_hash(n), "sector": "health" })
}

#[test]
fn a_batch_appends_every_valid_event_with_a_proof_and_refuses_the_invalid_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    let (_, key) = log.get("/v2/pubkey");
    let verifying =
        crypto::LogVerifyingKey::from_bytes(&wire::parse_b64(key["public_key"].as_str().unwrap()).unwrap()).unwrap();
    log.append_transfer(&blob_hash(100));

    let invalid = json!({ "type": "transfer", "blob_hash": "not hex", "sector": "health" });
    let events = json!([transfer(0), transfer(1), invalid, transfer(2), "not an object"]);
    let (status, answer) = log.internal("/internal/append-batch", &json!({ "events": events }));
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for refused in [&results[2], &results[4]] {
        assert_eq!(refused["ok"], false, "{refused}");
        assert!(refused["detail"].as_str().unwrap().contains("event"), "{refused}");
    }
    let mut indexes = Vec::new();
    for appended in [&results[0], &results[1], &results[3]] {
        assert_eq!(appended["ok"], true, "{appended}");
        let sth: wire::SignedSth =
            serde_json::from_value(answer["sths"][appended["sth"].as_u64().unwrap() as usize].clone()).unwrap();
        sth.verify(&verifying).expect("the batch's STH is signed by the log key");
        let (index, size) = (appended["leaf_index"].as_u64().unwrap(), appended["tree_size"].as_u64().unwrap());
        assert_eq!(size, sth.body.tree_size);
        let path: Vec<[u8; 32]> =
            appended["audit_path"].as_array().unwrap().iter().map(|s| hex32(&s["hash"])).collect();
        tlog::verify_inclusion::<Sha3_256>(
            index,
            size,
            &hex32(&appended["leaf_hash"]),
            &path,
            &hex32(&json!(sth.body.sha3_root)),
        )
        .expect("the proof verifies against the STH");
        indexes.push(index);
    }
    indexes.sort_unstable();
    assert_eq!(indexes, vec![1, 2, 3], "three leaves after the first, none for the refused events");
    // The log holds exactly those leaves.
    let (_, page) = log.get("/v2/ct/log?from=0&limit=10");
    assert_eq!(page["entries"].as_array().unwrap().len(), 4, "{page}");
}

#[test]
fn a_batch_needs_the_secret_and_one_to_1024_events() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    let url = format!("{}/internal/append-batch", log.internal);
    let (status, _) = post(&url, &json!({ "events": [transfer(0)] }), None);
    assert_eq!(status, 401);
    let (status, body) = log.internal("/internal/append-batch", &json!({ "events": [] }));
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    let too_many: Vec<Value> = (0..1025).map(transfer).collect();
    let (status, body) = log.internal("/internal/append-batch", &json!({ "events": too_many }));
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    let (status, body) = log.internal("/internal/append-batch", &json!({ "events": [transfer(0)], "extra": 1 }));
    assert_eq!(status, 400, "{body}");
    let (_, sth) = log.get("/v2/sth");
    assert_eq!(sth["sth"]["tree_size"], 0, "nothing was appended");
}
