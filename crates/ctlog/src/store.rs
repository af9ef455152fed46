//! Durable state of the log in one redb file: leaves, hash tiles, every STH, and gossip records;
//! beside it, the leaf-hash index in a file of its own ([`crate::index`]).
//!
//! Durability contract: [`LogStore::commit_batch`] returns only after the batch's leaves, tiles
//! and its signed STH are on disk in ONE redb transaction (`Durability::Immediate`). A crash
//! before that leaves the log exactly as the previous batch left it; nothing acknowledged is
//! lost and no half-written batch is ever visible. Readers use MVCC snapshots and never block
//! the writer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use tlog::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, TileId, locate};
use tlog::{CompactRange, Hash, NodeId, Sha3_256, Sha256, TreeHasher};
use wire::SignedSth;

use crate::index::LeafIndex;

/// `index -> leaf_hash (32 bytes) ‖ event JSON`.
pub(crate) const LEAVES: TableDefinition<u64, &[u8]> = TableDefinition::new("leaves");
/// Where the leaf-hash index used to be (inside the commit transaction); now in its own file
/// ([`crate::index`]). Deleted at open.
const OLD_LEAF_INDEX: TableDefinition<[u8; 32], u64> = TableDefinition::new("leaf_index");
/// `(tile level, tile index) -> fat tile bytes`.
pub(crate) const TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("tiles");
/// The C2SP view: fat tiles of the RFC 6962 SHA-256 tree over the same entries (leaf =
/// SHA-256(0x00 ‖ event JSON)), same layout as [`TILES`]. Derived from the leaves.
pub(crate) const C2SP_TILES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("c2sp_tiles");
/// `timestamp ms -> signed STH JSON`; timestamps are strictly increasing.
pub(crate) const STHS: TableDefinition<u64, &[u8]> = TableDefinition::new("sths");
/// `tree_size -> timestamp of the first STH of that size`.
pub(crate) const STH_BY_SIZE: TableDefinition<u64, u64> = TableDefinition::new("sth_by_size");
/// `"compact_range" -> size (8 bytes BE) ‖ hashes`, written with every batch.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Gossip: `peer pk_hash -> PeerRecord JSON`.
const PEERS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("peers");
/// Gossip: `relay_id -> pinned pk_hash`.
const PEER_IDS: TableDefinition<&str, [u8; 32]> = TableDefinition::new("peer_ids");
/// Gossip: `(peer pk_hash, sequence) -> STH JSON as the peer signed it`.
const PEER_STHS: TableDefinition<([u8; 32], u64), &[u8]> = TableDefinition::new("peer_sths");
/// Gossip: `sequence -> fork evidence JSON`.
const FORKS: TableDefinition<u64, &[u8]> = TableDefinition::new("forks");

pub(crate) const COMPACT_KEY: &str = "compact_range";
/// `META` key of the SHA-256 (C2SP) tree's compact range, committed with [`COMPACT_KEY`].
pub(crate) const C2SP_COMPACT_KEY: &str = "c2sp_compact_range";
/// Leaves hashed per transaction when the C2SP tree is built from the leaves (start-up of a
/// store written before it existed, or after `fsck --repair` dropped it).
const C2SP_BUILD_CHUNK: u64 = 1 << 20;

/// Storage failures. Every one is an operator problem (disk, corruption), never a client's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (IO, or a state it refuses to continue from).
    #[error("redb: {0}")]
    Redb(#[from] redb::Error),
    /// Stored bytes do not decode.
    #[error("log storage is corrupt: {0}")]
    Corrupt(String),
}

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        Self::Redb(e.into())
    }
}
impl From<redb::TransactionError> for StoreError {
    fn from(e: redb::TransactionError) -> Self {
        Self::Redb(e.into())
    }
}
impl From<redb::TableError> for StoreError {
    fn from(e: redb::TableError) -> Self {
        Self::Redb(e.into())
    }
}
impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        Self::Redb(e.into())
    }
}
impl From<redb::CommitError> for StoreError {
    fn from(e: redb::CommitError) -> Self {
        Self::Redb(e.into())
    }
}
impl From<redb::SetDurabilityError> for StoreError {
    fn from(e: redb::SetDurabilityError) -> Self {
        Self::Redb(e.into())
    }
}

/// Results of storage calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One leaf as stored: its hash and the event JSON it commits to.
#[derive(Clone, Debug)]
pub struct StoredLeaf {
    /// Its index.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The canonical JSON of its event.
    pub event_json: Vec<u8>,
}

pub use crate::backend::Batch;
use crate::backend::{Discarded, Head};

/// How much of a batch [`LogStore::commit_batch_torn`] writes: a prefix of what
/// [`LogStore::commit_batch`] writes, never the head.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Torn {
    /// Only the leaf rows.
    Leaves,
    /// Leaf rows and the tiles: everything but the head.
    AllButHead,
}

/// The log's redb file (and its leaf-hash index). Cheap to share (`Arc`); one writer (the
/// sequencer) at a time.
pub struct LogStore {
    db: Database,
    pub(crate) index: Arc<LeafIndex>,
}

/// The leaf-hash index directory that belongs to the log database at `path`
/// (`ctlog.redb` → `ctlog.index/`, a directory of sorted runs, see [`crate::index`]).
#[must_use]
pub fn index_path(path: &Path) -> PathBuf {
    path.with_extension("index")
}

/// Where the leaf-hash index used to be (a redb file); deleted at open.
fn old_index_file(path: &Path) -> PathBuf {
    path.with_extension("index.redb")
}

/// Opens (or creates) the redb file, read without readahead ([`harden::advise_random_access`]):
/// what the log reads at random — proofs' hash tiles, single leaves — is most of its reading,
/// and readahead around each tile filled the page cache with neighbouring leaf rows (a
/// 6 GiB tile preload at 100M leaves read 21 GiB and evicted its own first tiles).
fn open_database(path: &Path, cache_bytes: usize) -> Result<Database> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::Redb(redb::Error::Io(e)))?;
    harden::advise_random_access(&file);
    Ok(redb::Builder::new().set_cache_size(cache_bytes).create_with_backend(redb::backends::FileBackend::new(file)?)?)
}

#[doc(hidden)]
pub use crate::index::IndexTuning;

/// The in-process page cache of [`LogStore::open`] (redb's default, the config's default).
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

impl LogStore {
    /// Opens (or creates) the database and its leaf-hash index ([`index_path`]) and makes sure
    /// every table exists. No thread is started (the sequencer starts the indexer).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`LogStore::open`] with `cache_bytes` of in-process page cache (the config's
    /// `cache_mib`): pages in it are read without a system call, and no one but the process
    /// evicts them — not the kernel, nor a host reclaiming idle page cache of this VM.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        Self::open_inner(path, IndexTuning::default(), cache_bytes)
    }

    /// [`LogStore::open`] with other run sizes for the leaf-hash index (tests use small runs).
    #[doc(hidden)]
    pub fn open_tuned(path: &Path, tuning: IndexTuning) -> Result<Self> {
        Self::open_inner(path, tuning, DEFAULT_CACHE_BYTES)
    }

    fn open_inner(path: &Path, tuning: IndexTuning, cache_bytes: usize) -> Result<Self> {
        let db = open_database(path, cache_bytes)?;
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            txn.open_table(LEAVES)?;
            txn.delete_table(OLD_LEAF_INDEX)?;
            txn.open_table(TILES)?;
            txn.open_table(C2SP_TILES)?;
            txn.open_table(STHS)?;
            txn.open_table(STH_BY_SIZE)?;
            txn.open_table(META)?;
            txn.open_table(PEERS)?;
            txn.open_table(PEER_IDS)?;
            txn.open_table(PEER_STHS)?;
            txn.open_table(FORKS)?;
        }
        txn.commit()?;
        let size = head_of(&db.begin_read()?)?.compact.size();
        match std::fs::remove_file(old_index_file(path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::Corrupt(format!("removing the old leaf-hash index file: {e}")));
            }
            _ => {}
        }
        let index = Arc::new(LeafIndex::open(&index_path(path), &db, size, tuning)?);
        Ok(Self { db, index })
    }

    /// The compact range of the committed tree (empty for a new log).
    pub fn compact_range(&self) -> Result<CompactRange<Sha3_256>> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let Some(raw) = meta.get(COMPACT_KEY)? else {
            return Ok(CompactRange::new());
        };
        decode_compact(raw.value())
    }

    /// Loads the tile that holds `id`, if it was ever written.
    pub fn tile(&self, id: TileId) -> Result<Option<Tile>> {
        let txn = self.db.begin_read()?;
        read_tile(&txn, TILES, id)
    }

    /// Loads the C2SP (SHA-256) tile `id`, if it was ever written.
    pub fn c2sp_tile(&self, id: TileId) -> Result<Option<Tile>> {
        let txn = self.db.begin_read()?;
        read_tile(&txn, C2SP_TILES, id)
    }

    /// Commits a batch durably: leaves, dirty tiles, compact range and STH. The leaves are
    /// findable by hash before the commit returns; the indexer writes them to the index file
    /// afterwards ([`crate::index`]).
    pub fn commit_batch(&self, first_index: u64, batch: &Batch<'_>) -> Result<()> {
        self.index.start()?;
        self.index.committing(first_index, batch.leaves)?;
        match self.write_batch(first_index, batch) {
            Ok(()) => {
                self.index.committed(first_index, batch.leaves);
                Ok(())
            }
            Err(e) => {
                self.index.not_committed(first_index, batch.leaves);
                Err(e)
            }
        }
    }

    fn write_batch(&self, first_index: u64, batch: &Batch<'_>) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        insert_leaves(&txn, first_index, batch.leaves)?;
        insert_tiles(&txn, TILES, batch.tiles)?;
        insert_tiles(&txn, C2SP_TILES, batch.c2sp_tiles)?;
        let mut meta = txn.open_table(META)?;
        meta.insert(C2SP_COMPACT_KEY, encode_compact(batch.c2sp_compact).as_slice())?;
        meta.insert(COMPACT_KEY, encode_compact(batch.compact).as_slice())?;
        drop(meta);
        insert_sth(&txn, batch.sth)?;
        txn.commit()?;
        Ok(())
    }

    /// Durably writes only a prefix of `batch` (never its head): what a crash in the middle of a
    /// non-atomic backend's commit would leave. For fault-injection tests of recovery.
    #[doc(hidden)]
    pub fn commit_batch_torn(&self, first_index: u64, batch: &Batch<'_>, torn: Torn) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        insert_leaves(&txn, first_index, batch.leaves)?;
        if matches!(torn, Torn::AllButHead) {
            insert_tiles(&txn, TILES, batch.tiles)?;
            insert_tiles(&txn, C2SP_TILES, batch.c2sp_tiles)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The committed head: compact range and newest STH, read in one snapshot.
    pub fn head(&self) -> Result<Head> {
        head_of(&self.db.begin_read()?)
    }

    /// Removes leaves and tile nodes beyond the head, in one durable transaction (see
    /// [`crate::backend`]), and starts the leaf-hash indexer (this runs when the sequencer
    /// starts, inside the service's sandbox).
    pub fn discard_uncommitted(&self) -> Result<Discarded> {
        let head = self.head()?;
        let size = head.compact.size();
        self.index.discard_beyond(size);
        self.index.start()?;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let mut discarded = Discarded::default();
        {
            let mut leaves = txn.open_table(LEAVES)?;
            let beyond: Vec<u64> = leaves.range(size..)?.map(|row| Ok(row?.0.value())).collect::<Result<_>>()?;
            for i in beyond {
                leaves.remove(i)?;
                discarded.leaves += 1;
            }
            discarded.tiles += cut_tiles::<Sha3_256>(&txn, TILES, size)?;
            // The C2SP tree is committed with the head; a store from before it existed has
            // none yet ([`LogStore::complete_c2sp`] builds it).
            discarded.tiles += cut_tiles::<Sha256>(&txn, C2SP_TILES, head.c2sp.size().min(size))?;
        }
        txn.commit()?;
        Ok(discarded)
    }

    /// Stores an STH that covers no new leaves (the periodic refresh), durably.
    pub fn commit_sth(&self, sth: &SignedSth) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        insert_sth(&txn, sth)?;
        txn.commit()?;
        Ok(())
    }

    /// Brings the C2SP (SHA-256) tree up to the head's size by hashing the leaves it does not
    /// cover yet, [`C2SP_BUILD_CHUNK`] leaves per durable transaction (each one leaves a
    /// consistent C2SP tree behind, so an interrupted build continues where it stopped).
    /// Returns how many leaves were hashed: 0 when the two trees already agree in size.
    /// Runs at start-up after [`LogStore::discard_uncommitted`], before the sequencer.
    pub fn complete_c2sp(&self) -> Result<u64> {
        self.complete_c2sp_in_chunks(C2SP_BUILD_CHUNK)
    }

    /// [`LogStore::complete_c2sp`] with `chunk` leaves per transaction (tests use small ones).
    #[doc(hidden)]
    pub fn complete_c2sp_in_chunks(&self, chunk: u64) -> Result<u64> {
        let chunk = chunk.max(1);
        let mut hashed = 0;
        loop {
            let head = self.head()?;
            let (size, from) = (head.compact.size(), head.c2sp.size());
            if from > size {
                return Err(StoreError::Corrupt(format!(
                    "the C2SP tree covers {from} leaves, more than the head's {size}"
                )));
            }
            if from == size {
                return Ok(hashed);
            }
            let until = size.min(from.saturating_add(chunk));
            self.write_raw(|txn| {
                let mut compact = head.c2sp.clone();
                // Rows of an earlier, interrupted build beyond the committed C2SP range.
                cut_tiles::<Sha256>(txn, C2SP_TILES, from)?;
                let mut tiles: BTreeMap<TileId, Tile> = BTreeMap::new();
                let leaves = txn.open_table(LEAVES)?;
                let mut table = txn.open_table(C2SP_TILES)?;
                for row in leaves.range(from..until)? {
                    let (index, raw) = row?;
                    if index.value() != compact.size() {
                        return Err(StoreError::Corrupt(format!("leaf {} is missing", compact.size())));
                    }
                    let leaf = decode_leaf(index.value(), raw.value())?;
                    let mut bases = Vec::new();
                    compact.append(Sha256::hash_leaf(&leaf.event_json), |node, hash| {
                        if node.level % TILE_HEIGHT == 0 {
                            bases.push((node, *hash));
                        }
                    });
                    for (node, hash) in bases {
                        let (id, _, _) = locate(node);
                        let tile = match tiles.entry(id) {
                            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                            std::collections::btree_map::Entry::Vacant(e) => {
                                let stored = match table.get((id.level, id.index))? {
                                    Some(raw) => Tile::from_bytes(raw.value())
                                        .map_err(|e| StoreError::Corrupt(format!("C2SP tile {id:?}: {e}")))?,
                                    None => Tile::new(),
                                };
                                e.insert(stored)
                            }
                        };
                        tile.push_base::<Sha256>(hash)
                            .map_err(|e| StoreError::Corrupt(format!("C2SP tile {id:?}: {e}")))?;
                        if tile.is_full()
                            && let Some(full) = tiles.remove(&id)
                        {
                            table.insert((id.level, id.index), full.to_bytes().as_slice())?;
                        }
                    }
                }
                if compact.size() != until {
                    return Err(StoreError::Corrupt(format!("leaf {} is missing", compact.size())));
                }
                for (id, tile) in &tiles {
                    table.insert((id.level, id.index), tile.to_bytes().as_slice())?;
                }
                txn.open_table(META)?.insert(C2SP_COMPACT_KEY, encode_compact(&compact).as_slice())?;
                Ok(())
            })?;
            hashed += until - from;
        }
    }

    /// One durable write transaction over any table (for `fsck --repair`).
    pub(crate) fn write_raw<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T>) -> Result<T> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// A consistent snapshot for answering reads.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot { txn: self.db.begin_read()?, index: self.index.clone() })
    }

    /// Reads the SHA3 hash tiles (what proofs read) once each, in key order, from `from`
    /// onwards, and returns the next key to read (`None` when all are read) and the bytes read.
    /// At most `limit` tiles per call: each call is one short read transaction, since a
    /// long-lived one would keep redb from reusing the pages later commits free.
    pub(crate) fn read_tiles(&self, from: (u8, u64), limit: usize) -> Result<(Option<(u8, u64)>, u64)> {
        let txn = self.db.begin_read()?;
        let tiles = txn.open_table(TILES)?;
        let mut bytes = 0;
        for (n, row) in tiles.range(from..)?.enumerate() {
            let (key, value) = row?;
            if n == limit {
                return Ok((Some(key.value()), bytes));
            }
            bytes += value.value().len() as u64;
        }
        Ok((None, bytes))
    }

    /// Where the bytes of the log file go, table by table (for the benchmark): a Markdown
    /// table of stored bytes (keys and values), pages and fragmentation, and the pages the file
    /// holds beyond what the tables use (free pages). Takes a write transaction (waits for the
    /// sequencer's batch) and commits nothing.
    #[doc(hidden)]
    pub fn space_report(&self) -> Result<String> {
        use std::fmt::Write as _;
        let txn = self.db.begin_write()?;
        let db = txn.stats()?;
        let page = db.page_size() as u64;
        let mut out = String::from(
            "| table | rows | stored bytes | pages (MiB) | fragmented (MiB) |\n|---|---:|---:|---:|---:|\n",
        );
        let mut row = |name: &str, rows: u64, stats: redb::TableStats| {
            let _ = writeln!(
                out,
                "| {name} | {rows} | {:.1} MiB | {:.1} | {:.1} |",
                stats.stored_bytes() as f64 / 1048576.0,
                ((stats.leaf_pages() + stats.branch_pages()) * page) as f64 / 1048576.0,
                stats.fragmented_bytes() as f64 / 1048576.0,
            );
        };
        {
            let t = txn.open_table(LEAVES)?;
            row("leaves", t.len()?, t.stats()?);
            let t = txn.open_table(TILES)?;
            row("tiles (SHA3-256)", t.len()?, t.stats()?);
            let t = txn.open_table(C2SP_TILES)?;
            row("c2sp_tiles (SHA-256)", t.len()?, t.stats()?);
            let t = txn.open_table(STHS)?;
            row("sths", t.len()?, t.stats()?);
            let t = txn.open_table(STH_BY_SIZE)?;
            row("sth_by_size", t.len()?, t.stats()?);
        }
        let _ = writeln!(
            out,
            "| whole file: allocated pages / stored / metadata / fragmented | | {:.1} MiB | {:.1} | {:.1} MiB metadata, {:.1} MiB fragmented |",
            db.stored_bytes() as f64 / 1048576.0,
            (db.allocated_pages() * page) as f64 / 1048576.0,
            db.metadata_bytes() as f64 / 1048576.0,
            db.fragmented_bytes() as f64 / 1048576.0,
        );
        txn.abort()?;
        Ok(out)
    }

    /// The log database itself (for `fsck --repair` rebuilding the index).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// Write access for gossip records (short transactions, durable).
    pub fn gossip_write<T>(&self, f: impl FnOnce(&mut GossipTables<'_>) -> Result<T>) -> Result<T> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let out = {
            let mut tables = GossipTables {
                peers: txn.open_table(PEERS)?,
                peer_ids: txn.open_table(PEER_IDS)?,
                peer_sths: txn.open_table(PEER_STHS)?,
                forks: txn.open_table(FORKS)?,
            };
            f(&mut tables)?
        };
        txn.commit()?;
        Ok(out)
    }
}

/// Leaf rows in index order (appends at the table's right edge).
fn insert_leaves(txn: &redb::WriteTransaction, first_index: u64, leaves: &[(Hash, Vec<u8>)]) -> Result<()> {
    let mut table = txn.open_table(LEAVES)?;
    let mut record = Vec::new();
    for (index, (hash, json)) in (first_index..).zip(leaves) {
        record.clear();
        record.extend_from_slice(hash);
        record.extend_from_slice(json);
        table.insert(index, record.as_slice())?;
    }
    Ok(())
}

/// Cuts the tiles of `table` (a tree hashed with `H`) back to the tree of `size` leaves:
/// tiles wholly beyond it are removed, the partial ones shortened. Returns how many changed.
fn cut_tiles<H: TreeHasher>(txn: &redb::WriteTransaction, table: TileTable, size: u64) -> Result<u64> {
    let mut tiles = txn.open_table(table)?;
    let mut changed = 0;
    for level in 0..=(64 / TILE_HEIGHT) {
        // Nodes of this tile level's base (tree level 8·level) that the head covers.
        let count = size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT)).unwrap_or(0);
        let first_partial = count / TILE_WIDTH as u64;
        let stored: Vec<(u64, Vec<u8>)> = tiles
            .range((level, first_partial)..=(level, u64::MAX))?
            .map(|row| {
                let (k, v) = row?;
                Ok((k.value().1, v.value().to_vec()))
            })
            .collect::<Result<_>>()?;
        for (tile_index, raw) in stored {
            let keep = count.saturating_sub(tile_index * TILE_WIDTH as u64).min(TILE_WIDTH as u64) as usize;
            let tile = Tile::from_bytes(&raw)
                .map_err(|e| StoreError::Corrupt(format!("tile ({level}, {tile_index}): {e}")))?;
            if tile.width() <= keep {
                continue;
            }
            changed += 1;
            if keep == 0 {
                tiles.remove((level, tile_index))?;
            } else {
                let mut cut = Tile::new();
                for hash in &tile.base()[..keep] {
                    cut.push_base::<H>(*hash)
                        .map_err(|e| StoreError::Corrupt(format!("tile ({level}, {tile_index}): {e}")))?;
                }
                tiles.insert((level, tile_index), cut.to_bytes().as_slice())?;
            }
        }
    }
    Ok(changed)
}

/// A table of fat tiles: [`TILES`] (SHA3-256) or [`C2SP_TILES`] (SHA-256).
pub(crate) type TileTable = TableDefinition<'static, (u8, u64), &'static [u8]>;

/// The compact ranges (SHA3 and C2SP) and newest STH in `txn`.
fn head_of(txn: &ReadTransaction) -> Result<Head> {
    let meta = txn.open_table(META)?;
    let compact = match meta.get(COMPACT_KEY)? {
        Some(raw) => decode_compact(raw.value())?,
        None => CompactRange::new(),
    };
    let c2sp = match meta.get(C2SP_COMPACT_KEY)? {
        Some(raw) => decode_compact(raw.value())?,
        None => CompactRange::new(),
    };
    let sth = txn.open_table(STHS)?.last()?.map(|(_, v)| decode_sth(v.value())).transpose()?;
    Ok(Head { compact, c2sp, sth })
}

fn insert_tiles(txn: &redb::WriteTransaction, table: TileTable, tiles: &BTreeMap<TileId, Tile>) -> Result<()> {
    let mut table = txn.open_table(table)?;
    for (id, tile) in tiles {
        table.insert((id.level, id.index), tile.to_bytes().as_slice())?;
    }
    Ok(())
}

fn insert_sth(txn: &redb::WriteTransaction, sth: &SignedSth) -> Result<()> {
    txn.open_table(STHS)?.insert(sth.body.timestamp, encode_sth(sth)?.as_slice())?;
    let mut by_size = txn.open_table(STH_BY_SIZE)?;
    if by_size.get(sth.body.tree_size)?.is_none() {
        by_size.insert(sth.body.tree_size, sth.body.timestamp)?;
    }
    Ok(())
}

fn read_tile(txn: &ReadTransaction, table: TileTable, id: TileId) -> Result<Option<Tile>> {
    let tiles = txn.open_table(table)?;
    let Some(raw) = tiles.get((id.level, id.index))? else {
        return Ok(None);
    };
    Tile::from_bytes(raw.value()).map(Some).map_err(|e| StoreError::Corrupt(format!("tile {id:?}: {e}")))
}

/// Node `position` on `level` (0 is the base) of a tile in its stored form, [`Tile::to_bytes`]:
/// the tile's levels one after another, level `r` holding `width >> r` hashes. `None` if the
/// tile does not hold that node (yet) or the bytes are not a tile.
fn stored_node(raw: &[u8], level: u8, position: u64) -> Option<Hash> {
    let (hashes, rest) = raw.as_chunks::<32>();
    let width = tile_width(hashes.len()).filter(|_| rest.is_empty())?;
    let level = usize::from(level);
    let position = usize::try_from(position).ok()?;
    if level >= usize::from(TILE_HEIGHT) || position >= width >> level {
        return None;
    }
    let before: usize = (0..level).map(|r| width >> r).sum();
    hashes.get(before + position).copied()
}

/// The width of a tile that stores `hashes` hashes on its levels. Summed over all levels,
/// `width >> r` is `2 * width - popcount(width)` (one less for a full tile, whose root is not
/// stored), so the width is at most five above `hashes / 2`.
fn tile_width(hashes: usize) -> Option<usize> {
    let stored = |width: usize| (0..TILE_HEIGHT).map(|r| width >> r).sum::<usize>();
    (hashes / 2..=hashes / 2 + 5).find(|&width| (1..=TILE_WIDTH).contains(&width) && stored(width) == hashes)
}

pub(crate) fn encode_compact<H: TreeHasher>(range: &CompactRange<H>) -> Vec<u8> {
    let mut out = range.size().to_be_bytes().to_vec();
    for hash in range.hashes() {
        out.extend_from_slice(hash);
    }
    out
}

pub(crate) fn decode_compact<H: TreeHasher>(raw: &[u8]) -> Result<CompactRange<H>> {
    let corrupt = || StoreError::Corrupt("compact range record".into());
    let (size, rest) = raw.split_first_chunk::<8>().ok_or_else(corrupt)?;
    if rest.len() % 32 != 0 {
        return Err(corrupt());
    }
    let hashes = rest.chunks_exact(32).map(|c| c.try_into().map_err(|_| corrupt())).collect::<Result<Vec<Hash>>>()?;
    CompactRange::from_parts(u64::from_be_bytes(*size), hashes).map_err(|_| corrupt())
}

/// Gossip tables inside one write transaction.
pub struct GossipTables<'t> {
    /// `pk_hash -> PeerRecord JSON`.
    pub peers: redb::Table<'t, [u8; 32], &'static [u8]>,
    /// `relay_id -> pinned pk_hash`.
    pub peer_ids: redb::Table<'t, &'static str, [u8; 32]>,
    /// `(pk_hash, sequence) -> STH JSON`.
    pub peer_sths: redb::Table<'t, ([u8; 32], u64), &'static [u8]>,
    /// `sequence -> fork evidence JSON`.
    pub forks: redb::Table<'t, u64, &'static [u8]>,
}

/// A read-only MVCC view of the log; everything in it is mutually consistent.
pub struct Snapshot {
    pub(crate) txn: ReadTransaction,
    index: Arc<LeafIndex>,
}

impl Snapshot {
    /// Hashes of the given perfect nodes, each tile read once. Nodes are read in place from
    /// the stored tile bytes: a proof copies 32 bytes per node, not whole 16 KiB tiles.
    pub fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>> {
        let table = self.txn.open_table(TILES)?;
        // A proof needs a few tiles (one or two per 8 tree levels); a list beats a map here.
        let mut read: Vec<(TileId, redb::AccessGuard<'static, &'static [u8]>)> = Vec::new();
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let (tile_id, level, position) = locate(id);
            let slot = match read.iter().position(|(t, _)| *t == tile_id) {
                Some(slot) => slot,
                None => {
                    let raw = table
                        .get((tile_id.level, tile_id.index))?
                        .ok_or_else(|| StoreError::Corrupt(format!("missing tile {tile_id:?}")))?;
                    read.push((tile_id, raw));
                    read.len() - 1
                }
            };
            let raw = read[slot].1.value();
            let hash =
                stored_node(raw, level, position).ok_or_else(|| StoreError::Corrupt(format!("missing node {id:?}")))?;
            out.push(hash);
        }
        Ok(out)
    }

    /// The RFC 9162 inclusion proof of leaf `index` in the tree of `size` (≤ committed size).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>> {
        let nodes =
            tlog::inclusion_nodes(index, size).map_err(|e| StoreError::Corrupt(format!("inclusion nodes: {e}")))?;
        let hashes = self.nodes(nodes.ids())?;
        nodes.rehash::<Sha3_256>(&hashes).map_err(|e| StoreError::Corrupt(format!("rehash: {e}")))
    }

    /// The RFC 9162 consistency proof between two sizes (0 < size1 ≤ size2 ≤ committed size).
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>> {
        let nodes = tlog::consistency_nodes(size1, size2)
            .map_err(|e| StoreError::Corrupt(format!("consistency nodes: {e}")))?;
        let hashes = self.nodes(nodes.ids())?;
        nodes.rehash::<Sha3_256>(&hashes).map_err(|e| StoreError::Corrupt(format!("rehash: {e}")))
    }

    /// The root hash of the tree of `size` (≤ committed size), from stored nodes.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let hashes = self.nodes(&tlog::root_nodes(size))?;
        Ok(tlog::root_from_nodes::<Sha3_256>(&hashes))
    }

    /// The C2SP (SHA-256) tree's compact range as committed in this snapshot: its size is
    /// the committed tree size, its root the checkpoint's root hash.
    pub fn c2sp_compact(&self) -> Result<CompactRange<Sha256>> {
        match self.txn.open_table(META)?.get(C2SP_COMPACT_KEY)? {
            Some(raw) => decode_compact(raw.value()),
            None => Ok(CompactRange::new()),
        }
    }

    /// The C2SP (SHA-256) tile `id`, if any part of it was committed.
    pub fn c2sp_tile(&self, id: TileId) -> Result<Option<Tile>> {
        read_tile(&self.txn, C2SP_TILES, id)
    }

    /// Number of leaves committed (O(1): redb tracks table lengths).
    pub fn tree_size(&self) -> Result<u64> {
        Ok(self.txn.open_table(LEAVES)?.len()?)
    }

    /// Leaf `index`, if present.
    pub fn leaf(&self, index: u64) -> Result<Option<StoredLeaf>> {
        let leaves = self.txn.open_table(LEAVES)?;
        leaves.get(index)?.map(|raw| decode_leaf(index, raw.value())).transpose()
    }

    /// Up to `limit` leaves starting at `from`.
    pub fn leaves(&self, from: u64, limit: usize) -> Result<Vec<StoredLeaf>> {
        let leaves = self.txn.open_table(LEAVES)?;
        let mut out = Vec::new();
        for row in leaves.range(from..)?.take(limit) {
            let (k, v) = row?;
            out.push(decode_leaf(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// Index of the first leaf with this hash in this snapshot. Each candidate the index gives
    /// is checked against the leaf row, so an index entry for a leaf this snapshot does not hold
    /// (yet) is never an answer.
    pub fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>> {
        let leaves = self.txn.open_table(LEAVES)?;
        self.index.first_confirmed(leaf_hash, |candidate| {
            Ok(leaves.get(candidate)?.is_some_and(|raw| raw.value().starts_with(leaf_hash)))
        })
    }

    /// The newest STH.
    pub fn latest_sth(&self) -> Result<Option<SignedSth>> {
        let sths = self.txn.open_table(STHS)?;
        sths.last()?.map(|(_, v)| decode_sth(v.value())).transpose()
    }

    /// The newest `limit` STHs, newest first, and how many exist in all.
    pub fn sth_history(&self, limit: usize) -> Result<(Vec<SignedSth>, u64)> {
        let sths = self.txn.open_table(STHS)?;
        let total = sths.len()?;
        let mut out = Vec::new();
        for row in sths.iter()?.rev().take(limit) {
            out.push(decode_sth(row?.1.value())?);
        }
        Ok((out, total))
    }

    /// The first STH with timestamp ≥ `unix_ms`.
    pub fn sth_at_or_after(&self, unix_ms: u64) -> Result<Option<SignedSth>> {
        let sths = self.txn.open_table(STHS)?;
        let mut range = sths.range(unix_ms..)?;
        range.next().transpose()?.map(|(_, v)| decode_sth(v.value())).transpose()
    }

    /// The first STH signed for exactly `tree_size` leaves.
    pub fn sth_for_size(&self, tree_size: u64) -> Result<Option<SignedSth>> {
        let by_size = self.txn.open_table(STH_BY_SIZE)?;
        let Some(ts) = by_size.get(tree_size)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let sths = self.txn.open_table(STHS)?;
        sths.get(ts)?.map(|v| decode_sth(v.value())).transpose()
    }

    /// The first signed STH whose tree holds leaf `index`: the head of the commit that added it.
    pub fn sth_covering(&self, index: u64) -> Result<Option<SignedSth>> {
        let by_size = self.txn.open_table(STH_BY_SIZE)?;
        let Some(row) = by_size.range(index.saturating_add(1)..)?.next() else {
            return Ok(None);
        };
        let ts = row?.1.value();
        let sths = self.txn.open_table(STHS)?;
        sths.get(ts)?.map(|v| decode_sth(v.value())).transpose()
    }

    /// Peer records (gossip), in pk_hash order.
    pub fn peers(&self) -> Result<Vec<Vec<u8>>> {
        let peers = self.txn.open_table(PEERS)?;
        let mut out = Vec::new();
        for row in peers.iter()? {
            out.push(row?.1.value().to_vec());
        }
        Ok(out)
    }

    /// One peer record by key hash.
    pub fn peer(&self, pk_hash: &[u8; 32]) -> Result<Option<Vec<u8>>> {
        let peers = self.txn.open_table(PEERS)?;
        Ok(peers.get(pk_hash)?.map(|v| v.value().to_vec()))
    }

    /// The pk_hash pinned for a relay id.
    pub fn pinned_key(&self, relay_id: &str) -> Result<Option<[u8; 32]>> {
        let ids = self.txn.open_table(PEER_IDS)?;
        Ok(ids.get(relay_id)?.map(|v| v.value()))
    }

    /// A page of a peer's STHs (oldest first) and the peer's total.
    pub fn peer_sths(&self, pk_hash: &[u8; 32], offset: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let table = self.txn.open_table(PEER_STHS)?;
        let mut out = Vec::new();
        for row in table.range((*pk_hash, offset)..=(*pk_hash, u64::MAX))?.take(limit) {
            out.push(row?.1.value().to_vec());
        }
        Ok(out)
    }

    /// Fork evidence records, oldest first.
    pub fn forks(&self, limit: usize) -> Result<Vec<Vec<u8>>> {
        let table = self.txn.open_table(FORKS)?;
        let mut out = Vec::new();
        for row in table.iter()?.take(limit) {
            out.push(row?.1.value().to_vec());
        }
        Ok(out)
    }
}

pub(crate) fn decode_leaf(index: u64, raw: &[u8]) -> Result<StoredLeaf> {
    let (hash, json) = raw.split_first_chunk::<32>().ok_or_else(|| StoreError::Corrupt(format!("leaf {index}")))?;
    Ok(StoredLeaf { index, leaf_hash: *hash, event_json: json.to_vec() })
}

/// First byte of an STH row with its signature in binary (a JSON row starts with `{`).
const STH_BINARY_SIGNATURE: u8 = 1;

/// An STH row: [`STH_BINARY_SIGNATURE`] ‖ u16 BE length ‖ the STH's JSON with an empty
/// signature ‖ the signature's 3,309 raw bytes. As JSON with the signature in base64 a row was
/// about 4.7 KB, so each took an 8 KiB page of its own; this way it fits one 4 KiB page. What
/// is served is unchanged (the STH decodes to the same value). A signature that is not
/// canonical base64 is kept as JSON, so every row decodes to exactly what was signed.
fn encode_sth(sth: &SignedSth) -> Result<Vec<u8>> {
    let json_of = |sth: &SignedSth| serde_json::to_vec(sth).map_err(|e| StoreError::Corrupt(e.to_string()));
    let signature = wire::parse_b64(&sth.signature).ok().filter(|raw| wire::b64(raw) == sth.signature);
    let Some(signature) = signature else {
        return json_of(sth);
    };
    let mut unsigned = sth.clone();
    unsigned.signature = String::new();
    let json = json_of(&unsigned)?;
    let len = u16::try_from(json.len()).map_err(|_| StoreError::Corrupt("an STH over 64 KiB".into()))?;
    let mut out = Vec::with_capacity(3 + json.len() + signature.len());
    out.push(STH_BINARY_SIGNATURE);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&signature);
    Ok(out)
}

/// An STH row in either form ([`encode_sth`], or the JSON rows written before it).
pub(crate) fn decode_sth(raw: &[u8]) -> Result<SignedSth> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("sth record: {e}"));
    let Some((&STH_BINARY_SIGNATURE, rest)) = raw.split_first() else {
        return serde_json::from_slice(raw).map_err(|e| corrupt(&e));
    };
    let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(|| corrupt(&"truncated"))?;
    let (json, signature) =
        rest.split_at_checked(usize::from(u16::from_be_bytes(*len))).ok_or_else(|| corrupt(&"truncated"))?;
    let mut sth: SignedSth = serde_json::from_slice(json).map_err(|e| corrupt(&e))?;
    sth.signature = wire::b64(signature);
    Ok(sth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlog::TreeHasher;

    #[test]
    fn nodes_read_in_place_match_parsed_tiles_at_every_width() {
        let mut tile = Tile::new();
        for width in 1..=TILE_WIDTH {
            let leaf: Hash = Sha3_256::digest(&[&width.to_be_bytes()]);
            tile.push_base::<Sha3_256>(leaf).unwrap();
            let raw = tile.to_bytes();
            assert_eq!(tile_width(raw.len() / 32), Some(width));
            for level in 0..=TILE_HEIGHT {
                for position in 0..=(width as u64 >> level) + 1 {
                    assert_eq!(
                        stored_node(&raw, level, position),
                        tile.node(level, position),
                        "{width} {level} {position}"
                    );
                }
            }
        }
    }

    #[test]
    fn sth_rows_keep_the_signature_in_binary_and_old_json_rows_still_read() {
        use crypto::KeyFile;
        let key = crypto::LogSigningKey::generate().unwrap();
        let sth = wire::SthBody::new("store.test", &[7; 32], 42, 1_700_000_000_000).sign(&key);
        let row = encode_sth(&sth).unwrap();
        assert_eq!(row[0], STH_BINARY_SIGNATURE);
        assert!(row.len() < 4000, "{} bytes", row.len());
        assert_eq!(decode_sth(&row).unwrap(), sth);
        let json = serde_json::to_vec(&sth).unwrap();
        assert!(json.len() > 4096);
        assert_eq!(decode_sth(&json).unwrap(), sth, "a row written before");
        let mut odd = sth.clone();
        odd.signature = "not base64".into();
        assert_eq!(encode_sth(&odd).unwrap(), serde_json::to_vec(&odd).unwrap(), "kept as JSON");
        assert!(decode_sth(&row[..2]).is_err(), "truncated");
        assert!(decode_sth(&row[..40]).is_err(), "truncated JSON");
    }

    #[test]
    fn bytes_that_are_no_tile_hold_no_nodes() {
        assert_eq!(stored_node(&[], 0, 0), None);
        assert_eq!(stored_node(&[0; 33], 0, 0), None);
        // Two hashes fit no width: width 2 stores its parent too (3), width 1 stores 1.
        assert_eq!(stored_node(&[0; 64], 0, 0), None);
    }
}
