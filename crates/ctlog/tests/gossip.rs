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

/// M6: configured peers always have a place; strangers are bounded, the least recently heard
/// is evicted, admissions are rate limited, and history per peer is bounded.
#[test]
fn peers_and_ingest_rate_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let friend = LogSigningKey::generate().unwrap();
    let extra = format!(
        "[gossip]\nmax_peers = 2\ningest_per_ip_per_minute = 200\n[[gossip.peer]]\nrelay_id = \"friend.example\"\npublic_key = \"{}\"\n",
        wire::b64(friend.verifying_key().to_bytes())
    );
    let log = Log::configure(dir.path(), "relay.example", &extra).start();
    let t = now_ms();
    let strangers: Vec<LogSigningKey> = (0..3).map(|_| LogSigningKey::generate().unwrap()).collect();
    for (n, key) in strangers.iter().enumerate() {
        let (status, body) =
            log.post("/v2/sth/ingest", &signed(key, &format!("p{n}.example"), 1, &root(n as u8), t + n as u64));
        assert_eq!(status, 200, "stranger {n}: {body}");
    }
    let (_, peers) = log.get("/v2/sth/peers");
    let ids: Vec<&str> = peers["peers"].as_array().unwrap().iter().map(|p| p["relay_id"].as_str().unwrap()).collect();
    assert_eq!(peers["count"], 2, "{peers}");
    assert!(!ids.contains(&"p0.example"), "the least recently heard stranger was evicted: {ids:?}");
    // The configured peer gets in although strangers fill the table.
    assert_eq!(log.post("/v2/sth/ingest", &signed(&friend, "friend.example", 1, &root(9), t)).0, 200);
    assert_eq!(log.get("/v2/sth/peers").1["count"], 3);
    // History per peer is bounded: the newest 64 heads are kept.
    for n in 0..70u64 {
        let (status, body) =
            log.post("/v2/sth/ingest", &signed(&friend, "friend.example", 2 + n, &root(n as u8), t + 1 + n));
        assert_eq!(status, 200, "{body}");
    }
    let pk = hex::encode(friend.verifying_key().pk_hash());
    let (_, history) = log.get(&format!("/v2/sth/peers/{pk}?limit=500"));
    assert_eq!(history["total"], 71);
    assert_eq!(history["sths"].as_array().unwrap().len(), 64, "only the newest 64 heads are kept");
    assert_eq!(history["sths"][63]["tree_size"], 71);
    // New strangers are admitted at most 10 a minute (3 were admitted above). 21 more attempts
    // within one test (under a minute, so at most two windows) put 12 or more in one window.
    let mut refused = 0;
    for n in 0..21u8 {
        let key = LogSigningKey::generate().unwrap();
        let (status, _) = log.post("/v2/sth/ingest", &signed(&key, &format!("q{n}.example"), 1, &root(n), t));
        refused += usize::from(status == 429);
    }
    assert!(refused >= 1, "more than 10 new peers in a minute are refused");
}

/// M5, L2, L3, I1: an older head replayed is no evidence; one key speaks for one relay id;
/// X-Real-IP from loopback is not trusted; roots compare case-insensitively.
#[test]
fn evidence_needs_a_real_contradiction_and_identities_are_one_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "relay.example", "[gossip]\ningest_per_ip_per_minute = 20\n").start();
    let peer = LogSigningKey::generate().unwrap();
    let t = now_ms();
    let old = signed(&peer, "legal.example", 5, &root(5), t);
    assert_eq!(log.post("/v2/sth/ingest", &old).0, 200);
    assert_eq!(log.post("/v2/sth/ingest", &signed(&peer, "legal.example", 9, &root(9), t + 1)).0, 200);
    // M5: replaying the peer's own older head is refused as stale and records nothing.
    let (status, body) = log.post("/v2/sth/ingest", &old);
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "stale_sth"), "{body}");
    assert_eq!(
        log.get("/v2/sth/forks").1["forks"].as_array().unwrap().len(),
        0,
        "an honest peer has no evidence against it"
    );
    // I1: the same root in upper case is the same root, not a fork.
    let upper = signed(&peer, "legal.example", 9, &root(9).to_uppercase(), t + 2);
    assert_eq!(log.post("/v2/sth/ingest", &upper).0, 200);
    assert_eq!(log.get("/v2/sth/forks").1["forks"].as_array().unwrap().len(), 0);
    // A real contradiction keeps both signed heads.
    let (status, _) = log.post("/v2/sth/ingest", &signed(&peer, "legal.example", 9, &root(99), t + 3));
    assert_eq!(status, 409);
    let forks = log.get("/v2/sth/forks").1;
    let fork = &forks["forks"][0];
    assert_eq!(fork["kind"], "fork");
    assert!(fork["previous"]["signature"].is_string() && fork["offending"]["signature"].is_string(), "{fork}");
    // L2: the same key may not sign for a second relay id.
    let (status, body) = log.post("/v2/sth/ingest", &signed(&peer, "finance.example", 1, &root(1), t + 4));
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "key_mismatch"), "{body}");
    // L3: a loopback caller cannot dodge the per-IP limit with X-Real-IP.
    let agent = agent();
    let mut limited = false;
    // 51 requests within the test (at most two minute windows) put 26 or more in one window.
    for n in 0..45 {
        let response = agent
            .post(&format!("{}/v2/sth/ingest", log.public))
            .header("x-real-ip", &format!("203.0.113.{n}"))
            .send_json(json!({}))
            .unwrap();
        limited |= response.status() == 429;
    }
    assert!(limited, "X-Real-IP from an unconfigured loopback caller is ignored");
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
    // consistency proof 9 -> 11, it fails against the forged root, and A refuses the head. A
    // failed proof is unsigned network bytes, not evidence against B (M5): nothing is recorded.
    for n in 9..13 {
        b.append_transfer(&blob_hash(n));
    }
    let b_signing = LogSigningKey::load(&dir_b.path().join("state/log-key")).unwrap();
    let forged = signed(&b_signing, "legal.example", 11, &root(11), now_ms());
    let (status, body) = a.post("/v2/sth/ingest", &forged);
    assert_eq!((status, body["error"].as_str().unwrap()), (409, "inconsistent"), "{body}");
    let (_, forks) = a.get("/v2/sth/forks");
    assert_eq!(forks["forks"].as_array().unwrap().len(), 0, "{forks}");

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
