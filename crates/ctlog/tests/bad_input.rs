//! Hostile and malformed requests get a JSON 4xx with an API error code, never a 5xx, and
//! leave the log intact.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::json;

#[test]
fn malformed_requests_get_json_client_errors_and_the_log_survives() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    log.append_transfer(&blob_hash(0));
    log.append_transfer(&blob_hash(1));

    let cases: &[(&str, u16, &str)] = &[
        ("/v2/ct/proof?index=2", 400, "bad_request"),
        ("/v2/ct/proof?index=-1", 400, "bad_request"),
        ("/v2/ct/proof?index=abc", 400, "bad_request"),
        ("/v2/ct/proof", 400, "bad_request"),
        ("/v2/ct/proof?index=0&leaf_hash=00", 400, "bad_request"),
        ("/v2/ct/proof?leaf_hash=zz", 400, "bad_request"),
        ("/v2/ct/proof?leaf_hash=", 400, "bad_request"),
        ("/v2/ct/proof?index=0&tree_size=99", 400, "bad_request"),
        ("/v2/sth/consistency?from=0&to=2", 400, "bad_request"),
        ("/v2/sth/consistency?from=2&to=1", 400, "bad_request"),
        ("/v2/sth/consistency?from=1&to=3", 400, "bad_request"),
        ("/v2/sth/consistency", 400, "bad_request"),
        ("/v2/sth/consistency?from=99999999999999999999999", 400, "bad_request"),
        ("/v2/sth/history?limit=x", 400, "bad_request"),
        ("/v2/sth/notanumber", 400, "bad_request"),
        ("/v2/sth/peers/nothex", 400, "bad_request"),
        ("/v2/sth/peers/0000000000000000000000000000000000000000000000000000000000000000", 404, "not_found"),
        ("/v2/nope", 404, "not_found"),
        ("/../../etc/passwd", 404, "not_found"),
        ("/v2/ct/log?from=abc", 400, "bad_request"),
    ];
    for (path, status, code) in cases {
        let (got, body) = log.get(path);
        assert_eq!((got, body["error"].as_str().unwrap_or_default()), (*status, *code), "GET {path}: {body}");
    }
    // limit above the documented maximum is clamped, not an error.
    let (status, body) = log.get("/v2/sth/history?limit=100000");
    assert_eq!(status, 200);
    assert!(body["count"].as_u64().unwrap() <= 100);

    let ingest = format!("{}/v2/sth/ingest", log.public);
    for body in [&b"not json"[..], b"[]", b"{}", b"{\"relay_id\":1}"] {
        let (status, answer) = post_raw(&ingest, body.to_vec(), None);
        assert_eq!(status, 400, "ingest {:?}: {answer}", String::from_utf8_lossy(body));
        assert_eq!(answer["error"], "bad_request");
    }
    let (status, answer) = post_raw(&ingest, vec![b' '; 200 * 1024], None);
    assert_eq!((status, answer["error"].as_str().unwrap()), (413, "payload_too_large"));

    let verify = format!("{}/v2/verify-receipt", log.public);
    assert_eq!(post_raw(&verify, b"{".to_vec(), None).0, 400);
    assert_eq!(post(&verify, &json!({}), None).0, 400);
    assert_eq!(post(&verify, &json!({"receipt": 5}), None).1["valid"], false);

    // The internal API refuses callers without the secret, and bad events.
    let append = format!("{}/internal/append", log.internal);
    let event = json!({ "event": { "type": "transfer", "blob_hash": blob_hash(5), "sector": "health" } });
    assert_eq!(post(&append, &event, None).0, 401);
    assert_eq!(post(&append, &event, Some("pit_wrong")).0, 401);
    for bad in [
        json!({ "event": { "type": "transfer", "blob_hash": "xyz", "sector": "health" } }),
        json!({ "event": { "type": "nonsense" } }),
        json!({ "event": "transfer" }),
        json!({ "event": { "type": "transfer", "blob_hash": blob_hash(5), "sector": "health", "extra": 1 } }),
        json!({}),
    ] {
        let (status, body) = log.internal("/internal/append", &bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }

    let (_, sth) = log.get("/v2/sth");
    assert_eq!(sth["sth"]["tree_size"], 2, "nothing of the bad input reached the log");
    let (_, health) = log.get("/health");
    assert_eq!(health["ok"], true);
}

#[test]
fn malformed_path_parameters_get_json_400s() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    for path in ["/v2/sth/%FF", "/v2/sth/peers/%FF%FE"] {
        let (status, body) = log.get(path);
        assert_eq!((status, body["error"].as_str().unwrap_or_default()), (400, "bad_request"), "GET {path}: {body}");
    }
}
