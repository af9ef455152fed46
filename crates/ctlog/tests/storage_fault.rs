//! The real binary under a real storage fault: the database file may not grow (RLIMIT_FSIZE,
//! with SIGXFSZ ignored so writes fail with EFBIG instead of killing the process). The log must
//! exit non-zero on the first failed commit — not keep serving a database redb has given up on —
//! and a restart without the limit must recover a sound log holding every acknowledged leaf.
//! `paramant-ctlog fsck` agrees, and refuses to run while the log is running.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The exit status the log uses for a storage fault (`ctlog::sequencer::STORAGE_FAULT_EXIT`).
const STORAGE_FAULT_EXIT: i32 = 74;

fn fsck(log: &Log, extra: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).arg("fsck").args(extra).arg("--config").arg(&log.config).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn a_failed_commit_exits_the_log_and_a_restart_recovers_every_acknowledged_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::configure(dir.path(), "health.example", "").start();
    let mut acked = Vec::new();
    for n in 0..20u64 {
        let body = log.append_transfer(&format!("{n:064x}"));
        acked.push((body["leaf_index"].as_u64().unwrap(), body["leaf_hash"].as_str().unwrap().to_owned()));
    }
    let (ok, text) = fsck(&log, &[]);
    assert!(!ok && text.contains("stop the log first"), "fsck ran beside the running log: {text}");
    assert!(log.stop().success());
    let (ok, text) = fsck(&log, &[]);
    assert!(ok && text.contains("ok") && text.contains("tree size 20"), "{text}");

    // Restart with a file size limit at the database's current size: the first commit that
    // needs a larger file fails.
    let db = dir.path().join("state/ctlog.redb");
    let limit = std::fs::metadata(&db).unwrap().len();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("trap '' XFSZ; exec prlimit --fsize={limit} -- \"$0\" run --config \"$1\""))
        .arg(BIN)
        .arg(&log.config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let agent = agent();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut n = 1000u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the log kept running although its file could not grow");
        // Large events make the file grow soon.
        let event = json!({ "event": {
            "type": "admin_action", "action": "test", "actor": "storage_fault",
            "subject": format!("{n}"), "detail": "x".repeat(4000) } });
        n += 1;
        let answer = agent
            .post(&format!("{}/internal/append", log.internal))
            .header("x-internal-auth", log.token())
            .send_json(&event);
        if let Ok(mut response) = answer
            && response.status() == 200
        {
            let body: serde_json::Value = response.body_mut().read_json().unwrap();
            acked.push((body["leaf_index"].as_u64().unwrap(), body["leaf_hash"].as_str().unwrap().to_owned()));
        }
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(STORAGE_FAULT_EXIT), "{stderr}");
    assert!(stderr.contains("storage fault"), "{stderr}");
    // A log with leaves preloads its hash tiles at start-up, inside its sandbox (`ctlog::warm`).
    assert!(stderr.contains("hash tiles preloaded: 0 MiB in"), "{stderr}");

    // Restart without the limit: start-up recovers; every acknowledged leaf is where it was.
    log.spawn();
    for (index, hash) in &acked {
        let (status, body) = log.get(&format!("/v2/ct/log?from={index}&limit=1"));
        assert_eq!(status, 200);
        assert_eq!(body["entries"][0]["leaf_hash"].as_str(), Some(hash.as_str()), "leaf {index}");
    }
    assert!(log.stop().success());
    let (ok, text) = fsck(&log, &[]);
    assert!(ok, "{text}");
    let (ok, text) = fsck(&log, &["--repair"]);
    assert!(ok && text.contains("ok"), "{text}");
}
