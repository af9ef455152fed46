//! The leaf-hash index lives in its own directory of sorted runs, written after the commit by
//! an indexer thread and merged by another (`ctlog::store::index_path`). What a user of the log
//! sees must not change: every acknowledged leaf is found by its hash at once, a duplicate hash
//! names its first leaf, and a missing, damaged, foreign or too new index is rebuilt from the
//! leaves (by start-up or by `fsck --repair`), never believed. The tests use runs of 64 leaves
//! merged 4 at a time, so a few hundred leaves go through every level.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crypto::{KeyFile, LogSigningKey};
use ctlog::fsck::{self, ProblemKind};
use ctlog::sequencer::{Sequencer, SequencerConfig, SequencerThread};
use ctlog::store::{IndexTuning, LogStore, index_path};
use tlog::Hash;
use wire::LogEvent;

const THREE_RUNS: [&str; 3] = [
    "0000000000000000-0000000000000100.run",
    "0000000000000100-0000000000000200.run",
    "0000000000000200-0000000000000300.run",
];

const TUNING: IndexTuning = IndexTuning { run_leaves: 64, fan_in: 4 };

fn open(path: &Path) -> LogStore {
    LogStore::open_tuned(path, TUNING).unwrap()
}

/// The run files in the index directory, by name.
fn run_files(path: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(index_path(path)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

struct Running {
    sequencer: Sequencer,
    thread: SequencerThread,
    store: Arc<LogStore>,
}

fn start(path: &Path, key: &Arc<LogSigningKey>) -> Running {
    let store = Arc::new(open(path));
    let config = SequencerConfig { relay_id: "index.test".into(), refresh_interval: Duration::from_secs(3600) };
    let fatal: ctlog::sequencer::Fatal = Arc::new(|reason: &str| panic!("storage fault: {reason}"));
    let (sequencer, _, thread) = Sequencer::start(store.clone(), key.clone(), config, fatal).unwrap();
    Running { sequencer, thread, store }
}

impl Running {
    /// Stops the sequencer and closes the store (the indexer writes what is queued first).
    fn stop(self) {
        drop(self.sequencer);
        self.thread.join();
        drop(self.store);
    }
}

fn transfer(n: u64) -> LogEvent {
    LogEvent::Transfer { blob_hash: format!("{n:064x}"), sector: "health".into(), timestamp: String::new() }
}

/// Appends `events` concurrently; every acknowledged leaf is looked up by its hash as soon as
/// its append returns. Returns index -> hash of all of them.
fn append_and_look_up(
    runtime: &tokio::runtime::Runtime,
    running: &Running,
    events: Vec<LogEvent>,
) -> BTreeMap<u64, Hash> {
    let tasks: Vec<_> = events
        .into_iter()
        .map(|event| {
            let (sequencer, store) = (running.sequencer.clone(), running.store.clone());
            runtime.spawn(async move {
                let appended = sequencer.append(event).await.unwrap();
                let found = store.snapshot().unwrap().index_of(&appended.leaf_hash).unwrap();
                (appended.leaf_index, appended.leaf_hash, found)
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    for task in tasks {
        let (index, hash, found) = runtime.block_on(task).unwrap();
        let found = found.unwrap_or_else(|| panic!("acknowledged leaf {index} not found by its hash"));
        assert!(found <= index, "leaf {index} found at a later index {found}");
        acked.insert(index, hash);
    }
    acked
}

/// Every hash resolves to the first index that holds it.
fn assert_first_indexes(store: &LogStore, acked: &BTreeMap<u64, Hash>) {
    let mut first: BTreeMap<Hash, u64> = BTreeMap::new();
    for (&index, hash) in acked {
        first.entry(*hash).or_insert(index);
    }
    let snapshot = store.snapshot().unwrap();
    for (hash, index) in first {
        assert_eq!(snapshot.index_of(&hash).unwrap(), Some(index), "{}", hex::encode(hash));
    }
    assert_eq!(snapshot.index_of(&[0x5a; 32]).unwrap(), None, "an unknown hash is found");
}

fn assert_clean(store: &LogStore, key: &LogSigningKey, size: u64) {
    let report = fsck::check(store, &key.verifying_key()).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.tree_size, size);
}

#[test]
fn acknowledged_leaves_are_found_by_hash_at_once_and_after_restarts_with_a_lost_or_foreign_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctlog.redb");
    let key = Arc::new(LogSigningKey::generate().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // Distinct events, and the same event sent many times at once (equal events in one batch
    // share its timestamp, so some of them have equal leaf hashes).
    let mut events: Vec<LogEvent> = (0..600).map(transfer).collect();
    events.extend((0..200).map(|_| transfer(7)));
    let running = start(&path, &key);
    let mut acked = append_and_look_up(&runtime, &running, events);
    assert_first_indexes(&running.store, &acked);
    running.stop();

    // 800 leaves: three runs of 256 (each merged from four of 64) and 32 leaves in memory
    // (re-read from the log at each open, which also writes and merges the runs a stop left
    // due); fsck checks every entry of every run.
    assert_eq!(acked.len(), 800);
    let store = open(&path);
    assert_eq!(run_files(&path), THREE_RUNS);
    assert_clean(&store, &key, acked.len() as u64);
    drop(store);

    // The index lost: start-up rebuilds it from the leaves.
    std::fs::remove_dir_all(index_path(&path)).unwrap();
    let running = start(&path, &key);
    assert_first_indexes(&running.store, &acked);
    acked.extend(append_and_look_up(&runtime, &running, (1000..1100).map(transfer).collect()));
    running.stop();

    // Another log's index file (a restored backup, a copied directory): not believed.
    let other_dir = tempfile::tempdir().unwrap();
    let other_path = other_dir.path().join("ctlog.redb");
    let other = start(&other_path, &key);
    append_and_look_up(&runtime, &other, (5000..5900).map(transfer).collect());
    other.stop();
    std::fs::remove_dir_all(index_path(&path)).unwrap();
    copy_dir(&index_path(&other_path), &index_path(&path));
    let running = start(&path, &key);
    assert_first_indexes(&running.store, &acked);
    assert_eq!(running.store.snapshot().unwrap().index_of(&[0; 32]).unwrap(), None);
    running.stop();
    let store = open(&path);
    assert_clean(&store, &key, acked.len() as u64);
}

#[test]
fn fsck_finds_a_wrong_index_entry_and_repair_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctlog.redb");
    let key = Arc::new(LogSigningKey::generate().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = start(&path, &key);
    let acked = append_and_look_up(&runtime, &running, (0..300).map(transfer).collect());
    running.stop();

    drop(open(&path));
    // Point leaf 200's entry at leaf 100: the run stays well-formed (the right size, the right
    // last leaf), so start-up keeps it, and only fsck's check of every entry finds it.
    let (&moved, hash) = acked.iter().nth(200).unwrap();
    assert_eq!(moved, 200);
    let run = index_path(&path).join("0000000000000000-0000000000000100.run");
    let mut bytes = std::fs::read(&run).unwrap();
    let entries = &mut bytes[64..64 + 256 * 12];
    let at = entries.chunks_exact(12).position(|e| e[8..] == 200u32.to_be_bytes()).unwrap();
    entries[at * 12 + 8..at * 12 + 12].copy_from_slice(&100u32.to_be_bytes());
    std::fs::write(&run, &bytes).unwrap();
    let store = open(&path);
    // Lookups check the leaf row, so the wrong entry is not an answer even before the repair.
    assert_ne!(store.snapshot().unwrap().index_of(hash).unwrap(), Some(100));
    let report = fsck::check(&store, &key.verifying_key()).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Derived && p.detail.contains("leaf 200 is missing from the hash index")),
        "{report}"
    );
    assert!(report.is_repairable(), "{report}");
    let (repaired, after) = fsck::repair(&store, &key.verifying_key()).unwrap();
    assert!(matches!(repaired, fsck::Repaired::Rebuilt));
    assert!(after.is_clean(), "{after}");
    assert_first_indexes(&store, &acked);
}

#[test]
fn start_up_keeps_only_complete_runs_of_this_log_within_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctlog.redb");
    let key = Arc::new(LogSigningKey::generate().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = start(&path, &key);
    let mut acked = append_and_look_up(&runtime, &running, (0..300).map(transfer).collect());
    running.stop();
    // A copy of the log at 300 leaves (a backup), then 500 more leaves.
    let backup = dir.path().join("backup.redb");
    std::fs::copy(&path, &backup).unwrap();
    let running = start(&path, &key);
    let later = append_and_look_up(&runtime, &running, (300..800).map(transfer).collect());
    running.stop();
    drop(open(&path));
    assert_eq!(run_files(&path), THREE_RUNS);

    // What a crash can leave: a half-written run, and a merge whose inputs were not deleted yet
    // (four runs of 64 beside the run of 256 they were merged into); and a file that is not a
    // run at all.
    let index = index_path(&path);
    std::fs::write(index.join("0000000000000300-0000000000000340.run.tmp"), b"half").unwrap();
    std::fs::write(index.join("0000000000000300-0000000000000340.run"), b"truncated").unwrap();
    let other = tempfile::tempdir().unwrap();
    let other_path = other.path().join("ctlog.redb");
    std::fs::copy(&path, &other_path).unwrap();
    let fine = LogStore::open_tuned(&other_path, IndexTuning { run_leaves: 64, fan_in: 1000 }).unwrap();
    drop(fine);
    for name in run_files(&other_path) {
        if name.starts_with("00000000000001") {
            std::fs::copy(index_path(&other_path).join(&name), index.join(&name)).unwrap();
        }
    }
    std::fs::write(index.join("notes.txt"), b"stray").unwrap();
    let running = start(&path, &key);
    acked.extend(later);
    assert_first_indexes(&running.store, &acked);
    acked.extend(append_and_look_up(&runtime, &running, (800..900).map(transfer).collect()));
    running.stop();
    let store = open(&path);
    let mut expected = THREE_RUNS.to_vec();
    expected.extend(["0000000000000300-0000000000000340.run", "0000000000000340-0000000000000380.run"]);
    assert_eq!(run_files(&path), expected);
    assert_clean(&store, &key, 900);
    drop(store);

    // The backup restored under the newer index: runs beyond its 300 leaves are dropped (the
    // run of 256 within them is kept), and what the backup holds is found.
    std::fs::copy(&backup, &path).unwrap();
    let store = open(&path);
    assert_eq!(run_files(&path), ["0000000000000000-0000000000000100.run"]);
    let in_backup: BTreeMap<u64, Hash> = acked.range(..300).map(|(i, h)| (*i, *h)).collect();
    assert_first_indexes(&store, &in_backup);
    assert_eq!(store.snapshot().unwrap().index_of(&acked[&500]).unwrap(), None);
    assert_clean(&store, &key, 300);
}
