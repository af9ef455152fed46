//! The compact range: the right edge of the tree, enough to append leaves and compute the
//! root without reading older nodes. Also root computation from stored perfect nodes.

use std::marker::PhantomData;

use crate::proof::level_u8;
use crate::{Error, Hash, NodeId, TreeHasher};

/// The right edge of the tree over leaves `[0, size)`: one perfect-subtree root per set bit of
/// `size`, largest (leftmost) first. This is all a log writer needs to keep in memory.
#[derive(Clone, Debug)]
pub struct CompactRange<H> {
    size: u64,
    hashes: Vec<Hash>,
    hasher: PhantomData<fn() -> H>,
}

impl<H: TreeHasher> Default for CompactRange<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: TreeHasher> CompactRange<H> {
    /// The empty tree.
    pub fn new() -> Self {
        CompactRange { size: 0, hashes: Vec::new(), hasher: PhantomData }
    }

    /// The range of a tree of `size` leaves from its [`root_nodes`] hashes, largest first.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, Error> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(Error::WrongHashCount { expected, got: hashes.len() });
        }
        Ok(CompactRange { size, hashes, hasher: PhantomData })
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first; their ids are [`root_nodes`]`(self.size())`.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The tree's root hash; [`TreeHasher::empty_root`] for the empty tree.
    pub fn root(&self) -> Hash {
        root_from_nodes::<H>(&self.hashes)
    }

    /// Appends one leaf. Calls `visit` for every perfect node the leaf completes: the leaf
    /// itself (level 0) first, then each merged parent bottom-up. Storage that writes every
    /// visited node holds every perfect node of the tree.
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves, which no log reaches.
    pub fn append(&mut self, leaf_hash: Hash, mut visit: impl FnMut(NodeId, &Hash)) {
        let mut node = NodeId::leaf(self.size);
        let mut hash = leaf_hash;
        visit(node, &hash);
        // Each trailing one bit of `size` is a perfect subtree of the current node's height
        // waiting, as the last entry of `hashes`, for a right sibling.
        for _ in 0..self.size.trailing_ones() {
            let left = self.hashes.pop().expect("invariant: one hash per set bit of size");
            hash = H::hash_children(&left, &hash);
            node = node.parent();
            visit(node, &hash);
        }
        self.hashes.push(hash);
        self.size = self.size.checked_add(1).expect("a tree holds at most u64::MAX leaves");
    }
}

/// The perfect nodes whose hashes make up the root of the tree of `size` leaves: one per set
/// bit of `size`, largest first. Fetch them and fold with [`root_from_nodes`] to get the root
/// at an old size.
pub fn root_nodes(size: u64) -> Vec<NodeId> {
    perfect_cover(0, size).collect()
}

/// The root of a tree from its [`root_nodes`] hashes, folded right to left; the empty slice
/// gives [`TreeHasher::empty_root`].
pub fn root_from_nodes<H: TreeHasher>(hashes: &[Hash]) -> Hash {
    fold_right::<H>(hashes).unwrap_or_else(H::empty_root)
}

/// Folds adjacent subtree roots, left to right in the tree, into the root of their union:
/// the RFC 9162 shape puts the smaller subtrees deeper on the right.
pub(crate) fn fold_right<H: TreeHasher>(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |right, left| H::hash_children(left, &right)))
}

/// The perfect nodes covering leaves `[start, end)`, largest first. Needs `start` to be a
/// multiple of the largest power of two not above `end - start`, so one node per set bit fits.
pub(crate) fn perfect_cover(start: u64, end: u64) -> impl Iterator<Item = NodeId> {
    let len = end - start;
    let mut next = start;
    (0..u64::BITS).rev().filter(move |bit| len >> bit & 1 == 1).map(move |bit| {
        let node = NodeId::new(level_u8(bit), next >> bit);
        next += 1 << bit;
        node
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256;

    #[test]
    fn from_parts_needs_one_hash_per_set_bit() {
        let err = CompactRange::<Sha256>::from_parts(5, vec![[0; 32]]);
        assert_eq!(err.map(|r| r.size()), Err(Error::WrongHashCount { expected: 2, got: 1 }));
        assert!(CompactRange::<Sha256>::from_parts(5, vec![[0; 32]; 2]).is_ok());
    }

    #[test]
    fn append_visits_the_leaf_then_each_completed_parent() {
        let mut range = CompactRange::<Sha256>::new();
        for leaf in 0..3u8 {
            range.append(Sha256::hash_leaf(&[leaf]), |_, _| {});
        }
        let mut visited = Vec::new();
        range.append(Sha256::hash_leaf(&[3]), |id, _| visited.push(id));
        assert_eq!(visited, [NodeId::new(0, 3), NodeId::new(1, 1), NodeId::new(2, 0)]);
        assert_eq!(range.hashes().len(), 1);
    }

    #[test]
    fn root_nodes_are_one_per_set_bit_largest_first() {
        assert!(root_nodes(0).is_empty());
        let want = [NodeId::new(2, 0), NodeId::new(1, 2), NodeId::new(0, 6)];
        assert_eq!(root_nodes(7), want);
    }

    #[test]
    fn empty_tree_root_is_the_empty_root() {
        assert_eq!(CompactRange::<Sha256>::new().root(), Sha256::empty_root());
        assert_eq!(root_from_nodes::<Sha256>(&[]), Sha256::empty_root());
    }
}
