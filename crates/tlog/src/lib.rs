//! RFC 9162 Merkle tree math for the transparency log: hashing, inclusion and consistency
//! proofs, the compact range that tracks the right edge, and the hash-tile layout storage uses.
//! No IO, no async, no clock: storage fetches the nodes this crate names.
//!
//! The tree over `n` leaves splits at the largest power of two smaller than `n` (RFC 9162 §2.1).
//! Seen from storage it is a grid of *perfect* subtrees ([`NodeId`]) plus, on the right edge,
//! *ephemeral* nodes that change as the log grows and are never stored: every proof names
//! only perfect nodes and says how to fold the ephemeral one ([`ProofNodes`]).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod compact;
mod error;
mod hasher;
mod node;
mod proof;
pub mod tile;
mod verify;

pub use compact::{CompactRange, root_from_nodes, root_nodes};
pub use error::Error;
pub use hasher::{Hash, Sha3_256, Sha256, TreeHasher};
pub use node::NodeId;
pub use proof::{ProofNodes, consistency_nodes, inclusion_nodes};
pub use verify::{root_from_inclusion, verify_consistency, verify_inclusion};
