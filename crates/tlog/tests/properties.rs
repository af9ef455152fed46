//! Properties of the tree math on random trees, checked against the RFC 9162 oracle: proofs
//! served from stored nodes (as a map or as fat tiles) equal the RFC's, verify, and stop
//! verifying when anything is changed; the compact range always has the RFC root.

mod oracle;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use proptest::sample::Index;
use tlog::tile::{self, Tile, TileId};
use tlog::{
    CompactRange, Hash, NodeId, ProofNodes, Sha256, TreeHasher, consistency_nodes, inclusion_nodes, root_from_nodes,
    root_nodes, verify_consistency, verify_inclusion,
};

type H = Sha256;

/// A log grown leaf by leaf, its perfect nodes kept twice: in a map and in fat tiles, both
/// written only from `CompactRange::append` visits, as storage will.
struct Log {
    leaves: Vec<Hash>,
    range: CompactRange<H>,
    nodes: HashMap<NodeId, Hash>,
    tiles: BTreeMap<TileId, Tile>,
}

impl Log {
    fn grow(seed: u64, size: u64) -> Log {
        let mut log =
            Log { leaves: Vec::new(), range: CompactRange::new(), nodes: HashMap::new(), tiles: BTreeMap::new() };
        for i in 0..size {
            let leaf = H::hash_leaf(&[seed.to_le_bytes(), i.to_le_bytes()].concat());
            log.leaves.push(leaf);
            let (nodes, tiles) = (&mut log.nodes, &mut log.tiles);
            log.range.append(leaf, |id, hash| {
                assert_eq!(nodes.insert(id, *hash), None, "{id:?} visited twice");
                store_in_tile(tiles, id, hash);
            });
        }
        log
    }

    /// The first `size` leaves, the tree a historic proof is about.
    fn prefix(&self, size: u64) -> &[Hash] {
        &self.leaves[..usize::try_from(size).expect("test trees are small")]
    }

    fn leaf(&self, index: u64) -> Hash {
        self.leaves[usize::try_from(index).expect("test trees are small")]
    }

    fn root(&self, size: u64) -> Hash {
        oracle::mth::<H>(self.prefix(size))
    }

    /// Serves a proof from the node map, checking that it only asks for perfect nodes of the
    /// tree it is about.
    fn serve(&self, nodes: &ProofNodes, size: u64) -> Vec<Hash> {
        let hashes: Vec<Hash> = nodes.ids().iter().map(|id| self.stored(*id, size)).collect();
        nodes.rehash::<H>(&hashes).expect("one hash per id")
    }

    fn stored(&self, id: NodeId, size: u64) -> Hash {
        assert!(id.first_leaf() + (1 << id.level) <= size, "{id:?} is not in tree {size}");
        *self.nodes.get(&id).expect("every perfect node was visited")
    }

    /// Serves a proof from tiles: group the ids by tile, read each tile once (through its
    /// bytes, as from disk), pick the nodes out.
    fn serve_from_tiles(&self, nodes: &ProofNodes) -> Vec<Hash> {
        let wanted: BTreeSet<TileId> = nodes.ids().iter().map(|id| tile::locate(*id).0).collect();
        let read: BTreeMap<TileId, Tile> = wanted.into_iter().map(|id| (id, self.read_tile(id))).collect();
        let hashes: Vec<Hash> = nodes
            .ids()
            .iter()
            .map(|id| {
                let (tile_id, level, position) = tile::locate(*id);
                read[&tile_id].node(level, position).expect("tile holds every visited node")
            })
            .collect();
        nodes.rehash::<H>(&hashes).expect("one hash per id")
    }

    fn read_tile(&self, id: TileId) -> Tile {
        let bytes = self.tiles.get(&id).expect("tile was written").to_bytes();
        Tile::from_bytes(&bytes).expect("written tiles parse")
    }
}

/// Base nodes go into their tile; every other visited node must already be derived there.
fn store_in_tile(tiles: &mut BTreeMap<TileId, Tile>, id: NodeId, hash: &Hash) {
    let (tile_id, level, position) = tile::locate(id);
    if level == 0 {
        let tile = tiles.entry(tile_id).or_default();
        assert_eq!(position, tile.width() as u64, "base nodes arrive in order");
        tile.push_base::<H>(*hash).expect("tile has room");
    } else {
        let derived = tiles.get(&tile_id).and_then(|tile| tile.node(level, position));
        assert_eq!(derived, Some(*hash), "tile derived {id:?}");
    }
}

/// Tree sizes up to 2000, often right at a power of two or one or two away from it.
fn tree_size() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=2000, (1u32..=11, 0u64..=4).prop_map(|(k, offset)| ((1 << k) + offset).saturating_sub(2).max(1)),]
}

/// A historic tree size, and how much further the log has grown since.
fn sizes() -> impl Strategy<Value = (u64, u64)> {
    (tree_size(), 0u64..300).prop_map(|(size, growth)| (size, size + growth))
}

fn pick(index: Index, below: u64) -> u64 {
    index.index(usize::try_from(below).expect("test trees are small")) as u64
}

fn flip(hash: &Hash, bit: Index) -> Hash {
    let bit = bit.index(256);
    let mut flipped = *hash;
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

/// Nearby positions a tampered proof might claim, plus a random one.
fn other_positions(a: u64, b: u64, random: (u64, u64)) -> Vec<(u64, u64)> {
    let moves = [
        (a + 1, b),
        (a.wrapping_sub(1), b),
        (a ^ 1, b),
        (a * 2, b),
        (a, b + 1),
        (a, b - 1),
        (a, b * 2),
        (a, b / 2),
        random,
    ];
    moves.into_iter().filter(|&other| other != (a, b)).collect()
}

fn config() -> ProptestConfig {
    // Each case grows a tree of up to 2300 leaves and runs the slow oracle over it.
    ProptestConfig::with_cases(64)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inclusion_proofs_served_from_storage_are_the_rfc_paths_and_verify(
        (size, grown) in sizes(), seed: u64, index: Index,
    ) {
        let log = Log::grow(seed, grown);
        let index = pick(index, size);
        let proof = log.serve(&inclusion_nodes(index, size).expect("index < size"), size);
        let rfc = oracle::path::<H>(index as usize, log.prefix(size));
        prop_assert_eq!(&proof, &rfc);
        let root = log.root(size);
        prop_assert_eq!(verify_inclusion::<H>(index, size, &log.leaf(index), &proof, &root), Ok(()));
    }

    #[test]
    fn consistency_proofs_served_from_storage_are_the_rfc_proofs_and_verify(
        (size2, grown) in sizes(), seed: u64, size1: Index,
    ) {
        let log = Log::grow(seed, grown);
        let size1 = 1 + pick(size1, size2);
        let proof = log.serve(&consistency_nodes(size1, size2).expect("0 < size1 <= size2"), size2);
        let rfc = oracle::proof::<H>(size1 as usize, log.prefix(size2));
        prop_assert_eq!(&proof, &rfc);
        let (root1, root2) = (log.root(size1), log.root(size2));
        prop_assert_eq!(verify_consistency::<H>(size1, size2, &proof, &root1, &root2), Ok(()));
    }

    #[test]
    fn any_flipped_bit_in_an_inclusion_proof_root_or_leaf_is_rejected(
        size in tree_size(), seed: u64, index: Index, entry: Index, bit: Index,
    ) {
        let log = Log::grow(seed, size);
        let index = pick(index, size);
        let proof = log.serve(&inclusion_nodes(index, size).expect("index < size"), size);
        let (leaf, root) = (log.leaf(index), log.root(size));
        if !proof.is_empty() {
            let mut tampered = proof.clone();
            let entry = entry.index(proof.len());
            tampered[entry] = flip(&proof[entry], bit);
            prop_assert!(verify_inclusion::<H>(index, size, &leaf, &tampered, &root).is_err());
        }
        prop_assert!(verify_inclusion::<H>(index, size, &leaf, &proof, &flip(&root, bit)).is_err());
        prop_assert!(verify_inclusion::<H>(index, size, &flip(&leaf, bit), &proof, &root).is_err());
    }

    #[test]
    fn any_flipped_bit_in_a_consistency_proof_or_either_root_is_rejected(
        size2 in tree_size(), seed: u64, size1: Index, entry: Index, bit: Index,
    ) {
        let log = Log::grow(seed, size2);
        let size1 = 1 + pick(size1, size2);
        let proof = log.serve(&consistency_nodes(size1, size2).expect("0 < size1 <= size2"), size2);
        let (root1, root2) = (log.root(size1), log.root(size2));
        if !proof.is_empty() {
            let mut tampered = proof.clone();
            let entry = entry.index(proof.len());
            tampered[entry] = flip(&proof[entry], bit);
            prop_assert!(verify_consistency::<H>(size1, size2, &tampered, &root1, &root2).is_err());
        }
        let bad1 = verify_consistency::<H>(size1, size2, &proof, &flip(&root1, bit), &root2);
        let bad2 = verify_consistency::<H>(size1, size2, &proof, &root1, &flip(&root2, bit));
        prop_assert!(bad1.is_err() && bad2.is_err());
    }

    /// RFC 9162 verification binds a proof to the left/right pattern of its path, not to the
    /// exact index and size: leaf 0 of 3 and leaf 0 of 4 take the same path. So a changed
    /// index or size must fail exactly when the oracle's path shape changes.
    #[test]
    fn an_inclusion_proof_verifies_elsewhere_only_where_the_path_has_the_same_shape(
        size in tree_size(), seed: u64, index: Index, other_size in 1u64..4100, other_index: Index,
    ) {
        let log = Log::grow(seed, size);
        let index = pick(index, size);
        let proof = log.serve(&inclusion_nodes(index, size).expect("index < size"), size);
        let (leaf, root) = (log.leaf(index), log.root(size));
        let random = (pick(other_index, other_size), other_size);
        for (i, n) in other_positions(index, size, random).into_iter().filter(|&(i, n)| i < n) {
            let same_shape = oracle::path_shape(i, n) == oracle::path_shape(index, size);
            let accepted = verify_inclusion::<H>(i, n, &leaf, &proof, &root).is_ok();
            prop_assert_eq!(accepted, same_shape, "proof for {} of {} checked as {} of {}", index, size, i, n);
        }
    }

    /// The consistency counterpart of the previous property.
    #[test]
    fn a_consistency_proof_verifies_elsewhere_only_between_sizes_of_the_same_shape(
        size2 in tree_size(), seed: u64, size1: Index, other_size2 in 1u64..4100, other_size1: Index,
    ) {
        let log = Log::grow(seed, size2);
        let size1 = 1 + pick(size1, size2);
        let proof = log.serve(&consistency_nodes(size1, size2).expect("0 < size1 <= size2"), size2);
        let (root1, root2) = (log.root(size1), log.root(size2));
        let random = (1 + pick(other_size1, other_size2), other_size2);
        let others = other_positions(size1, size2, random).into_iter().filter(|&(m, n)| 0 < m && m <= n);
        for (m, n) in others {
            let same_shape = oracle::proof_shape(m, n) == oracle::proof_shape(size1, size2);
            let accepted = verify_consistency::<H>(m, n, &proof, &root1, &root2).is_ok();
            prop_assert_eq!(accepted, same_shape, "proof {}->{} checked as {}->{}", size1, size2, m, n);
        }
    }

    #[test]
    fn compact_range_root_nodes_and_the_rfc_agree_on_roots(
        size in tree_size(), seed: u64, prefix: Index,
    ) {
        let log = Log::grow(seed, size);
        let mut replay = CompactRange::<H>::new();
        for (n, leaf) in (1..=size).zip(&log.leaves) {
            replay.append(*leaf, |_, _| {});
            let stored: Vec<Hash> = root_nodes(n).into_iter().map(|id| log.stored(id, n)).collect();
            prop_assert_eq!(replay.hashes(), stored.as_slice());
            prop_assert_eq!(root_from_nodes::<H>(&stored), replay.root());
        }
        prop_assert_eq!(log.range.root(), log.root(size));
        let prefix = pick(prefix, size + 1);
        let stored: Vec<Hash> = root_nodes(prefix).into_iter().map(|id| log.stored(id, prefix)).collect();
        prop_assert_eq!(root_from_nodes::<H>(&stored), log.root(prefix));
    }

    #[test]
    fn a_compact_range_restored_from_stored_nodes_continues_like_the_original(
        size in tree_size(), seed: u64, cut: Index,
    ) {
        let log = Log::grow(seed, size);
        let cut = pick(cut, size + 1);
        let stored: Vec<Hash> = root_nodes(cut).into_iter().map(|id| log.stored(id, cut)).collect();
        let mut restored = CompactRange::<H>::from_parts(cut, stored).expect("one hash per set bit");
        for leaf in &log.leaves[cut as usize..] {
            restored.append(*leaf, |_, _| {});
        }
        prop_assert_eq!(restored.size(), log.range.size());
        prop_assert_eq!(restored.hashes(), log.range.hashes());
    }

    #[test]
    fn proofs_served_from_fat_tiles_are_the_rfc_proofs_at_any_historic_size(
        (size, grown) in sizes(), seed: u64, index: Index, size1: Index,
    ) {
        let log = Log::grow(seed, grown);
        let index = pick(index, size);
        let inclusion = log.serve_from_tiles(&inclusion_nodes(index, size).expect("index < size"));
        prop_assert_eq!(inclusion, oracle::path::<H>(index as usize, log.prefix(size)));
        let size1 = 1 + pick(size1, size);
        let consistency = log.serve_from_tiles(&consistency_nodes(size1, size).expect("ordered"));
        prop_assert_eq!(consistency, oracle::proof::<H>(size1 as usize, log.prefix(size)));
    }
}

proptest! {
    #[test]
    fn a_tile_survives_its_byte_form(width in 1usize..=tile::TILE_WIDTH, seed: u64) {
        let mut tile = Tile::new();
        for i in 0..width {
            tile.push_base::<H>(H::hash_leaf(&[seed.to_le_bytes(), i.to_le_bytes()].concat()))
                .expect("tile has room");
        }
        let bytes = tile.to_bytes();
        prop_assert_eq!(&bytes[..32 * width], tile.base().as_flattened());
        prop_assert_eq!(Tile::from_bytes(&bytes), Ok(tile));
    }

    #[test]
    fn tile_bytes_parse_only_at_a_fat_tile_length(len in 0usize..20_000) {
        // Level r of a tile of width w holds w >> r hashes, for r in 0..8.
        let fat_len = |width: usize| 32 * (0..8).map(|r| width >> r).sum::<usize>();
        let valid = (1..=tile::TILE_WIDTH).any(|width| fat_len(width) == len);
        let parsed = Tile::from_bytes(&vec![0; len]);
        prop_assert_eq!(parsed.is_ok(), valid, "length {}", len);
        if let Ok(tile) = parsed {
            prop_assert_eq!(fat_len(tile.width()), len);
        }
    }
}

#[test]
fn compact_range_root_is_the_rfc_root_for_every_prefix_up_to_600() {
    let log = Log::grow(7, 600);
    let mut replay = CompactRange::<H>::new();
    assert_eq!(replay.root(), log.root(0));
    for (n, leaf) in (1..).zip(&log.leaves) {
        replay.append(*leaf, |_, _| {});
        assert_eq!(replay.root(), log.root(n), "size {n}");
    }
}

#[test]
fn tiles_serve_proofs_across_three_tile_levels() {
    // 2^16 + 300 leaves: full level-0 and level-1 tiles, partial ones, and a level-2 tile.
    let size = (1 << 16) + 300;
    let log = Log::grow(11, size);
    assert!(log.tiles.keys().any(|id| id.level == 2));
    let root = log.range.root();
    for index in [0, 255, 256, 65_535, 65_536, size - 1] {
        let nodes = inclusion_nodes(index, size).expect("index < size");
        let proof = log.serve_from_tiles(&nodes);
        assert_eq!(proof, log.serve(&nodes, size), "leaf {index}");
        assert_eq!(verify_inclusion::<H>(index, size, &log.leaf(index), &proof, &root), Ok(()));
    }
    for size1 in [1, 256, 257, 65_536, 65_537, size - 1] {
        let nodes = consistency_nodes(size1, size).expect("0 < size1 <= size");
        let proof = log.serve_from_tiles(&nodes);
        assert_eq!(proof, log.serve(&nodes, size), "from {size1}");
        let root1 =
            root_from_nodes::<H>(&root_nodes(size1).iter().map(|id| log.stored(*id, size1)).collect::<Vec<_>>());
        assert_eq!(verify_consistency::<H>(size1, size, &proof, &root1, &root), Ok(()));
    }
    assert_eq!(log.serve(&inclusion_nodes(0, size).expect("index < size"), size), oracle::path::<H>(0, &log.leaves));
}
