//! The C2SP tlog-tiles read API of the real binary, read over HTTP the way a C2SP client reads
//! it: the checkpoint's Ed25519 signed note is verified with cloudflare/azul's `signed_note`
//! crate (an independent implementation of c2sp.org/signed-note), and the tiles are read by a
//! reader written here from the tlog-tiles text and RFC 6962 (with SHA3-256, the log's hash),
//! not with our `tlog` crate, then checked against the checkpoint and the log's own proofs.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use sha3::{Digest, Sha3_256};
use signed_note::{Note, StandardVerifier, VerifierList};

type H = [u8; 32];

fn leaf_node(l: &H, r: &H) -> H {
    let mut h = Sha3_256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// RFC 6962 §2.1 MTH over leaf hashes (largest power of two below n splits).
fn mth(leaves: &[H]) -> H {
    match leaves.len() {
        0 => Sha3_256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            leaf_node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 §2.1.1 PATH(m, D[n]).
fn path(m: usize, leaves: &[H]) -> Vec<H> {
    if leaves.len() <= 1 {
        return vec![];
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// RFC 6962 §2.1.2 PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
fn subproof(m: usize, leaves: &[H], complete: bool) -> Vec<H> {
    let n = leaves.len();
    if m == n {
        return if complete { vec![] } else { vec![mth(leaves)] };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], complete);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn fetch(log: &Log, path: &str) -> (u16, String, Vec<u8>) {
    let mut response = agent().get(&format!("{}{path}", log.public)).call().unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, response.body_mut().with_config().limit(1 << 24).read_to_vec().unwrap())
}

fn hashes(bytes: &[u8]) -> Vec<H> {
    assert_eq!(bytes.len() % 32, 0);
    bytes.chunks(32).map(|c| c.try_into().unwrap()).collect()
}

/// tlog-tiles path of tile `n` (3-digit groups, `x` before all but the last).
fn tile_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// Reads every level-0 hash of a tree of `size` from tiles, as a tlog-tiles client does.
fn read_leaf_hashes(log: &Log, size: u64) -> Vec<H> {
    let mut out = Vec::new();
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256);
        let suffix = if width == 256 { String::new() } else { format!(".p/{width}") };
        let (status, content_type, body) = fetch(log, &format!("/tile/0/{}{suffix}", tile_index(n)));
        assert_eq!((status, content_type.as_str()), (200, "application/octet-stream"));
        assert_eq!(body.len() as u64, 32 * width);
        out.extend(hashes(&body));
    }
    out
}

const LEAVES: u64 = 300;

#[test]
fn a_c2sp_client_verifies_the_checkpoint_and_checks_proofs_from_the_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "public_url = \"https://ct.example.org/\"\n").start();
    // Concurrent appends, so the sequencer batches them (the test stays fast).
    std::thread::scope(|s| {
        for t in 0..10u64 {
            let log = &log;
            s.spawn(move || (t * 30..t * 30 + 30).for_each(|n| drop(log.append_transfer(&blob_hash(n)))));
        }
    });
    // The refresh may have signed since; the checkpoint and /v2/sth come from the newest STH.
    let (_, key) = log.get("/v2/pubkey");
    let vkey = key["checkpoint_key"].as_str().unwrap();
    assert!(vkey.starts_with("ct.example.org/sha3-256+"), "{vkey}");
    let (status, content_type, checkpoint) = fetch(&log, "/checkpoint");
    assert_eq!((status, content_type.as_str()), (200, "text/plain; charset=utf-8"));

    // The signed note verifies with an independent implementation and the published key.
    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
    let note = Note::from_bytes(&checkpoint).unwrap();
    let (verified, _) = note.verify(&verifiers).expect("checkpoint signature verifies");
    assert_eq!(verified.len(), 1);
    let text = std::str::from_utf8(note.text()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "origin, size, root and no extension lines: {text:?}");
    assert_eq!(lines[0], "ct.example.org/sha3-256");
    let size: u64 = lines[1].parse().unwrap();
    let root: H = B64.decode(lines[2]).unwrap().try_into().unwrap();
    assert_eq!(size, LEAVES);

    // A changed size or root does not verify (the signature covers the whole text).
    let forged = String::from_utf8(checkpoint.clone()).unwrap().replacen(&format!("\n{LEAVES}\n"), "\n301\n", 1);
    assert!(Note::from_bytes(forged.as_bytes()).unwrap().verify(&verifiers).is_err());

    // The checkpoint is the newest ML-DSA-65 STH in another form.
    let (_, sth) = log.get("/v2/sth");
    assert_eq!(sth["sth"]["tree_size"], size);
    assert_eq!(sth["sth"]["sha3_root"], hex::encode(root));

    // Tiles: the leaf hashes hash up to the checkpoint's root; the level-1 tile holds the
    // hash of the full level-0 tile.
    let leaves = read_leaf_hashes(&log, size);
    assert_eq!(mth(&leaves), root, "tiles reproduce the signed root");
    let (status, _, level1) = fetch(&log, "/tile/1/000.p/1");
    assert_eq!(status, 200);
    assert_eq!(hashes(&level1), vec![mth(&leaves[..256])]);

    // The log's inclusion and consistency proofs equal the RFC 6962 ones computed from tiles.
    for index in [0u64, 1, 255, 256, 299] {
        let (_, proof) = log.get(&format!("/v2/ct/proof?index={index}&tree_size={size}"));
        let served: Vec<H> = proof["audit_path"].as_array().unwrap().iter().map(|p| hex32(&p["hash"])).collect();
        assert_eq!(served, path(index as usize, &leaves), "inclusion proof of {index}");
    }
    for from in [1u64, 7, 256, 299] {
        let (_, c) = log.get(&format!("/v2/sth/consistency?from={from}&to={size}"));
        let served: Vec<H> = c["proof"].as_array().unwrap().iter().map(hex32).collect();
        assert_eq!(served, subproof(from as usize, &leaves, true), "consistency proof from {from}");
    }

    // Entry bundles: u16-length-prefixed event JSON, each hashing to its level-0 tile hash.
    let mut entries = Vec::new();
    for (n, suffix) in [(0, ""), (1, ".p/44")] {
        let (status, _, bundle) = fetch(&log, &format!("/tile/entries/{n:03}{suffix}"));
        assert_eq!(status, 200);
        let mut rest = &bundle[..];
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            entries.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
    }
    assert_eq!(entries.len() as u64, LEAVES);
    let mut blobs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let event: wire::LogEvent = serde_json::from_slice(entry).unwrap();
        assert_eq!(event.leaf_hash().unwrap(), leaves[i], "entry {i} hashes to its tile hash");
        blobs.push(
            serde_json::from_slice::<serde_json::Value>(entry).unwrap()["blob_hash"].as_str().unwrap().to_owned(),
        );
    }
    blobs.sort();
    assert_eq!(blobs, (0..LEAVES).map(blob_hash).collect::<Vec<_>>());
}

#[test]
fn tiles_that_do_not_exist_or_are_not_canonical_paths_are_json_404s() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    for n in 0..3 {
        log.append_transfer(&blob_hash(n));
    }
    let (status, _, _) = fetch(&log, "/tile/0/000.p/3");
    assert_eq!(status, 200);
    for path in [
        "/tile/0/000",
        "/tile/0/000.p/4",
        "/tile/1/000.p/1",
        "/tile/entries/000",
        "/tile/entries/000.p/4",
        "/tile/0/0",
        "/tile/00/000",
        "/tile/0/x000/000",
        "/tile/0/000.p/256",
        "/tile/0/000.p/03",
        "/tile/64/000",
        "/tile/0/x999/x999/x999/x999/x999/x999/x999/999",
    ] {
        let (status, body) = log.get(path);
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["ok"], false, "{path}");
    }
}
