//! Crash safety: clients append while the process is SIGKILLed, again and again. After every
//! restart each acknowledged leaf is present at the index it was given, and the new head is
//! consistent with every head any client was shown.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tlog::Sha3_256;

const ROUNDS: u64 = 12;
const CLIENTS: u64 = 4;

/// What clients were told: index -> leaf hash, and every (size, root) they saw signed.
#[derive(Default)]
struct Acknowledged {
    leaves: BTreeMap<u64, String>,
    heads: BTreeSet<(u64, String)>,
}

fn append_until_failure(internal: String, token: String, next_blob: Arc<AtomicU64>, acked: Arc<Mutex<Acknowledged>>) {
    let agent = agent();
    loop {
        let n = next_blob.fetch_add(1, Ordering::Relaxed);
        let event = json!({ "event": { "type": "transfer", "blob_hash": blob_hash(n), "sector": "health" } });
        let response =
            agent.post(&format!("{internal}/internal/append")).header("x-internal-auth", &token).send_json(&event);
        let Ok(mut response) = response else { return }; // the process is gone
        if response.status() != 200 {
            return;
        }
        let Ok(body) = response.body_mut().read_json::<Value>() else { return };
        let mut acked = acked.lock().unwrap();
        acked.leaves.insert(body["leaf_index"].as_u64().unwrap(), body["leaf_hash"].as_str().unwrap().to_owned());
        acked.heads.insert((body["tree_size"].as_u64().unwrap(), body["root"].as_str().unwrap().to_owned()));
    }
}

fn check_log(log: &Log, acked: &Acknowledged) {
    let (_, sth) = log.get("/v2/sth");
    let size = sth["sth"]["tree_size"].as_u64().unwrap();
    let root = hex32(&sth["sth"]["sha3_root"]);
    if let Some((&last, _)) = acked.leaves.last_key_value() {
        assert!(size > last, "acknowledged leaf {last} but the log has only {size} leaves");
    }
    let mut from = 0;
    while from < size {
        let (_, page) = log.get(&format!("/v2/ct/log?from={from}&limit=100"));
        for entry in page["entries"].as_array().unwrap() {
            let index = entry["index"].as_u64().unwrap();
            if let Some(expected) = acked.leaves.get(&index) {
                assert_eq!(entry["leaf_hash"].as_str().unwrap(), expected, "leaf {index} changed after a crash");
            }
            from = index + 1;
        }
    }
    for (old_size, old_root) in &acked.heads {
        let (status, body) = log.get(&format!("/v2/sth/consistency?from={old_size}&to={size}"));
        assert_eq!(status, 200, "{body}");
        let proof: Vec<[u8; 32]> = body["proof"].as_array().unwrap().iter().map(hex32).collect();
        tlog::verify_consistency::<Sha3_256>(*old_size, size, &proof, &hex32(&json!(old_root)), &root)
            .unwrap_or_else(|e| panic!("head {old_size} is not a prefix of the head after restart: {e}"));
    }
}

/// Waits until at least `target` leaves were acknowledged (the machine may be slow: no timing
/// assumption beyond a generous deadline).
fn wait_for_new_acks(acked: &Mutex<Acknowledged>, target: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().leaves.len() < target {
        assert!(std::time::Instant::now() < deadline, "no appends were acknowledged within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn acknowledged_appends_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::configure(dir.path(), "health.example", "").start();
    let next_blob = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut total_acked = 0;
    for round in 0..ROUNDS {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (internal, token) = (log.internal.clone(), log.token());
                let (next_blob, acked) = (next_blob.clone(), acked.clone());
                std::thread::spawn(move || append_until_failure(internal, token, next_blob, acked))
            })
            .collect();
        // Kill only once appends are flowing in this round, then vary where in the write path
        // the kill lands.
        wait_for_new_acks(&acked, total_acked + 10);
        std::thread::sleep(Duration::from_millis((round * 7) % 40));
        log.kill_hard();
        for client in clients {
            client.join().unwrap();
        }
        log.spawn();
        let acked = acked.lock().unwrap();
        check_log(&log, &acked);
        total_acked = acked.leaves.len();
    }
    assert!(total_acked as u64 >= ROUNDS * 10, "the clients got appends through ({total_acked})");
    // Both trees survived every kill: fsck re-derives the SHA3 tree and the C2SP (SHA-256)
    // tree from the leaves and compares every head, tile and compact range.
    let (_, checkpoint) = get_text(&format!("{}/checkpoint", log.public));
    let (_, sth) = log.get("/v2/sth");
    assert_eq!(checkpoint.lines().nth(1).unwrap(), sth["sth"]["tree_size"].to_string(), "{checkpoint}");
    assert!(log.stop().success());
    let fsck = std::process::Command::new(BIN).args(["fsck", "--config"]).arg(&log.config).output().unwrap();
    assert!(
        fsck.status.success(),
        "{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
}
