//! The internal API relays use: append an event, get a signed delivery receipt for a transfer
//! leaf, prove a leaf by hash, and sign the relay's registration in the relay registry (the
//! sector's log key is the relay's identity). Served only on a Unix socket or loopback, and every request must carry
//! the shared `X-Internal-Auth` secret (compared in constant time).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use wire::LogEvent;

use crate::error::{ApiError, ApiResult};
use crate::receipt::{self, Delivery};
use crate::sequencer::now_ms;
use crate::state::{SharedState, inclusion_proof, latest_sth};
use jsonapi::json_body;

/// Header carrying the internal secret.
pub const AUTH_HEADER: &str = "x-internal-auth";
/// Largest internal request (events carry public keys of a few KiB at most).
const MAX_INTERNAL_BODY: usize = 256 * 1024;

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/internal/append", post(append))
        .route("/internal/receipt", post(receipt))
        .route("/internal/prove", get(prove))
        .route("/internal/sign-registration", post(sign_registration))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_INTERNAL_BODY))
        // After the auth layer: Prometheus scrapes without the secret (loopback only, no secrets).
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Prometheus text exposition of this process's metrics.
async fn metrics(State(state): State<SharedState>) -> impl axum::response::IntoResponse {
    if let Ok(size) = state.snapshot().and_then(|s| latest_sth(&s)) {
        monitoring::tree_size_is(size.body.tree_size);
    }
    ([(axum::http::header::CONTENT_TYPE, monitoring::CONTENT_TYPE)], monitoring::render())
}

async fn require_auth(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(AUTH_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !state.internal_token.matches(presented) {
        return axum::response::IntoResponse::into_response(ApiError::unauthorized("missing or wrong X-Internal-Auth"));
    }
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendRequest {
    /// The event without its timestamp (the sequencer stamps it).
    event: Value,
}

/// Parses an event, stamping a placeholder timestamp the sequencer replaces.
fn parse_event(mut event: Value) -> ApiResult<LogEvent> {
    let Value::Object(map) = &mut event else {
        return Err(ApiError::bad_request("event must be a JSON object"));
    };
    map.insert("timestamp".into(), wire::iso8601_ms(now_ms()).into());
    let event: LogEvent = serde_json::from_value(event).map_err(|e| ApiError::bad_request(format!("event: {e}")))?;
    event.validate().map_err(|e| ApiError::bad_request(format!("event: {e}")))?;
    Ok(event)
}

/// `POST /internal/append {"event":{...}}` → the leaf's index and inclusion proof against the
/// signed STH of its batch — the `merkle_proof` of the API's inbound response.
async fn append(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request: AppendRequest = json_body(body)?;
    let appended = state.sequencer.append(parse_event(request.event)?).await?;
    let size = appended.sth.body.tree_size;
    let proof = inclusion_proof(&state.snapshot()?, appended.leaf_index, size)?;
    Ok(Json(json!({
        "ok": true,
        "leaf_index": appended.leaf_index,
        "leaf_hash": proof.leaf_hash,
        "tree_size": size,
        "audit_path": proof.audit_path,
        "root": proof.root,
        "sth": appended.sth,
        "sth_signature": appended.sth.signature,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptRequest {
    /// Hash the receipt names (sha256 of the payload, or a drop's lookup id).
    blob_hash: String,
    sector: String,
    /// Leaf hash of the transfer being delivered (from its append).
    transfer_leaf_hash: String,
    /// Whether this delivery destroys the blob.
    burned: bool,
}

/// `POST /internal/receipt` → the signed receipt proving the transfer leaf against the newest
/// STH. The relay sends it in the response headers, before the body; it appends the delivery
/// event itself once the body was completely sent.
async fn receipt(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request: ReceiptRequest = json_body(body)?;
    let leaf_hash = wire::parse_hash_hex(&request.transfer_leaf_hash)
        .map_err(|_| ApiError::bad_request("transfer_leaf_hash must be 64 hex characters"))?;
    if request.blob_hash.is_empty()
        || request.blob_hash.len() > 128
        || request.sector.is_empty()
        || request.sector.len() > 64
    {
        return Err(ApiError::bad_request("blob_hash and sector must be 1-128 and 1-64 characters"));
    }
    let sth = latest_sth(&state.snapshot()?)?;
    let delivery = Delivery {
        blob_hash: request.blob_hash,
        sector: request.sector,
        retrieved_at_ms: now_ms(),
        burn_confirmed: request.burned,
    };
    let worker = state.clone();
    // ML-DSA signing is ~1 ms of CPU: keep it off the async workers.
    let receipt = tokio::task::spawn_blocking(move || receipt::issue(&worker, &leaf_hash, delivery, &sth))
        .await
        .map_err(|e| ApiError::internal("receipt task", &e))??;
    Ok(Json(json!({ "ok": true, "receipt": receipt, "receipt_header": receipt.to_header() })))
}

/// `GET /internal/prove?leaf_hash=HEX` → inclusion proof against the newest STH.
async fn prove(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let hash = params.get("leaf_hash").ok_or_else(|| ApiError::bad_request("leaf_hash is required"))?;
    let hash = wire::parse_hash_hex(hash).map_err(|_| ApiError::bad_request("leaf_hash must be 64 hex characters"))?;
    let snapshot = state.snapshot()?;
    let sth = latest_sth(&snapshot)?;
    let index = snapshot
        .index_of(&hash)?
        .filter(|&i| i < sth.body.tree_size)
        .ok_or_else(|| ApiError::not_found("no leaf with that hash"))?;
    let proof = inclusion_proof(&snapshot, index, sth.body.tree_size)?;
    Ok(Json(json!({ "ok": true, "proof": proof, "sth": sth })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationRequest {
    /// The relay's public URL.
    url: String,
    /// The relay's version.
    version: String,
}

/// `POST /internal/sign-registration` → a registration for `/v2/relays/register`, signed with
/// the log key: ML-DSA-65 over `url|sector|version|timestamp`. The log fixes the sector (its
/// own) and the timestamp (now), so this can sign nothing but a current registration.
async fn sign_registration(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: RegistrationRequest = json_body(body)?;
    let url_ok =
        (request.url.starts_with("https://") || request.url.starts_with("http://")) && request.url.len() <= 2048;
    let version_ok = !request.version.is_empty() && request.version.len() <= 32;
    if !url_ok || !version_ok || request.url.contains('|') || request.version.contains('|') {
        return Err(ApiError::bad_request(
            "url must be an http(s) URL (≤ 2048) and version 1-32 characters, neither containing '|'",
        ));
    }
    let timestamp = wire::iso8601_ms(now_ms());
    let message = format!("{}|{}|{}|{}", request.url, state.config.sector, request.version, timestamp);
    let signature = wire::b64(state.signing_key.sign(message.as_bytes()));
    Ok(Json(json!({
        "url": request.url,
        "sector": state.config.sector,
        "version": request.version,
        "timestamp": timestamp,
        "public_key": state.public_key_b64,
        "signature": signature,
    })))
}
