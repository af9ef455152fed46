//! Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2), written from the tree's bit structure
//! rather than the RFC's loop so that it mirrors generation in `proof.rs`.

use crate::proof::{PathShape, consistency_seed};
use crate::{Error, Hash, TreeHasher};

/// The root that an inclusion proof leads to for leaf `index` of a tree of `size` leaves.
pub fn root_from_inclusion<H: TreeHasher>(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
) -> Result<Hash, Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let shape = PathShape::new(index, size - 1);
    check_length(proof, shape.len())?;
    Ok(climb::<H>(*leaf_hash, index, &shape, proof))
}

/// Checks that `proof` shows leaf `leaf_hash` at `index` in the tree of `size` with `root`.
pub fn verify_inclusion<H: TreeHasher>(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    let computed = root_from_inclusion::<H>(index, size, leaf_hash, proof)?;
    matches(computed, *root)
}

/// Checks that `proof` shows the tree of `size2` leaves with `root2` extends the tree of
/// `size1` leaves with `root1`. Needs `0 < size1 <= size2`: like transparency-dev/merkle, the
/// published vectors reject a consistency check from the empty tree, even to itself.
pub fn verify_consistency<H: TreeHasher>(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), Error> {
    if size1 > size2 {
        return Err(Error::SizeOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(Error::EmptyTree);
    }
    if size1 == size2 {
        check_length(proof, 0)?;
        return matches(*root1, *root2);
    }
    let seed_node = consistency_seed(size1);
    let shape = PathShape::new(seed_node.index, (size2 - 1) >> seed_node.level);
    // A power-of-two old tree is itself the seed node, so the proof leaves it out.
    let seed_given = !size1.is_power_of_two();
    check_length(proof, shape.len() + usize::from(seed_given))?;
    let (seed, path) = match proof.split_first() {
        Some((first, rest)) if seed_given => (*first, rest),
        _ => (*root1, proof),
    };
    let old = climb_left::<H>(seed, seed_node.index, &shape, path);
    if old != *root1 {
        return Err(Error::OldRootMismatch { computed: old, expected: *root1 });
    }
    matches(climb::<H>(seed, seed_node.index, &shape, path), *root2)
}

/// Hashes `seed`, the node at `index` on its level, up its path to the root.
fn climb<H: TreeHasher>(seed: Hash, index: u64, shape: &PathShape, path: &[Hash]) -> Hash {
    let (inner, border) = path.split_at(shape.inner as usize);
    let below_fork = inner.iter().enumerate().fold(seed, |hash, (level, sibling)| {
        if index >> level & 1 == 0 { H::hash_children(&hash, sibling) } else { H::hash_children(sibling, &hash) }
    });
    border.iter().fold(below_fork, |hash, sibling| H::hash_children(sibling, &hash))
}

/// Like [`climb`] but skips right siblings: the result is the root of the tree that ends
/// where the seed node ends, i.e. the old tree of a consistency proof.
fn climb_left<H: TreeHasher>(seed: Hash, index: u64, shape: &PathShape, path: &[Hash]) -> Hash {
    let (inner, border) = path.split_at(shape.inner as usize);
    let left_of_path = inner.iter().enumerate().filter(|(level, _)| index >> level & 1 == 1);
    let below_fork = left_of_path.fold(seed, |hash, (_, sibling)| H::hash_children(sibling, &hash));
    border.iter().fold(below_fork, |hash, sibling| H::hash_children(sibling, &hash))
}

fn check_length(proof: &[Hash], expected: usize) -> Result<(), Error> {
    if proof.len() == expected { Ok(()) } else { Err(Error::WrongProofLength { expected, got: proof.len() }) }
}

fn matches(computed: Hash, expected: Hash) -> Result<(), Error> {
    if computed == expected { Ok(()) } else { Err(Error::RootMismatch { computed, expected }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256;

    const A: Hash = [0xaa; 32];
    const B: Hash = [0xbb; 32];

    #[test]
    fn inclusion_rejects_an_index_outside_the_tree() {
        let err = verify_inclusion::<Sha256>(4, 4, &A, &[], &A);
        assert_eq!(err, Err(Error::IndexOutOfRange { index: 4, size: 4 }));
    }

    #[test]
    fn inclusion_rejects_a_proof_of_the_wrong_length() {
        let err = verify_inclusion::<Sha256>(0, 4, &A, &[B], &A);
        assert_eq!(err, Err(Error::WrongProofLength { expected: 2, got: 1 }));
    }

    #[test]
    fn consistency_of_equal_sizes_compares_roots_and_wants_no_proof() {
        assert_eq!(verify_consistency::<Sha256>(3, 3, &[], &A, &A), Ok(()));
        let err = verify_consistency::<Sha256>(3, 3, &[A], &A, &A);
        assert_eq!(err, Err(Error::WrongProofLength { expected: 0, got: 1 }));
        let err = verify_consistency::<Sha256>(3, 3, &[], &A, &B);
        assert_eq!(err, Err(Error::RootMismatch { computed: A, expected: B }));
    }

    #[test]
    fn consistency_from_the_empty_tree_is_rejected() {
        assert_eq!(verify_consistency::<Sha256>(0, 0, &[], &A, &A), Err(Error::EmptyTree));
        assert_eq!(verify_consistency::<Sha256>(0, 5, &[], &A, &B), Err(Error::EmptyTree));
    }

    #[test]
    fn consistency_with_an_empty_proof_between_different_sizes_is_rejected() {
        let err = verify_consistency::<Sha256>(3, 4, &[], &A, &B);
        assert_eq!(err, Err(Error::WrongProofLength { expected: 3, got: 0 }));
    }

    #[test]
    fn consistency_that_does_not_rebuild_the_old_root_says_so() {
        let leaves: Vec<Hash> = (0..4u8).map(|i| Sha256::hash_leaf(&[i])).collect();
        let left_pair = Sha256::hash_children(&leaves[0], &leaves[1]);
        let right_pair = Sha256::hash_children(&leaves[2], &leaves[3]);
        let root3 = Sha256::hash_children(&left_pair, &leaves[2]);
        let root4 = Sha256::hash_children(&left_pair, &right_pair);
        let proof = [leaves[2], leaves[3], left_pair];
        assert_eq!(verify_consistency::<Sha256>(3, 4, &proof, &root3, &root4), Ok(()));
        let err = verify_consistency::<Sha256>(3, 4, &proof, &A, &root4);
        assert_eq!(err, Err(Error::OldRootMismatch { computed: root3, expected: A }));
    }
}
