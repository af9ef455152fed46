//! Hash tiles: how storage groups perfect nodes so that any node is one tile read away.
//!
//! The layout follows C2SP tlog-tiles (tiles of height 8, up to 256 base hashes), extended
//! to "fat" tiles that also keep the 7 interior levels derived from the base, so serving a
//! proof never re-hashes inside a tile. The first `32 * width` bytes of a serialized fat tile
//! are exactly the tlog-tiles tile.

use crate::{Error, Hash, NodeId, TreeHasher};

/// Tree levels covered by one tile: base hashes sit at heights `8 * level`.
pub const TILE_HEIGHT: u8 = 8;
/// Base hashes in a full tile.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

const HASH_LEN: usize = 32;

/// A tile's place in the tile grid: tile `index` of tile level `level` has base hashes that
/// are the nodes `(8 * level, 256 * index ..)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Tile level: base hashes are tree nodes at height `8 * level`.
    pub level: u8,
    /// Position among the tiles of this level, left to right.
    pub index: u64,
}

/// Where a node lives: its tile, its level inside the tile (`0..8`) and its position on that
/// level. Node `(8 * L + r, k)` lives in tile `(L, k >> (8 - r))` at level `r`, position
/// `k mod 2^(8 - r)`.
pub fn locate(node: NodeId) -> (TileId, u8, u64) {
    let level_in_tile = node.level % TILE_HEIGHT;
    // Levels from the node up to the tile's top edge: how far its index is from the tile's.
    let rise = TILE_HEIGHT - level_in_tile;
    let tile = TileId { level: node.level / TILE_HEIGHT, index: node.index >> rise };
    (tile, level_in_tile, node.index & ((1 << rise) - 1))
}

/// A fat tile: up to 256 base hashes, then every complete interior node above them on tile
/// levels 1..=7 (level `r` holds `width >> r` hashes). The tile's own root is not kept: it is
/// a base hash of the tile above.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tile {
    /// `levels[r]` holds the nodes `r` levels above the base, left to right.
    levels: [Vec<Hash>; TILE_HEIGHT as usize],
}

impl Tile {
    /// An empty tile (width 0), ready for [`Tile::push_base`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of base hashes.
    pub fn width(&self) -> usize {
        self.levels[0].len()
    }

    /// Whether the tile holds all [`TILE_WIDTH`] base hashes.
    pub fn is_full(&self) -> bool {
        self.width() == TILE_WIDTH
    }

    /// The base hashes: exactly the hashes of a C2SP tlog-tiles tile.
    pub fn base(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// The node at `level_in_tile` (0 is the base) and `position` as given by [`locate`], if
    /// the tile holds it yet.
    pub fn node(&self, level_in_tile: u8, position: u64) -> Option<Hash> {
        let level = self.levels.get(usize::from(level_in_tile))?;
        level.get(usize::try_from(position).ok()?).copied()
    }

    /// Appends a base hash and derives every interior node it completes.
    pub fn push_base<H: TreeHasher>(&mut self, hash: Hash) -> Result<(), Error> {
        if self.is_full() {
            return Err(Error::TileFull);
        }
        self.levels[0].push(hash);
        for level in 1..self.levels.len() {
            let below = &self.levels[level - 1];
            // A new pair is complete exactly when the level below reaches an even length.
            if below.len() % 2 == 1 {
                break;
            }
            let [.., left, right] = below.as_slice() else {
                break;
            };
            let parent = H::hash_children(left, right);
            self.levels[level].push(parent);
        }
        Ok(())
    }

    /// The serialized tile: level 0, then level 1, ... level 7, each left to right.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.levels.iter().flat_map(|level| level.as_flattened()).copied().collect()
    }

    /// Parses [`Tile::to_bytes`] output; the width follows from the length. Interior hashes
    /// are taken as stored, not recomputed: tiles come from this log's own storage.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tile, Error> {
        let (hashes, rest) = bytes.as_chunks::<HASH_LEN>();
        if !rest.is_empty() {
            return Err(Error::BadTile("length is not a whole number of hashes"));
        }
        let width = (1..=TILE_WIDTH)
            .find(|&width| stored_hashes(width) == hashes.len())
            .ok_or(Error::BadTile("length fits no tile width"))?;
        let mut tile = Tile::new();
        let mut remaining = hashes;
        for (r, level) in tile.levels.iter_mut().enumerate() {
            let (this_level, above) = remaining.split_at(width >> r);
            level.extend_from_slice(this_level);
            remaining = above;
        }
        Ok(tile)
    }
}

/// Hashes a fat tile of `width` base hashes stores on all its levels.
fn stored_hashes(width: usize) -> usize {
    (0..TILE_HEIGHT).map(|r| width >> r).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256;

    #[test]
    fn locate_maps_heights_to_tile_levels() {
        assert_eq!(locate(NodeId::new(0, 300)), (TileId { level: 0, index: 1 }, 0, 44));
        assert_eq!(locate(NodeId::new(7, 3)), (TileId { level: 0, index: 1 }, 7, 1));
        assert_eq!(locate(NodeId::new(8, 0)), (TileId { level: 1, index: 0 }, 0, 0));
        assert_eq!(locate(NodeId::new(9, 200)), (TileId { level: 1, index: 1 }, 1, 72));
    }

    #[test]
    fn push_base_derives_interior_nodes_as_pairs_complete() {
        let mut tile = Tile::new();
        let leaves: Vec<Hash> = (0..3u8).map(|i| Sha256::hash_leaf(&[i])).collect();
        for leaf in &leaves {
            tile.push_base::<Sha256>(*leaf).expect("tile has room");
        }
        assert_eq!(tile.node(1, 0), Some(Sha256::hash_children(&leaves[0], &leaves[1])));
        assert_eq!(tile.node(1, 1), None);
        assert_eq!(tile.node(8, 0), None);
    }

    #[test]
    fn a_full_tile_refuses_more_hashes() {
        let mut tile = Tile::new();
        for _ in 0..TILE_WIDTH {
            tile.push_base::<Sha256>([7; 32]).expect("tile has room");
        }
        assert!(tile.is_full());
        assert_eq!(tile.push_base::<Sha256>([7; 32]), Err(Error::TileFull));
        assert_eq!(tile.to_bytes().len(), 32 * (256 + 128 + 64 + 32 + 16 + 8 + 4 + 2));
    }

    #[test]
    fn from_bytes_rejects_empty_and_ragged_input() {
        assert_eq!(Tile::from_bytes(&[]), Err(Error::BadTile("length fits no tile width")));
        let ragged = Tile::from_bytes(&[0; 33]);
        assert_eq!(ragged, Err(Error::BadTile("length is not a whole number of hashes")));
    }
}
