//! Inclusion proofs in the API's shape: an `audit_path` of `{hash, position}` steps whose
//! positions follow from the leaf index and tree size (RFC 9162 §2.1.3.2), never trusted.

use std::fmt;

use serde::{Deserialize, Serialize};
use tlog::{Hash, Sha3_256};

use crate::encoding::parse_hash_hex_named;
use crate::{Error, hash_hex};

/// Which side of the running hash a sibling is on: `Left` means `H(0x01 ‖ sibling ‖ running)`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The sibling is the left child.
    Left,
    /// The sibling is the right child.
    Right,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Left => "left",
            Side::Right => "right",
        })
    }
}

/// One step of an audit path: a sibling hash and the side it is on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditStep {
    /// The sibling's hash, 64 lowercase hex.
    pub hash: String,
    /// Which side the sibling is on.
    pub position: Side,
}

/// The RFC 9162 §2.1.3.2 walk over (`fn`, `sn`), yielding the sibling side of each step.
/// After the last real step (`sn == 0`) it keeps yielding `Left`, the side the walk's
/// `fn == sn` rule gives there.
struct Walk {
    node: u64,
    last: u64,
}

impl Walk {
    fn new(index: u64, size: u64) -> Self {
        Self { node: index, last: size.saturating_sub(1) }
    }

    /// Number of steps of the path: the walk ends when `sn` reaches 0.
    fn len(index: u64, size: u64) -> usize {
        let mut walk = Self::new(index, size);
        let mut steps = 0;
        while walk.last != 0 {
            walk.step();
            steps += 1;
        }
        steps
    }

    fn step(&mut self) -> Side {
        let side = if self.node & 1 == 1 || self.node == self.last {
            // RFC step 5.b.ii: an even node equal to `sn` is the last on its level and has no
            // sibling until it becomes a right child; skip those levels.
            while self.node & 1 == 0 && self.node != 0 {
                self.node >>= 1;
                self.last >>= 1;
            }
            Side::Left
        } else {
            Side::Right
        };
        self.node >>= 1;
        self.last >>= 1;
        side
    }
}

/// The API form of an RFC 9162 inclusion proof for leaf `index` of a tree of `size` leaves,
/// each hash paired with the side the walk puts it on.
///
/// `proof` must be the proof for exactly this index and size (as `tlog` produces it); extra
/// hashes are labelled `left` and make the result fail [`proof_from_audit_path`].
#[must_use]
pub fn audit_path(index: u64, size: u64, proof: &[Hash]) -> Vec<AuditStep> {
    let mut walk = Walk::new(index, size);
    proof.iter().map(|h| AuditStep { hash: hash_hex(h), position: walk.step() }).collect()
}

/// Parses an audit path back into proof hashes, rejecting a wrong number of steps or any step
/// whose `position` disagrees with what `index` and `size` imply.
///
/// # Errors
/// [`Error::Proof`] if `index >= size`, [`Error::AuditPathLength`], [`Error::AuditPosition`],
/// [`Error::HashHex`].
pub fn proof_from_audit_path(index: u64, size: u64, steps: &[AuditStep]) -> Result<Vec<Hash>, Error> {
    if index >= size {
        return Err(tlog::Error::IndexOutOfRange { index, size }.into());
    }
    let expected = Walk::len(index, size);
    if steps.len() != expected {
        return Err(Error::AuditPathLength { expected, got: steps.len() });
    }
    let mut walk = Walk::new(index, size);
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let side = walk.step();
            if step.position != side {
                return Err(Error::AuditPosition { step: i, expected: side, got: step.position });
            }
            parse_hash_hex_named(&step.hash, "audit_path hash")
        })
        .collect()
}

/// An inclusion proof as the API sends it (`merkle_proof`, receipts' `inclusion_proof`,
/// `/v2/ct/proof`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Hash of the leaf, 64 lowercase hex.
    pub leaf_hash: String,
    /// Zero-based index of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up, with their sides.
    pub audit_path: Vec<AuditStep>,
    /// Root of the tree of `tree_size` leaves, 64 lowercase hex.
    pub root: String,
}

impl InclusionProof {
    /// Builds the API form from a `tlog` inclusion proof.
    #[must_use]
    pub fn new(leaf_hash: &Hash, leaf_index: u64, tree_size: u64, proof: &[Hash], root: &Hash) -> Self {
        Self {
            leaf_hash: hash_hex(leaf_hash),
            leaf_index,
            tree_size,
            audit_path: audit_path(leaf_index, tree_size, proof),
            root: hash_hex(root),
        }
    }

    /// Re-walks the path (RFC 9162, SHA3-256) and checks it reproduces `root`.
    ///
    /// # Errors
    /// [`Error::RootMismatch`] carrying the recomputed and the claimed root; the errors of
    /// [`proof_from_audit_path`]; [`Error::HashHex`] for `leaf_hash` or `root`.
    pub fn verify(&self) -> Result<(), Error> {
        let computed = self.recompute_root()?;
        let claimed = parse_hash_hex_named(&self.root, "root")?;
        if computed != claimed {
            return Err(Error::RootMismatch { computed: hash_hex(&computed), claimed: self.root.clone() });
        }
        Ok(())
    }

    /// The root the audit path leads to from `leaf_hash`.
    ///
    /// # Errors
    /// As [`InclusionProof::verify`], minus the root comparison.
    pub fn recompute_root(&self) -> Result<Hash, Error> {
        let leaf = parse_hash_hex_named(&self.leaf_hash, "leaf_hash")?;
        let proof = proof_from_audit_path(self.leaf_index, self.tree_size, &self.audit_path)?;
        Ok(tlog::root_from_inclusion::<Sha3_256>(self.leaf_index, self.tree_size, &leaf, &proof)?)
    }
}
