//! `paramant ctlog fsck`: re-derives the whole tree from the stored leaves and checks it against
//! everything stored beside them — every signed tree head (signature, size order, root), the
//! committed head, the hash tiles, the leaf-hash index, the C2SP (SHA-256) tree's tiles and
//! compact range — and names each disagreement.
//!
//! Problems come in three kinds, and only two are repaired:
//! - [`ProblemKind::Uncommitted`]: rows beyond the head, left by a commit that did not finish.
//!   No signed head covers them and nobody was told they exist; removing them is what start-up
//!   recovery does anyway.
//! - [`ProblemKind::Derived`]: tiles, the leaf-hash index, the size index, the stored compact
//!   range or the C2SP tree (tiles and compact range) disagree with the leaves — but the leaves reproduce the root of every signed head.
//!   These are functions of the leaves, so rewriting them from the leaves is safe.
//! - [`ProblemKind::Signed`]: a signature that does not verify, heads that shrink, or leaves
//!   that do not reproduce a signed root. Signed history cannot be repaired from this file;
//!   `--repair` refuses and the operator restores a backup.
//!
//! The check streams the leaves once and holds one tile per tile level, so memory does not
//! grow with the tree (apart from one small record per signed head).

use std::fmt;

use crypto::LogVerifyingKey;
use redb::{ReadableTable, ReadableTableMetadata};
use tlog::tile::{TILE_HEIGHT, TILE_WIDTH, Tile, TileId};
use tlog::{CompactRange, Hash, Sha3_256, Sha256, TreeHasher};
use wire::{LogEvent, SignedSth};

use crate::store::{
    C2SP_COMPACT_KEY, C2SP_TILES, COMPACT_KEY, LEAVES, LogStore, META, Result, STH_BY_SIZE, STHS, StoreError, TILES,
    decode_compact, decode_leaf, decode_sth, encode_compact,
};

/// How serious a problem is, and whether `--repair` may fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Rows beyond the committed head (never acknowledged): safe to remove.
    Uncommitted,
    /// Data derived from the leaves disagrees with them: safe to rebuild from the leaves.
    Derived,
    /// Signed history is broken: not repairable from this file.
    Signed,
}

/// One disagreement found by [`check`].
#[derive(Clone, Debug)]
pub struct Problem {
    /// Its kind.
    pub kind: ProblemKind,
    /// What disagrees with what.
    pub detail: String,
}

/// What [`check`] found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Size of the committed head.
    pub tree_size: u64,
    /// Leaves whose hashes were recomputed from their events.
    pub leaves_checked: u64,
    /// Signed tree heads whose signature and root were checked.
    pub sths_checked: u64,
    /// Tiles compared with the re-derived tree.
    pub tiles_checked: u64,
    /// Everything that disagrees (empty for a sound log).
    pub problems: Vec<Problem>,
}

/// Most problems listed in a report; a broken file can have one per leaf.
const MAX_PROBLEMS: usize = 100;

impl Report {
    /// No problem at all.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether every problem is one `--repair` may fix.
    #[must_use]
    pub fn is_repairable(&self) -> bool {
        self.problems.iter().all(|p| p.kind != ProblemKind::Signed)
    }

    fn add(&mut self, kind: ProblemKind, detail: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { kind, detail: detail.into() });
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tree size {}: {} leaves re-hashed, {} signed tree heads and {} tiles checked",
            self.tree_size, self.leaves_checked, self.sths_checked, self.tiles_checked
        )?;
        for p in &self.problems {
            writeln!(f, "{:?}: {}", p.kind, p.detail)?;
        }
        if self.problems.len() >= MAX_PROBLEMS {
            writeln!(f, "(only the first {MAX_PROBLEMS} problems are listed)")?;
        }
        Ok(())
    }
}

/// One signed head as the check needs it.
struct HeadRecord {
    size: u64,
    root: String,
    timestamp: u64,
}

/// Checks the whole log in `store` against the log key. Read-only.
///
/// # Errors
/// Only when storage cannot be read; everything that is read but wrong is a [`Problem`].
pub fn check(store: &LogStore, key: &LogVerifyingKey) -> Result<Report> {
    let mut report = Report::default();
    let snapshot = store.snapshot()?;
    let txn = &snapshot.txn;
    let meta = txn.open_table(META)?;
    let compact: CompactRange<Sha3_256> = match meta.get(COMPACT_KEY)? {
        Some(raw) => decode_compact(raw.value())?,
        None => CompactRange::new(),
    };
    let c2sp: CompactRange<Sha256> = match meta.get(C2SP_COMPACT_KEY)? {
        Some(raw) => decode_compact(raw.value())?,
        None => CompactRange::new(),
    };
    let heads = check_sths(txn, key, &mut report)?;
    let Some(head) = heads.last() else {
        if txn.open_table(LEAVES)?.len()? > 0 {
            report.add(ProblemKind::Signed, "leaves are stored but no signed tree head");
        }
        return Ok(report);
    };
    report.tree_size = head.size;
    if compact.size() != head.size || hex::encode(compact.root()) != head.root {
        report.add(
            ProblemKind::Derived,
            format!(
                "stored compact range (size {}) is not the newest signed head (size {})",
                compact.size(),
                head.size
            ),
        );
    }
    let (rebuilt, rebuilt_c2sp) = check_leaves(txn, head.size, &heads, &mut report)?;
    if rebuilt.hashes() != compact.hashes() && compact.size() == head.size {
        report.add(ProblemKind::Derived, "stored compact range differs from the re-derived one");
    }
    if c2sp.size() != head.size {
        report.add(
            ProblemKind::Derived,
            format!(
                "the C2SP tree covers {} leaves, the head {} (start-up or --repair builds it)",
                c2sp.size(),
                head.size
            ),
        );
    } else if rebuilt_c2sp.hashes() != c2sp.hashes() {
        report.add(ProblemKind::Derived, "stored C2SP compact range differs from the re-derived one");
    }
    // The runs only ever cover committed leaves; the leaves after them are indexed in memory
    // from the log at each open.
    let (_, problems) = store.index.check(txn, head.size)?;
    for problem in problems {
        report.add(ProblemKind::Derived, problem);
    }
    check_size_index(txn, &heads, &mut report)?;
    Ok(report)
}

/// Every STH: signature and version, sizes and timestamps in order. Returns them oldest first.
fn check_sths(txn: &redb::ReadTransaction, key: &LogVerifyingKey, report: &mut Report) -> Result<Vec<HeadRecord>> {
    let mut heads: Vec<HeadRecord> = Vec::new();
    for row in txn.open_table(STHS)?.iter()? {
        let (ts, raw) = row?;
        report.sths_checked += 1;
        let sth: SignedSth = match decode_sth(raw.value()) {
            Ok(sth) => sth,
            Err(e) => {
                report.add(ProblemKind::Signed, format!("STH at {}: {e}", ts.value()));
                continue;
            }
        };
        if let Err(e) = sth.verify(key) {
            report.add(ProblemKind::Signed, format!("STH of size {} at {}: {e}", sth.body.tree_size, ts.value()));
        }
        if sth.body.timestamp != ts.value() {
            report.add(
                ProblemKind::Signed,
                format!("STH stored under {} says timestamp {}", ts.value(), sth.body.timestamp),
            );
        }
        if let Some(previous) = heads.last()
            && sth.body.tree_size < previous.size
        {
            report.add(
                ProblemKind::Signed,
                format!(
                    "STH at {} has size {} after one of size {}",
                    sth.body.timestamp, sth.body.tree_size, previous.size
                ),
            );
        }
        heads.push(HeadRecord {
            size: sth.body.tree_size,
            root: sth.body.sha3_root.to_ascii_lowercase(),
            timestamp: sth.body.timestamp,
        });
    }
    Ok(heads)
}

/// Streams the leaves: recomputes each leaf hash from its event, re-derives the tree and the
/// C2SP tree, checks each signed root at its size and each tile of both. Returns the
/// re-derived compact ranges at `size`.
fn check_leaves(
    txn: &redb::ReadTransaction,
    size: u64,
    heads: &[HeadRecord],
    report: &mut Report,
) -> Result<(CompactRange<Sha3_256>, CompactRange<Sha256>)> {
    let leaves = txn.open_table(LEAVES)?;
    let tiles = txn.open_table(TILES)?;
    let c2sp_tiles = txn.open_table(C2SP_TILES)?;
    let mut compact = CompactRange::<Sha3_256>::new();
    let mut building = TileBuilder::default();
    let mut c2sp = CompactRange::<Sha256>::new();
    let mut c2sp_building = TileBuilder::default();
    let mut next_head = 0;
    let mut check_roots = |compact: &CompactRange<Sha3_256>, report: &mut Report| {
        while let Some(head) = heads.get(next_head)
            && head.size <= compact.size()
        {
            if head.size == compact.size() && hex::encode(compact.root()) != head.root {
                report.add(
                    ProblemKind::Signed,
                    format!("the leaves do not reproduce the root signed at {} for size {}", head.timestamp, head.size),
                );
            }
            next_head += 1;
        }
    };
    check_roots(&compact, report);
    for row in leaves.iter()? {
        let (index, raw) = row?;
        let index = index.value();
        if index >= size {
            report.add(ProblemKind::Uncommitted, format!("leaf {index} lies beyond the head (size {size})"));
            continue;
        }
        if index != compact.size() {
            report.add(ProblemKind::Signed, format!("leaf {} is missing", compact.size()));
            return Ok((compact, c2sp));
        }
        let leaf = decode_leaf(index, raw.value())?;
        report.leaves_checked += 1;
        let recomputed = serde_json::from_slice::<LogEvent>(&leaf.event_json)
            .map_err(|e| e.to_string())
            .and_then(|event| event.leaf_hash().map_err(|e| e.to_string()));
        match recomputed {
            Ok(hash) if hash == leaf.leaf_hash => {}
            Ok(_) => report.add(ProblemKind::Signed, format!("leaf {index}: its event does not hash to its leaf hash")),
            Err(e) => report.add(ProblemKind::Signed, format!("leaf {index}: event does not parse: {e}")),
        }
        for (id, tile) in building.append(&mut compact, leaf.leaf_hash) {
            compare_tile(&tiles, "tile", id, &tile, report)?;
        }
        for (id, tile) in c2sp_building.append(&mut c2sp, Sha256::hash_leaf(&leaf.event_json)) {
            compare_tile(&c2sp_tiles, "C2SP tile", id, &tile, report)?;
        }
        check_roots(&compact, report);
    }
    if compact.size() < size {
        report
            .add(ProblemKind::Signed, format!("the head covers {size} leaves but only {} are stored", compact.size()));
    }
    for (id, tile) in building.partial() {
        compare_tile(&tiles, "tile", id, &tile, report)?;
    }
    for (id, tile) in c2sp_building.partial() {
        compare_tile(&c2sp_tiles, "C2SP tile", id, &tile, report)?;
    }
    check_tiles_beyond(&tiles, "tile", size, report)?;
    check_tiles_beyond(&c2sp_tiles, "C2SP tile", size, report)?;
    Ok((compact, c2sp))
}

/// The tiles being re-derived, one per tile level.
#[derive(Default)]
struct TileBuilder {
    levels: Vec<(u64, Tile)>,
}

impl TileBuilder {
    /// Appends a leaf to `compact` and pushes each tile base node it completes; returns the
    /// tiles that became full.
    fn append<H: TreeHasher>(&mut self, compact: &mut CompactRange<H>, leaf_hash: Hash) -> Vec<(TileId, Tile)> {
        let mut finished = Vec::new();
        compact.append(leaf_hash, |node, hash| {
            if node.level % TILE_HEIGHT == 0
                && let Some(done) = self.push::<H>(node.level / TILE_HEIGHT, *hash)
            {
                finished.push(done);
            }
        });
        finished
    }

    /// Pushes a base node of tile level `level`; returns the tile if it became full.
    fn push<H: TreeHasher>(&mut self, level: u8, hash: Hash) -> Option<(TileId, Tile)> {
        let level_index = usize::from(level);
        while self.levels.len() <= level_index {
            self.levels.push((0, Tile::new()));
        }
        let (index, tile) = &mut self.levels[level_index];
        // A full tile is taken out below, so a push never fails.
        tile.push_base::<H>(hash).ok()?;
        if tile.is_full() {
            let done = (TileId { level, index: *index }, std::mem::take(tile));
            *index += 1;
            return Some(done);
        }
        None
    }

    /// The non-empty partial tiles at the end.
    fn partial(self) -> impl Iterator<Item = (TileId, Tile)> {
        self.levels
            .into_iter()
            .enumerate()
            .filter(|(_, (_, tile))| tile.width() > 0)
            .map(|(level, (index, tile))| (TileId { level: u8::try_from(level).unwrap_or(u8::MAX), index }, tile))
    }
}

/// Compares a re-derived tile with the stored one; `what` names the tree in problems.
fn compare_tile(
    tiles: &redb::ReadOnlyTable<(u8, u64), &[u8]>,
    what: &str,
    id: TileId,
    derived: &Tile,
    report: &mut Report,
) -> Result<()> {
    report.tiles_checked += 1;
    match tiles.get((id.level, id.index))? {
        None => report.add(ProblemKind::Derived, format!("{what} {id:?} is missing")),
        Some(raw) => match Tile::from_bytes(raw.value()) {
            Ok(stored) if stored.base() == derived.base() => {}
            Ok(stored) if stored.width() > derived.width() && stored.base().starts_with(derived.base()) => report.add(
                ProblemKind::Uncommitted,
                format!("{what} {id:?} holds {} nodes, the head covers {}", stored.width(), derived.width()),
            ),
            Ok(_) => report.add(ProblemKind::Derived, format!("{what} {id:?} differs from the re-derived tree")),
            Err(e) => report.add(ProblemKind::Derived, format!("{what} {id:?} does not parse: {e}")),
        },
    }
    Ok(())
}

/// Tiles that lie wholly beyond the head.
fn check_tiles_beyond(
    tiles: &redb::ReadOnlyTable<(u8, u64), &[u8]>,
    what: &str,
    size: u64,
    report: &mut Report,
) -> Result<()> {
    for row in tiles.iter()? {
        let (key, _) = row?;
        let (level, index) = key.value();
        let count = size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT)).unwrap_or(0);
        if index * TILE_WIDTH as u64 >= count {
            report.add(ProblemKind::Uncommitted, format!("{what} ({level}, {index}) lies beyond the head"));
        }
    }
    Ok(())
}

/// `tree_size -> first STH of that size` names, for each size, the oldest STH of that size.
fn check_size_index(txn: &redb::ReadTransaction, heads: &[HeadRecord], report: &mut Report) -> Result<()> {
    let by_size = txn.open_table(STH_BY_SIZE)?;
    let mut expected = std::collections::BTreeMap::new();
    for head in heads {
        expected.entry(head.size).or_insert(head.timestamp);
    }
    let mut stored = std::collections::BTreeMap::new();
    for row in by_size.iter()? {
        let (size, ts) = row?;
        stored.insert(size.value(), ts.value());
    }
    if stored != expected {
        report.add(ProblemKind::Derived, "the size index of signed tree heads differs from the heads");
    }
    Ok(())
}

/// What [`repair`] did.
#[derive(Clone, Debug)]
pub enum Repaired {
    /// The log was sound; nothing was written.
    NothingToDo,
    /// Rows beyond the head were removed and derived data rebuilt from the leaves.
    Rebuilt,
}

/// Why [`repair`] refused.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// Signed history is broken.
    #[error("signed history is broken; this cannot be repaired from the file (restore a backup)\n{0}")]
    NotRepairable(Report),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StoreError),
}

/// Repairs what is provably safe to repair (see the module docs) and checks again.
///
/// # Errors
/// [`RepairError::NotRepairable`] when a [`ProblemKind::Signed`] problem exists (nothing is
/// written), or storage failure.
pub fn repair(store: &LogStore, key: &LogVerifyingKey) -> Result<(Repaired, Report), RepairError> {
    let before = check(store, key)?;
    if before.is_clean() {
        return Ok((Repaired::NothingToDo, before));
    }
    if !before.is_repairable() {
        return Err(RepairError::NotRepairable(before));
    }
    store.rebuild_derived(before.tree_size)?;
    let after = check(store, key)?;
    Ok((Repaired::Rebuilt, after))
}

impl LogStore {
    /// Removes rows beyond `size`, then rewrites tiles, the compact range, the C2SP tree and
    /// the size index from the first `size` leaves and the stored STHs, in one durable
    /// transaction, and then the leaf-hash index file. Only for [`repair`], after the leaves
    /// reproduced every signed root.
    fn rebuild_derived(&self, size: u64) -> Result<()> {
        self.write_raw(|txn| {
            let mut leaves = txn.open_table(LEAVES)?;
            let beyond: Vec<u64> =
                leaves.range(size..)?.map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
            for i in beyond {
                leaves.remove(i)?;
            }
            let mut tiles = txn.open_table(TILES)?;
            tiles.retain(|_, _| false)?;
            let mut c2sp_tiles = txn.open_table(C2SP_TILES)?;
            c2sp_tiles.retain(|_, _| false)?;
            let mut compact = CompactRange::<Sha3_256>::new();
            let mut building = TileBuilder::default();
            let mut c2sp = CompactRange::<Sha256>::new();
            let mut c2sp_building = TileBuilder::default();
            for row in leaves.range(..size)? {
                let (i, raw) = row?;
                let leaf = decode_leaf(i.value(), raw.value())?;
                for (id, tile) in building.append(&mut compact, leaf.leaf_hash) {
                    tiles.insert((id.level, id.index), tile.to_bytes().as_slice())?;
                }
                for (id, tile) in c2sp_building.append(&mut c2sp, Sha256::hash_leaf(&leaf.event_json)) {
                    c2sp_tiles.insert((id.level, id.index), tile.to_bytes().as_slice())?;
                }
            }
            for (id, tile) in building.partial() {
                tiles.insert((id.level, id.index), tile.to_bytes().as_slice())?;
            }
            for (id, tile) in c2sp_building.partial() {
                c2sp_tiles.insert((id.level, id.index), tile.to_bytes().as_slice())?;
            }
            let mut meta = txn.open_table(META)?;
            meta.insert(COMPACT_KEY, encode_compact(&compact).as_slice())?;
            meta.insert(C2SP_COMPACT_KEY, encode_compact(&c2sp).as_slice())?;
            drop(meta);
            let mut by_size = txn.open_table(STH_BY_SIZE)?;
            by_size.retain(|_, _| false)?;
            for row in txn.open_table(STHS)?.iter()? {
                let (ts, raw) = row?;
                let sth = decode_sth(raw.value())?;
                if by_size.get(sth.body.tree_size)?.is_none() {
                    by_size.insert(sth.body.tree_size, ts.value())?;
                }
            }
            Ok(())
        })?;
        self.index.rebuild(self.database(), size)
    }
}
