//! The internal API relays use: append an event, get a signed delivery receipt for a transfer
//! leaf (and, after a logged burn, the receipt confirming it), prove a leaf by hash, and sign the relay's registration in the relay registry (the
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
use serde_json::Value;
use std::collections::HashMap;
use wire::LogEvent;
use wire::log_api::{
    AppendAnswer, BurnReceiptRequest, ProveAnswer, ReceiptAnswer, ReceiptRequest, RegistrationRequest,
};
use wire::{RelayRegistration, SignedRegistration};

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
        .route("/internal/append-batch", post(crate::internal_batch::append_batch))
        .route("/internal/receipt", post(receipt))
        .route("/internal/burn-receipt", post(burn_receipt))
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

/// [`wire::log_api::AppendRequest`], parsed leniently: the event's timestamp may be absent
/// (the sequencer stamps it either way).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendRequest {
    event: Value,
}

/// Parses an event, stamping a placeholder timestamp the sequencer replaces.
fn parse_event(event: Value) -> ApiResult<LogEvent> {
    check_event(event).map_err(ApiError::bad_request)
}

/// [`parse_event`] with the refusal in words (for `/internal/append-batch`).
pub(crate) fn check_event(mut event: Value) -> Result<LogEvent, String> {
    let Value::Object(map) = &mut event else {
        return Err("event must be a JSON object".into());
    };
    map.insert("timestamp".into(), wire::iso8601_ms(now_ms()).into());
    let event: LogEvent = serde_json::from_value(event).map_err(|e| format!("event: {e}"))?;
    event.validate().map_err(|e| format!("event: {e}"))?;
    Ok(event)
}

/// `POST /internal/append {"event":{...}}` → the leaf's index and inclusion proof against the
/// signed STH of its batch — the `merkle_proof` of the API's inbound response.
async fn append(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<AppendAnswer>> {
    let request: AppendRequest = json_body(body)?;
    let appended = state.sequencer.append(parse_event(request.event)?).await?;
    let size = appended.sth.body.tree_size;
    let proof = inclusion_proof(&state.snapshot()?, appended.leaf_index, size)?;
    Ok(Json(AppendAnswer {
        ok: true,
        leaf_index: appended.leaf_index,
        leaf_hash: proof.leaf_hash,
        tree_size: size,
        audit_path: proof.audit_path,
        root: proof.root,
        sth_signature: appended.sth.signature.clone(),
        sth: appended.sth,
    }))
}

/// `POST /internal/receipt` → the signed receipt proving the transfer leaf against the newest
/// STH. The relay sends it in the response headers, before the body, so it never confirms a
/// burn; it appends the delivery event itself once the client acknowledged the body.
async fn receipt(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ReceiptAnswer>> {
    let request: ReceiptRequest = json_body(body)?;
    let leaf_hash = parse_leaf_hash(&request.transfer_leaf_hash, "transfer_leaf_hash")?;
    check_names(&request.blob_hash, &request.sector)?;
    let sth = latest_sth(&state.snapshot()?)?;
    let delivery = Delivery {
        blob_hash: request.blob_hash,
        sector: request.sector,
        retrieved_at: wire::iso8601_ms(now_ms()),
        burn_confirmed: false,
    };
    let worker = state.clone();
    // ML-DSA signing: keep it off the async workers.
    let receipt_header = tokio::task::spawn_blocking(move || receipt::issue(&worker, &leaf_hash, delivery, &sth))
        .await
        .map_err(|e| ApiError::internal("receipt task", &e))??;
    Ok(Json(ReceiptAnswer { ok: true, receipt_header }))
}

/// `POST /internal/burn-receipt` → the receipt with `burn_confirmed: true`, only for a burn
/// recorded in this log (see [`receipt::issue_burn`]); 404 otherwise.
async fn burn_receipt(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ReceiptAnswer>> {
    let request: BurnReceiptRequest = json_body(body)?;
    let transfer = parse_leaf_hash(&request.transfer_leaf_hash, "transfer_leaf_hash")?;
    let delivery = parse_leaf_hash(&request.delivery_leaf_hash, "delivery_leaf_hash")?;
    check_names(&request.blob_hash, &request.sector)?;
    let worker = state.clone();
    let receipt_header = tokio::task::spawn_blocking(move || {
        receipt::issue_burn(&worker, &request.blob_hash, &request.sector, &transfer, &delivery)
    })
    .await
    .map_err(|e| ApiError::internal("receipt task", &e))??;
    Ok(Json(ReceiptAnswer { ok: true, receipt_header }))
}

fn parse_leaf_hash(hex: &str, name: &str) -> ApiResult<tlog::Hash> {
    wire::parse_hash_hex(hex).map_err(|_| ApiError::bad_request(format!("{name} must be 64 hex characters")))
}

fn check_names(blob_hash: &str, sector: &str) -> ApiResult<()> {
    if blob_hash.is_empty() || blob_hash.len() > 128 || sector.is_empty() || sector.len() > 64 {
        return Err(ApiError::bad_request("blob_hash and sector must be 1-128 and 1-64 characters"));
    }
    Ok(())
}

/// `GET /internal/prove?leaf_hash=HEX` → inclusion proof against the newest STH.
async fn prove(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<ProveAnswer>> {
    let hash = params.get("leaf_hash").ok_or_else(|| ApiError::bad_request("leaf_hash is required"))?;
    let hash = wire::parse_hash_hex(hash).map_err(|_| ApiError::bad_request("leaf_hash must be 64 hex characters"))?;
    let snapshot = state.snapshot()?;
    let sth = latest_sth(&snapshot)?;
    let index = snapshot
        .index_of(&hash)?
        .filter(|&i| i < sth.body.tree_size)
        .ok_or_else(|| ApiError::not_found("no leaf with that hash"))?;
    let proof = inclusion_proof(&snapshot, index, sth.body.tree_size)?;
    Ok(Json(ProveAnswer { ok: true, proof, sth }))
}

/// `POST /internal/sign-registration` → the relay's registry entry
/// ([`wire::SignedRegistration`]), signed with the log key. The log fixes the sector (its own)
/// and the timestamp (now), so it signs nothing but a current registration of its sector.
async fn sign_registration(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SignedRegistration>> {
    let request: RegistrationRequest = json_body(body)?;
    let registration = RelayRegistration {
        url: request.url,
        sector: state.config.sector.clone(),
        version: request.version,
        edition: request.edition,
        timestamp: wire::iso8601_ms(now_ms()),
    };
    registration.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(registration.sign(&state.signing_key)))
}
