//! The leaf-hash index (`leaf hash -> first index of a leaf with that hash`), kept off the
//! sequencer's commit path, in immutable sorted runs whose cost per leaf does not grow with the
//! tree.
//!
//! Leaf hashes are random, so a B-tree keyed by them writes about one page per insert once it
//! is larger than a batch: inside the log's commit transaction that was the biggest cost of an
//! append, and in a file of its own (redb, written after each commit) it still grew from 3 µs
//! to 12 µs per leaf between 0.25M and 8M leaves. The index is a function of the leaves, so it
//! is kept as a log-structured set of **runs** in the directory `ctlog.index/` beside
//! `ctlog.redb` ([`crate::store::index_path`]):
//!
//! - A run covers a contiguous, aligned range of leaf indexes `[start, end)` and holds one entry
//!   per leaf, sorted by `(first 8 bytes of the leaf hash, index)`. It is written once (to a
//!   temporary name, fsynced, renamed, directory fsynced) and never changed. Its file name is
//!   its range. A small in-memory fence index (the first key of every block of
//!   [`BLOCK_ENTRIES`] entries) finds the one block a lookup reads.
//! - The `leaf-index` thread writes a level-0 run each time [`IndexTuning::run_leaves`]
//!   committed leaves have accumulated; the `leaf-index-mrg` thread merges
//!   [`IndexTuning::fan_in`] adjacent runs of one level into one of the next (tiered, like a
//!   counter in base `fan_in`), so a tree of n leaves has at most `(fan_in - 1)` runs per level
//!   and `log_fan_in(n / run_leaves)` levels; each leaf is written once per level, sequentially.
//! - Leaves not in a run yet are held in memory (`recent`), entered **before** their batch's
//!   transaction commits, so an acknowledged leaf is always found by hash at once; a failed
//!   commit takes them out. An entry leaves `recent` only after a run that holds it is in the
//!   list of runs, and a lookup reads `recent` before the list, so no committed leaf is ever in
//!   neither.
//! - A lookup checks each run from the oldest (candidates of equal prefix in index order), then
//!   `recent`; every candidate is checked against the leaf row by the caller (see
//!   [`crate::store::Snapshot::index_of`]), so the first one that checks out is the first index
//!   of that hash, and a prefix collision or a damaged run is never an answer.
//! - Recovery is simple because the index is derived data: at start-up the runs that are
//!   complete, well-formed, tile `[0, covered)` from leaf 0, lie within the log's head and whose
//!   last leaf's hash matches the log are kept (the largest where a merge and its inputs both
//!   survived a crash); every other file is deleted, and the leaves from `covered` to the head
//!   are indexed again from the log (full runs written at once, the rest queued in memory).
//!   A foreign or restored-from-backup index therefore never is believed, and deleting the
//!   directory is always safe.
//! - `recent` is bounded (four runs' worth): when the indexer falls that far behind, commits
//!   wait for it (backpressure), so memory does not grow with the append rate.
//!
//! The threads start with the sequencer ([`LeafIndex::start`]), after the sandbox.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use redb::{Database, ReadTransaction, ReadableDatabase};
use tlog::Hash;

use crate::store::{LEAVES, Result, StoreError, decode_leaf};

/// Entries per block: a lookup reads one block (3 KiB) per run.
pub const BLOCK_ENTRIES: usize = 256;
/// Bytes of one entry: hash prefix (u64 BE) and offset in the run (u32 BE).
const ENTRY: usize = 12;
/// Bytes of a run's header: magic, start, end, hash of leaf `end - 1`, reserved.
const HEADER: usize = 64;
const MAGIC: &[u8; 8] = b"PMLHIDX1";
/// Runs never cover more leaves than an entry's u32 offset can address.
const MAX_RUN_LEAVES: u64 = 1 << 32;
/// Entries merged between two checks of the stop flag.
const MERGE_STOP_CHECK: u64 = 1 << 20;

/// Sizes of the runs (tests use small ones to exercise runs and merges with few leaves).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct IndexTuning {
    /// Leaves per level-0 run (the indexer's write unit).
    pub run_leaves: u64,
    /// Runs of one level merged into one of the next.
    pub fan_in: usize,
}

impl Default for IndexTuning {
    fn default() -> Self {
        Self { run_leaves: 1 << 16, fan_in: 8 }
    }
}

impl IndexTuning {
    /// Most leaves held in memory (≈ 100 bytes each with the queue) before commits wait.
    fn max_recent(self) -> usize {
        usize::try_from(self.run_leaves.saturating_mul(4)).unwrap_or(usize::MAX)
    }

    /// Whether `[start, end)` is a range a run of some level covers.
    fn is_run_range(self, start: u64, end: u64) -> bool {
        let Some(len) = end.checked_sub(start) else { return false };
        let mut level_len = self.run_leaves;
        while level_len < len {
            level_len = level_len.saturating_mul(self.fan_in as u64);
        }
        len == level_len && len <= MAX_RUN_LEAVES && start.is_multiple_of(len)
    }
}

/// The runs and the leaves not yet in one.
pub(crate) struct LeafIndex {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    tuning: IndexTuning,
    /// Runs tiling `[0, covered)` from leaf 0, oldest first. Replaced whole (readers clone
    /// the `Arc`), so a lookup never sees half a merge.
    runs: Mutex<Arc<Vec<Arc<Run>>>>,
    tail: Mutex<Tail>,
    /// Signalled when work is queued, when `recent` shrinks, when a run is written, and on stop.
    changed: Condvar,
}

#[derive(Default)]
struct Tail {
    /// Leaves of the log (being) committed that no run holds yet: hash -> first index.
    recent: HashMap<Hash, u64>,
    /// Committed leaves no run holds, in index order (a contiguous range from `covered`).
    pending: Vec<(Hash, u64)>,
    stop: bool,
    /// A run was written since the merger last looked.
    merge_due: bool,
    /// The indexer failed; commits that would wait for it fail instead.
    failed: Option<String>,
}

/// One immutable run file.
struct Run {
    start: u64,
    end: u64,
    /// The hash of leaf `end - 1` (so a run of another log is never believed).
    last: Hash,
    path: PathBuf,
    file: File,
    /// The prefix of the first entry of each block.
    fences: Vec<u64>,
}

impl LeafIndex {
    /// Opens (or creates) the index directory `dir` for the log `log`, whose head covers
    /// `size` leaves: keeps the runs that match the log, deletes the rest, and indexes the
    /// leaves they lack.
    pub(crate) fn open(dir: &Path, log: &Database, size: u64, tuning: IndexTuning) -> Result<Self> {
        let tuning = IndexTuning { run_leaves: tuning.run_leaves.max(1), fan_in: tuning.fan_in.max(2) };
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
        let runs = recover_runs(dir, log, size, tuning)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            tuning,
            runs: Mutex::new(Arc::new(runs)),
            tail: Mutex::default(),
            changed: Condvar::new(),
        });
        shared.index_from_log(log, size)?;
        // Merges a stop or a crash left due.
        shared.merge_all_due()?;
        Ok(Self { shared, threads: Mutex::new(Vec::new()) })
    }

    /// Starts the indexer and merger threads (once; later calls do nothing). Called when the
    /// sequencer starts, so the threads run inside the service's sandbox.
    pub(crate) fn start(&self) -> Result<()> {
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        if threads.is_empty() {
            let spawn = |name: &str, body: fn(&Shared)| {
                let shared = self.shared.clone();
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || body(&shared))
                    .map_err(|e| StoreError::Corrupt(format!("cannot start the leaf-hash {name} thread: {e}")))
            };
            threads.push(spawn("leaf-index", Shared::run_indexer)?);
            // Linux keeps 15 bytes of a thread's name: the benchmark finds it by this one.
            threads.push(spawn("leaf-index-mrg", Shared::run_merger)?);
        }
        Ok(())
    }

    /// Before a batch commits: makes its leaves findable, waiting while the indexer is
    /// four runs behind.
    pub(crate) fn committing(&self, first_index: u64, leaves: &[(Hash, Vec<u8>)]) -> Result<()> {
        let mut tail = self.shared.lock();
        while tail.recent.len() >= self.shared.tuning.max_recent() && tail.failed.is_none() && self.running() {
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

    /// After the batch committed: queues its leaves for the next run.
    pub(crate) fn committed(&self, first_index: u64, leaves: &[(Hash, Vec<u8>)]) {
        let mut tail = self.shared.lock();
        tail.pending.extend(leaves.iter().map(|(hash, _)| *hash).zip(first_index..));
        if tail.pending.len() as u64 >= self.shared.tuning.run_leaves {
            self.shared.changed.notify_all();
        }
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

    /// The first index of `hash` that `holds` confirms (the caller checks the leaf row):
    /// candidates from the runs, oldest first, then from the leaves held in memory.
    pub(crate) fn first_confirmed(
        &self,
        hash: &Hash,
        mut holds: impl FnMut(u64) -> Result<bool>,
    ) -> Result<Option<u64>> {
        // `recent` before the runs: an entry leaves `recent` only after its run is listed.
        let recent = self.shared.lock().recent.get(hash).copied();
        let runs = self.shared.runs();
        let prefix = prefix_of(hash);
        for run in runs.iter() {
            for index in run.find(prefix)? {
                if holds(index)? {
                    return Ok(Some(index));
                }
            }
        }
        match recent {
            Some(index) if holds(index)? => Ok(Some(index)),
            _ => Ok(None),
        }
    }

    /// Checks every run against the leaves of `txn` (for `fsck`): returns the leaves the runs
    /// cover and what is wrong. Reads every entry once and each leaf row once.
    pub(crate) fn check(&self, txn: &ReadTransaction, head: u64) -> Result<(u64, Vec<String>)> {
        let runs = self.shared.runs();
        let leaves = txn.open_table(LEAVES)?;
        let mut problems = Vec::new();
        let mut covered = 0;
        for run in runs.iter() {
            let name = run.name();
            if run.start != covered {
                problems.push(format!("index run {name} does not follow the run before it"));
            }
            covered = run.end;
            if run.end > head {
                problems.push(format!("index run {name} covers leaves beyond the head ({head})"));
                continue;
            }
            let mut seen = vec![false; usize::try_from(run.end - run.start).unwrap_or(0)];
            let mut previous: Option<(u64, u32)> = None;
            let mut reader = run.entries()?;
            for position in 0..run.end - run.start {
                let (prefix, offset) = reader.next_entry()?;
                if position % BLOCK_ENTRIES as u64 == 0
                    && run.fences.get(usize::try_from(position).unwrap_or(usize::MAX) / BLOCK_ENTRIES) != Some(&prefix)
                {
                    problems.push(format!("index run {name}: the fence of entry {position} differs"));
                }
                if previous.is_some_and(|p| p >= (prefix, offset)) {
                    problems.push(format!("index run {name}: entry {position} is out of order"));
                }
                previous = Some((prefix, offset));
                let index = run.start + u64::from(offset);
                let slot = seen.get_mut(offset as usize).filter(|s| !**s);
                let Some(slot) = slot else {
                    problems.push(format!("index run {name}: entry {position} names leaf {index} again or beyond"));
                    continue;
                };
                *slot = true;
                match leaves.get(index)? {
                    Some(raw) if prefix_of(&decode_leaf(index, raw.value())?.leaf_hash) == prefix => {}
                    Some(_) => problems.push(format!("index entry of leaf {index} has another leaf's hash")),
                    None => problems.push(format!("index entry of leaf {index}: no such leaf")),
                }
                if problems.len() > 100 {
                    return Ok((covered, problems));
                }
            }
            if let Some(missing) = seen.iter().position(|s| !s) {
                problems.push(format!("leaf {} is missing from the hash index", run.start + missing as u64));
            }
            if leaf_hash(&leaves, run.end - 1)? != Some(run.last) {
                problems.push(format!("index run {name}: its last leaf's hash is not the log's"));
            }
        }
        Ok((covered, problems))
    }

    /// Rewrites the index from the first `size` leaves of `log` (for `fsck --repair`, with the
    /// threads not started).
    pub(crate) fn rebuild(&self, log: &Database, size: u64) -> Result<()> {
        {
            let mut tail = self.shared.lock();
            tail.pending.clear();
            tail.recent.clear();
        }
        let old = std::mem::take(&mut *self.shared.runs.lock().unwrap_or_else(|p| p.into_inner()));
        for run in old.iter() {
            remove_file(&run.path)?;
        }
        self.shared.index_from_log(log, size)
    }

    fn running(&self) -> bool {
        let threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        !threads.is_empty() && threads.iter().all(|t| !t.is_finished())
    }
}

impl Drop for LeafIndex {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        for thread in self.threads.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn runs(&self) -> Arc<Vec<Arc<Run>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn covered(&self) -> u64 {
        self.runs().last().map_or(0, |run| run.end)
    }

    fn fail(&self, what: &str, e: &StoreError) {
        crate::DAEMON.log(format_args!("the leaf-hash {what} stopped: {e}"));
        self.lock().failed = Some(e.to_string());
        self.changed.notify_all();
    }

    /// The indexer: writes a level-0 run whenever a run's worth of committed leaves is queued,
    /// until stopped (the queue is indexed again from the log at the next start) or failed.
    fn run_indexer(&self) {
        let run_leaves = usize::try_from(self.tuning.run_leaves).unwrap_or(usize::MAX);
        loop {
            let batch = {
                let mut tail = self.lock();
                while tail.pending.len() < run_leaves && !tail.stop {
                    tail = self.changed.wait(tail).unwrap_or_else(|p| p.into_inner());
                }
                if tail.stop {
                    return;
                }
                tail.pending.drain(..run_leaves).collect::<Vec<_>>()
            };
            if let Err(e) = self.write_level0(&batch) {
                self.fail("indexer", &e);
                return;
            }
            let mut tail = self.lock();
            for (hash, index) in &batch {
                if tail.recent.get(hash) == Some(index) {
                    tail.recent.remove(hash);
                }
            }
            tail.merge_due = true;
            self.changed.notify_all();
        }
    }

    /// The merger: merges runs whenever [`IndexTuning::fan_in`] of one level are complete.
    fn run_merger(&self) {
        loop {
            {
                let mut tail = self.lock();
                while !tail.merge_due && !tail.stop {
                    tail = self.changed.wait(tail).unwrap_or_else(|p| p.into_inner());
                }
                if tail.stop {
                    return;
                }
                tail.merge_due = false;
            }
            if let Err(e) = self.merge_all_due() {
                self.fail("merger", &e);
                return;
            }
        }
    }

    fn stopping(&self) -> bool {
        self.lock().stop
    }

    /// Writes the run of a contiguous range of leaves (in index order, starting where the runs
    /// end) and lists it.
    fn write_level0(&self, batch: &[(Hash, u64)]) -> Result<()> {
        let (Some(&(_, start)), Some(&(last, last_index))) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let covered = self.covered();
        if start != covered || last_index + 1 - start != batch.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "leaf-hash index: queued leaves {start}..={last_index} do not continue the runs (which end at {covered})"
            )));
        }
        let mut entries: Vec<(u64, u32)> = batch
            .iter()
            .map(|(hash, index)| (prefix_of(hash), u32::try_from(index - start).unwrap_or(u32::MAX)))
            .collect();
        entries.sort_unstable();
        let run = write_run(&self.dir, start, last_index + 1, last, entries.into_iter().map(Ok), || false)?
            .ok_or_else(|| StoreError::Corrupt("leaf-hash index: a run write was abandoned".into()))?;
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let mut list = Vec::clone(&runs);
        list.push(Arc::new(run));
        *runs = Arc::new(list);
        Ok(())
    }

    /// Merges every complete set of `fan_in` equal runs, smallest level first (a merge can
    /// complete a set of the next level).
    fn merge_all_due(&self) -> Result<()> {
        while let Some(inputs) = self.due_merge() {
            let Some(merged) = merge_runs(&self.dir, &inputs, || self.stopping())? else {
                return Ok(());
            };
            {
                let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
                let at = runs
                    .iter()
                    .position(|r| Arc::ptr_eq(r, &inputs[0]))
                    .ok_or_else(|| StoreError::Corrupt("leaf-hash index: merged runs left the list".into()))?;
                let mut list = Vec::clone(&runs);
                list.splice(at..at + inputs.len(), [Arc::new(merged)]);
                *runs = Arc::new(list);
            }
            // Lookups that still hold the old list keep reading the open files.
            for run in &inputs {
                remove_file(&run.path)?;
            }
        }
        Ok(())
    }

    /// The first `fan_in` adjacent runs of one size that form an aligned run of the next level.
    fn due_merge(&self) -> Option<Vec<Arc<Run>>> {
        let runs = self.runs();
        let fan_in = self.tuning.fan_in;
        runs.windows(fan_in)
            .find(|set| {
                let len = set[0].end - set[0].start;
                set.iter().all(|r| r.end - r.start == len)
                    && self.tuning.is_run_range(set[0].start, set[fan_in - 1].end)
            })
            .map(<[Arc<Run>]>::to_vec)
    }

    /// Indexes the leaves from the end of the runs to `size`: full runs are written (and merged)
    /// now, the rest is queued in memory. At open and after a rebuild, with no thread running.
    fn index_from_log(&self, log: &Database, size: u64) -> Result<()> {
        let mut at = self.covered();
        while size - at >= self.tuning.run_leaves {
            let end = at + self.tuning.run_leaves;
            self.write_level0(&leaf_hashes(log, at, end)?)?;
            self.merge_all_due()?;
            at = end;
        }
        let mut tail = self.lock();
        tail.pending.clear();
        for (hash, index) in leaf_hashes(log, at, size)? {
            tail.recent.entry(hash).or_insert(index);
            tail.pending.push((hash, index));
        }
        Ok(())
    }
}

impl Run {
    fn name(&self) -> String {
        run_file_name(self.start, self.end)
    }

    fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Opens the run file `path`, which its name says covers `[start, end)`; `None` if it is
    /// not a complete run of that range.
    fn open(path: &Path, start: u64, end: u64) -> Result<Option<Self>> {
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        let n = end - start;
        let blocks = n.div_ceil(BLOCK_ENTRIES as u64);
        let expected = HEADER as u64 + n * ENTRY as u64 + blocks * 8;
        if file.metadata().map_err(|e| io_error(path, &e))?.len() != expected {
            return Ok(None);
        }
        let mut header = [0u8; HEADER];
        file.read_exact_at(&mut header, 0).map_err(|e| io_error(path, &e))?;
        let (magic, rest) = header.split_at(8);
        let field = |i: usize| u64::from_be_bytes(rest[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        if magic != MAGIC || field(0) != start || field(1) != end {
            return Ok(None);
        }
        let last: Hash = rest[16..48].try_into().unwrap_or_default();
        let mut raw = vec![0u8; usize::try_from(blocks * 8).unwrap_or(0)];
        file.read_exact_at(&mut raw, HEADER as u64 + n * ENTRY as u64).map_err(|e| io_error(path, &e))?;
        let fences = raw.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default())).collect();
        Ok(Some(Run { start, end, last, path: path.to_owned(), file, fences }))
    }

    /// Leaf indexes of the entries with this prefix, in index order (usually none or one).
    fn find(&self, prefix: u64) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        // The first block whose first key is ≥ prefix; equal keys may end the block before it.
        let mut block = self.fences.partition_point(|&f| f < prefix).saturating_sub(1);
        let mut buf = [0u8; BLOCK_ENTRIES * ENTRY];
        while block < self.fences.len() && self.fences[block] <= prefix {
            let first = (block * BLOCK_ENTRIES) as u64;
            let count = (self.len() - first).min(BLOCK_ENTRIES as u64) as usize;
            let bytes = &mut buf[..count * ENTRY];
            self.file
                .read_exact_at(bytes, HEADER as u64 + first * ENTRY as u64)
                .map_err(|e| io_error(&self.path, &e))?;
            for entry in bytes.chunks_exact(ENTRY) {
                let (key, offset) = decode_entry(entry);
                if key == prefix {
                    out.push(self.start + u64::from(offset));
                }
            }
            block += 1;
        }
        Ok(out)
    }

    /// A sequential reader of the entries.
    fn entries(&self) -> Result<EntryReader> {
        let mut file = self.file.try_clone().map_err(|e| io_error(&self.path, &e))?;
        file.seek(SeekFrom::Start(HEADER as u64)).map_err(|e| io_error(&self.path, &e))?;
        Ok(EntryReader { reader: BufReader::with_capacity(1 << 20, file), path: self.path.clone() })
    }
}

struct EntryReader {
    reader: BufReader<File>,
    path: PathBuf,
}

impl EntryReader {
    fn next_entry(&mut self) -> Result<(u64, u32)> {
        let mut raw = [0u8; ENTRY];
        self.reader.read_exact(&mut raw).map_err(|e| io_error(&self.path, &e))?;
        Ok(decode_entry(&raw))
    }
}

fn decode_entry(raw: &[u8]) -> (u64, u32) {
    let (key, offset) = raw.split_at(8);
    (u64::from_be_bytes(key.try_into().unwrap_or_default()), u32::from_be_bytes(offset.try_into().unwrap_or_default()))
}

fn prefix_of(hash: &Hash) -> u64 {
    let (prefix, _) = hash.split_first_chunk::<8>().map_or(([0; 8], &[][..]), |(p, r)| (*p, r));
    u64::from_be_bytes(prefix)
}

fn run_file_name(start: u64, end: u64) -> String {
    format!("{start:016x}-{end:016x}.run")
}

fn parse_run_file_name(name: &str) -> Option<(u64, u64)> {
    let (start, end) = name.strip_suffix(".run")?.split_once('-')?;
    if start.len() != 16 || end.len() != 16 {
        return None;
    }
    Some((u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?))
}

/// Writes the run `[start, end)` from `entries` (sorted), durably, under its final name.
/// `None` if `stop` said so before it was complete (nothing is left behind then).
fn write_run(
    dir: &Path,
    start: u64,
    end: u64,
    last: Hash,
    entries: impl Iterator<Item = Result<(u64, u32)>>,
    stop: impl Fn() -> bool,
) -> Result<Option<Run>> {
    let name = run_file_name(start, end);
    let path = dir.join(&name);
    let temporary = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let file = File::create(&temporary).map_err(|e| io_error(&temporary, &e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&start.to_be_bytes());
        header[16..24].copy_from_slice(&end.to_be_bytes());
        header[24..56].copy_from_slice(&last);
        out.write_all(&header).map_err(|e| io_error(&temporary, &e))?;
        let mut fences = Vec::with_capacity(usize::try_from((end - start).div_ceil(BLOCK_ENTRIES as u64)).unwrap_or(0));
        let mut count = 0u64;
        for entry in entries {
            let (prefix, offset) = entry?;
            if count.is_multiple_of(BLOCK_ENTRIES as u64) {
                fences.push(prefix);
                if count.is_multiple_of(MERGE_STOP_CHECK) && stop() {
                    return Ok(false);
                }
            }
            let mut raw = [0u8; ENTRY];
            raw[..8].copy_from_slice(&prefix.to_be_bytes());
            raw[8..].copy_from_slice(&offset.to_be_bytes());
            out.write_all(&raw).map_err(|e| io_error(&temporary, &e))?;
            count += 1;
        }
        if count != end - start {
            return Err(StoreError::Corrupt(format!("leaf-hash index run {name}: {count} entries")));
        }
        for fence in &fences {
            out.write_all(&fence.to_be_bytes()).map_err(|e| io_error(&temporary, &e))?;
        }
        let file = out.into_inner().map_err(|e| io_error(&temporary, e.error()))?;
        file.sync_all().map_err(|e| io_error(&temporary, &e))?;
        Ok(true)
    })();
    match written {
        Ok(true) => {}
        Ok(false) => {
            remove_file(&temporary)?;
            return Ok(None);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
    }
    std::fs::rename(&temporary, &path).map_err(|e| io_error(&path, &e))?;
    sync_dir(dir)?;
    Run::open(&path, start, end)?
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt(format!("leaf-hash index run {name} does not read back")))
}

/// Merges adjacent runs (oldest first) into one; `None` if stopped first.
fn merge_runs(dir: &Path, inputs: &[Arc<Run>], stop: impl Fn() -> bool) -> Result<Option<Run>> {
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Ok(None);
    };
    let (start, end) = (first.start, last.end);
    let mut readers = Vec::with_capacity(inputs.len());
    for run in inputs {
        readers.push((run.entries()?, run.len(), run.start));
    }
    // The head of each input, as (prefix, leaf index); inputs are few, so a linear minimum.
    let mut heads: Vec<Option<(u64, u64)>> = Vec::with_capacity(readers.len());
    let mut left: Vec<u64> = readers.iter().map(|(_, len, _)| *len).collect();
    for (i, (reader, _, run_start)) in readers.iter_mut().enumerate() {
        heads.push(take(reader, &mut left[i], *run_start)?);
    }
    let mut entries = std::iter::from_fn(|| {
        let (i, (prefix, index)) =
            heads.iter().enumerate().filter_map(|(i, h)| h.map(|h| (i, h))).min_by_key(|(_, h)| *h)?;
        let (reader, _, run_start) = &mut readers[i];
        Some(take(reader, &mut left[i], *run_start).map(|next| {
            heads[i] = next;
            (prefix, u32::try_from(index - start).unwrap_or(u32::MAX))
        }))
    });
    write_run(dir, start, end, last.last, &mut entries, stop)
}

fn take(reader: &mut EntryReader, left: &mut u64, run_start: u64) -> Result<Option<(u64, u64)>> {
    if *left == 0 {
        return Ok(None);
    }
    *left -= 1;
    let (prefix, offset) = reader.next_entry()?;
    Ok(Some((prefix, run_start + u64::from(offset))))
}

/// The runs in `dir` that tile `[0, covered)` and match the first `size` leaves of `log`;
/// deletes every other file there (temporary files, runs of another log, runs beyond the
/// head, the inputs of a merge that completed).
fn recover_runs(dir: &Path, log: &Database, size: u64, tuning: IndexTuning) -> Result<Vec<Arc<Run>>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, &e))? {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_run_file_name) {
            Some((start, end)) => found.push((start, end, entry.path())),
            None => remove_file(&entry.path())?,
        }
    }
    // At each start the largest run first: a merge that completed beats its inputs.
    found.sort_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
    let txn = log.begin_read()?;
    let leaves = txn.open_table(LEAVES)?;
    let mut runs = Vec::new();
    let mut covered = 0;
    for (start, end, path) in found {
        let usable = start == covered && end <= size && tuning.is_run_range(start, end);
        let run = if usable { Run::open(&path, start, end)? } else { None };
        match run {
            Some(run) if leaf_hash(&leaves, end - 1)? == Some(run.last) => {
                covered = end;
                runs.push(Arc::new(run));
            }
            _ => remove_file(&path)?,
        }
    }
    sync_dir(dir)?;
    Ok(runs)
}

fn leaf_hash(leaves: &redb::ReadOnlyTable<u64, &[u8]>, index: u64) -> Result<Option<Hash>> {
    leaves.get(index)?.map(|raw| decode_leaf(index, raw.value()).map(|l| l.leaf_hash)).transpose()
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
    if out.len() as u64 != to - from {
        return Err(StoreError::Corrupt(format!("leaves {from}..{to} are not all stored")));
    }
    Ok(out)
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path, &e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, &e))
}

fn io_error(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Corrupt(format!("leaf-hash index {}: {e}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn run_ranges_are_aligned_powers_of_the_fan_in() {
        let tuning = IndexTuning { run_leaves: 4, fan_in: 3 };
        assert!(tuning.is_run_range(0, 4));
        assert!(tuning.is_run_range(8, 12));
        assert!(tuning.is_run_range(0, 12));
        assert!(tuning.is_run_range(12, 24));
        assert!(tuning.is_run_range(36, 72));
        assert!(!tuning.is_run_range(4, 16), "unaligned");
        assert!(!tuning.is_run_range(0, 8), "not a level's size");
        assert!(!tuning.is_run_range(4, 4));
        assert_eq!(parse_run_file_name(&run_file_name(12, 24)), Some((12, 24)));
        assert_eq!(parse_run_file_name("000-001.run"), None);
    }

    #[test]
    fn a_run_finds_every_entry_across_blocks_including_equal_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 * BLOCK_ENTRIES as u64 + 17;
        // Prefixes with many repeats, so equal keys straddle block boundaries.
        let mut entries: Vec<(u64, u32)> = (0..n).map(|i| ((i * 7919) % 97, i as u32)).collect();
        entries.sort_unstable();
        let run =
            write_run(dir.path(), 1000, 1000 + n, [9; 32], entries.iter().copied().map(Ok), || false).unwrap().unwrap();
        for prefix in 0..100u64 {
            let expected: Vec<u64> =
                entries.iter().filter(|(p, _)| *p == prefix).map(|(_, o)| 1000 + u64::from(*o)).collect();
            assert_eq!(run.find(prefix).unwrap(), expected, "prefix {prefix}");
        }
        assert_eq!(run.find(u64::MAX).unwrap(), Vec::<u64>::new());
        let reopened = Run::open(&run.path, 1000, 1000 + n).unwrap().unwrap();
        assert_eq!(reopened.fences, run.fences);
        assert_eq!(reopened.last, [9; 32]);
        assert!(Run::open(&run.path, 1000, 1001 + n).unwrap().is_none(), "a run of another range");
    }
}
