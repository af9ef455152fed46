//! The messages of the log's internal API (`/internal/…`), shared by the log that answers
//! them and the relay that sends them, and the STH a log pushes to its gossip peers. One
//! definition per message: neither side builds these by hand.

use serde::{Deserialize, Serialize};

use crate::{AuditStep, SignedSth, SthBody, b64};

/// `POST /internal/append`: an event to append. Its timestamp is replaced by the log's batch
/// time; senders build events with an empty one ([`crate::LogEvent::transfer`] and friends).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendRequest {
    /// The event.
    pub event: crate::LogEvent,
}

/// The log's answer to an append: where the leaf is and its inclusion proof against the
/// signed STH of its batch (the API's `merkle_proof`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppendAnswer {
    /// Always `true`.
    pub ok: bool,
    /// Index of the new leaf.
    pub leaf_index: u64,
    /// Its leaf hash, 64 lowercase hex.
    pub leaf_hash: String,
    /// Size of the tree the proof is for (the batch's STH).
    pub tree_size: u64,
    /// The inclusion proof.
    pub audit_path: Vec<AuditStep>,
    /// Root of that tree, 64 lowercase hex.
    pub root: String,
    /// The batch's signed tree head.
    pub sth: SignedSth,
    /// The STH's signature again (the API's `merkle_proof.sth_signature`).
    pub sth_signature: String,
}

/// The log's answer to `GET /internal/prove?leaf_hash=`: the leaf's inclusion proof against
/// the newest STH.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProveAnswer {
    /// Always `true`.
    pub ok: bool,
    /// The inclusion proof.
    pub proof: crate::InclusionProof,
    /// The newest signed tree head (the proof's tree).
    pub sth: SignedSth,
}

/// `POST /internal/receipt`: a signed receipt for delivering a transfer, sent before the body,
/// so it never confirms a burn (`burn_confirmed: false`; see [`BurnReceiptRequest`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// Hash the receipt names (SHA-256 of the payload, or a drop's lookup id).
    pub blob_hash: String,
    /// The relay's sector.
    pub sector: String,
    /// Leaf hash of the transfer being delivered (from its append).
    pub transfer_leaf_hash: String,
}

/// `POST /internal/burn-receipt`: the receipt with `burn_confirmed: true` for a burn the log
/// recorded. The log signs it only if `delivery_leaf_hash` is a delivery leaf in the log with
/// `burned: true` for the same blob and sector; the receipt's `retrieved_at` is that leaf's
/// time and it proves the transfer leaf against the signed tree head of the commit that added
/// the delivery leaf — so it is the same receipt whenever it is asked for (the answer is a
/// [`ReceiptAnswer`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnReceiptRequest {
    /// Hash the receipt names (SHA-256 of the payload).
    pub blob_hash: String,
    /// The relay's sector.
    pub sector: String,
    /// Leaf hash of the blob's transfer.
    pub transfer_leaf_hash: String,
    /// Leaf hash of the delivery that burned it.
    pub delivery_leaf_hash: String,
}

/// The log's answer to a receipt request: the receipt in its header form only (the relay
/// sends it on as is; [`crate::Receipt::from_header`] parses it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReceiptAnswer {
    /// Always `true`.
    pub ok: bool,
    /// The `X-Paramant-Receipt` value of the signed receipt ([`crate::Receipt::to_header`]).
    pub receipt_header: String,
}

/// `POST /internal/sign-registration`: what the relay asks its log to sign. The log adds its
/// sector and the time ([`crate::RelayRegistration`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// The relay's public URL.
    pub url: String,
    /// The relay's version.
    pub version: String,
    /// The relay's edition.
    pub edition: String,
}

/// An STH as logs push it to each other (`POST /v2/sth/ingest`): the signed body, its
/// signature and the signer's public key; `pk_hash` is optional and, when present, must be the
/// fingerprint of `public_key`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GossipSth {
    /// Which log.
    pub relay_id: String,
    /// Its root, 64 hex.
    pub sha3_root: String,
    /// When it was signed, Unix milliseconds.
    pub timestamp: u64,
    /// Its size.
    pub tree_size: u64,
    /// Format version.
    pub version: u32,
    /// ML-DSA-65 signature over the body, standard base64.
    pub signature: String,
    /// The signer's public key, standard base64.
    pub public_key: String,
    /// SHA3-256 of the public key, hex (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pk_hash: Option<String>,
}

impl GossipSth {
    /// The push of our own signed head, with our public key.
    #[must_use]
    pub fn new(sth: &SignedSth, public_key: &logkey::LogVerifyingKey) -> Self {
        GossipSth {
            relay_id: sth.body.relay_id.clone(),
            sha3_root: sth.body.sha3_root.clone(),
            timestamp: sth.body.timestamp,
            tree_size: sth.body.tree_size,
            version: sth.body.version,
            signature: sth.signature.clone(),
            public_key: b64(public_key.to_bytes()),
            pk_hash: Some(crate::hash_hex(&public_key.pk_hash())),
        }
    }

    /// The body exactly as sent (the signature covers it byte for byte).
    #[must_use]
    pub fn body(&self) -> SthBody {
        SthBody {
            relay_id: self.relay_id.clone(),
            sha3_root: self.sha3_root.clone(),
            timestamp: self.timestamp,
            tree_size: self.tree_size,
            version: self.version,
        }
    }
}
