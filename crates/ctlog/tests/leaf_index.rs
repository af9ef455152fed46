//! The leaf-hash index lives in its own file, written after the commit by an indexer thread
//! (`ctlog::store::index_path`). What a user of the log sees must not change: every
//! acknowledged leaf is found by its hash at once, a duplicate hash names its first leaf, and a
//! missing, damaged or foreign index file is rebuilt from the leaves (by start-up or by
//! `fsck --repair`), never believed.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crypto::{KeyFile, LogSigningKey};
use ctlog::fsck::{self, ProblemKind};
use ctlog::sequencer::{Sequencer, SequencerConfig, SequencerThread};
use ctlog::store::{LogStore, index_path};
use redb::{ReadableDatabase, TableDefinition};
use tlog::Hash;
use wire::LogEvent;

const INDEX: TableDefinition<[u8; 32], u64> = TableDefinition::new("leaf_index");

struct Running {
    sequencer: Sequencer,
    thread: SequencerThread,
    store: Arc<LogStore>,
}

fn start(path: &Path, key: &Arc<LogSigningKey>) -> Running {
    let store = Arc::new(LogStore::open(path).unwrap());
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

    // A clean stop leaves the index file complete, and fsck checks every entry of it.
    let store = LogStore::open(&path).unwrap();
    assert_clean(&store, &key, acked.len() as u64);
    drop(store);

    // The index file lost: start-up rebuilds it from the leaves.
    std::fs::remove_file(index_path(&path)).unwrap();
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
    std::fs::copy(index_path(&other_path), index_path(&path)).unwrap();
    let running = start(&path, &key);
    assert_first_indexes(&running.store, &acked);
    assert_eq!(running.store.snapshot().unwrap().index_of(&[0; 32]).unwrap(), None);
    running.stop();
    let store = LogStore::open(&path).unwrap();
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

    // Point leaf 200's hash at leaf 100 (the file stays a valid redb file of this log).
    let (&moved, hash) = acked.iter().nth(200).unwrap();
    {
        let db = redb::Database::create(index_path(&path)).unwrap();
        assert_eq!(db.begin_read().unwrap().open_table(INDEX).unwrap().get(hash).unwrap().unwrap().value(), moved);
        let txn = db.begin_write().unwrap();
        txn.open_table(INDEX).unwrap().insert(hash, 100).unwrap();
        txn.commit().unwrap();
    }
    let store = LogStore::open(&path).unwrap();
    // Lookups check the leaf row, so the wrong entry is not an answer even before the repair.
    assert_ne!(store.snapshot().unwrap().index_of(hash).unwrap(), Some(100));
    let report = fsck::check(&store, &key.verifying_key()).unwrap();
    assert!(
        report.problems.iter().any(|p| p.kind == ProblemKind::Derived && p.detail.contains("index entry of leaf")),
        "{report}"
    );
    assert!(report.is_repairable(), "{report}");
    let (repaired, after) = fsck::repair(&store, &key.verifying_key()).unwrap();
    assert!(matches!(repaired, fsck::Repaired::Rebuilt));
    assert!(after.is_clean(), "{after}");
    assert_first_indexes(&store, &acked);
}
