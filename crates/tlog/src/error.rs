//! The one error type of the crate: bad arguments, proofs that do not verify, malformed tiles.

use crate::Hash;

/// Everything that can go wrong in tree math. Verification failures and caller mistakes share
/// the type because a verifier treats both the same way: the proof is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A leaf index at or beyond the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size it was checked against.
        size: u64,
    },
    /// A consistency proof asked from a larger tree to a smaller one.
    #[error("tree size {size1} is larger than tree size {size2}")]
    SizeOrder {
        /// The first (older) tree size.
        size1: u64,
        /// The second (newer) tree size.
        size2: u64,
    },
    /// A consistency proof from the empty tree: it proves nothing, RFC 9162 defines none.
    #[error("a consistency proof needs a non-empty first tree")]
    EmptyTree,
    /// A proof with the wrong number of hashes for its index and sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength {
        /// The length the index and sizes call for.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A list of node hashes that does not match the nodes it stands for.
    #[error("got {got} node hashes, expected {expected}")]
    WrongHashCount {
        /// How many hashes the nodes call for.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// The proof leads to a different (new) tree root than the one trusted.
    #[error("proof leads to a different root than expected")]
    RootMismatch {
        /// The root the proof leads to.
        computed: Hash,
        /// The root that was expected.
        expected: Hash,
    },
    /// A consistency proof that does not rebuild the old tree's root.
    #[error("consistency proof does not rebuild the old root")]
    OldRootMismatch {
        /// The old root the proof leads to.
        computed: Hash,
        /// The old root that was expected.
        expected: Hash,
    },
    /// A push onto a tile that already holds its full width of base hashes.
    #[error("tile is full")]
    TileFull,
    /// Serialized tile bytes that cannot be a tile.
    #[error("malformed tile: {0}")]
    BadTile(&'static str),
}
