//! Malformed and hostile requests: each gets a 4xx with the API reference's error code (never a
//! 5xx), and the blobs already stored survive it byte for byte.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::{Value, json};

/// Small blobs so that oversized bodies are cheap to send.
const LIMITS: &str = "[limits]\nmax_blob_bytes = 65536\n";

/// A sector with one stored blob; returns (sector, key, stored payload, its hash).
fn sector_with_a_blob() -> (Sector, String, Vec<u8>, String) {
    let sector = Sector::with_config(LIMITS);
    let key = sector.key("enterprise");
    let data = payload(1, 1000);
    let hash = sector.upload_ok(&key, &data, json!({}));
    (sector, key, data, hash)
}

/// The stored blob is untouched: still one view, still the only blob held, and (last) the
/// same bytes come back.
fn assert_intact(sector: &Sector, key: &str, hash: &str) {
    let status = sector.status_of(key, hash);
    assert_eq!((status.status, status.json()["views_left"].clone()), (200, json!(1)), "{}", status.text());
    let health = sector.get("/health", None).json();
    assert_eq!(
        (health["blobs"].clone(), health["blob_bytes"].clone()),
        (json!(1), json!(1000)),
        "no claim leaked: {health}"
    );
}

fn assert_delivers(sector: &Sector, key: &str, hash: &str, data: &[u8]) {
    let download = sector.download(key, hash);
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.body, data);
}

fn assert_4xx_json(status: u16, body: &Value, what: &str) {
    assert!((400..500).contains(&status), "{what}: {status} {body}");
    let code = body["error"].as_str().unwrap_or_else(|| panic!("{what}: no error code in {body}"));
    let expected = match status {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        _ => panic!("{what}: unexpected status {status} {body}"),
    };
    assert_eq!(code, expected, "{what}: {body}");
}

#[test]
fn malformed_upload_bodies_get_400_and_leave_stored_blobs_intact() {
    let (sector, key, data, hash) = sector_with_a_blob();
    let fresh = payload(2, 100);
    let (h, p) = (sha256_hex(&fresh), b64(&fresh));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{not json".to_vec()),
        ("empty body", Vec::new()),
        ("a JSON array", b"[]".to_vec()),
        ("JSON null", b"null".to_vec()),
        ("trailing garbage", format!("{{\"hash\":\"{h}\",\"payload\":\"{p}\"}}xyz").into_bytes()),
        ("invalid UTF-8", b"{\"hash\":\"\xff\xfe\",\"payload\":\"\"}".to_vec()),
    ];
    for (what, body) in bodies {
        let reply = sector.post_bytes("/v2/inbound", Some(&key), body);
        assert_eq!((reply.status, reply.error()), (400, "bad_request".into()), "{what}: {}", reply.text());
        assert_intact(&sector, &key, &hash);
    }
    let requests = vec![
        ("hash is a number", json!({ "hash": 5, "payload": p })),
        ("payload is an array", json!({ "hash": h, "payload": [1, 2] })),
        ("ttl_ms is a string", json!({ "hash": h, "payload": p, "ttl_ms": "1000" })),
        ("ttl_ms is negative", json!({ "hash": h, "payload": p, "ttl_ms": -1 })),
        ("ttl_ms is 0", json!({ "hash": h, "payload": p, "ttl_ms": 0 })),
        ("max_views is a fraction", json!({ "hash": h, "payload": p, "max_views": 1.5 })),
        ("max_views is 0", json!({ "hash": h, "payload": p, "max_views": 0 })),
        ("unknown field", json!({ "hash": h, "payload": p, "colour": "red" })),
        ("unknown meta field", json!({ "hash": h, "payload": p, "meta": { "device_id": "a", "extra": 1 } })),
        ("meta is a string", json!({ "hash": h, "payload": p, "meta": "x" })),
        ("bad device id", json!({ "hash": h, "payload": p, "meta": { "device_id": "bad id" } })),
        ("no hash", json!({ "payload": p })),
        ("no payload", json!({ "hash": h })),
        ("hash not hex", json!({ "hash": "z".repeat(64), "payload": p })),
        ("hash 63 characters", json!({ "hash": &h[..63], "payload": p })),
        ("hash 65 characters", json!({ "hash": format!("{h}0"), "payload": p })),
        ("payload not base64", json!({ "hash": h, "payload": "!!!! not base64 !!!!" })),
        ("payload URL-safe base64", json!({ "hash": h, "payload": p.replace('+', "-").replace('/', "_") + "-_-_" })),
        ("payload cut in the middle of a quantum", json!({ "hash": h, "payload": &p[..p.len() - 3] })),
    ];
    for (what, request) in requests {
        let reply = sector.post("/v2/inbound", Some(&key), &request);
        assert_eq!((reply.status, reply.error()), (400, "bad_request".into()), "{what}: {}", reply.text());
        assert_intact(&sector, &key, &hash);
    }
    let mismatch = json!({ "hash": sha256_hex(b"something else"), "payload": p });
    sector.post("/v2/inbound", Some(&key), &mismatch).assert_error(400, "hash_mismatch");
    assert_intact(&sector, &key, &hash);
    sector.upload_ok(&key, &fresh, json!({}));
    assert_delivers(&sector, &key, &hash, &data);
}

#[test]
fn uploading_a_stored_hash_again_is_409_and_keeps_the_first_blob() {
    let (sector, key, data, hash) = sector_with_a_blob();
    sector.upload(&key, &data, json!({})).assert_error(409, "duplicate");
    sector.upload(&key, &data, json!({ "ttl_ms": 5, "max_views": 3 })).assert_error(409, "duplicate");
    let other = sector.key("enterprise");
    sector.upload(&other, &data, json!({})).assert_error(409, "duplicate");
    // Same hash, bytes that are not its preimage: still refused as taken, the first blob stays.
    let forged = json!({ "hash": hash, "payload": b64(b"forged") });
    sector.post("/v2/inbound", Some(&other), &forged).assert_error(409, "duplicate");
    assert_intact(&sector, &key, &hash);
    assert_delivers(&sector, &key, &hash, &data);
}

/// POSTs a body the relay refuses before reading it all. The relay answers 413 and closes the
/// connection, so a client may fail to write the rest (ureq then reports only the broken
/// pipe); a raw socket ignores that and reads the answer.
fn post_oversized(sector: &Sector, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (status, answer) = sector.raw(&head, &body);
    (
        status,
        serde_json::from_slice(&answer)
            .unwrap_or_else(|_| panic!("{path}: non-JSON {status}: {}", String::from_utf8_lossy(&answer))),
    )
}

fn assert_too_large((status, body): &(u16, Value)) {
    assert_eq!((*status, body["error"].clone()), (413, json!("payload_too_large")), "{body}");
}

#[test]
fn oversized_bodies_and_payloads_get_413_and_leave_stored_blobs_intact() {
    let (sector, key, data, hash) = sector_with_a_blob();
    // Within the body limit, but the decoded payload is one byte over max_blob_bytes.
    sector.upload(&key, &payload(3, 65_537), json!({})).assert_error(413, "payload_too_large");
    assert_intact(&sector, &key, &hash);
    // Over the body limit of uploads (base64 of max_blob_bytes plus 64 KiB).
    let big = payload(4, 200_000);
    let upload = json!({ "hash": sha256_hex(&big), "payload": b64(&big) });
    assert_too_large(&post_oversized(&sector, "/v2/inbound", &key, &upload));
    assert_intact(&sector, &key, &hash);
    // Over the 64 KiB body limit of every other endpoint.
    let huge_device = json!({ "device_id": "x", "ecdh_pub": "a".repeat(100_000) });
    assert_too_large(&post_oversized(&sector, "/v2/pubkey", &key, &huge_device));
    let huge_receipt = json!({ "receipt": "a".repeat(100_000) });
    assert_too_large(&post_oversized(&sector, "/v2/verify-receipt", &key, &huge_receipt));
    assert_intact(&sector, &key, &hash);
    assert_delivers(&sector, &key, &hash, &data);
}

#[test]
fn unknown_paths_get_404_and_wrong_methods_405() {
    let (sector, key, data, hash) = sector_with_a_blob();
    for path in [
        "/",
        "/v2",
        "/v2/",
        "/v2/nope",
        "/v3/inbound",
        "/v2/outbound",
        "/v2/outbound/",
        "/admin/api/admin/keys",
        "/internal/keys",
        "/v2/inbound/extra",
        "/.env",
        "/v2/ct/../../internal/keys",
    ] {
        let reply = sector.get(path, Some(&key));
        assert_eq!((reply.status, reply.error()), (404, "not_found".into()), "GET {path}: {}", reply.text());
    }
    for (method, path) in [
        ("GET", "/v2/inbound".to_owned()),
        ("DELETE", "/v2/inbound".into()),
        ("PUT", format!("/v2/outbound/{hash}")),
        ("DELETE", format!("/v2/outbound/{hash}")),
        ("POST", format!("/v2/status/{hash}")),
    ] {
        let reply = sector.request(method, &path, &[("x-api-key", &key)], None);
        assert_eq!(
            (reply.status, reply.error()),
            (405, "method_not_allowed".into()),
            "{method} {path}: {}",
            reply.text()
        );
    }
    assert_intact(&sector, &key, &hash);
    assert_delivers(&sector, &key, &hash, &data);
}

#[test]
fn path_tricks_in_hashes_and_ids_get_4xx_never_5xx() {
    let (sector, key, data, hash) = sector_with_a_blob();
    let upper = hash.to_ascii_uppercase();
    let long = "a".repeat(10_000);
    let paths = [
        "/v2/outbound/..%2F..%2Fetc".to_owned(),
        "/v2/outbound/..%2F..%2Fetc%2Fpasswd".into(),
        "/v2/outbound/%2e%2e%2f%2e%2e%2fetc".into(),
        "/v2/outbound/../../etc/passwd".into(),
        "/v2/outbound/..".into(),
        "/v2/outbound/%00".into(),
        format!("/v2/outbound/{hash}%00"),
        format!("/v2/outbound/{hash}%2F"),
        format!("/v2/outbound/{hash}/extra"),
        format!("/v2/outbound/{}", &hash[..63]),
        format!("/v2/outbound/{hash}0"),
        format!("/v2/outbound/{}", "g".repeat(64)),
        format!("/v2/outbound/{}", "%41".repeat(64)),
        format!("/v2/outbound/{long}"),
        "/v2/outbound/%ZZ".into(),
        "/v2/outbound/%FF%FE".into(),
        format!("/v2/status/..%2F{hash}"),
        "/v2/status/%FF".into(),
        "/v2/dl/..%2F..%2Fetc/get".into(),
        "/v2/dl/%FF/get".into(),
        "/v2/pubkey/..%2F..%2Fetc".into(),
        "/v2/pubkey/%FF".into(),
        "/v2/did/..%2F..%2Fetc".into(),
        "/v2/did/%FF".into(),
        "/v2/stream-next?device=%FF".into(),
        "/v2/stream-next?device=%ZZ".into(),
        "/v2/audit?limit=-1".into(),
        "/v2/audit?limit=%FF".into(),
        "/v2/relays?offset=x".into(),
    ];
    for path in &paths {
        let (status, body) = sector.raw_get(path, Some(&key));
        assert_4xx_json(status, &body, path);
        assert_intact(&sector, &key, &hash);
    }
    // Upper-case hex names the same blob.
    assert_eq!(sector.status_of(&key, &upper).status, 200);
    assert_delivers(&sector, &key, &upper, &data);
    wait_until("the burn", || (sector.download(&key, &hash).status == 404).then_some(()));
}

#[test]
fn missing_wrong_and_foreign_api_keys_are_refused_and_the_blob_stays() {
    let (sector, key, data, hash) = sector_with_a_blob();
    let other = sector.key("enterprise");
    let unknown = format!("pgp_{}", "a".repeat(43));
    let fresh = payload(5, 10);
    let upload = json!({ "hash": sha256_hex(&fresh), "payload": b64(&fresh) });

    sector.post("/v2/inbound", None, &upload).assert_error(401, "unauthorized");
    for wrong in [unknown.as_str(), "hello", "", "pgp_", "plk_short", "pgp_ä-not-ascii"] {
        let reply = sector.request(
            "POST",
            "/v2/inbound",
            &[("x-api-key", wrong), ("content-type", "application/json")],
            Some(serde_json::to_vec(&upload).unwrap()),
        );
        reply.assert_error(401, "unauthorized");
        sector.download(wrong, &hash).assert_error(401, "unauthorized");
    }
    sector.get(&format!("/v2/outbound/{hash}"), None).assert_error(401, "unauthorized");
    sector.get(&format!("/v2/status/{hash}"), None).assert_error(401, "unauthorized");
    sector.download(&other, &hash).assert_error(403, "forbidden");
    sector.status_of(&other, &hash).assert_error(403, "forbidden");
    sector.get(&format!("/v2/dl/{}", "0".repeat(64)), Some(&other)).assert_error(410, "gone");

    // A key in the URL is refused outright, even a valid one, wherever it is.
    for query in
        [format!("?k={key}"), format!("?api_key={key}"), "?key=x".into(), format!("?x={key}"), "?apikey=1".into()]
    {
        let (status, body) = sector.raw_get(&format!("/v2/outbound/{hash}{query}"), None);
        assert_eq!((status, body["error"].clone()), (400, json!("bad_request")), "{query}: {body}");
        let (status, _) = sector.raw_get(&format!("/v2/status/{hash}{query}"), Some(&key));
        assert_eq!(status, 400, "{query}");
    }

    // A deactivated key stops working at once.
    let key_hash = sha256_hex(other.as_bytes());
    let body = serde_json::to_vec(&json!({ "key_hash": key_hash, "active": false })).unwrap();
    let token = sector.internal_token();
    let update =
        call(&format!("{}/internal/keys/update", sector.internal), "POST", &[("x-internal-auth", &token)], Some(body))
            .unwrap();
    assert_eq!(update.status, 200, "{}", update.text());
    sector.status_of(&other, &hash).assert_error(401, "unauthorized");
    // The internal API wants its own secret.
    let refused =
        call(&format!("{}/internal/keys", sector.internal), "GET", &[("x-internal-auth", "pit_wrong")], None).unwrap();
    refused.assert_error(401, "unauthorized");

    assert_intact(&sector, &key, &hash);
    assert_delivers(&sector, &key, &hash, &data);
}

/// A wire-format v1 blob: header "PQHB" ‖ version ‖ KEM id ‖ SIG id ‖ flags, then the
/// length-prefixed fields the SDK writes.
fn wire_v1(version: u8, kem: u16, sig: u16) -> Vec<u8> {
    let field = |len: usize, fill: u8| {
        let mut out = (len as u32).to_be_bytes().to_vec();
        out.resize(4 + len, fill);
        out
    };
    let mut out = b"PQHB".to_vec();
    out.push(version);
    out.extend(kem.to_be_bytes());
    out.extend(sig.to_be_bytes());
    out.push(0);
    out.extend(field(1088, 1));
    out.extend(field(1952, 2));
    out.extend(field(3309, 3));
    out.extend([7u8; 12]);
    out.extend(field(100, 4));
    out
}

#[test]
fn wire_v1_blobs_with_unknown_algorithms_or_truncated_fields_are_refused() {
    let (sector, key, data, hash) = sector_with_a_blob();
    let good = wire_v1(1, 2, 2);
    sector.upload(&key, &wire_v1(1, 9, 2), json!({})).assert_error(415, "unsupported_algorithm");
    sector.upload(&key, &wire_v1(1, 2, 7), json!({})).assert_error(415, "unsupported_algorithm");
    sector.upload(&key, &wire_v1(2, 2, 2), json!({})).assert_error(415, "unsupported_wire_version");
    sector.upload(&key, &good[..good.len() - 1], json!({})).assert_error(400, "malformed_wire_v1");
    sector.upload(&key, &good[..30], json!({})).assert_error(400, "malformed_wire_v1");
    sector.upload(&key, b"PQHB\x01", json!({})).assert_error(400, "malformed_wire_v1");
    assert_intact(&sector, &key, &hash);
    let good_hash = sector.upload_ok(&key, &good, json!({}));
    assert_delivers(&sector, &key, &good_hash, &good);
    assert_delivers(&sector, &key, &hash, &data);
}
