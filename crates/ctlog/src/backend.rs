//! The narrow storage interface the sequencer writes through, and what each call promises.
//!
//! The log's state has one **commit point**: the *head*, the compact range of the tree together
//! with the newest signed tree head (STH) for it and the compact range of the C2SP view (the
//! RFC 6962 SHA-256 tree over the same entries, served as tlog-tiles). Everything else the
//! sequencer writes — leaves, the leaf-hash index, hash tiles of both trees — is either covered
//! by the head or garbage.
//!
//! # Durability
//! - A call that returns `Ok` is durable: its writes survive a crash or power loss.
//! - A call that returns `Err` has an **unknown outcome**: nothing, a prefix of its writes, or
//!   all of them may be durable ("failed but persisted"). The caller cannot tell which, so the
//!   sequencer treats every error as fatal: it stops, the process exits non-zero, and the
//!   service manager restarts it (like sunlight's `errFatal`). No caller was told "ok" about a
//!   write that returned `Err`.
//! - Writes of one [`Backend::commit_batch`] become durable in this order: leaves, index and
//!   tiles (of both trees) first, the head last. A crash (or a torn write) therefore leaves either the old head
//!   with some rows beyond it, or the new head with all its rows; never a head that covers rows
//!   that are missing. (redb commits the whole batch in one transaction, which is stronger.)
//!
//! # Recovery
//! [`Backend::discard_uncommitted`] runs before the sequencer starts: rows beyond the head
//! (leaves, index entries, tile nodes) were never acknowledged to anyone and are removed, so
//! the next batch writes over a consistent tree (sunlight's `LoadLog` likewise trusts only the
//! checkpoint). A head that does not verify with the log key or disagrees with the stored tree
//! is not recoverable automatically: start-up refuses and `paramant ctlog fsck` says why.

use std::collections::BTreeMap;

use tlog::tile::{Tile, TileId};
use tlog::{CompactRange, Hash, Sha3_256, Sha256};
use wire::SignedSth;

use crate::store::{LogStore, Result};

/// A batch the sequencer commits: new leaves (in index order), the tiles they changed, the
/// compact range of the new tree, and the STH that covers them.
pub struct Batch<'a> {
    /// `(leaf hash, canonical event JSON)` of each new leaf, in index order.
    pub leaves: &'a [(Hash, Vec<u8>)],
    /// Every tile the batch changed, in its new form.
    pub tiles: &'a BTreeMap<TileId, Tile>,
    /// The right edge of the new tree.
    pub compact: &'a CompactRange<Sha3_256>,
    /// Every tile of the C2SP (RFC 6962 SHA-256) tree the batch changed, in its new form.
    pub c2sp_tiles: &'a BTreeMap<TileId, Tile>,
    /// The right edge of the new C2SP tree (same size as `compact`); part of the head.
    pub c2sp_compact: &'a CompactRange<Sha256>,
    /// The signed head of the new tree.
    pub sth: &'a SignedSth,
}

/// The committed head: the compact range of the tree and the newest STH, if a log was ever
/// started in this store.
pub struct Head {
    /// The committed tree's right edge (empty for a new store).
    pub compact: CompactRange<Sha3_256>,
    /// The right edge of the C2SP (SHA-256) tree over the same leaves: as large as `compact`
    /// once [`Backend::complete_c2sp`] ran (smaller only in a store written before it existed).
    pub c2sp: CompactRange<Sha256>,
    /// The newest signed tree head.
    pub sth: Option<SignedSth>,
}

/// What start-up recovery removed beyond the head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Leaf rows at or beyond the head's size.
    pub leaves: u64,
    /// Tiles removed or cut back to the head's size.
    pub tiles: u64,
}

/// Storage as the sequencer (the only writer of the tree) sees it. See the module docs for
/// what `Ok` and `Err` promise and what a crash leaves.
pub trait Backend: Send + Sync + 'static {
    /// The committed head.
    ///
    /// # Errors
    /// Storage failure or an undecodable head.
    fn head(&self) -> Result<Head>;

    /// The stored tile `id`, if any part of it was ever committed.
    ///
    /// # Errors
    /// Storage failure or an undecodable tile.
    fn tile(&self, id: TileId) -> Result<Option<Tile>>;

    /// The stored C2SP (SHA-256) tile `id`, if any part of it was ever committed.
    ///
    /// # Errors
    /// Storage failure or an undecodable tile.
    fn c2sp_tile(&self, id: TileId) -> Result<Option<Tile>>;

    /// Makes `batch` durable, starting at leaf index `first_index` (the head's size).
    ///
    /// # Errors
    /// Any error: the outcome is unknown (see the module docs).
    fn commit_batch(&self, first_index: u64, batch: &Batch<'_>) -> Result<()>;

    /// Makes an STH durable that covers no new leaves (the periodic refresh); it becomes the
    /// head's STH.
    ///
    /// # Errors
    /// Any error: the outcome is unknown.
    fn commit_sth(&self, sth: &SignedSth) -> Result<()>;

    /// Removes every row beyond the head (see the module docs). Idempotent.
    ///
    /// # Errors
    /// Any error: the outcome is unknown; recovery runs again at the next start.
    fn discard_uncommitted(&self) -> Result<Discarded>;

    /// Builds the C2SP (SHA-256) tree up to the head's size from the stored leaves, durably;
    /// returns how many leaves it hashed (0 when it already covers the head). Runs after
    /// [`Backend::discard_uncommitted`]: the C2SP tree is derived data, like the tiles.
    ///
    /// # Errors
    /// Any error: the outcome is unknown; it runs again at the next start.
    fn complete_c2sp(&self) -> Result<u64>;
}

impl Backend for LogStore {
    fn head(&self) -> Result<Head> {
        LogStore::head(self)
    }
    fn tile(&self, id: TileId) -> Result<Option<Tile>> {
        LogStore::tile(self, id)
    }
    fn commit_batch(&self, first_index: u64, batch: &Batch<'_>) -> Result<()> {
        LogStore::commit_batch(self, first_index, batch)
    }
    fn commit_sth(&self, sth: &SignedSth) -> Result<()> {
        LogStore::commit_sth(self, sth)
    }
    fn discard_uncommitted(&self) -> Result<Discarded> {
        LogStore::discard_uncommitted(self)
    }
    fn c2sp_tile(&self, id: TileId) -> Result<Option<Tile>> {
        LogStore::c2sp_tile(self, id)
    }
    fn complete_c2sp(&self) -> Result<u64> {
        LogStore::complete_c2sp(self)
    }
}
