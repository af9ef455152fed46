//! Peer gossip: signatures checked, timestamps windowed, keys pinned, shrinking trees and forks
//! refused and recorded, growth checked against the peer's own consistency proofs.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use crypto::{KeyFile, LogSigningKey};
use serde_json::{Value, json};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// An ingest request signed by `key`.
fn signed(key: &LogSigningKey, relay_id: &str, size: u64, root: &str, timestamp: u64) -> Value {
    let body =
        wire::SthBody { relay_id: relay_id.into(), sha3_root: root.into(), timestamp, tree_size: size, version: 1 };
    json!({
        "relay_id": relay_id, "sha3_root": root, "timestamp": timestamp, "tree_size": size, "version": 1,
        "signature": wire::b64(key.sign(&body.signed_bytes())),
        "public_key": wire::b64(key.verifying_key().to_bytes()),
    })
}

fn root(n: u8) -> String {
    hex::encode([n; 32])
}

#[test]
fn ingest_checks_signatures_windows_pins_and_records_forks() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "relay.example", "").start();
    let peer = LogSigningKey::generate().unwrap();
    let t = now_ms();

    let (status, body) = log.post("/v2/sth/ingest", &signed(&peer, "legal.example", 5, &root(5), t));
    assert_eq!(status, 200, "{body}");
    let pk_hash = hex::encode(peer.verifying_key().pk_hash());
    assert_eq!(body["relay_pk_hash"], pk_hash);
    assert_eq!(
        log.post("/v2/sth/ingest", &signed(&peer, "legal.example", 5, &root(5), t)).0,
        200,
        "a replay is harmless"
    );
    assert_eq!(log.post("/v2/sth/ingest", &signed(&peer, "legal.example", 7, &root(7), t + 1)).0, 200);

    let mut forged = signed(&peer, "legal.example", 9, &root(9), t + 2);
    forged["tree_size"] = json!(10);
    let (status, body) = log.post("/v2/sth/ingest", &forged);
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "signature_invalid"));

    let stale = signed(&peer, "legal.example", 9, &root(9), t - 10 * 60 * 1000);
    assert_eq!(log.post("/v2/sth/ingest", &stale).0, 400, "outside the ±5 minute window");
    let future = signed(&peer, "legal.example", 9, &root(9), t + 10 * 60 * 1000);
    assert_eq!(log.post("/v2/sth/ingest", &future).0, 400);

    let impostor = LogSigningKey::generate().unwrap();
    let (status, body) = log.post("/v2/sth/ingest", &signed(&impostor, "legal.example", 8, &root(8), t + 3));
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "key_mismatch"), "relay id pinned on first sight");
    let (status, body) = log.post("/v2/sth/ingest", &signed(&impostor, "relay.example", 8, &root(8), t + 3));
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "key_mismatch"), "nobody else may speak for this log");

    let (status, body) = log.post("/v2/sth/ingest", &signed(&peer, "legal.example", 7, &root(77), t + 4));
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "fork_detected"));
    let (status, body) = log.post("/v2/sth/ingest", &signed(&peer, "legal.example", 3, &root(3), t + 5));
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "tree_shrank"));

    let (_, forks) = log.get("/v2/sth/forks");
    let kinds: Vec<&str> = forks["forks"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["fork", "shrink"]);
    assert_eq!(forks["forks"][0]["offending"]["sha3_root"], root(77), "evidence keeps the conflicting signed head");

    let (_, peers) = log.get("/v2/sth/peers");
    assert_eq!(peers["count"], 1);
    let record = &peers["peers"][0];
    assert_eq!(record["relay_pk_hash"], pk_hash);
    assert_eq!(record["relay_id"], "legal.example");
    assert_eq!(record["sth_count"], 2);
    assert_eq!(record["latest_tree_size"], 7);
    assert_eq!(record["latest_root"], root(7));

    let (status, page) = log.get(&format!("/v2/sth/peers/{pk_hash}?limit=1&offset=1"));
    assert_eq!(status, 200);
    assert_eq!(page["total"], 2);
    assert_eq!(page["sths"].as_array().unwrap().len(), 1);
    assert_eq!(page["sths"][0]["tree_size"], 7);
}

#[test]
fn peers_and_ingest_rate_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Log::configure(dir.path(), "relay.example", "[gossip]\nmax_peers = 2\ningest_per_ip_per_minute = 5\n").start();
    let t = now_ms();
    for n in 0..2u8 {
        let key = LogSigningKey::generate().unwrap();
        assert_eq!(log.post("/v2/sth/ingest", &signed(&key, &format!("p{n}.example"), 1, &root(n), t)).0, 200);
    }
    let third = LogSigningKey::generate().unwrap();
    let (status, body) = log.post("/v2/sth/ingest", &signed(&third, "p3.example", 1, &root(3), t));
    assert_eq!((status, body["error"].as_str().unwrap()), (429, "rate_limited"), "peer table is full: {body}");
    let mut limited = false;
    for _ in 0..5 {
        limited |= log.post("/v2/sth/ingest", &json!({})).0 == 429;
    }
    assert!(limited, "more than 5 submissions a minute from one IP are refused");
}

#[test]
fn growth_is_checked_with_the_peers_consistency_proof_and_heads_are_pushed() {
    let dir_b = tempfile::tempdir().unwrap();
    let dir_a = tempfile::tempdir().unwrap();
    let mut b = Log::configure(dir_b.path(), "legal.example", "").start();
    for n in 0..5 {
        b.append_transfer(&blob_hash(n));
    }
    let (_, b_key) = b.get("/v2/pubkey");
    let b_key = b_key["public_key"].as_str().unwrap().to_string();
    let a = Log::configure(
        dir_a.path(),
        "relay.example",
        &format!("[[gossip.peer]]\nrelay_id = \"legal.example\"\npublic_key = \"{b_key}\"\nurl = \"{}\"\n", b.public),
    );
    let a_public = a.public.clone();
    let a = a.start();
    let (_, a_key) = a.get("/v2/pubkey");

    let b_head = |b: &Log| {
        let (_, sth) = b.get("/v2/sth");
        let mut request = sth["sth"].clone();
        request.as_object_mut().unwrap().remove("pk_hash");
        request["public_key"] = json!(b_key);
        request
    };
    assert_eq!(a.post("/v2/sth/ingest", &b_head(&b)).0, 200);
    for n in 5..9 {
        b.append_transfer(&blob_hash(n));
    }
    let (status, body) = a.post("/v2/sth/ingest", &b_head(&b));
    assert_eq!(status, 200, "{body}");
    let (_, peers) = a.get("/v2/sth/peers");
    assert_eq!(peers["peers"][0]["consistency"], "verified", "{peers}");
    assert_eq!(peers["peers"][0]["latest_tree_size"], 9);

    // B's key signs a head of size 11 whose root is not B's real tree: A asks B for the
    // consistency proof 9 -> 11, it fails against the forged root, and A keeps the evidence.
    for n in 9..13 {
        b.append_transfer(&blob_hash(n));
    }
    let b_signing = LogSigningKey::load(&dir_b.path().join("state/log-key")).unwrap();
    let forged = signed(&b_signing, "legal.example", 11, &root(11), now_ms());
    let (status, body) = a.post("/v2/sth/ingest", &forged);
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "fork_detected"), "{body}");
    let (_, forks) = a.get("/v2/sth/forks");
    assert_eq!(forks["forks"][0]["kind"], "inconsistent");

    // Now give B the push configuration: its heads arrive at A's peer table by themselves.
    b.stop();
    let mut text = std::fs::read_to_string(&b.config).unwrap();
    text += &format!(
        "[gossip]\npush_interval_secs = 1\n[[gossip.peer]]\nrelay_id = \"relay.example\"\npublic_key = \"{}\"\nurl = \"{a_public}\"\n",
        a_key["public_key"].as_str().unwrap()
    );
    std::fs::write(&b.config, text).unwrap();
    b.spawn();
    b.append_transfer(&blob_hash(99));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, peers) = a.get("/v2/sth/peers");
        if peers["peers"][0]["latest_tree_size"] == 14 {
            break;
        }
        assert!(Instant::now() < deadline, "B's head never reached A: {peers}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
