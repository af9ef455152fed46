//! The test oracle: RFC 9162 §2.1 written as literally as possible (MTH, PATH, PROOF and
//! SUBPROOF), slow and recursive, so the fast code is checked against the definition itself.

// Each test binary uses a different subset of the oracle.
#![allow(dead_code)]

use tlog::{Hash, NodeId, TreeHasher};

/// Largest power of two strictly smaller than `n` (needs `n > 1`): where RFC 9162 splits.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
pub fn mth<H: TreeHasher>(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => H::empty_root(),
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            H::hash_children(&mth::<H>(left), &mth::<H>(right))
        }
    }
}

/// PATH(m, D[n]): the inclusion proof of leaf `m`.
pub fn path<H: TreeHasher>(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    let (left, right) = leaves.split_at(k);
    let (mut proof, sibling) =
        if m < k { (path::<H>(m, left), mth::<H>(right)) } else { (path::<H>(m - k, right), mth::<H>(left)) };
    proof.push(sibling);
    proof
}

/// PROOF(m, D[n]): the consistency proof from the first `m` leaves to all of them.
pub fn proof<H: TreeHasher>(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    subproof::<H>(m, leaves, true)
}

fn subproof<H: TreeHasher>(m: usize, leaves: &[Hash], whole_old_tree: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole_old_tree { Vec::new() } else { vec![mth::<H>(leaves)] };
    }
    let k = split(n);
    let (left, right) = leaves.split_at(k);
    let (mut proof, sibling) = if m <= k {
        (subproof::<H>(m, left, whole_old_tree), mth::<H>(right))
    } else {
        (subproof::<H>(m - k, right, false), mth::<H>(left))
    };
    proof.push(sibling);
    proof
}

/// The hash of a perfect node, straight from MTH over the leaves it covers.
pub fn node_hash<H: TreeHasher>(leaves: &[Hash], id: NodeId) -> Hash {
    let first = usize::try_from(id.first_leaf()).expect("test trees are small");
    mth::<H>(&leaves[first..first + (1 << id.level)])
}

/// One step of a proof as a verifier sees it: what the next proof hash is combined with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The proof hash is a sibling on the left.
    LeftSibling,
    /// The proof hash is a sibling on the right.
    RightSibling,
    /// The proof hash is the consistency proof's starting node (not the old root itself).
    GivenSeed,
}

/// The steps of PATH(m, D[n]), read off the same recursion. Two positions with equal shapes
/// accept exactly the same proofs, so a proof is only bound to its position up to its shape.
pub fn path_shape(m: u64, n: u64) -> Vec<Step> {
    if n <= 1 {
        return Vec::new();
    }
    let k = split(usize::try_from(n).expect("test trees are small")) as u64;
    let mut shape = if m < k { path_shape(m, k) } else { path_shape(m - k, n - k) };
    shape.push(if m < k { Step::RightSibling } else { Step::LeftSibling });
    shape
}

/// The steps of PROOF(m, D[n]), like [`path_shape`].
pub fn proof_shape(m: u64, n: u64) -> Vec<Step> {
    subproof_shape(m, n, true)
}

fn subproof_shape(m: u64, n: u64, whole_old_tree: bool) -> Vec<Step> {
    if m == n {
        return if whole_old_tree { Vec::new() } else { vec![Step::GivenSeed] };
    }
    let k = split(usize::try_from(n).expect("test trees are small")) as u64;
    let mut shape = if m <= k { subproof_shape(m, k, whole_old_tree) } else { subproof_shape(m - k, n - k, false) };
    shape.push(if m <= k { Step::RightSibling } else { Step::LeftSibling });
    shape
}
