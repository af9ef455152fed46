//! The sequencer: the only writer of the log. Group commit — every append waiting when a batch
//! starts goes into one redb transaction under one signed STH.
//!
//! Runs on its own OS thread (signing and fsync are blocking work). A caller's append resolves
//! only after its batch is durable and signed. Any storage error has an unknown outcome (see
//! [`crate::backend`]): every caller of the batch gets an error, the thread stops, and the
//! [`Fatal`] handler runs — in the service it exits the process non-zero so that systemd
//! restarts it and start-up recovery ([`crate::backend::Backend::discard_uncommitted`]) brings
//! the store back to its last head. The sequencer never keeps running on a state it cannot know.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crypto::LogSigningKey;
use tlog::tile::{Tile, TileId, locate};
use tlog::{CompactRange, Hash, NodeId, Sha3_256, Sha256, TreeHasher};
use tokio::sync::{mpsc, oneshot};
use wire::{LogEvent, SignedSth, SthBody};

use crate::backend::{Backend, Batch};
use crate::store::StoreError;

/// Most appends committed under one STH; bounds batch latency and transaction size.
const MAX_BATCH: usize = 1024;
/// The largest entry: tlog-tiles entry bundles prefix each entry with a big-endian u16 length.
pub const MAX_ENTRY_BYTES: usize = u16::MAX as usize;
/// Appends that may wait for the sequencer before callers feel backpressure.
const QUEUE_DEPTH: usize = 8192;

/// What an acknowledged append gets back.
#[derive(Clone, Debug)]
pub struct Appended {
    /// Index of the new leaf.
    pub leaf_index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The STH of the batch the leaf was committed in (its tree includes the leaf).
    pub sth: SignedSth,
}

/// A submitted append ([`Sequencer::submit`]); [`Submitted::wait`] resolves once it is
/// durable under a signed STH (or refused).
pub struct Submitted(oneshot::Receiver<Result<Acked, AppendError>>);

impl Submitted {
    /// The new leaf's index and hash, and the STH of its batch (shared with the batch).
    pub async fn wait(self) -> Result<(u64, Hash, Arc<SignedSth>), AppendError> {
        let acked = self.0.await.map_err(|_| AppendError::Stopped)??;
        Ok((acked.leaf_index, acked.leaf_hash, acked.sth))
    }
}

/// Why an append was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The event was refused (the caller's fault).
    #[error("the event is not valid: {0}")]
    Invalid(String),
    /// Storage failed.
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
    /// The sequencer is not running (stopped after a storage fault, or shut down).
    #[error("the sequencer has stopped")]
    Stopped,
}

/// What the sequencer thread sends back: the STH is shared, and each caller copies it on its
/// own task, so a batch of 1024 does not make 1024 copies of a 4.4 KB signature on the one
/// thread every append waits for.
struct Acked {
    leaf_index: u64,
    leaf_hash: Hash,
    sth: Arc<SignedSth>,
}

type Reply = oneshot::Sender<Result<Acked, AppendError>>;

enum Request {
    Append {
        event: LogEvent,
        reply: Reply,
    },
    /// Sign a fresh STH if the newest is older than the refresh interval.
    Refresh,
}

/// Handle to the sequencer thread; cloning is cheap.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<Request>,
}

/// What the sequencer does when storage fails with an outcome it cannot know: given the
/// reason, it must not let the sequencer continue. The service's handler logs and exits the
/// process ([`exit_on_storage_fault`]); tests record the reason and let the thread end.
pub type Fatal = Arc<dyn Fn(&str) + Send + Sync>;

/// The exit status of a log stopped by a storage fault (`EX_IOERR` of sysexits.h).
pub const STORAGE_FAULT_EXIT: i32 = 74;

/// The service's [`Fatal`] handler: logs the reason and exits with [`STORAGE_FAULT_EXIT`];
/// the unit's `Restart=` starts it again and start-up recovers to the last durable head.
#[must_use]
pub fn exit_on_storage_fault() -> Fatal {
    Arc::new(|reason: &str| {
        crate::DAEMON.log(format_args!("storage fault, stopping so that start-up recovery runs: {reason}"));
        std::process::exit(STORAGE_FAULT_EXIT);
    })
}

/// The sequencer thread, for callers that wait for it to end (tests of faults and shutdown).
pub struct SequencerThread(std::thread::JoinHandle<()>);

impl SequencerThread {
    /// Waits until the thread has ended: after a fatal fault, or once every [`Sequencer`]
    /// handle is dropped. Its storage handle is released by then.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

/// Settings of the sequencer.
pub struct SequencerConfig {
    /// The log's relay id, signed into every STH.
    pub relay_id: String,
    /// A new STH is signed when the newest is older than this, even without appends, so
    /// gossip peers (±5 min window) always see a fresh head.
    pub refresh_interval: Duration,
}

impl Sequencer {
    /// Checks the stored log against the key, signs the first STH of a new log, and starts
    /// the sequencer thread.
    ///
    /// Start-up first removes whatever lies beyond the last durable head (rows of a batch
    /// whose commit did not finish), so the log continues from a consistent state.
    pub fn start(
        store: Arc<dyn Backend>,
        key: Arc<LogSigningKey>,
        config: SequencerConfig,
        fatal: Fatal,
    ) -> Result<(Self, SignedSth, SequencerThread), StartError> {
        let core = Core::open(store, key, config)?;
        let latest = SignedSth::clone(&core.latest);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("sequencer".into())
            .spawn(move || {
                if let Err(reason) = core.run(rx) {
                    fatal(&reason);
                }
            })
            .map_err(|e| StartError::Thread(e.to_string()))?;
        Ok((Self { tx }, latest, SequencerThread(thread)))
    }

    /// Appends one event; resolves once it is durable under a signed STH. The event's
    /// timestamp is set by the sequencer (the batch time) whatever the caller put there.
    pub async fn append(&self, event: LogEvent) -> Result<Appended, AppendError> {
        let (leaf_index, leaf_hash, sth) = self.submit(event).await?.wait().await?;
        Ok(Appended { leaf_index, leaf_hash, sth: SignedSth::clone(&sth) })
    }

    /// Queues one event for the next batch without waiting for it: events submitted one
    /// after another are sequenced in that order, and a caller with many events (the internal
    /// append-batch) submits them all before it waits, so they share a commit. The STH in the
    /// answer is shared, not copied per event.
    pub async fn submit(&self, event: LogEvent) -> Result<Submitted, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Request::Append { event, reply }).await.map_err(|_| AppendError::Stopped)?;
        Ok(Submitted(rx))
    }

    /// Asks for a fresh STH if the newest is stale (called from a timer).
    pub async fn refresh(&self) {
        // A full queue means appends are flowing, and they sign STHs anyway.
        let _ = self.tx.try_send(Request::Refresh);
    }
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Storage failed while opening or recovering.
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error(
        "the newest stored STH does not verify with this signing key: the key file was replaced \
         or the database belongs to another log ({0})"
    )]
    /// The newest STH is not signed by this key.
    KeyMismatch(String),
    #[error("the newest STH (size {sth_size}) disagrees with the stored tree (size {tree_size})")]
    /// The newest STH is not for the stored tree.
    TreeMismatch {
        /// The STH's size.
        sth_size: u64,
        /// The stored tree's size.
        tree_size: u64,
    },
    #[error("the C2SP tree (size {c2sp_size}) does not cover the stored tree (size {tree_size})")]
    /// The C2SP (SHA-256) tree was not brought up to the head's size.
    C2spMismatch {
        /// The C2SP tree's size.
        c2sp_size: u64,
        /// The stored tree's size.
        tree_size: u64,
    },
    /// The thread could not be started.
    #[error("cannot start the sequencer thread: {0}")]
    Thread(String),
}

struct Core {
    store: Arc<dyn Backend>,
    key: Arc<LogSigningKey>,
    config: SequencerConfig,
    compact: CompactRange<Sha3_256>,
    /// Tiles on the right edge of each tile level, kept so a batch never re-reads them.
    edge: BTreeMap<TileId, Tile>,
    /// The C2SP view: the RFC 6962 SHA-256 tree over the same entries, and its edge tiles.
    c2sp: CompactRange<Sha256>,
    c2sp_edge: BTreeMap<TileId, Tile>,
    latest: Arc<SignedSth>,
}

impl Core {
    fn open(store: Arc<dyn Backend>, key: Arc<LogSigningKey>, config: SequencerConfig) -> Result<Self, StartError> {
        let discarded = store.discard_uncommitted()?;
        if discarded != crate::backend::Discarded::default() {
            crate::DAEMON.log(format_args!(
                "recovered: discarded {} leaves and {} tiles beyond the last durable head (never acknowledged)",
                discarded.leaves, discarded.tiles
            ));
        }
        let built = store.complete_c2sp()?;
        if built > 0 {
            crate::DAEMON.log(format_args!("built the C2SP (SHA-256) tree over {built} stored leaves"));
        }
        let head = store.head()?;
        if head.c2sp.size() != head.compact.size() {
            return Err(StartError::C2spMismatch { c2sp_size: head.c2sp.size(), tree_size: head.compact.size() });
        }
        let compact = head.compact;
        let c2sp = head.c2sp;
        let latest = match head.sth {
            Some(sth) => {
                check_matches_tree(&key, &compact, &sth)?;
                sth
            }
            None => {
                let sth = sign_sth(&key, &config.relay_id, &compact, now_ms());
                store.commit_sth(&sth)?;
                sth
            }
        };
        Ok(Core {
            store,
            key,
            config,
            compact,
            edge: BTreeMap::new(),
            c2sp,
            c2sp_edge: BTreeMap::new(),
            latest: Arc::new(latest),
        })
    }

    /// Serves requests until every handle is dropped (`Ok`) or storage fails (`Err`, the reason).
    fn run(mut self, mut rx: mpsc::Receiver<Request>) -> Result<(), String> {
        while let Some(first) = rx.blocking_recv() {
            let mut appends = Vec::new();
            let mut refresh = false;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Request::Append { event, reply } => appends.push((event, reply)),
                    Request::Refresh => refresh = true,
                }
                if appends.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.commit_appends(appends)?;
            } else if refresh {
                self.refresh_if_stale()?;
            }
        }
        Ok(())
    }

    fn refresh_if_stale(&mut self) -> Result<(), String> {
        let now = now_ms();
        let age = Duration::from_millis(now.saturating_sub(self.latest.body.timestamp));
        if age < self.config.refresh_interval {
            return Ok(());
        }
        let sth = self.sign_sth(now);
        self.store.commit_sth(&sth).map_err(|e| format!("storing a refreshed STH failed: {e}"))?;
        self.latest = Arc::new(sth);
        Ok(())
    }

    /// Sequences, hashes, signs and commits one batch, then answers every caller.
    fn commit_appends(&mut self, appends: Vec<(LogEvent, Reply)>) -> Result<(), String> {
        let started = std::time::Instant::now();
        let timestamp = self.next_timestamp();
        let iso = wire::iso8601_ms(timestamp);
        let first_index = self.compact.size();
        let mut compact = self.compact.clone();
        let mut bases: Vec<NodeId> = Vec::new();
        let mut base_hashes: Vec<Hash> = Vec::new();
        let mut c2sp = self.c2sp.clone();
        let mut c2sp_bases: Vec<NodeId> = Vec::new();
        let mut c2sp_hashes: Vec<Hash> = Vec::new();
        let mut leaves = Vec::with_capacity(appends.len());
        let mut accepted = Vec::with_capacity(appends.len());
        for (mut event, reply) in appends {
            event.set_timestamp(iso.clone());
            match encode_leaf(&event) {
                Ok((hash, json)) => {
                    compact.append(hash, |node, h| {
                        // Only tile bases are stored; a tile derives its interior nodes.
                        if node.level % tlog::tile::TILE_HEIGHT == 0 {
                            bases.push(node);
                            base_hashes.push(*h);
                        }
                    });
                    // The C2SP entry is the stored event JSON, its leaf hash RFC 6962's.
                    c2sp.append(Sha256::hash_leaf(&json), |node, h| {
                        if node.level % tlog::tile::TILE_HEIGHT == 0 {
                            c2sp_bases.push(node);
                            c2sp_hashes.push(*h);
                        }
                    });
                    leaves.push((hash, json));
                    accepted.push((hash, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(AppendError::Invalid(e)));
                }
            }
        }
        if accepted.is_empty() {
            return Ok(());
        }
        let result = grow_tiles::<Sha3_256>(&self.edge, |id| self.store.tile(id), &bases, &base_hashes)
            .and_then(|tiles| {
                let c2sp_tiles =
                    grow_tiles::<Sha256>(&self.c2sp_edge, |id| self.store.c2sp_tile(id), &c2sp_bases, &c2sp_hashes)?;
                Ok((tiles, c2sp_tiles))
            })
            .and_then(|(tiles, c2sp_tiles)| {
                self.commit(first_index, &leaves, Trees { tiles, compact, c2sp_tiles, c2sp }, timestamp)
            });
        match result {
            Ok(()) => {
                monitoring::batch_committed(accepted.len(), self.compact.size(), started.elapsed());
                for ((leaf_hash, reply), leaf_index) in accepted.into_iter().zip(first_index..) {
                    let _ = reply.send(Ok(Acked { leaf_index, leaf_hash, sth: self.latest.clone() }));
                }
                Ok(())
            }
            Err(e) => {
                let reason = format!("committing a batch of {} appends failed: {e}", accepted.len());
                for (_, reply) in accepted {
                    let _ = reply.send(Err(AppendError::Stopped));
                }
                Err(reason)
            }
        }
    }

    fn commit(
        &mut self,
        first_index: u64,
        leaves: &[(Hash, Vec<u8>)],
        trees: Trees,
        timestamp: u64,
    ) -> Result<(), StoreError> {
        let Trees { tiles, compact, c2sp_tiles, c2sp } = trees;
        let sth = sign_sth(&self.key, &self.config.relay_id, &compact, timestamp);
        let batch =
            Batch { leaves, tiles: &tiles, compact: &compact, c2sp_tiles: &c2sp_tiles, c2sp_compact: &c2sp, sth: &sth };
        self.store.commit_batch(first_index, &batch)?;
        self.compact = compact;
        self.c2sp = c2sp;
        self.latest = Arc::new(sth);
        keep_edge(&mut self.edge, tiles);
        keep_edge(&mut self.c2sp_edge, c2sp_tiles);
        Ok(())
    }

    fn sign_sth(&self, timestamp: u64) -> SignedSth {
        sign_sth(&self.key, &self.config.relay_id, &self.compact, timestamp)
    }

    /// STH timestamps strictly increase, so each STH has its own key and history is ordered.
    fn next_timestamp(&self) -> u64 {
        now_ms().max(self.latest.body.timestamp + 1)
    }
}

/// What a batch grew: the tiles and right edge of the log's tree and of the C2SP tree.
struct Trees {
    tiles: BTreeMap<TileId, Tile>,
    compact: CompactRange<Sha3_256>,
    c2sp_tiles: BTreeMap<TileId, Tile>,
    c2sp: CompactRange<Sha256>,
}

/// Copies of the edge tiles (from `edge`, else `load`) with the new base nodes pushed, keyed
/// by tile, for the tree hashed with `H`.
fn grow_tiles<H: TreeHasher>(
    edge: &BTreeMap<TileId, Tile>,
    load: impl Fn(TileId) -> Result<Option<Tile>, StoreError>,
    bases: &[NodeId],
    hashes: &[Hash],
) -> Result<BTreeMap<TileId, Tile>, StoreError> {
    let mut dirty: BTreeMap<TileId, Tile> = BTreeMap::new();
    for (node, hash) in bases.iter().zip(hashes) {
        let (tile_id, _, _) = locate(*node);
        if let std::collections::btree_map::Entry::Vacant(e) = dirty.entry(tile_id) {
            let tile = match edge.get(&tile_id) {
                Some(t) => t.clone(),
                None => load(tile_id)?.unwrap_or_default(),
            };
            e.insert(tile);
        }
        let tile = dirty.get_mut(&tile_id).ok_or_else(|| StoreError::Corrupt("tile".into()))?;
        tile.push_base::<H>(*hash).map_err(|e| StoreError::Corrupt(format!("tile {tile_id:?}: {e}")))?;
    }
    Ok(dirty)
}

/// Keeps the committed tiles that are still on the right edge (not full) for the next batch.
fn keep_edge(edge: &mut BTreeMap<TileId, Tile>, tiles: BTreeMap<TileId, Tile>) {
    for (id, tile) in tiles {
        if tile.is_full() {
            edge.remove(&id);
        } else {
            edge.insert(id, tile);
        }
    }
}

/// The signed head of the tree `compact` at `timestamp` (through `wire`'s one STH builder).
fn sign_sth(key: &LogSigningKey, relay_id: &str, compact: &CompactRange<Sha3_256>, timestamp: u64) -> SignedSth {
    monitoring::timed_sign("sth", || SthBody::new(relay_id, &compact.root(), compact.size(), timestamp).sign(key))
}

/// The leaf hash and the stored JSON of an event (canonical, so auditors can recompute).
fn encode_leaf(event: &LogEvent) -> Result<(Hash, Vec<u8>), String> {
    event.validate().map_err(|e| e.to_string())?;
    let hash = event.leaf_hash().map_err(|e| e.to_string())?;
    let json = wire::canonical_json_of(event).map_err(|e| e.to_string())?;
    if json.len() > MAX_ENTRY_BYTES {
        return Err(format!("the event is {} bytes; a log entry holds at most {MAX_ENTRY_BYTES}", json.len()));
    }
    Ok((hash, json))
}

/// Refuses a database whose newest STH is not ours or not for the stored tree.
fn check_matches_tree(
    key: &LogSigningKey,
    compact: &CompactRange<Sha3_256>,
    sth: &SignedSth,
) -> Result<(), StartError> {
    sth.verify(&key.verifying_key()).map_err(|e| StartError::KeyMismatch(e.to_string()))?;
    if sth.body.tree_size != compact.size() || sth.body.sha3_root != hex::encode(compact.root()) {
        return Err(StartError::TreeMismatch { sth_size: sth.body.tree_size, tree_size: compact.size() });
    }
    Ok(())
}

/// Wall-clock Unix milliseconds (the sequencer owns the log's clock).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn admin_action(field: &str) -> LogEvent {
        let mut event = LogEvent::AdminAction {
            action: field.into(),
            actor: field.into(),
            subject: field.into(),
            detail: field.into(),
            timestamp: String::new(),
        };
        event.set_timestamp(wire::iso8601_ms(1_700_000_000_000));
        event
    }

    #[test]
    fn an_event_too_large_for_a_tlog_tiles_entry_bundle_is_refused() {
        // Each field is within the event's own limit, but escaped JSON of control characters
        // takes six bytes per byte: the entry would not fit a u16 length prefix.
        let large = admin_action(&"\u{1}".repeat(wire::MAX_FIELD_LEN));
        large.validate().unwrap();
        let refused = encode_leaf(&large).unwrap_err();
        assert!(refused.contains(&MAX_ENTRY_BYTES.to_string()), "{refused}");
        let (_, json) = encode_leaf(&admin_action(&"a".repeat(wire::MAX_FIELD_LEN))).unwrap();
        assert!(json.len() <= MAX_ENTRY_BYTES);
    }
}
