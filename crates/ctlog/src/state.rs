//! Shared state of the running service, and the read-side answers built from a snapshot.

use std::sync::Arc;

use crypto::{LogSigningKey, LogVerifyingKey};
use tlog::Hash;
use wire::{InclusionProof, SignedSth};

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::gossip::Gossip;
use crate::sequencer::Sequencer;
use crate::store::{LogStore, Snapshot};

/// Everything a handler needs; built once at start.
pub struct AppState {
    pub config: Config,
    pub store: Arc<LogStore>,
    pub sequencer: Sequencer,
    pub public_key: LogVerifyingKey,
    /// The log key; only STH signing (sequencer) and receipt signing use it.
    pub signing_key: Arc<LogSigningKey>,
    /// Base64 of the encoded public key, as `/v2/pubkey` serves it.
    pub public_key_b64: String,
    /// SHA3-256 of the public key, hex.
    pub pk_hash: String,
    pub gossip: Gossip,
    /// Signs C2SP checkpoints with the Ed25519 note key (see `tiles_api`).
    pub checkpoint: crate::tiles_api::CheckpointSigner,
    /// `X-Internal-Auth` secret of the internal API.
    pub internal_token: crypto::Secret,
    /// The sandbox and capabilities in force (reported by `/health`).
    pub hardening: crate::Hardening,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn snapshot(&self) -> ApiResult<Snapshot> {
        Ok(self.store.snapshot()?)
    }
}

/// The newest signed STH (there is always one: a new log signs the empty tree at start).
pub fn latest_sth(snapshot: &Snapshot) -> ApiResult<SignedSth> {
    snapshot.latest_sth()?.ok_or_else(|| ApiError::internal("latest sth", &"log has no STH"))
}

/// The inclusion proof of leaf `index` against a tree of `size`, in the API's shape. The
/// leaf hash comes from the level-0 tile the proof reads anyway, not from the (much larger,
/// rarely cached) leaf table.
pub fn inclusion_proof(snapshot: &Snapshot, index: u64, size: u64) -> ApiResult<InclusionProof> {
    if index >= size || size > snapshot.tree_size()? {
        return Err(ApiError::not_found(format!("no leaf at index {index} in a tree of {size}")));
    }
    let leaf_hash = snapshot.nodes(&[tlog::NodeId { level: 0, index }])?[0];
    let proof = snapshot.inclusion_proof(index, size)?;
    let root: Hash = snapshot.root_at(size)?;
    Ok(InclusionProof::new(&leaf_hash, index, size, &proof, &root))
}
