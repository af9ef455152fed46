//! The leaf-hash index (`leaf hash -> first index of a leaf with that hash`), kept off the
//! sequencer's commit path.
//!
//! Leaf hashes are random, so every insert into a B-tree keyed by them lands on its own page:
//! inside the log's commit transaction that cost about one 4 KiB page write per append, on the
//! one thread every append waits for, and more as the tree grew. The index is a function of the
//! leaves, so it need not be written with them. It lives in its own redb file beside the log
//! (`ctlog.index.redb` next to `ctlog.redb`), written by an indexer thread in large sorted
//! batches (the pattern of tessera's antispam follower), and the leaves not indexed yet are held
//! in memory:
//!
//! - **Before** a batch's transaction commits, its leaves enter the in-memory `recent` map, so a
//!   reader whose snapshot already holds the batch finds them; a failed commit takes them out.
//! - **After** it commits, they are queued for the indexer, which inserts them into the index
//!   file in one durable transaction (with the covered size and the hash of its last leaf) and
//!   only then drops them from `recent`.
//! - A lookup checks `recent` first, then the index file, and takes the smaller index: an entry
//!   leaves `recent` only after the file holds it, so no committed leaf is ever in neither.
//!   Callers check the index against the leaf row (see [`crate::store::Snapshot::index_of`]).
//! - A crash loses at most the queue: at start-up the leaves between the file's covered size and
//!   the log's head are queued again (or indexed at once when there are many). A file that does
//!   not match the log (covers more leaves than the head, or its last leaf's hash differs: a
//!   restored backup) is rebuilt from the leaves. Deleting the file is always safe.
//! - `recent` is bounded ([`MAX_RECENT`]): when the indexer falls that far behind, commits wait
//!   for it (backpressure), so memory does not grow with the append rate.
//!
//! The indexer thread starts with the sequencer ([`LeafIndex::start`]), after the sandbox.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use tlog::Hash;

use crate::store::{LEAVES, Result, StoreError, decode_leaf};

/// `leaf_hash -> first index`.
pub(crate) const INDEX: TableDefinition<[u8; 32], u64> = TableDefinition::new("leaf_index");
/// `"covered" -> size (8 bytes BE) ‖ hash of leaf size-1 (absent for 0)`.
const INDEX_META: TableDefinition<&str, &[u8]> = TableDefinition::new("index_meta");
const COVERED_KEY: &str = "covered";

/// Most leaves held in memory while the indexer catches up (≈ 60 bytes each).
pub const MAX_RECENT: usize = 1 << 18;
/// Most leaves the indexer writes in one transaction.
const MAX_INDEX_BATCH: usize = 1 << 16;
/// Fewer queued leaves than this wait up to [`GATHER`] for more before they are written.
const MIN_INDEX_BATCH: usize = 4096;
/// How long a small batch waits to grow.
const GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// The index file and the leaves not yet in it.
pub(crate) struct LeafIndex {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    db: Database,
    tail: Mutex<Tail>,
    /// Signalled when work is queued, when `recent` shrinks, and on stop.
    changed: Condvar,
}

#[derive(Default)]
struct Tail {
    /// Leaves of the log (being) committed that the index file may not hold: hash -> first index.
    recent: HashMap<Hash, u64>,
    /// Committed leaves the indexer has not written, in index order (a contiguous range).
    pending: Vec<(Hash, u64)>,
    stop: bool,
    /// The indexer failed; commits that would wait for it fail instead.
    failed: Option<String>,
}

/// What the index file covers.
#[derive(Clone, Copy)]
struct Covered {
    size: u64,
    last: Option<Hash>,
}

impl LeafIndex {
    /// Opens (or creates) the index file at `path` for the log `log`, whose head covers `size`
    /// leaves; rebuilds it if it does not match, and queues the leaves it lacks.
    pub(crate) fn open(path: &Path, log: &Database, size: u64) -> Result<Self> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(INDEX)?;
        txn.open_table(INDEX_META)?;
        txn.commit()?;
        let shared = Arc::new(Shared { db, tail: Mutex::default(), changed: Condvar::new() });
        let covered = shared.covered()?;
        let matches = covered.size <= size && covered.last == last_hash_below(log, covered.size)?;
        let from = if matches { covered.size } else { shared.reset()? };
        if size - from > MAX_RECENT as u64 {
            shared.index_from_log(log, from, size)?;
        } else {
            let mut tail = shared.lock();
            for (hash, index) in leaf_hashes(log, from, size)? {
                tail.recent.entry(hash).or_insert(index);
                tail.pending.push((hash, index));
            }
        }
        Ok(Self { shared, thread: Mutex::new(None) })
    }

    /// Starts the indexer thread (once; later calls do nothing). Called when the sequencer
    /// starts, so the thread runs inside the service's sandbox.
    pub(crate) fn start(&self) -> Result<()> {
        let mut thread = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if thread.is_none() {
            let shared = self.shared.clone();
            let handle = std::thread::Builder::new()
                .name("leaf-index".into())
                .spawn(move || shared.run())
                .map_err(|e| StoreError::Corrupt(format!("cannot start the leaf-hash indexer: {e}")))?;
            *thread = Some(handle);
        }
        Ok(())
    }

    /// Before a batch commits: makes its leaves findable, waiting while the indexer is
    /// [`MAX_RECENT`] leaves behind.
    pub(crate) fn committing(&self, first_index: u64, leaves: &[(Hash, Vec<u8>)]) -> Result<()> {
        let mut tail = self.shared.lock();
        while tail.recent.len() >= MAX_RECENT && tail.failed.is_none() && self.running() {
            tail = self.shared.changed.wait(tail).unwrap_or_else(|p| p.into_inner());
        }
        if let Some(reason) = &tail.failed {
            return Err(StoreError::Corrupt(format!("the leaf-hash indexer stopped: {reason}")));
        }
        for ((hash, _), index) in leaves.iter().zip(first_index..) {
            tail.recent.entry(*hash).or_insert(index);
        }
        Ok(())
    }

    /// After the batch committed: queues its leaves for the index file.
    pub(crate) fn committed(&self, first_index: u64, leaves: &[(Hash, Vec<u8>)]) {
        let mut tail = self.shared.lock();
        tail.pending.extend(leaves.iter().map(|(hash, _)| *hash).zip(first_index..));
        self.shared.changed.notify_all();
    }

    /// The batch did not commit (or its outcome is unknown): its leaves are findable no more.
    pub(crate) fn not_committed(&self, first_index: u64, leaves: &[(Hash, Vec<u8>)]) {
        let mut tail = self.shared.lock();
        for ((hash, _), index) in leaves.iter().zip(first_index..) {
            if tail.recent.get(hash) == Some(&index) {
                tail.recent.remove(hash);
            }
        }
    }

    /// Forgets leaves at or beyond `size` (recovery removed them from the log).
    pub(crate) fn discard_beyond(&self, size: u64) {
        let mut tail = self.shared.lock();
        tail.recent.retain(|_, index| *index < size);
        tail.pending.retain(|(_, index)| *index < size);
    }

    /// Candidate first indexes of `hash`: from the leaves held in memory, then from the file.
    /// The smaller one that is below `size` is the first index, if the caller's leaf row agrees.
    pub(crate) fn candidates(&self, hash: &Hash) -> Result<[Option<u64>; 2]> {
        let recent = self.shared.lock().recent.get(hash).copied();
        let txn = self.shared.db.begin_read()?;
        let stored = txn.open_table(INDEX)?.get(hash)?.map(|v| v.value());
        Ok([recent, stored])
    }

    /// A read view of the index file, for `fsck`: the leaves it covers and its table.
    pub(crate) fn read_view(&self) -> Result<(u64, redb::ReadOnlyTable<[u8; 32], u64>)> {
        let txn = self.shared.db.begin_read()?;
        let size = covered_in(&txn.open_table(INDEX_META)?)?.size;
        Ok((size, txn.open_table(INDEX)?))
    }

    /// Rewrites the index file from the first `size` leaves of `log` (for `fsck --repair`).
    pub(crate) fn rebuild(&self, log: &Database, size: u64) -> Result<()> {
        let mut tail = self.shared.lock();
        tail.pending.clear();
        tail.recent.clear();
        let from = self.shared.reset()?;
        self.shared.index_from_log(log, from, size)?;
        drop(tail);
        Ok(())
    }

    fn running(&self) -> bool {
        self.thread.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for LeafIndex {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The indexer: writes queued leaves in sorted batches until stopped (with nothing queued)
    /// or failed.
    fn run(&self) {
        loop {
            let batch = {
                let mut tail = self.lock();
                while tail.pending.is_empty() && !tail.stop {
                    tail = self.changed.wait(tail).unwrap_or_else(|p| p.into_inner());
                }
                // Small batches cost a commit (two fsyncs with quick repair) for a few leaves:
                // let them gather for a moment; lookups find them in memory meanwhile.
                let gather_until = std::time::Instant::now() + GATHER;
                while tail.pending.len() < MIN_INDEX_BATCH && !tail.stop {
                    let Some(left) = gather_until.checked_duration_since(std::time::Instant::now()) else { break };
                    tail = self.changed.wait_timeout(tail, left).unwrap_or_else(|p| p.into_inner()).0;
                }
                // A stopping store still writes what is queued: a clean shutdown leaves the
                // file complete (a crash leaves the queue to the next start).
                if tail.pending.is_empty() {
                    return;
                }
                let n = tail.pending.len().min(MAX_INDEX_BATCH);
                tail.pending.drain(..n).collect::<Vec<_>>()
            };
            if let Err(e) = self.write(&batch) {
                crate::DAEMON.log(format_args!("the leaf-hash indexer stopped: {e}"));
                self.lock().failed = Some(e.to_string());
                self.changed.notify_all();
                return;
            }
            let mut tail = self.lock();
            for (hash, index) in &batch {
                if tail.recent.get(hash) == Some(index) {
                    tail.recent.remove(hash);
                }
            }
            self.changed.notify_all();
        }
    }

    /// Inserts a contiguous run of leaves (in index order) in one durable transaction, in key
    /// order so the pages a batch shares are written while hot; a hash already present keeps its
    /// (earlier) index.
    fn write(&self, batch: &[(Hash, u64)]) -> Result<()> {
        let Some(&(last_hash, last_index)) = batch.last() else {
            return Ok(());
        };
        let mut sorted: Vec<&(Hash, u64)> = batch.iter().collect();
        sorted.sort_unstable();
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        // Commits here are few and large: saving the allocator state with each makes opening
        // the file after a crash quick instead of a walk over the whole index.
        txn.set_quick_repair(true);
        {
            let mut index = txn.open_table(INDEX)?;
            for (hash, leaf_index) in sorted {
                // One lookup instead of get-then-insert; an insert that replaced an earlier index
                // puts it back (rare: equal events in the same millisecond).
                let replaced = index.insert(hash, *leaf_index)?.map(|old| old.value());
                if let Some(first) = replaced.filter(|first| first < leaf_index) {
                    index.insert(hash, first)?;
                }
            }
            let covered = Covered { size: last_index + 1, last: Some(last_hash) };
            txn.open_table(INDEX_META)?.insert(COVERED_KEY, encode_covered(covered).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Empties the file; returns the size it now covers (0).
    fn reset(&self) -> Result<u64> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.open_table(INDEX)?.retain(|_, _| false)?;
        txn.open_table(INDEX_META)?.remove(COVERED_KEY)?;
        txn.commit()?;
        Ok(0)
    }

    /// Indexes leaves `from..to` of `log` now, in batches (start-up after a long gap, repair).
    fn index_from_log(&self, log: &Database, from: u64, to: u64) -> Result<()> {
        let mut at = from;
        while at < to {
            let end = to.min(at + MAX_RECENT as u64);
            self.write(&leaf_hashes(log, at, end)?)?;
            at = end;
        }
        Ok(())
    }

    fn covered(&self) -> Result<Covered> {
        let txn = self.db.begin_read()?;
        covered_in(&txn.open_table(INDEX_META)?)
    }
}

fn covered_in(meta: &redb::ReadOnlyTable<&str, &[u8]>) -> Result<Covered> {
    let Some(raw) = meta.get(COVERED_KEY)? else {
        return Ok(Covered { size: 0, last: None });
    };
    let raw = raw.value();
    let corrupt = || StoreError::Corrupt("leaf-hash index: covered record".into());
    let (size, rest) = raw.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let last = match rest.len() {
        0 => None,
        32 => Some(rest.try_into().map_err(|_| corrupt())?),
        _ => return Err(corrupt()),
    };
    Ok(Covered { size: u64::from_be_bytes(*size), last })
}

fn encode_covered(covered: Covered) -> Vec<u8> {
    let mut out = covered.size.to_be_bytes().to_vec();
    if let Some(last) = covered.last {
        out.extend_from_slice(&last);
    }
    out
}

/// The hash of leaf `size - 1` of `log` (`None` for 0 or a missing leaf).
fn last_hash_below(log: &Database, size: u64) -> Result<Option<Hash>> {
    let Some(last) = size.checked_sub(1) else {
        return Ok(None);
    };
    let txn = log.begin_read()?;
    let leaves = txn.open_table(LEAVES)?;
    leaves.get(last)?.map(|raw| decode_leaf(last, raw.value()).map(|l| l.leaf_hash)).transpose()
}

/// `(leaf hash, index)` of leaves `from..to` of `log`.
fn leaf_hashes(log: &Database, from: u64, to: u64) -> Result<Vec<(Hash, u64)>> {
    let txn = log.begin_read()?;
    let leaves = txn.open_table(LEAVES)?;
    let mut out = Vec::with_capacity(usize::try_from(to.saturating_sub(from)).unwrap_or(0));
    for row in leaves.range(from..to)? {
        let (i, raw) = row?;
        out.push((decode_leaf(i.value(), raw.value())?.leaf_hash, i.value()));
    }
    Ok(out)
}
