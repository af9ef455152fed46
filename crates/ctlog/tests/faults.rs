//! Storage faults, injected from a table (sunlight's `TestSequenceErrors`): a backend wrapping
//! the real redb store fails, fails after persisting, is slow, or tears a batch (persists a
//! prefix of its writes). After every step `fsck` re-derives the whole tree from the leaves and
//! checks it against every stored head; after every fault the sequencer must have stopped (the
//! service exits the process), and a restart from the file on disk must recover to a
//! consistent log that still holds every acknowledged leaf at its index.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crypto::{KeyFile, LogSigningKey};
use ctlog::backend::{Backend, Batch, Discarded, Head};
use ctlog::fsck::{self, ProblemKind};
use ctlog::sequencer::{Fatal, Sequencer, SequencerConfig, SequencerThread};
use ctlog::store::{LogStore, Result as StoreResult, StoreError, Torn};
use tlog::tile::{Tile, TileId};
use wire::{LogEvent, SignedSth};

/// What the next commit does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Commits normally.
    None,
    /// Returns an error and writes nothing.
    Fail,
    /// Commits, then returns an error (the caller cannot know it persisted).
    FailPersisted,
    /// Commits after a delay, so more appends queue up behind it.
    Slow,
    /// Persists only the leaf rows, then returns an error.
    TornLeaves,
    /// Persists everything but the head, then returns an error.
    TornAllButHead,
}

/// A backend that applies the next fault of its plan to each commit.
struct Faulty {
    store: Arc<LogStore>,
    plan: Mutex<VecDeque<Fault>>,
    /// Signalled each time a commit takes its fault from the plan.
    taken: Condvar,
}

impl Faulty {
    fn next(&self) -> Fault {
        let fault = self.plan.lock().unwrap().pop_front().unwrap_or(Fault::None);
        self.taken.notify_all();
        fault
    }

    /// Waits until every planned fault was taken by a commit.
    fn wait_until_taken(&self) {
        let mut plan = self.plan.lock().unwrap();
        while !plan.is_empty() {
            plan = self.taken.wait(plan).unwrap();
        }
    }
}

fn injected(what: &str) -> StoreError {
    StoreError::Corrupt(format!("injected fault: {what}"))
}

impl Backend for Faulty {
    fn head(&self) -> StoreResult<Head> {
        self.store.head()
    }
    fn tile(&self, id: TileId) -> StoreResult<Option<Tile>> {
        self.store.tile(id)
    }
    fn commit_batch(&self, first_index: u64, batch: &Batch<'_>) -> StoreResult<()> {
        match self.next() {
            Fault::None => self.store.commit_batch(first_index, batch),
            Fault::Fail => Err(injected("fail")),
            Fault::FailPersisted => {
                self.store.commit_batch(first_index, batch)?;
                Err(injected("fail after persisting"))
            }
            Fault::Slow => {
                std::thread::sleep(Duration::from_millis(30));
                self.store.commit_batch(first_index, batch)
            }
            Fault::TornLeaves => {
                self.store.commit_batch_torn(first_index, batch, Torn::Leaves)?;
                Err(injected("torn after the leaves"))
            }
            Fault::TornAllButHead => {
                self.store.commit_batch_torn(first_index, batch, Torn::AllButHead)?;
                Err(injected("torn before the head"))
            }
        }
    }
    fn commit_sth(&self, sth: &SignedSth) -> StoreResult<()> {
        match self.next() {
            Fault::None | Fault::Slow => self.store.commit_sth(sth),
            Fault::FailPersisted => {
                self.store.commit_sth(sth)?;
                Err(injected("fail after persisting"))
            }
            Fault::Fail | Fault::TornLeaves | Fault::TornAllButHead => Err(injected("fail")),
        }
    }
    fn discard_uncommitted(&self) -> StoreResult<Discarded> {
        self.store.discard_uncommitted()
    }
    fn c2sp_tile(&self, id: TileId) -> StoreResult<Option<Tile>> {
        self.store.c2sp_tile(id)
    }
    fn complete_c2sp(&self) -> StoreResult<u64> {
        self.store.complete_c2sp()
    }
}

/// One step of the table: appends sent together (or a refresh when 0), and the fault of the
/// first commit they cause.
struct Step {
    appends: u64,
    fault: Fault,
}

const fn step(appends: u64, fault: Fault) -> Step {
    Step { appends, fault }
}

/// A running sequencer over the store file, with what its fatal handler saw.
struct Running {
    sequencer: Sequencer,
    thread: SequencerThread,
    store: Arc<LogStore>,
    backend: Arc<Faulty>,
    fatal: Arc<Mutex<Option<String>>>,
}

fn start(path: &Path, key: &Arc<LogSigningKey>) -> Running {
    let store = Arc::new(LogStore::open(path).unwrap());
    let backend = Arc::new(Faulty { store: store.clone(), plan: Mutex::default(), taken: Condvar::new() });
    let fatal_seen = Arc::new(Mutex::new(None));
    let seen = fatal_seen.clone();
    let fatal: Fatal = Arc::new(move |reason: &str| *seen.lock().unwrap() = Some(reason.to_owned()));
    // A zero refresh interval makes every refresh sign and store a new STH.
    let config = SequencerConfig { relay_id: "faults.test".into(), refresh_interval: Duration::ZERO };
    let (sequencer, _, thread) = Sequencer::start(backend.clone(), key.clone(), config, fatal).unwrap();
    Running { sequencer, thread, store, backend, fatal: fatal_seen }
}

fn transfer(n: u64) -> LogEvent {
    LogEvent::Transfer { blob_hash: format!("{n:064x}"), sector: "health".into(), timestamp: String::new() }
}

/// The invariant after every step: the leaves re-derive every signed root and the tiles,
/// indexes and head agree with them. Rows beyond the head are allowed only while a fault's
/// recovery has not run yet.
fn assert_sound(store: &LogStore, key: &LogSigningKey, allow_uncommitted: bool, when: &str) -> u64 {
    let report = fsck::check(store, &key.verifying_key()).unwrap();
    let bad: Vec<_> =
        report.problems.iter().filter(|p| !(allow_uncommitted && p.kind == ProblemKind::Uncommitted)).collect();
    assert!(bad.is_empty(), "{when}: {report}");
    report.tree_size
}

#[test]
fn every_fault_stops_the_sequencer_and_a_restart_recovers_a_sound_log() {
    use Fault::*;
    let table = [
        step(5, None),
        step(3, Fail),
        step(4, None),
        step(6, FailPersisted),
        step(2, None),
        step(300, TornLeaves),
        step(1, None),
        step(300, TornAllButHead),
        step(8, Slow),
        step(0, Fail),
        step(0, FailPersisted),
        step(0, None),
        step(270, None),
        step(7, TornAllButHead),
        step(1, Fail),
        step(3, None),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctlog.redb");
    let key = Arc::new(LogSigningKey::generate().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut running = start(&path, &key);
    // index -> leaf hash of every acknowledged append, and (size -> root) of every STH shown.
    let mut acked: BTreeMap<u64, tlog::Hash> = BTreeMap::new();
    let mut shown: BTreeMap<u64, String> = BTreeMap::new();
    let mut next_blob = 0;
    for (n, Step { appends, fault }) in table.into_iter().enumerate() {
        let when = format!("step {n} ({appends} appends, {fault:?})");
        let size_before = assert_sound(&running.store, &key, false, &when);
        running.backend.plan.lock().unwrap().push_back(fault);
        let results = runtime.block_on(async {
            if appends == 0 {
                running.sequencer.refresh().await;
            }
            let tasks: Vec<_> = (0..appends)
                .map(|_| {
                    next_blob += 1;
                    let sequencer = running.sequencer.clone();
                    let event = transfer(next_blob);
                    tokio::spawn(async move { sequencer.append(event).await })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        });
        for appended in results.iter().flatten() {
            assert!(acked.insert(appended.leaf_index, appended.leaf_hash).is_none(), "{when}: index given twice");
            shown.insert(appended.sth.body.tree_size, appended.sth.body.sha3_root.clone());
        }
        let failed = results.iter().filter(|r| r.is_err()).count();
        if matches!(fault, None | Slow) {
            assert_eq!(failed, 0, "{when}: an append failed without a fault");
            assert!(running.fatal.lock().unwrap().is_none(), "{when}");
            if appends == 0 {
                // A refresh is not awaited: wait until its commit took the step's fault, or the
                // next step's appends could be batched with it and take it instead.
                running.backend.wait_until_taken();
                continue;
            }
            assert_eq!(assert_sound(&running.store, &key, false, &when), size_before + appends, "{when}");
            continue;
        }
        // A fault: the sequencer must stop rather than go on with a state it cannot know.
        let Running { sequencer, thread, store, backend, fatal } = running;
        if appends > 0 {
            assert!(failed > 0, "{when}: no append failed");
            assert!(results.iter().take(1).all(|r| r.is_err()), "{when}: the first append was acknowledged");
        }
        drop(sequencer);
        thread.join();
        assert!(fatal.lock().unwrap().as_deref().is_some_and(|r| r.contains("injected fault")), "{when}");
        let size_after_fault = assert_sound(&store, &key, true, &format!("{when}, before recovery"));
        match fault {
            Fail | TornLeaves | TornAllButHead => assert_eq!(size_after_fault, size_before, "{when}"),
            FailPersisted => assert!(appends == 0 || size_after_fault > size_before, "{when}"),
            None | Slow => unreachable!(),
        }
        drop((store, backend));
        // Restart from the file: recovery must leave a sound log.
        running = start(&path, &key);
        let size = assert_sound(&running.store, &key, false, &format!("{when}, after recovery"));
        assert_eq!(size, size_after_fault, "{when}: recovery changed the head");
        let snapshot = running.store.snapshot().unwrap();
        for (&index, hash) in &acked {
            let leaf =
                snapshot.leaf(index).unwrap().unwrap_or_else(|| panic!("{when}: acknowledged leaf {index} lost"));
            assert_eq!(&leaf.leaf_hash, hash, "{when}: leaf {index} changed");
        }
        for (&tree_size, root) in &shown {
            assert_eq!(&hex::encode(snapshot.root_at(tree_size).unwrap()), root, "{when}: head {tree_size} changed");
        }
    }
    // The log keeps working after all of it.
    let final_size = assert_sound(&running.store, &key, false, "end");
    assert!(final_size >= acked.len() as u64);
    assert_eq!(acked.keys().last().map(|i| i + 1), Some(final_size), "the last append was acknowledged");
}

#[test]
fn fsck_repair_removes_torn_rows_and_rebuilds_derived_data_but_refuses_broken_signed_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctlog.redb");
    let key = Arc::new(LogSigningKey::generate().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let running = start(&path, &key);
    append_transfers(&running, &runtime, 0..600);
    // A torn batch leaves rows beyond the head.
    running.backend.plan.lock().unwrap().push_back(Fault::TornAllButHead);
    let torn = runtime.block_on(running.sequencer.append(transfer(10_000)));
    assert!(torn.is_err());
    let Running { sequencer, thread, store, backend, .. } = running;
    drop(sequencer);
    thread.join();
    drop(backend);
    let report = fsck::check(&store, &key.verifying_key()).unwrap();
    assert!(!report.is_clean() && report.is_repairable(), "{report}");
    assert!(report.problems.iter().all(|p| p.kind == ProblemKind::Uncommitted), "{report}");
    let (repaired, after) = fsck::repair(&store, &key.verifying_key()).unwrap();
    assert!(matches!(repaired, fsck::Repaired::Rebuilt));
    assert!(after.is_clean(), "{after}");
    assert_eq!(after.tree_size, 600);
    // A log signed by another key is signed history this key cannot vouch for: refused.
    let stranger = LogSigningKey::generate().unwrap();
    let report = fsck::check(&store, &stranger.verifying_key()).unwrap();
    assert!(!report.is_repairable(), "{report}");
    assert!(matches!(fsck::repair(&store, &stranger.verifying_key()), Err(fsck::RepairError::NotRepairable(_))));
}

/// Removes the C2SP tree from a stopped log's file, as a store written before it existed has
/// none (or as if it were lost): derived data, which start-up and `fsck --repair` rebuild.
fn strip_c2sp(path: &Path) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    let tiles: redb::TableDefinition<(u8, u64), &[u8]> = redb::TableDefinition::new("c2sp_tiles");
    assert!(txn.delete_table(tiles).unwrap());
    let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    assert!(txn.open_table(meta).unwrap().remove("c2sp_compact_range").unwrap().is_some());
    txn.commit().unwrap();
}

fn append_transfers(running: &Running, runtime: &tokio::runtime::Runtime, blobs: std::ops::Range<u64>) {
    runtime.block_on(async {
        let tasks: Vec<_> = blobs
            .map(|n| {
                let sequencer = running.sequencer.clone();
                tokio::spawn(async move { sequencer.append(transfer(n)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    });
}

fn stop(running: Running) {
    let Running { sequencer, thread, store, backend, .. } = running;
    drop(sequencer);
    thread.join();
    drop((store, backend));
}

#[test]
fn a_log_without_the_c2sp_tree_gets_it_at_start_up_and_from_fsck_repair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctlog.redb");
    let key = Arc::new(LogSigningKey::generate().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let running = start(&path, &key);
    append_transfers(&running, &runtime, 0..600);
    let c2sp_root = running.store.snapshot().unwrap().c2sp_compact().unwrap().root();
    stop(running);

    // fsck names the missing C2SP tree as derived data (repairable).
    strip_c2sp(&path);
    let store = LogStore::open(&path).unwrap();
    let report = fsck::check(&store, &key.verifying_key()).unwrap();
    assert!(report.is_repairable(), "{report}");
    assert!(report.problems.iter().any(|p| p.kind == ProblemKind::Derived && p.detail.contains("C2SP")), "{report}");

    // Built in small transactions, each continuing from the stored partial tiles: the same tree.
    assert_eq!(store.complete_c2sp_in_chunks(97).unwrap(), 600);
    assert_eq!(store.complete_c2sp().unwrap(), 0);
    assert_eq!(store.snapshot().unwrap().c2sp_compact().unwrap().root(), c2sp_root);
    assert_sound(&store, &key, false, "after a chunked build");
    drop(store);

    // Start-up builds it, and the log goes on appending to both trees.
    strip_c2sp(&path);
    let running = start(&path, &key);
    assert_eq!(running.store.snapshot().unwrap().c2sp_compact().unwrap().root(), c2sp_root);
    append_transfers(&running, &runtime, 600..610);
    assert_eq!(assert_sound(&running.store, &key, false, "after start-up built it"), 610);
    stop(running);

    // fsck --repair rebuilds it too.
    strip_c2sp(&path);
    let store = LogStore::open(&path).unwrap();
    let (repaired, after) = fsck::repair(&store, &key.verifying_key()).unwrap();
    assert!(matches!(repaired, fsck::Repaired::Rebuilt));
    assert!(after.is_clean(), "{after}");
    assert_eq!(store.snapshot().unwrap().c2sp_compact().unwrap().size(), 610);
}
