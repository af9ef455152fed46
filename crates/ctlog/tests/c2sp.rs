//! The C2SP view of the real binary, read over HTTP the way transparency-dev tooling reads a
//! tlog-tiles log, with independent implementations only (never our `tlog` crate):
//! - the checkpoint's Ed25519 signed note is verified by cloudflare/azul's `signed_note` with
//!   the verifier key `paramant-ctlog checkpoint-key` prints, and parsed by `tlog_tiles`;
//! - tiles are read and authenticated against each checkpoint by `tlog_tiles`'
//!   `TileHashReader` (azul's port of Go's golang.org/x/mod/sumdb/tlog), and its RFC 6962
//!   inclusion (`prove_record`/`check_record`) and consistency (`prove_tree`/`check_tree`)
//!   proofs are built from the tiles and checked against the signed roots;
//! - entry bundles are split at their big-endian u16 length prefixes, and the root is
//!   recomputed from the entries alone with RFC 6962 §2.1 MTH written here from the spec.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{
    Checkpoint, EMPTY_HASH, Hash, HashReader, Tile, TileHashReader, TileReader, check_record, check_tree, node_hash,
    prove_record, prove_tree, record_hash, stored_hash_index, tree_hash,
};

/// The tlog-tiles path of a tile as `tlog_tiles` names it (`tile/8/L/N[.p/W]`, the sumdb
/// form with the height) in C2SP form: no height, `entries` for data tiles.
fn c2sp_path(tile: &Tile) -> String {
    let sumdb = tile.path();
    match sumdb.strip_prefix("tile/8/data/") {
        Some(rest) => format!("/tile/entries/{rest}"),
        None => format!("/{}", sumdb.replacen("tile/8/", "tile/", 1)),
    }
}

fn fetch(log: &Log, path: &str) -> (u16, String, String, Vec<u8>) {
    let mut response = agent().get(&format!("{}{path}", log.public)).call().unwrap();
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    (status, content_type, cache, response.body_mut().with_config().limit(1 << 24).read_to_vec().unwrap())
}

/// Tiles fetched from the log over HTTP; `TileHashReader` authenticates them.
struct HttpTiles<'a> {
    log: &'a Log,
}

impl TileReader for HttpTiles<'_> {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|tile| {
                let path = c2sp_path(tile);
                let (status, content_type, cache, body) = fetch(self.log, &path);
                if status != 200 {
                    return Err(tlog_tiles::Error::InvalidInput(format!("{path}: HTTP {status}")));
                }
                assert_eq!(content_type, "application/octet-stream", "{path}");
                assert!(cache.contains("immutable"), "{path}: {cache}");
                Ok(body)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

/// A checkpoint as a client holds it after verifying it.
struct Verified {
    size: u64,
    root: Hash,
    bytes: Vec<u8>,
}

/// Fetches `/checkpoint`, verifies the signed note with `vkey`, parses the tlog-checkpoint.
fn checkpoint(log: &Log, vkey: &str) -> Verified {
    let (status, content_type, cache, bytes) = fetch(log, "/checkpoint");
    assert_eq!((status, content_type.as_str()), (200, "text/plain; charset=utf-8"));
    assert_eq!(cache, "no-cache");
    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
    let note = Note::from_bytes(&bytes).unwrap();
    let (verified, unverified) = note.verify(&verifiers).expect("the checkpoint's signature verifies");
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    let parsed = Checkpoint::from_bytes(note.text()).expect("a tlog-checkpoint");
    assert_eq!(parsed.origin(), "ct.example.org");
    assert_eq!(parsed.extension(), "", "no extension lines");
    Verified { size: parsed.size(), root: *parsed.hash(), bytes }
}

/// RFC 6962 §2.1 MTH over leaf hashes (the split is the largest power of two below n).
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_HASH,
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
        }
    }
}

/// The entries of a tree of `size` from its entry bundles (full, then the partial one).
fn entries(log: &Log, size: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for n in 0..size.div_ceil(256) {
        let width = (size - n * 256).min(256);
        let path = c2sp_path(&Tile::new(8, 0, n, u32::try_from(width).unwrap(), true));
        let (status, content_type, _, bundle) = fetch(log, &path);
        assert_eq!((status, content_type.as_str()), (200, "application/octet-stream"), "{path}");
        let mut rest = &bundle[..];
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            out.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
        assert_eq!(out.len() as u64, n * 256 + width, "{path} holds {width} entries");
    }
    out
}

/// Everything a client checks for one checkpoint: the tiles authenticate to its root, the
/// entries hash to the level-0 tile hashes and re-derive the root on their own.
fn check_tree_of(log: &Log, cp: &Verified) -> Vec<Vec<u8>> {
    let tiles = HttpTiles { log };
    let reader = TileHashReader::new(cp.size, cp.root, &tiles);
    assert_eq!(tree_hash(cp.size, &reader).unwrap(), cp.root, "tiles reproduce the signed root");
    let entries = entries(log, cp.size);
    let hashes: Vec<Hash> = entries.iter().map(|e| record_hash(e)).collect();
    assert_eq!(mth(&hashes), cp.root, "the entries alone reproduce the signed root");
    let indexes: Vec<u64> = (0..cp.size).map(|i| stored_hash_index(0, i)).collect();
    assert_eq!(reader.read_hashes(&indexes).unwrap(), hashes, "entries hash to their tile hashes");
    entries
}

fn append_range(log: &Log, from: u64, to: u64) {
    // Concurrent appends, so the sequencer batches them (the test stays fast).
    let per = (to - from).div_ceil(10);
    std::thread::scope(|s| {
        for t in 0..10u64 {
            let (lo, hi) = ((from + t * per).min(to), (from + (t + 1) * per).min(to));
            s.spawn(move || (lo..hi).for_each(|n| drop(log.append_transfer(&blob_hash(n)))));
        }
    });
}

#[test]
fn transparency_dev_tlog_tiles_reads_verifies_and_proves_the_c2sp_view() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::configure(dir.path(), "health.example", "public_url = \"https://ct.example.org/\"\n").start();

    // The verifier key as the operator prints it, and as the log publishes it.
    let printed =
        std::process::Command::new(BIN).args(["checkpoint-key", "--config"]).arg(&log.config).output().unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let vkey = String::from_utf8(printed.stdout).unwrap().trim().to_owned();
    assert!(vkey.starts_with("ct.example.org+"), "{vkey}");
    let (_, key) = log.get("/v2/pubkey");
    assert_eq!(key["checkpoint_key"], vkey.as_str());

    // The empty tree: RFC 6962's MTH of nothing.
    let empty = checkpoint(&log, &vkey);
    assert_eq!((empty.size, empty.root), (0, EMPTY_HASH));

    append_range(&log, 0, 7);
    let small = checkpoint(&log, &vkey);
    assert_eq!(small.size, 7);
    check_tree_of(&log, &small);
    append_range(&log, 7, 300);
    let middle = checkpoint(&log, &vkey);
    assert_eq!(middle.size, 300);
    check_tree_of(&log, &middle);
    append_range(&log, 300, 600);
    let large = checkpoint(&log, &vkey);
    assert_eq!(large.size, 600);
    let entries = check_tree_of(&log, &large);
    // Partial tiles of the earlier checkpoints stay readable (re-checked now the tree grew).
    check_tree_of(&log, &middle);

    // The checkpoint is the size of the newest ML-DSA-65 STH (whose SHA3 tree is another one).
    let (_, sth) = log.get("/v2/sth");
    assert_eq!(sth["sth"]["tree_size"], large.size);
    assert_ne!(sth["sth"]["sha3_root"], hex::encode(large.root.0));

    // Level 1 holds the MTH of each full level-0 tile (tile/1/000.p/2 for 600 leaves).
    let hashes: Vec<Hash> = entries.iter().map(|e| record_hash(e)).collect();
    let (status, _, _, level1) = fetch(&log, "/tile/1/000.p/2");
    assert_eq!(status, 200);
    assert_eq!(level1, [mth(&hashes[..256]).0, mth(&hashes[256..512]).0].concat());

    // Inclusion proofs built from the tiles verify against the signed root; a changed entry
    // or a proof for another index does not.
    let tiles = HttpTiles { log: &log };
    let reader = TileHashReader::new(large.size, large.root, &tiles);
    for index in [0u64, 1, 6, 255, 256, 299, 511, 512, 599] {
        let proof = prove_record(large.size, index, &reader).unwrap();
        let entry = &entries[usize::try_from(index).unwrap()];
        check_record(&proof, large.size, large.root, index, record_hash(entry)).unwrap();
        let mut tampered = entry.clone();
        tampered[10] ^= 1;
        assert!(check_record(&proof, large.size, large.root, index, record_hash(&tampered)).is_err());
        assert!(check_record(&proof, large.size, large.root, (index + 1) % 600, record_hash(entry)).is_err());
    }
    // Consistency proofs between every pair of checkpoints verify; a forged old root fails.
    for (old, new) in [(&small, &middle), (&small, &large), (&middle, &large)] {
        let reader = TileHashReader::new(new.size, new.root, &tiles);
        let proof = prove_tree(new.size, old.size, &reader).unwrap();
        check_tree(&proof, new.size, new.root, old.size, old.root).unwrap();
        let mut forged = old.root;
        forged.0[0] ^= 1;
        assert!(check_tree(&proof, new.size, new.root, old.size, forged).is_err());
    }

    // A changed size does not verify (the signature covers the whole text).
    let forged = String::from_utf8(large.bytes.clone()).unwrap().replacen("\n600\n", "\n601\n", 1).into_bytes();
    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(&vkey).unwrap())]);
    assert!(Note::from_bytes(&forged).unwrap().verify(&verifiers).is_err());

    // Every entry is the canonical event JSON of one append.
    let mut blobs: Vec<String> = entries
        .iter()
        .map(|e| {
            let event: serde_json::Value = serde_json::from_slice(e).unwrap();
            event["blob_hash"].as_str().unwrap().to_owned()
        })
        .collect();
    blobs.sort();
    assert_eq!(blobs, (0..600).map(blob_hash).collect::<Vec<_>>());

    // After a hard kill and restart: the same tree, the same key, the same checkpoint bytes.
    log.kill_hard();
    log.spawn();
    let again = checkpoint(&log, &vkey);
    assert_eq!(again.bytes, large.bytes);
    append_range(&log, 600, 610);
    let grown = checkpoint(&log, &vkey);
    let tiles = HttpTiles { log: &log };
    let reader = TileHashReader::new(grown.size, grown.root, &tiles);
    check_tree(&prove_tree(grown.size, large.size, &reader).unwrap(), grown.size, grown.root, large.size, large.root)
        .unwrap();
}

#[test]
fn tiles_that_do_not_exist_or_are_not_canonical_paths_are_json_404s() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    for n in 0..3 {
        log.append_transfer(&blob_hash(n));
    }
    let (status, _, _, _) = fetch(&log, "/tile/0/000.p/3");
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
