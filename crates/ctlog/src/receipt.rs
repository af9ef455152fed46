//! Signed delivery receipts: made for a transfer leaf in this log, and verified as the API
//! reference says — signature, then the audit path re-walked, then the root checked against a
//! signed STH of that size.

use serde_json::{Value, json};
use tlog::Hash;
use wire::{LogEvent, Receipt, ReceiptBody, SignedSth};

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, inclusion_proof};
use crate::store::Snapshot;

/// What a receipt attests besides the proof.
pub struct Delivery {
    pub blob_hash: String,
    pub sector: String,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub retrieved_at: String,
    pub burn_confirmed: bool,
}

/// Builds and signs the receipt of `delivery` for the transfer leaf `leaf_hash`, proving the
/// leaf against the signed tree head `sth`; returns its `X-Paramant-Receipt` form. Blocking:
/// ML-DSA signing takes a fraction of a millisecond.
pub fn issue(state: &AppState, leaf_hash: &Hash, delivery: Delivery, sth: &SignedSth) -> ApiResult<String> {
    let snapshot = state.snapshot()?;
    issue_in(state, &snapshot, leaf_hash, delivery, sth)
}

fn issue_in(
    state: &AppState,
    snapshot: &Snapshot,
    leaf_hash: &Hash,
    delivery: Delivery,
    sth: &SignedSth,
) -> ApiResult<String> {
    let index = snapshot
        .index_of(leaf_hash)?
        .filter(|&i| i < sth.body.tree_size)
        .ok_or_else(|| ApiError::not_found("no transfer leaf with that hash in the log"))?;
    let body = ReceiptBody {
        blob_hash: delivery.blob_hash,
        sector: delivery.sector,
        retrieved_at: delivery.retrieved_at,
        relay_id: sth.body.relay_id.clone(),
        tree_size_at_retrieval: sth.body.tree_size,
        inclusion_proof: inclusion_proof(snapshot, index, sth.body.tree_size)?,
        burn_confirmed: delivery.burn_confirmed,
    };
    Ok(monitoring::timed_sign("receipt", || body.sign_to_header(&state.signing_key)))
}

/// The receipt confirming a burn, signed only for a burn this log recorded: `delivery_leaf` must
/// be a delivery leaf with `burned: true` for `blob_hash` in `sector`. It says when that leaf was
/// logged (`retrieved_at`) and proves the transfer leaf against the STH of the commit that added
/// the delivery leaf, so asking again gives the same receipt (signing is deterministic).
/// Blocking, like [`issue`].
pub fn issue_burn(
    state: &AppState,
    blob_hash: &str,
    sector: &str,
    transfer_leaf: &Hash,
    delivery_leaf: &Hash,
) -> ApiResult<String> {
    let snapshot = state.snapshot()?;
    let not_a_burn = || ApiError::not_found("no delivery leaf burning that blob in the log");
    let index = snapshot.index_of(delivery_leaf)?.ok_or_else(not_a_burn)?;
    let leaf = snapshot.leaf(index)?.ok_or_else(not_a_burn)?;
    let event: LogEvent =
        serde_json::from_slice(&leaf.event_json).map_err(|e| ApiError::internal("stored event", &e))?;
    let retrieved_at = match event {
        LogEvent::Delivery { blob_hash: b, sector: s, burned: true, timestamp } if b == blob_hash && s == sector => {
            timestamp
        }
        _ => return Err(not_a_burn()),
    };
    let sth = snapshot
        .sth_covering(index)?
        .ok_or_else(|| ApiError::internal("burn receipt", &"no signed head covers a committed leaf"))?;
    let delivery =
        Delivery { blob_hash: blob_hash.to_owned(), sector: sector.to_owned(), retrieved_at, burn_confirmed: true };
    issue_in(state, &snapshot, transfer_leaf, delivery, &sth)
}

/// The verdict of `POST /v2/verify-receipt` for a receipt given as the header string
/// (base64url, padded or not) or as the decoded JSON object.
pub fn verify(state: &AppState, receipt: &Value) -> ApiResult<Value> {
    let parsed = match receipt {
        Value::String(header) => Receipt::from_header(header).map_err(|e| e.to_string()),
        Value::Object(_) => serde_json::from_value::<Receipt>(receipt.clone()).map_err(|e| e.to_string()),
        _ => Err("receipt must be a base64url string or a JSON object".to_string()),
    };
    let receipt = match parsed {
        Ok(r) => r,
        Err(detail) => return Ok(invalid("malformed_receipt", &detail)),
    };
    let Ok(signature) = wire::parse_b64(&receipt.signature) else {
        return Ok(invalid("signature_invalid", "signature is not base64"));
    };
    if state.public_key.verify(&receipt.body.signed_bytes(), &signature).is_err() {
        return Ok(invalid("signature_invalid", "ML-DSA-65 signature does not verify with this log's key"));
    }
    let proof = &receipt.body.inclusion_proof;
    if let Err(e) = proof.verify() {
        return Ok(invalid("inclusion_proof_invalid", &e.to_string()));
    }
    if proof.tree_size != receipt.body.tree_size_at_retrieval {
        return Ok(invalid("inclusion_proof_invalid", "proof tree_size differs from tree_size_at_retrieval"));
    }
    match state.snapshot()?.sth_for_size(proof.tree_size)? {
        Some(sth) if sth.body.sha3_root == proof.root => {}
        Some(_) => return Ok(invalid("root_mismatch", "the signed STH of that size has a different root")),
        None => return Ok(invalid("root_mismatch", "this log signed no STH of that size")),
    }
    Ok(json!({
        "valid": true,
        "blob_hash": receipt.body.blob_hash,
        "burn_confirmed": receipt.body.burn_confirmed,
        "tree_size_at_retrieval": receipt.body.tree_size_at_retrieval,
        "retrieved_at": receipt.body.retrieved_at,
        "relay_id": receipt.body.relay_id,
        "sector": receipt.body.sector,
    }))
}

fn invalid(reason: &str, detail: &str) -> Value {
    json!({ "valid": false, "reason": reason, "detail": detail })
}
