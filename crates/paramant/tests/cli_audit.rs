//! The `paramant` CLI against logs that lie, and against the real services.
//!
//! A fake log (a plain HTTP server in this test, signing with a key the test makes) serves
//! exactly the heads, keys, proofs and feeds each case needs: a tampered signature, a changed
//! key, two roots for one size, a consistency proof that does not verify, a peer that forks.
//! The honest path and receipts run against `paramant up` (the real log and relay).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tlog::{CompactRange, NodeId, Sha3_256, TreeHasher};
use wire::{SignedSth, SthBody};

const BIN: &str = env!("CARGO_BIN_EXE_paramant");

// ---------------------------------------------------------------- running the CLI

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

fn cli(home: &Path, args: &[&str]) -> Run {
    cli_as(BIN, home, args)
}

fn cli_as(bin: &str, home: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(bin)
        .args(args)
        .env("PARAMANT_HOME", home)
        .env_remove("PARAMANT_RELAY")
        .env_remove("PARAMANT_API_KEY")
        .env_remove("PARAMANT_DEV")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------- a Merkle tree and a key

struct Tree {
    nodes: HashMap<NodeId, tlog::Hash>,
    range: CompactRange<Sha3_256>,
    roots: Vec<tlog::Hash>,
}

impl Tree {
    fn new(seed: u8, size: u64) -> Tree {
        let mut tree = Tree { nodes: HashMap::new(), range: CompactRange::new(), roots: vec![[0; 32]] };
        for i in 0..size {
            let leaf = Sha3_256::hash_leaf(&[seed, i as u8, (i >> 8) as u8]);
            let nodes = &mut tree.nodes;
            tree.range.append(leaf, |id, h| {
                nodes.insert(id, *h);
            });
            tree.roots.push(tree.range.root());
        }
        tree
    }

    fn consistency(&self, from: u64, to: u64) -> Vec<String> {
        let ids = tlog::consistency_nodes(from, to).unwrap();
        let hashes: Vec<_> = ids.ids().iter().map(|id| self.nodes[id]).collect();
        ids.rehash::<Sha3_256>(&hashes).unwrap().iter().map(hex::encode).collect()
    }
}

fn sth(key: &crypto::LogSigningKey, relay_id: &str, root: &tlog::Hash, size: u64, timestamp: u64) -> SignedSth {
    SthBody { relay_id: relay_id.into(), sha3_root: hex::encode(root), timestamp, tree_size: size, version: 1 }
        .sign(key)
}

fn pubkey_doc(key: &crypto::LogSigningKey) -> Value {
    let vk = key.verifying_key();
    json!({ "ok": true, "alg": "ML-DSA-65", "public_key": wire::b64(vk.to_bytes()), "pk_hash": hex::encode(vk.pk_hash()) })
}

fn feed(sths: &[&SignedSth]) -> String {
    let items: String = sths
        .iter()
        .map(|s| {
            let text =
                serde_json::to_string(s).unwrap().replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;");
            format!("<item><title>t</title><description>{text}</description></item>")
        })
        .collect();
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>x</title>{items}</channel></rss>")
}

// ---------------------------------------------------------------- a fake log over HTTP

/// Path → JSON or text body; anything else is 404.
type Routes = Arc<Mutex<HashMap<String, (u16, String)>>>;

struct FakeLog {
    url: String,
    routes: Routes,
}

impl FakeLog {
    fn start() -> FakeLog {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let routes: Routes = Arc::default();
        let served = routes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Read the whole request (headers and body) before answering: closing with
                // unread bytes would reset the connection under a client still sending.
                let (mut header, mut body_len) = (String::new(), 0usize);
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        body_len = v.trim().parse().unwrap_or(0);
                    }
                    header.clear();
                }
                let _ = std::io::copy(&mut std::io::Read::take(&mut reader, body_len as u64), &mut std::io::sink());
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, body) = served
                    .lock()
                    .unwrap()
                    .get(&path)
                    .cloned()
                    .unwrap_or((404, r#"{"ok":false,"error":"not_found"}"#.into()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeLog { url, routes }
    }

    fn set(&self, path: &str, body: impl ToString) {
        self.routes.lock().unwrap().insert(path.into(), (200, body.to_string()));
    }

    /// Serves `head` as the newest STH (also in the feed) under `key`.
    fn serve_head(&self, key: &crypto::LogSigningKey, head: &SignedSth) {
        self.set("/v2/pubkey", pubkey_doc(key));
        self.set("/v2/sth", json!({ "ok": true, "sth": head }));
        self.set("/ct/feed.xml", feed(&[head]));
    }

    fn serve_consistency(&self, tree: &Tree, from: u64, to: u64) {
        self.set(
            &format!("/v2/sth/consistency?from={from}&to={to}"),
            json!({ "ok": true, "proof": tree.consistency(from, to) }),
        );
    }
}

// ---------------------------------------------------------------- verify-sth and monitor

#[test]
fn verify_sth_detects_bad_signatures_key_changes_and_forks() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let log = FakeLog::start();
    let key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let tree = Tree::new(1, 40);
    let honest = |size: u64, ts: u64| sth(&key, "fake.log", &tree.roots[size as usize], size, ts);

    // First use: valid, key pinned; --json parses.
    log.serve_head(&key, &honest(10, 1000));
    let run = cli(home, &["--json", "verify-sth", "--relay", &log.url]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_eq!((doc["valid"].clone(), doc["pin"].clone()), (json!(true), json!("first_use")));
    assert_eq!(doc["sth"]["tree_size"], 10);

    // Growth with a valid consistency proof: valid.
    log.serve_head(&key, &honest(20, 2000));
    log.serve_consistency(&tree, 10, 20);
    let run = cli(home, &["--json", "verify-sth", "--relay", &log.url]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["consistency"], "verified");

    // A tampered signature (one byte of the root changed after signing): exit 1.
    let mut forged = honest(20, 2000);
    forged.body.sha3_root = hex::encode(tree.roots[19]);
    log.set("/v2/sth", json!({ "ok": true, "sth": forged }));
    let run = cli(home, &["--json", "verify-sth", "--relay", &log.url]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["error"], "invalid");

    // A fork: another root for a size already verified, validly signed: exit 5.
    let other = Tree::new(2, 40);
    log.serve_head(&key, &sth(&key, "fake.log", &other.roots[20], 20, 3000));
    let run = cli(home, &["verify-sth", "--relay", &log.url]);
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("fork"), "{}", run.stderr);

    // Growth whose consistency proof does not verify (the new tree rewrote history): exit 5.
    log.serve_head(&key, &sth(&key, "fake.log", &other.roots[30], 30, 4000));
    log.serve_consistency(&other, 20, 30);
    let run = cli(home, &["verify-sth", "--relay", &log.url]);
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);

    // A shrinking tree: exit 5.
    log.serve_head(&key, &honest(5, 5000));
    assert_eq!(cli(home, &["verify-sth", "--relay", &log.url]).code, 5);

    // A changed key: exit 4, until --pubkey-hash names the new key; then it is pinned.
    let new_key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let new_tree = Tree::new(3, 8);
    log.serve_head(&new_key, &sth(&new_key, "fake.log", &new_tree.roots[8], 8, 6000));
    let run = cli(home, &["--json", "verify-sth", "--relay", &log.url]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["error"], "key_changed");
    let wrong = hex::encode(key.verifying_key().pk_hash());
    assert_eq!(cli(home, &["verify-sth", "--relay", &log.url, "--pubkey-hash", &wrong]).code, 4);
    let right = hex::encode(new_key.verifying_key().pk_hash());
    let run = cli(home, &["--json", "verify-sth", "--relay", &log.url, "--pubkey-hash", &right]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["pin"], "replaced");
    assert_eq!(cli(home, &["verify-sth", "--relay", &log.url]).code, 0, "the new key is pinned now");

    // The API reference's name (argv[0]) does the same.
    let alias = home.join("paramant-verify-sth");
    std::os::unix::fs::symlink(BIN, &alias).unwrap();
    let run = cli_as(alias.to_str().unwrap(), home, &["--relay", &log.url]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(cli_as(alias.to_str().unwrap(), home, &["--help"]).code, 0);
}

#[test]
fn monitor_archives_heads_and_alerts_on_forks_and_key_changes() {
    let home = tempfile::tempdir().unwrap();
    let archive = home.path().join("archive");
    let archive_arg = archive.to_str().unwrap();
    let log = FakeLog::start();
    let key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let tree = Tree::new(7, 64);
    let honest = |size: u64, ts: u64| sth(&key, "fake.log", &tree.roots[size as usize], size, ts);
    let monitor =
        |home: &Path| cli(home, &["--json", "monitor", "--relay", &log.url, "--archive", archive_arg, "--once"]);

    let (h4, h9) = (honest(4, 100), honest(9, 200));
    log.serve_head(&key, &h9);
    log.set("/ct/feed.xml", feed(&[&h9, &h4]));
    log.serve_consistency(&tree, 4, 9);
    let run = monitor(home.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!((run.json()["archived"].clone(), run.json()["feed_items"].clone()), (json!(2), json!(2)));

    log.serve_head(&key, &honest(16, 300));
    log.serve_consistency(&tree, 9, 16);
    let run = monitor(home.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["consistency"], "verified");
    let archived = std::fs::read_dir(&archive).unwrap().count();
    assert_eq!(archived, 3, "one file per head: sizes 4, 9, 16");

    // The RSS feed carries a validly signed head with another root for size 4: a fork.
    let other = Tree::new(8, 64);
    let forked = sth(&key, "fake.log", &other.roots[4], 4, 400);
    log.set("/ct/feed.xml", feed(&[&honest(16, 300), &forked]));
    let run = monitor(home.path());
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["error"], "fork");
    assert!(
        std::fs::read_dir(&archive).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("fork-"))
    );

    // A key change: exit 4 and a message.
    let new_key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    log.serve_head(&new_key, &sth(&new_key, "fake.log", &tree.roots[16], 16, 500));
    let run = cli(home.path(), &["monitor", "--relay", &log.url, "--archive", archive_arg, "--once"]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("ALERT"), "{}", run.stderr);

    // A feed item with a broken signature: exit 1.
    log.serve_head(&key, &honest(16, 300));
    let mut bad = honest(9, 200);
    bad.signature = wire::b64(vec![0u8; crypto::ML_DSA_65_SIGNATURE_LEN]);
    log.set("/ct/feed.xml", feed(&[&bad]));
    assert_eq!(monitor(home.path()).code, 1);

    // A feed item of a size not seen yet that the newest head does not extend: a fork (exit
    // 5), proved with the log's own consistency proof; the item is kept as evidence only.
    let forks = |archive: &Path| {
        std::fs::read_dir(archive)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("fork-"))
            .count()
    };
    let before = forks(&archive);
    let stray = sth(&key, "fake.log", &other.roots[12], 12, 350);
    log.set("/ct/feed.xml", feed(&[&honest(16, 300), &stray]));
    log.serve_consistency(&tree, 12, 16);
    let run = monitor(home.path());
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);
    assert!(run.json()["message"].as_str().unwrap().contains("RSS feed item of tree size 12"), "{}", run.stdout);
    assert_eq!(forks(&archive), before + 1);
    assert!(!archive.join(format!("sth-{:020}-350.json", 12)).exists(), "a forked head is not archived as a head");
    let honest12 = honest(12, 350);
    log.set("/ct/feed.xml", feed(&[&honest(16, 300), &honest12]));
    let run = monitor(home.path());
    assert_eq!((run.code, run.json()["archived"].clone()), (0, json!(1)), "{}{}", run.stdout, run.stderr);

    // A key rotation. The log announces none (no next-key field in its heads or /v2/pubkey), so
    // the new key is an alert until the operator's new key hash, confirmed out of band, is named
    // with --pubkey-hash; the tree the new key signs must still extend the archived one.
    let rotated = sth(&new_key, "fake.log", &tree.roots[20], 20, 600);
    log.serve_head(&new_key, &rotated);
    log.serve_consistency(&tree, 16, 20);
    assert_eq!(monitor(home.path()).code, 4, "unannounced");
    let new_hash = hex::encode(new_key.verifying_key().pk_hash());
    let confirmed = |home: &Path| {
        cli(
            home,
            &["--json", "monitor", "--relay", &log.url, "--archive", archive_arg, "--once", "--pubkey-hash", &new_hash],
        )
    };
    let run = confirmed(home.path());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["consistency"], "verified", "across the rotation");
    assert_eq!(monitor(home.path()).code, 0, "the confirmed key is pinned now");
    let rewritten = sth(&new_key, "fake.log", &other.roots[24], 24, 700);
    log.serve_head(&new_key, &rewritten);
    log.serve_consistency(&tree, 20, 24);
    assert_eq!(monitor(home.path()).code, 5, "a new key that rewrites history is still a fork");

    // An unreachable log is reported on every poll and polled again; the exit code says so (3).
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = cli(
        home.path(),
        &["--json", "monitor", "--relay", &dead, "--archive", archive_arg, "--count", "2", "--interval", "0"],
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let lines: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "both polls reported: {}", run.stdout);
    assert!(lines.iter().all(|l| l["ok"] == false && l["error"] == "unreachable"));
}

// ---------------------------------------------------------------- verify-peers

#[test]
fn verify_peers_checks_signatures_pins_and_consistency() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let log = FakeLog::start();
    let peer_log = FakeLog::start();
    let peer_key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let tree = Tree::new(5, 50);
    let heads: Vec<SignedSth> = [(3, 10), (3, 11), (12, 20), (40, 30)]
        .iter()
        .map(|&(s, t)| sth(&peer_key, "peer.one", &tree.roots[s], s as u64, t))
        .collect();
    let vk = peer_key.verifying_key();
    let pk_hash = hex::encode(vk.pk_hash());
    let serve_peer = |key: &crypto::LogSigningKey, heads: &[SignedSth]| {
        let vk = key.verifying_key();
        let pk = hex::encode(vk.pk_hash());
        log.set(
            "/v2/sth/peers",
            json!({ "ok": true, "count": 1, "peers": [{
                "relay_pk_hash": pk, "relay_id": "peer.one", "public_key": wire::b64(vk.to_bytes()),
                "sth_count": heads.len(), "latest_root": "", "latest_tree_size": 0, "latest_ts": "",
            }]}),
        );
        log.set(
            &format!("/v2/sth/peers/{pk}?limit=100&offset=0"),
            json!({ "ok": true, "relay_pk_hash": pk, "sths": heads, "total": heads.len() }),
        );
    };
    serve_peer(&peer_key, &heads);
    peer_log.serve_consistency(&tree, 3, 12);
    peer_log.serve_consistency(&tree, 12, 40);
    let peer_arg = format!("peer.one={}", peer_log.url);
    let run = cli(home, &["--json", "verify-peers", "--relay", &log.url, "--peer", &peer_arg]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_eq!(doc["peers"][0]["sths_verified"], 4);
    assert_eq!(doc["peers"][0]["consistency_verified"], 2);
    assert_eq!(doc["peers"][0]["relay_pk_hash"], pk_hash);
    assert_eq!((doc["peers"][0]["status"].clone(), doc["valid"].clone()), (json!("valid"), json!(true)));

    // The peer's own log cannot be reached: unchecked (exit 6), not valid and not invalid.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("peer.one=http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = cli(home, &["--json", "verify-peers", "--relay", &log.url, "--peer", &unreachable]);
    assert_eq!(run.code, 6, "{}{}", run.stdout, run.stderr);
    let doc = run.json();
    assert_eq!(
        (doc["ok"].clone(), doc["valid"].clone(), doc["unchecked"].clone()),
        (json!(false), json!(false), json!(["peer.one"]))
    );
    assert_eq!((doc["peers"][0]["status"].clone(), doc["error"].clone()), (json!("unchecked"), json!("unchecked")));
    assert_eq!(doc["peers"][0]["sths_verified"], 4, "signatures are still checked");
    assert_eq!(doc["peers"][0]["consistency_unchecked"], 2);
    let run = cli(home, &["verify-peers", "--relay", &log.url, "--peer", &unreachable]);
    assert_eq!(run.code, 6, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("UNCHECKED: peer.one"), "{}", run.stdout);
    // A log answering an error for the proofs is unchecked too.
    let run = cli(home, &["--json", "verify-peers", "--relay", &log.url, "--peer", &format!("peer.one={}", log.url)]);
    assert_eq!((run.code, run.json()["peers"][0]["status"].clone()), (6, json!("unchecked")), "{}", run.stdout);

    // A mirrored head whose signature was tampered with: exit 1, whether or not the log answers.
    let mut tampered = heads.clone();
    tampered[2].body.timestamp += 1;
    serve_peer(&peer_key, &tampered);
    assert_eq!(cli(home, &["verify-peers", "--relay", &log.url, "--peer", &peer_arg]).code, 1);
    assert_eq!(cli(home, &["verify-peers", "--relay", &log.url, "--peer", &unreachable]).code, 1);

    // Growth whose proof from the peer's own log does not verify (a rewritten history): exit 5.
    let other = Tree::new(6, 50);
    let mut forked = heads.clone();
    forked[3] = sth(&peer_key, "peer.one", &other.roots[40], 40, 30);
    serve_peer(&peer_key, &forked);
    let run = cli(home, &["verify-peers", "--relay", &log.url, "--peer", &peer_arg]);
    assert_eq!(run.code, 5, "{}{}", run.stdout, run.stderr);

    // Two roots for one size, both signed: exit 5, no proof needed.
    let mut split = heads.clone();
    split[1] = sth(&peer_key, "peer.one", &other.roots[3], 3, 11);
    serve_peer(&peer_key, &split);
    assert_eq!(cli(home, &["verify-peers", "--relay", &log.url, "--peer", &peer_arg]).code, 5);
    assert_eq!(cli(home, &["verify-peers", "--relay", &log.url, "--peer", &unreachable]).code, 5, "needs no proof");

    // The peer's relay id now comes with another key: exit 4.
    let new_key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let new_heads = vec![sth(&new_key, "peer.one", &tree.roots[3], 3, 10)];
    serve_peer(&new_key, &new_heads);
    let run = cli(home, &["--json", "verify-peers", "--relay", &log.url, "--peer", &peer_arg]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["error"], "key_changed");
}

// ---------------------------------------------------------------- the real services

struct Up {
    child: Child,
    dev: PathBuf,
    _dir: tempfile::TempDir,
}

impl Up {
    fn start() -> Up {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(BIN).args(["up", "--data"]).arg(dir.path()).stdout(Stdio::null()).spawn().unwrap();
        let dev = dir.path().join("dev.json");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut up = Up { child, dev, _dir: dir };
        while !up.dev.exists() {
            assert!(up.child.try_wait().unwrap().is_none(), "paramant up exited");
            assert!(Instant::now() < deadline, "paramant up wrote no dev.json in 120 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        up
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

#[test]
fn round_trip_and_receipts_against_paramant_up() {
    let up = Up::start();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let dev = up.dev.to_str().unwrap();
    let input = home.join("in.bin");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    std::fs::write(&input, &data).unwrap();

    let run = cli(home, &["--json", "--dev", dev, "--device", "alice", "register"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let key_file = home.join("devices/alice.key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key_file).unwrap().permissions()) & 0o777,
        0o600
    );

    let run = cli(home, &["--json", "--dev", dev, "--device", "bob", "send", input.to_str().unwrap(), "--to", "alice"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let sent = run.json();
    let hash = sent["hash"].as_str().unwrap().to_owned();
    assert_eq!(sent["padded_bytes"], 5 * 1024 * 1024);
    assert_eq!(sent["receiver_key"], "first_use");
    assert_eq!(sent["log_proof"]["verified"], true, "the upload's inclusion proof and STH signature checked");

    // Bob cannot open what was sent to Alice (the blob is not burned by a failed attempt? it is:
    // a download burns), so only Alice receives.
    let output = home.join("out.bin");
    let run =
        cli(home, &["--json", "--dev", dev, "--device", "alice", "receive", &hash, "-o", output.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read(&output).unwrap(), data);
    let got = run.json();
    assert_eq!(got["sender"]["signature_valid"], true);
    assert_eq!(got["receipt"]["burn_confirmed"], true);
    let again = cli(home, &["--dev", dev, "--device", "alice", "receive", &hash]);
    assert_eq!(again.code, 3, "burned: {}", again.stderr);

    // The receipt: kept, saved as a bundle, verified offline (no relay at all) and online.
    assert_eq!(got["receipt_check"], "verified", "receive checks the receipt against a signed head");
    let saved = home.join("receipt.json");
    let run = cli(home, &["--json", "receipt", "--hash", &hash, "--save", saved.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let offline = |home: &Path, path: &Path, extra: &[&str]| {
        let mut args = vec!["--json", "receipt", "--verify", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        cli(home, &args)
    };
    let run = offline(home, &saved, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!((run.json()["valid"].clone(), run.json()["offline"].clone()), (json!(true), json!(true)));
    let run = cli(home, &["--json", "--dev", dev, "receipt", "--verify", saved.to_str().unwrap(), "--online"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let bundle: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let pk_hash = bundle["log_pk_hash"].as_str().unwrap().to_owned();
    let receipt = bundle["receipt"].clone();
    let header = wire::b64url(serde_json::to_vec(&receipt).unwrap());
    let run = cli(home, &["--json", "--dev", dev, "receipt", "--verify", &header]);
    assert_eq!((run.code, run.json()["offline"].clone()), (0, json!(false)), "a bare receipt, checked with the log");
    assert_eq!(cli(home, &["receipt", "--verify", &header]).code, 2, "a bare receipt needs --relay");

    // Another machine: nothing pinned, so the key hash must be named; the wrong one is a key change.
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(offline(elsewhere.path(), &saved, &[]).code, 2);
    assert_eq!(offline(elsewhere.path(), &saved, &["--pubkey-hash", &pk_hash]).code, 0);
    assert_eq!(offline(elsewhere.path(), &saved, &["--pubkey-hash", &"ab".repeat(32)]).code, 4);

    // Tampered bundles and receipts are invalid (exit 1), offline and online.
    let tamper = |edit: &dyn Fn(&mut Value)| {
        let mut b = bundle.clone();
        edit(&mut b);
        let path = home.join("tampered.json");
        std::fs::write(&path, serde_json::to_vec(&b).unwrap()).unwrap();
        let run = offline(home, &path, &[]);
        let online = cli(home, &["--dev", dev, "receipt", "--verify", path.to_str().unwrap(), "--online"]);
        (run.code, run.json()["error"].clone(), online.code)
    };
    assert_eq!(tamper(&|b| b["receipt"]["burn_confirmed"] = json!(false)), (1, json!("invalid"), 1));
    assert_eq!(tamper(&|b| b["receipt"]["blob_hash"] = json!("0".repeat(64))), (1, json!("invalid"), 1));
    let flip = |s: &Value| {
        let s = s.as_str().unwrap();
        format!("{}{}", if s.starts_with('0') { '1' } else { '0' }, &s[1..])
    };
    let root_flipped =
        tamper(&|b| b["receipt"]["inclusion_proof"]["root"] = json!(flip(&b["receipt"]["inclusion_proof"]["root"])));
    assert_eq!(root_flipped.0, 1);
    let leaf_flipped = tamper(&|b| {
        b["receipt"]["inclusion_proof"]["leaf_hash"] = json!(flip(&b["receipt"]["inclusion_proof"]["leaf_hash"]))
    });
    assert_eq!(leaf_flipped.0, 1);
    assert_eq!(tamper(&|b| b["sth"]["timestamp"] = json!(b["sth"]["timestamp"].as_u64().unwrap() + 1)).0, 1);
    let stranger = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let stranger_doc = pubkey_doc(&stranger);
    let swapped = tamper(&|b| {
        b["log_public_key"] = stranger_doc["public_key"].clone();
        b["log_pk_hash"] = stranger_doc["pk_hash"].clone();
    });
    assert_eq!(swapped.0, 4, "a bundle carrying another key than the pinned one");

    // verify-sth, verify-peers and monitor against the honest log: valid, --json parses.
    let run = cli(home, &["--json", "--dev", dev, "verify-sth"]);
    assert_eq!((run.code, run.json()["valid"].clone()), (0, json!(true)), "{}", run.stderr);
    let run = cli(home, &["--json", "--dev", dev, "verify-peers"]);
    assert_eq!((run.code, run.json()["peers"].clone()), (0, json!([])), "{}", run.stderr);
    let archive = home.join("archive");
    let run = cli(
        home,
        &["--json", "--dev", dev, "monitor", "--archive", archive.to_str().unwrap(), "--count", "2", "--interval", "0"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let polls: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(polls.len(), 2);
    assert!(polls.iter().all(|p| p["ok"] == true));

    // The largest file one blob holds goes through; one byte more is refused before reading
    // (a 64 GiB sparse file is refused at once, before any network), with a clear error.
    let max: u64 = 5 * 1024 * 1024 - 6403;
    let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    let big_in = home.join("big.bin");
    std::fs::write(&big_in, &big).unwrap();
    let run =
        cli(home, &["--json", "--dev", dev, "--device", "bob", "send", big_in.to_str().unwrap(), "--to", "alice"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let big_hash = run.json()["hash"].as_str().unwrap().to_owned();
    let big_out = home.join("big.out");
    let run = cli(
        home,
        &["--json", "--dev", dev, "--device", "alice", "receive", &big_hash, "-o", big_out.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(std::fs::read(&big_out).unwrap() == big, "the largest file round-trips");

    // On a terminal (script(1) gives the command a pty), upload and download show progress bars;
    // with --json they do not.
    let on_terminal = |args: &str| {
        let out = Command::new("script")
            .args(["-qec", &format!("{BIN} --dev {dev} {args}"), "/dev/null"])
            .env("PARAMANT_HOME", home)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args}: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_terminal(&format!("--device bob send {} --to alice", big_in.display()));
    assert!(shown.contains("upload") && shown.contains("MiB"), "no upload progress bar: {shown}");
    let tty_hash = shown.lines().find_map(|l| l.trim().strip_prefix("hash ")).unwrap().trim().to_owned();
    let shown = on_terminal(&format!("--device alice receive {tty_hash} -o {}", big_out.display()));
    assert!(shown.contains("download") && shown.contains("MiB"), "no download progress bar: {shown}");
    assert!(std::fs::read(&big_out).unwrap() == big);
    let quiet = on_terminal(&format!("--json --device bob send {} --to alice", big_in.display()));
    assert!(!quiet.contains("upload"), "--json draws no bar: {quiet}");
    let huge = home.join("huge.bin");
    std::fs::File::create(&huge).unwrap().set_len(64 << 30).unwrap();
    for (file, size) in [(&big_in, max + 1), (&huge, 64u64 << 30)] {
        std::fs::OpenOptions::new().write(true).open(file).unwrap().set_len(size).unwrap();
        let run = cli(
            home,
            &["--json", "--relay", "http://127.0.0.1:9", "--api-key", "pgp_x", "send", file.to_str().unwrap()],
        );
        assert_eq!((run.code, run.json()["error"].clone()), (2, json!("too_large")), "{}", run.stdout);
        assert!(run.json()["message"].as_str().unwrap().contains(&format!("at most {max} bytes")), "{}", run.stdout);
    }
    let anonymous_max: u64 = 5 * 1024 * 1024 - 1138;
    std::fs::OpenOptions::new().write(true).open(&big_in).unwrap().set_len(anonymous_max + 1).unwrap();
    let run = cli(home, &["--json", "--dev", dev, "send", big_in.to_str().unwrap(), "--anonymous"]);
    assert_eq!(run.code, 2, "anonymous blobs hold more, but not this: {}", run.stdout);
    let run = cli(home, &["--json", "--dev", dev, "drop", huge.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    let piped = Command::new(BIN)
        .args(["--json", "--relay", "http://127.0.0.1:9", "--api-key", "pgp_x", "send", "-"])
        .env("PARAMANT_HOME", home)
        .stdin(std::fs::File::open(&huge).unwrap())
        .output()
        .unwrap();
    assert_eq!(piped.status.code(), Some(2), "standard input is read only up to the limit");

    // Drop and pickup by mnemonic.
    let run = cli(home, &["--json", "--dev", dev, "drop", input.to_str().unwrap(), "--pad-block", "512k"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let mnemonic = run.json()["mnemonic"].as_str().unwrap().to_owned();
    let picked = home.join("picked.bin");
    let run = cli(home, &["--dev", dev, "pickup", &mnemonic, "-o", picked.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read(&picked).unwrap(), data);
    assert_eq!(cli(home, &["--dev", dev, "pickup", "abandon abandon abandon"]).code, 1, "not a mnemonic");
}

// ---------------------------------------------------------------- help, version, completions, man

#[test]
fn help_version_completions_and_man_pages() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let run = cli(home, &["--help"]);
    assert_eq!(run.code, 0);
    for word in ["send", "verify-sth", "monitor", "up", "ctlog", "relay", "Exit codes"] {
        assert!(run.stdout.contains(word), "--help lists {word}");
    }
    assert_eq!(cli(home, &["verify-sth", "--help"]).code, 0);
    let run = cli(home, &["--version"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(cli(home, &["no-such-command"]).code, 2);
    assert_eq!(cli(home, &["verify-sth"]).code, 2, "no relay given");
    assert_eq!(cli(home, &["up", "--bogus"]).code, 1, "up keeps its own argument parsing");
    let run = cli(home, &["up", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("paramant up [--data DIR]"));
    let run = cli(home, &["completions", "bash"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("verify-peers"));
    let man = home.join("man");
    assert_eq!(cli(home, &["man", man.to_str().unwrap()]).code, 0);
    for page in ["paramant.1", "paramant-send.1", "paramant-verify-sth.1", "paramant-monitor.1"] {
        assert!(man.join(page).exists(), "{page}");
    }
}

// ---------------------------------------------------------------- send checks the log's answer

#[test]
fn send_checks_the_inclusion_proof_and_signed_head_of_its_upload() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let relay = FakeLog::start();
    let key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let receiver = crypto::pipe::DeviceKeys::generate().unwrap();
    // GET /v2/pubkey/bob is bob's device key; /v2/pubkey (GET, and the POST that registers the
    // sender) answers the log key.
    relay.set("/v2/pubkey/bob", json!({ "kyber_pub": hex::encode(receiver.kem_public_key()), "ecdh_pub": "" }));
    relay.set("/v2/pubkey", pubkey_doc(&key));
    let tree = Tree::new(9, 10);
    let head = sth(&key, "fake.log", &tree.roots[10], 10, 1000);
    let ids = tlog::inclusion_nodes(3, 10).unwrap();
    let hashes: Vec<_> = ids.ids().iter().map(|id| tree.nodes[id]).collect();
    let path = ids.rehash::<Sha3_256>(&hashes).unwrap();
    let leaf = tree.nodes[&NodeId { level: 0, index: 3 }];
    let answer = |audit_path: Value, head: &SignedSth| {
        json!({ "ok": true, "merkle_proof": {
            "leaf_hash": hex::encode(leaf), "leaf_index": 3, "tree_size": 10, "audit_path": audit_path,
            "root": hex::encode(tree.roots[10]), "sth": head, "sth_signature": head.signature,
        }})
    };
    let honest_path = serde_json::to_value(wire::audit_path(3, 10, &path)).unwrap();
    let input = home.join("in.txt");
    std::fs::write(&input, b"hello").unwrap();
    let send = || {
        cli(
            home,
            &[
                "--json",
                "--relay",
                &relay.url,
                "--api-key",
                "pgp_test",
                "--device",
                "alice",
                "send",
                input.to_str().unwrap(),
                "--to",
                "bob",
                "--pad-block",
                "64k",
            ],
        )
    };

    relay.set("/v2/inbound", answer(honest_path.clone(), &head));
    let run = send();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["log_proof"]["verified"], true);

    let mut bad_path = honest_path.clone();
    bad_path[1]["hash"] = json!(hex::encode([7u8; 32]));
    relay.set("/v2/inbound", answer(bad_path, &head));
    assert_eq!(send().code, 1, "an audit path that does not lead to the root");

    let mut forged = head.clone();
    forged.body.timestamp += 1;
    relay.set("/v2/inbound", answer(honest_path.clone(), &forged));
    assert_eq!(send().code, 1, "a signed head whose signature does not verify");

    let stranger = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    relay.set("/v2/inbound", answer(honest_path, &sth(&stranger, "fake.log", &tree.roots[10], 10, 1000)));
    assert_eq!(send().code, 1, "a head signed by a key that is not the log's");
}

// ---------------------------------------------------------------- a closed stdout

/// `paramant … | head -1`: the reader is gone. Each subcommand writing to a closed pipe ends
/// quietly (the default SIGPIPE action, like every Unix filter), never with a panic.
#[test]
fn every_subcommand_ends_quietly_on_a_closed_stdout() {
    use std::os::unix::process::ExitStatusExt;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let log = FakeLog::start();
    let key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let tree = Tree::new(4, 8);
    log.serve_head(&key, &sth(&key, "fake.log", &tree.roots[8], 8, 1000));
    log.set("/v2/sth/peers", json!({ "ok": true, "count": 0, "peers": [] }));
    let man = home.join("man");
    let archive = home.join("archive");
    let (man, archive) = (man.to_str().unwrap(), archive.to_str().unwrap());
    let url = log.url.as_str();
    let no_receipt = "0".repeat(64);
    let commands: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["--version"],
        vec!["send", "--help"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["man", man],
        vec!["verify-sth", "--relay", url],
        vec!["--json", "verify-sth", "--relay", url, "-v"],
        vec!["verify-peers", "--relay", url],
        vec!["--json", "verify-peers", "--relay", url],
        vec!["monitor", "--relay", url, "--archive", archive, "--count", "3", "--interval", "0"],
        vec!["--json", "monitor", "--relay", url, "--archive", archive, "--count", "3", "--interval", "0"],
        vec!["--json", "receipt", "--hash", &no_receipt],
        vec!["up", "--help"],
        vec!["ctlog", "--help"],
        vec!["relay", "--help"],
        vec!["admin", "--help"],
        vec!["release"],
    ];
    for args in &commands {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(BIN)
            .args(args)
            .env("PARAMANT_HOME", home)
            .env_remove("PARAMANT_RELAY")
            .env_remove("PARAMANT_DEV")
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert!(
            out.status.signal() == Some(libc_sigpipe()) || out.status.code().is_some_and(|c| c != 101),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

fn libc_sigpipe() -> i32 {
    nix::sys::signal::Signal::SIGPIPE as i32
}
