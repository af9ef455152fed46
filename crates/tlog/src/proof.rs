//! Proof generation: which stored (perfect) nodes an inclusion or consistency proof needs, and
//! how to turn their hashes into the RFC 9162 proof. Modelled on transparency-dev/merkle's
//! `proof.Nodes`, so storage can fetch nodes by id without knowing the tree shape.

use std::ops::Range;

use crate::compact::{fold_right, perfect_cover};
use crate::{Error, Hash, NodeId, TreeHasher};

/// The stored nodes a proof needs, and how to fold the one ephemeral node among them.
///
/// Every id is a perfect subtree that exists in the tree the proof is about (level-0 ids are
/// leaves), so storage that keeps every perfect node can serve proofs for any historic size.
/// At most one proof entry is *ephemeral* (an incomplete subtree on the right edge): it is
/// given as the run `ids[ephemeral]` of perfect nodes, left to right, that [`Self::rehash`]
/// folds right to left into one hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofNodes {
    ids: Vec<NodeId>,
    ephemeral: Range<usize>,
}

impl ProofNodes {
    /// The nodes to fetch, in the order [`Self::rehash`] expects their hashes.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// Given the hashes of [`Self::ids`] in the same order, returns the proof in RFC 9162 order.
    pub fn rehash<H: TreeHasher>(&self, hashes: &[Hash]) -> Result<Vec<Hash>, Error> {
        if hashes.len() != self.ids.len() {
            return Err(Error::WrongHashCount { expected: self.ids.len(), got: hashes.len() });
        }
        let (before, rest) = hashes.split_at(self.ephemeral.start);
        let (run, after) = rest.split_at(self.ephemeral.len());
        let mut proof = before.to_vec();
        proof.extend(fold_right::<H>(run));
        proof.extend_from_slice(after);
        Ok(proof)
    }
}

/// The nodes for an inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_nodes(index: u64, size: u64) -> Result<ProofNodes, Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    Ok(path_nodes(NodeId::leaf(index), size))
}

/// The nodes for a consistency proof from the tree of `size1` leaves to the tree of `size2`.
/// Needs `0 < size1 <= size2`; equal sizes give the empty proof.
pub fn consistency_nodes(size1: u64, size2: u64) -> Result<ProofNodes, Error> {
    if size1 > size2 {
        return Err(Error::SizeOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(Error::EmptyTree);
    }
    if size1 == size2 {
        return Ok(ProofNodes { ids: Vec::new(), ephemeral: 0..0 });
    }
    let seed = consistency_seed(size1);
    let path = path_nodes(seed, size2);
    if size1.is_power_of_two() {
        // The seed is the old root itself, which the verifier already holds.
        return Ok(path);
    }
    let mut ids = vec![seed];
    ids.extend(path.ids);
    Ok(ProofNodes { ids, ephemeral: path.ephemeral.start + 1..path.ephemeral.end + 1 })
}

/// The largest perfect subtree that ends at leaf `size1`: RFC 9162's consistency proof is
/// this node (unless it is the whole old tree) followed by its inclusion path in the new tree.
pub(crate) fn consistency_seed(size1: u64) -> NodeId {
    let level = size1.trailing_zeros();
    NodeId::new(level_u8(level), (size1 - 1) >> level)
}

/// How a node's path to the root splits, measured in its own level's node indices: `inner`
/// siblings up to where the path meets the tree's right edge (the last of them possibly
/// ephemeral), then `border` left siblings along the edge.
pub(crate) struct PathShape {
    pub(crate) inner: u32,
    pub(crate) border: u32,
}

impl PathShape {
    /// Shape of the path of node `index` when `last` is the index of the level's last
    /// (possibly incomplete) node. Needs `index <= last`.
    pub(crate) fn new(index: u64, last: u64) -> Self {
        let inner = u64::BITS - (index ^ last).leading_zeros();
        // `inner` can be 64, where a plain shift would overflow.
        let border = index.checked_shr(inner).unwrap_or(0).count_ones();
        PathShape { inner, border }
    }

    /// Total number of proof hashes.
    pub(crate) fn len(&self) -> usize {
        (self.inner + self.border) as usize
    }
}

/// The proof nodes that lead from the perfect node `node` to the root of the tree of `size`.
fn path_nodes(node: NodeId, size: u64) -> ProofNodes {
    let shape = PathShape::new(node.index, (size - 1) >> node.level);
    let mut ids = Vec::with_capacity(shape.len());
    let mut current = node;
    // Below the fork every sibling is a perfect node left of the last leaf ...
    for _ in 1..shape.inner {
        ids.push(current.sibling());
        current = current.parent();
    }
    // ... except the topmost one, which reaches the right edge and may be incomplete.
    let mut ephemeral = 0..0;
    if shape.inner > 0 {
        ephemeral.start = ids.len();
        ids.extend(perfect_cover(current.sibling().first_leaf(), size));
        ephemeral.end = ids.len();
        current = current.parent();
    }
    // Along the right edge a node has a (perfect, left) sibling only where it is a right child.
    while current.index != 0 {
        if current.index & 1 == 1 {
            ids.push(current.sibling());
        }
        current = current.parent();
    }
    ProofNodes { ids, ephemeral }
}

/// Converts a bit count (at most 64) to a node level.
pub(crate) fn level_u8(bits: u32) -> u8 {
    // Bit counts of a u64 are at most 64, so the conversion never saturates.
    u8::try_from(bits).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256;

    #[test]
    fn inclusion_needs_an_index_inside_the_tree() {
        assert_eq!(inclusion_nodes(3, 3), Err(Error::IndexOutOfRange { index: 3, size: 3 }));
        assert_eq!(inclusion_nodes(0, 0), Err(Error::IndexOutOfRange { index: 0, size: 0 }));
    }

    #[test]
    fn consistency_needs_a_nonempty_older_tree() {
        assert_eq!(consistency_nodes(3, 2), Err(Error::SizeOrder { size1: 3, size2: 2 }));
        assert_eq!(consistency_nodes(0, 2), Err(Error::EmptyTree));
        assert_eq!(consistency_nodes(0, 0), Err(Error::EmptyTree));
        assert!(consistency_nodes(5, 5).expect("equal sizes are valid").ids().is_empty());
    }

    #[test]
    fn ephemeral_sibling_is_given_as_its_perfect_parts() {
        // Leaf 0 of 7 leaves: siblings leaf 1, node [2,4), then the ephemeral [4,7).
        let nodes = inclusion_nodes(0, 7).expect("index is inside the tree");
        let want = [NodeId::new(0, 1), NodeId::new(1, 1), NodeId::new(1, 2), NodeId::new(0, 6)];
        assert_eq!(nodes.ids(), want);
        assert_eq!(nodes.ephemeral, 2..4);
    }

    #[test]
    fn rehash_folds_only_the_ephemeral_run() {
        let nodes = inclusion_nodes(0, 7).expect("index is inside the tree");
        let hashes: Vec<Hash> = (0..4u8).map(|i| Sha256::hash_leaf(&[i])).collect();
        let proof = nodes.rehash::<Sha256>(&hashes).expect("one hash per id");
        let folded = Sha256::hash_children(&hashes[2], &hashes[3]);
        assert_eq!(proof, [hashes[0], hashes[1], folded]);
    }

    #[test]
    fn rehash_rejects_a_wrong_number_of_hashes() {
        let nodes = inclusion_nodes(0, 7).expect("index is inside the tree");
        let err = nodes.rehash::<Sha256>(&[[0; 32]]);
        assert_eq!(err, Err(Error::WrongHashCount { expected: 4, got: 1 }));
    }

    #[test]
    fn paths_near_the_top_of_the_index_space_do_not_overflow() {
        let nodes = inclusion_nodes(u64::MAX - 1, u64::MAX).expect("index is inside the tree");
        assert_eq!(nodes.ids().len(), 63);
        let nodes = inclusion_nodes(0, u64::MAX).expect("index is inside the tree");
        assert_eq!(nodes.ids().len(), 64 + 62);
        assert!(consistency_nodes(u64::MAX - 1, u64::MAX).is_ok());
    }
}
