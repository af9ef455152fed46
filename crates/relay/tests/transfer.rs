//! Uploads and downloads over raw HTTP against the real relay: the transfer is in the signed
//! log, a download burns the blob and carries a receipt that verifies, views, one-time links,
//! device queues, expiry, the memory budget, concurrent downloads and the Free plan's limits.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::{Value, json};
use tlog::Sha3_256;

/// Delivery entries of the log for `hash`, in log order.
fn deliveries(sector: &Sector, hash: &str) -> Vec<Value> {
    sector.log_entries().into_iter().filter(|e| e["type"] == "delivery" && e["blob_hash"] == hash).collect()
}

/// Waits until the log holds `count` delivery entries for `hash` (they are appended after the
/// body was sent) and returns them.
fn wait_for_deliveries(sector: &Sector, hash: &str, count: usize) -> Vec<Value> {
    wait_until("delivery entries in the log", || Some(deliveries(sector, hash)).filter(|d| d.len() >= count))
}

fn verify_receipt(sector: &Sector, receipt: &str) -> Value {
    let reply = sector.post("/v2/verify-receipt", None, &json!({ "receipt": receipt }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn uploaded_blob_is_logged_then_delivered_once_with_a_receipt_that_verifies() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let data = payload(1, 4096);
    let hash = sha256_hex(&data);

    let reply = sector.upload(&key, &data, json!({ "ttl_ms": 600_000 }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(
        (body["ok"].clone(), body["hash"].clone(), body["size"].clone(), body["ttl_ms"].clone()),
        (json!(true), json!(hash), json!(4096), json!(600_000))
    );

    // merkle_proof: the audit path leads from the leaf to the root of a signed tree head.
    let proof = &body["merkle_proof"];
    let path: Vec<[u8; 32]> = proof["audit_path"].as_array().unwrap().iter().map(|n| hex32(&n["hash"])).collect();
    let (index, size) = (proof["leaf_index"].as_u64().unwrap(), proof["tree_size"].as_u64().unwrap());
    tlog::verify_inclusion::<Sha3_256>(index, size, &hex32(&proof["leaf_hash"]), &path, &hex32(&proof["root"]))
        .expect("merkle_proof verifies");
    assert_eq!(proof["sth"]["sha3_root"], proof["root"]);
    let pubkey = sector.get("/v2/pubkey", None).json();
    let log_key = crypto::LogVerifyingKey::from_bytes(&unb64(pubkey["public_key"].as_str().unwrap())).unwrap();
    let sth: wire::SignedSth = serde_json::from_value(proof["sth"].clone()).unwrap();
    sth.verify(&log_key).expect("the STH is signed by the key /v2/pubkey serves");
    let leaf = &sector.log_entries()[index as usize];
    assert_eq!(
        (leaf["type"].clone(), leaf["blob_hash"].clone(), leaf["leaf_hash"].clone()),
        (json!("transfer"), json!(hash), proof["leaf_hash"].clone())
    );

    let status = sector.status_of(&key, &hash);
    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    assert_eq!(
        (status["available"].clone(), status["bytes"].clone(), status["views_left"].clone()),
        (json!(true), json!(4096), json!(1))
    );
    assert!((1..=600_000).contains(&status["ttl_remaining_ms"].as_u64().unwrap()));

    let download = sector.download(&key, &hash);
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.body, data);
    assert_eq!(download.header("x-paramant-burned").as_deref(), Some("true"));
    assert_eq!(download.header("x-paramant-hash"), Some(hash.clone()));
    let receipt = download.header("x-paramant-receipt").expect("a receipt header");
    let verdict = verify_receipt(&sector, &receipt);
    // Signed before the body went out, it cannot confirm the burn (see delivery_ack.rs for the
    // receipt that does).
    assert_eq!(
        (verdict["valid"].clone(), verdict["blob_hash"].clone(), verdict["burn_confirmed"].clone()),
        (json!(true), json!(hash), json!(false)),
        "{verdict}"
    );

    // The view is consumed once the client's TCP stack acknowledged the body.
    wait_until("the burn", || (sector.download(&key, &hash).status == 404).then_some(()));
    sector.download(&key, &hash).assert_error(404, "not_found");
    let after = sector.status_of(&key, &hash);
    after.assert_error(404, "not_found");
    assert_eq!(after.json()["available"], false);
    let burns = wait_for_deliveries(&sector, &hash, 1);
    assert_eq!(burns.len(), 1);
    assert_eq!(burns[0]["burned"], true);
    let health = sector.get("/health", None).json();
    assert_eq!(
        (health["blobs"].clone(), health["blob_bytes"].clone()),
        (json!(0), json!(0)),
        "burned bytes leave the store"
    );
}

#[test]
fn a_two_view_blob_is_delivered_twice_and_burned_by_the_second_download() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let data = payload(2, 1000);
    let reply = sector.upload(&key, &data, json!({ "max_views": 2 }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["max_views"], 2);
    let hash = sha256_hex(&data);
    assert_eq!(sector.status_of(&key, &hash).json()["views_left"], 2);

    let first = sector.download(&key, &hash);
    assert_eq!((first.status, first.header("x-paramant-burned").as_deref()), (200, Some("false")));
    assert_eq!(first.body, data);
    let verdict = verify_receipt(&sector, &first.header("x-paramant-receipt").unwrap());
    assert_eq!((verdict["valid"].clone(), verdict["burn_confirmed"].clone()), (json!(true), json!(false)), "{verdict}");
    // A view is consumed once the client's TCP stack acknowledged the body.
    wait_until("the first view to be consumed", || {
        (sector.status_of(&key, &hash).json()["views_left"] == json!(1)).then_some(())
    });

    let second = sector.download(&key, &hash);
    assert_eq!((second.status, second.header("x-paramant-burned").as_deref()), (200, Some("true")));
    assert_eq!(second.body, data);
    wait_until("the burn", || (sector.download(&key, &hash).status == 404).then_some(()));

    let logged: Vec<Value> = wait_for_deliveries(&sector, &hash, 2).iter().map(|e| e["burned"].clone()).collect();
    assert_eq!(logged, vec![json!(false), json!(true)]);
}

#[test]
fn a_download_link_shows_a_page_then_serves_the_bytes_once_without_an_api_key() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let data = payload(3, 2048);
    let reply = sector.upload(&key, &data, json!({}));
    let token = reply.json()["download_token"].as_str().unwrap().to_owned();

    let page = sector.get(&format!("/v2/dl/{token}"), None);
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.text().contains(&format!("/v2/dl/{token}/get")));
    let info = sector.get(&format!("/v2/dl/{token}/info"), None);
    assert_eq!((info.status, info.json()["file_size"].clone()), (200, json!(2048)));
    assert_eq!(sector.status_of(&key, &sha256_hex(&data)).status, 200, "viewing the page burns nothing");

    let got = sector.get(&format!("/v2/dl/{token}/get"), None);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, data);
    assert_eq!(got.header("x-paramant-burned").as_deref(), Some("true"));
    assert!(got.header("content-disposition").unwrap().starts_with("attachment"));

    wait_until("the link to be used up", || {
        (sector.get(&format!("/v2/dl/{token}/get"), None).status == 410).then_some(())
    });
    sector.get(&format!("/v2/dl/{token}/get"), None).assert_error(410, "gone");
    sector.get(&format!("/v2/dl/{token}"), None).assert_error(410, "gone");
    sector.download(&key, &sha256_hex(&data)).assert_error(404, "not_found");
    sector.get(&format!("/v2/dl/{}/get", "ab".repeat(32)), None).assert_error(410, "gone");
    sector.get("/v2/dl/not-a-token/get", None).assert_error(400, "bad_request");
}

#[test]
fn stream_next_announces_a_device_upload_until_the_blob_is_burned() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let other = sector.key("enterprise");
    let sdk = |key: &str| sector.get("/v2/stream-next?device=receiver-001", Some(key));
    let by_header = |key: &str| {
        sector.request("GET", "/v2/stream-next", &[("x-api-key", key), ("x-device-id", "receiver-001")], None)
    };

    assert_eq!((sdk(&key).status, sdk(&key).json()["available"].clone()), (200, json!(false)));
    assert_eq!(by_header(&key).status, 204);

    let hash = sector.upload_ok(&key, &payload(4, 512), json!({ "meta": { "device_id": "receiver-001" } }));
    let next = sdk(&key);
    assert_eq!(
        (next.status, next.json()["available"].clone(), next.json()["hash"].clone()),
        (200, json!(true), json!(hash))
    );
    let next = by_header(&key);
    assert_eq!((next.status, next.json()["blob_hash"].clone()), (200, json!(hash)));
    assert!(next.json()["queued_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(sdk(&other).json()["available"], false, "queues are per API key");

    assert_eq!(sector.download(&key, &hash).status, 200);
    // The burn follows the client's acknowledgement of the body, after the download returned.
    wait_until("the burned blob to leave the queue", || (sdk(&key).json()["available"] == false).then_some(()));
    assert_eq!(by_header(&key).status, 204);
    sector.get("/v2/stream-next", Some(&key)).assert_error(400, "bad_request");
    sector.get("/v2/stream-next?device=bad%20device", Some(&key)).assert_error(400, "bad_request");
    sector.get("/v2/stream-next?device=receiver-001", None).assert_error(401, "unauthorized");
}

#[test]
fn a_blob_is_gone_once_its_ttl_has_passed() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let data = payload(5, 300);
    let uploaded_at = std::time::Instant::now();
    let reply = sector.upload(&key, &data, json!({ "ttl_ms": 1500 }));
    assert_eq!((reply.status, reply.json()["ttl_ms"].clone()), (200, json!(1500)));
    let token = reply.json()["download_token"].as_str().unwrap().to_owned();
    let hash = sha256_hex(&data);
    assert_eq!(sector.status_of(&key, &hash).status, 200);

    // Poll until the relay says it is gone; it must not say so before the TTL ran out.
    wait_until("the blob to expire", || (sector.status_of(&key, &hash).status == 404).then_some(()));
    // 1499: the relay's clock has millisecond resolution (its expiry may be up to 1 ms before
    // this test's finer-grained `uploaded_at + 1500 ms`).
    assert!(uploaded_at.elapsed().as_millis() >= 1499, "gone after {:?}, before its TTL", uploaded_at.elapsed());
    sector.download(&key, &hash).assert_error(404, "not_found");
    // The link lives as long as the blob (410 once it has expired itself, 404 for its blob).
    let link = sector.get(&format!("/v2/dl/{token}/get"), None);
    assert!(matches!((link.status, link.error().as_str()), (410, "gone") | (404, "not_found")), "{}", link.text());
    // The sweeper frees the memory too.
    wait_until("the sweeper to free the blob", || {
        let health = sector.get("/health", None).json();
        (health["blobs"] == 0 && health["blob_bytes"] == 0).then_some(())
    });
}

#[test]
fn a_full_relay_answers_503_with_retry_after_until_a_burn_frees_memory() {
    // One key may fill the whole budget here (the per-key share is tested in uploads.rs).
    let sector = Sector::with_config(
        "[limits]\nmax_blob_bytes = 1024\nblob_budget_bytes = 3072\n[transfers]\nmax_key_share_percent = 100\n",
    );
    let key = sector.key("enterprise");
    let stored: Vec<String> = (0..3).map(|n| sector.upload_ok(&key, &payload(10 + n, 1024), json!({}))).collect();

    let full = sector.upload(&key, &payload(20, 1024), json!({}));
    full.assert_error(503, "relay_full");
    let retry: u64 = full.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry > 0);
    for hash in &stored {
        assert_eq!(sector.status_of(&key, hash).status, 200, "a refused upload leaves stored blobs alone");
    }

    assert_eq!(sector.download(&key, &stored[0]).status, 200);
    sector.upload_ok(&key, &payload(20, 1024), json!({}));
    sector.upload(&key, &payload(21, 1024), json!({})).assert_error(503, "relay_full");
}

#[test]
fn concurrent_downloads_of_a_single_view_blob_deliver_it_exactly_once() {
    const CLIENTS: usize = 12;
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let data = payload(6, 512 * 1024);
    let hash = sector.upload_ok(&key, &data, json!({}));

    let start = std::sync::Barrier::new(CLIENTS);
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    sector.download(&key, &hash)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1, "statuses: {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(winners[0].body, data);
    for loser in replies.iter().filter(|r| r.status != 200) {
        let code = (loser.status, loser.error());
        assert!(code == (404, "not_found".into()) || code == (409, "in_delivery".into()), "unexpected {code:?}");
    }
    // The view is consumed once the winner's TCP stack acknowledged the body.
    wait_until("the burn", || (sector.download(&key, &hash).status == 404).then_some(()));
    sector.download(&key, &hash).assert_error(404, "not_found");
    assert_eq!(wait_for_deliveries(&sector, &hash, 1).len(), 1, "one burn, logged once");
}

#[test]
fn a_free_key_gets_ten_uploads_a_day_and_one_hour_retention() {
    let sector = Sector::start();
    let key = sector.key("free");
    let check = sector.get("/v2/check-key", Some(&key)).json();
    assert_eq!((check["valid"].clone(), check["plan"].clone()), (json!(true), json!("free")));

    let first = sector.upload(&key, &payload(100, 64), json!({ "ttl_ms": 7_200_000, "max_views": 5 }));
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        (first.json()["ttl_ms"].clone(), first.json()["max_views"].clone()),
        (json!(3_600_000), json!(1)),
        "capped by the plan"
    );
    for n in 1..5 {
        sector.upload_ok(&key, &payload(100 + n, 64), json!({}));
    }
    // A refused upload does not count against the quota.
    let mismatch = json!({ "hash": sha256_hex(b"other"), "payload": b64(&payload(200, 64)) });
    sector.post("/v2/inbound", Some(&key), &mismatch).assert_error(400, "hash_mismatch");
    for n in 5..10 {
        sector.upload_ok(&key, &payload(100 + n, 64), json!({}));
    }

    let limited = sector.upload(&key, &payload(110, 64), json!({}));
    limited.assert_error(429, "rate_limited");
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=86_400).contains(&retry), "Retry-After {retry}");
    let enterprise = sector.key("enterprise");
    sector.upload_ok(&enterprise, &payload(110, 64), json!({}));
}

#[test]
fn a_ct_read_on_the_relay_after_an_upload_sees_that_upload() {
    let sector = Sector::start();
    let key = sector.key("pro");
    // Read (and so cache) the tree head on the relay's origin, then upload.
    let before = sector.get("/v2/sth", None).json()["sth"]["tree_size"].as_u64().unwrap();
    assert_eq!(sector.get("/v2/sth", None).json()["sth"]["tree_size"], before);
    let reply = sector.upload(&key, &payload(9, 256), json!({}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let proved = reply.json()["merkle_proof"]["tree_size"].as_u64().unwrap();
    // The answer that acknowledged the upload came after its append emptied the cache.
    let after = sector.get("/v2/sth", None).json()["sth"]["tree_size"].as_u64().unwrap();
    assert!(after >= proved && proved > before, "before {before}, proved {proved}, read after {after}");
}
