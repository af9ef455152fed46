//! The public, unauthenticated read API of the log (API reference, "CT log" sections), plus
//! gossip ingest and receipt verification. Every input is parsed here; bad input is a 4xx.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::feed;
use crate::receipt;
use crate::state::{SharedState, inclusion_proof, latest_sth};
use jsonapi::{json_body, query_u64};

/// Largest request body the public API reads (gossip STHs and receipts are a few KiB).
pub const MAX_PUBLIC_BODY: usize = 64 * 1024;
/// `limit` ceiling of list endpoints (API reference: "limit max 100").
const MAX_LIMIT: u64 = 100;

pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v2/sth", get(sth))
        .route("/v2/sth/history", get(sth_history))
        .route("/v2/sth/consistency", get(consistency))
        .route("/v2/sth/ingest", post(ingest))
        .route("/v2/sth/peers", get(peers))
        .route("/v2/sth/peers/{pk_hash}", get(peer_sths))
        .route("/v2/sth/forks", get(forks))
        .route("/v2/sth/{timestamp}", get(sth_at))
        .route("/v2/pubkey", get(pubkey))
        .route("/v2/ct/log", get(ct_log))
        .route("/v2/ct/proof", get(ct_proof))
        .route("/v2/verify-receipt", post(verify_receipt))
        .merge(feed::router())
        .merge(crate::tiles_api::router())
        .fallback(jsonapi::not_found)
        .method_not_allowed_fallback(jsonapi::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PUBLIC_BODY))
        .layer(axum::middleware::map_response(count_response))
        .with_state(state)
}

type Params = Query<HashMap<String, String>>;

async fn count_response(response: axum::response::Response) -> axum::response::Response {
    monitoring::observe_response("ctlog", response.status().as_u16());
    response
}

fn limit(params: &HashMap<String, String>, default: u64) -> ApiResult<usize> {
    Ok(query_u64(params, "limit")?.unwrap_or(default).clamp(1, MAX_LIMIT) as usize)
}

async fn health(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let sth = latest_sth(&state.snapshot()?)?;
    Ok(Json(json!({
        "ok": true,
        "service": "paramant-ctlog",
        "version": env!("CARGO_PKG_VERSION"),
        "sector": state.config.sector,
        "relay_id": state.config.relay_id,
        "edition": "community",
        "tree_size": sth.body.tree_size,
        "sandbox": state.hardening.health(),
    })))
}

async fn sth(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let sth = latest_sth(&state.snapshot()?)?;
    Ok(Json(json!({ "ok": true, "sth": sth })))
}

async fn sth_history(State(state): State<SharedState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let (sths, total) = state.snapshot()?.sth_history(limit(&params, 10)?)?;
    Ok(Json(json!({ "ok": true, "count": sths.len(), "total": total, "sths": sths })))
}

async fn sth_at(
    State(state): State<SharedState>,
    jsonapi::PathParam(timestamp): jsonapi::PathParam,
) -> ApiResult<Json<Value>> {
    let unix_ms: u64 = timestamp.parse().map_err(|_| ApiError::bad_request("timestamp must be Unix milliseconds"))?;
    let sth = state
        .snapshot()?
        .sth_at_or_after(unix_ms)?
        .ok_or_else(|| ApiError::not_found("no STH at or after that timestamp"))?;
    Ok(Json(json!({ "ok": true, "sth": sth })))
}

async fn pubkey(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "ok": true,
        "alg": "ML-DSA-65",
        "public_key": state.public_key_b64,
        "pk_hash": state.pk_hash,
        "checkpoint_origin": state.checkpoint.origin(),
        "checkpoint_key": state.checkpoint.verifier_key(),
    }))
}

async fn ct_log(State(state): State<SharedState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let snapshot = state.snapshot()?;
    let sth = latest_sth(&snapshot)?;
    let size = sth.body.tree_size;
    let limit = limit(&params, 20)?;
    // Without `from`, the newest `limit` entries (in index order).
    let from = query_u64(&params, "from")?.unwrap_or(size.saturating_sub(limit as u64));
    let entries = snapshot
        .leaves(from, limit)?
        .into_iter()
        .filter(|leaf| leaf.index < size)
        .map(|leaf| feed::entry_json(&leaf))
        .collect::<Vec<_>>();
    Ok(Json(json!({
        "ok": true,
        "entries": entries,
        "tree_size": size,
        "root": sth.body.sha3_root,
    })))
}

/// `?index=N` or `?leaf_hash=HEX`, optionally `&tree_size=M` (default: the newest STH's size,
/// so the root always matches a signed STH).
async fn ct_proof(State(state): State<SharedState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let snapshot = state.snapshot()?;
    let latest = latest_sth(&snapshot)?;
    let size = query_u64(&params, "tree_size")?.unwrap_or(latest.body.tree_size);
    if size > latest.body.tree_size {
        return Err(ApiError::bad_request(format!("tree_size {size} exceeds the log size {}", latest.body.tree_size)));
    }
    let index = match (query_u64(&params, "index")?, params.get("leaf_hash")) {
        (Some(index), None) => index,
        (None, Some(hash)) => {
            let hash =
                wire::parse_hash_hex(hash).map_err(|_| ApiError::bad_request("leaf_hash must be 64 hex characters"))?;
            snapshot.index_of(&hash)?.ok_or_else(|| ApiError::not_found("no leaf with that hash"))?
        }
        _ => return Err(ApiError::bad_request("give exactly one of index or leaf_hash")),
    };
    if index >= size {
        return Err(ApiError::bad_request(format!("index {index} is not below tree_size {size}")));
    }
    let proof = inclusion_proof(&snapshot, index, size)?;
    let sth = snapshot.sth_for_size(size)?;
    Ok(Json(json!({
        "ok": true,
        "leaf_index": proof.leaf_index,
        "leaf_hash": proof.leaf_hash,
        "audit_path": proof.audit_path,
        "root": proof.root,
        "tree_size": proof.tree_size,
        "sth": sth,
    })))
}

async fn consistency(State(state): State<SharedState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let snapshot = state.snapshot()?;
    let size = latest_sth(&snapshot)?.body.tree_size;
    let from = query_u64(&params, "from")?.ok_or_else(|| ApiError::bad_request("from is required"))?;
    let to = query_u64(&params, "to")?.unwrap_or(size);
    if from == 0 || from > to || to > size {
        return Err(ApiError::bad_request(format!("need 0 < from ≤ to ≤ {size} (got from={from}, to={to})")));
    }
    let proof = snapshot.consistency_proof(from, to)?;
    Ok(Json(json!({
        "ok": true,
        "from": from,
        "to": to,
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "root_from": hex::encode(snapshot.root_at(from)?),
        "root_to": hex::encode(snapshot.root_at(to)?),
    })))
}

async fn ingest(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    // Rate limit before any parsing or signature work: that work is what a flood costs us.
    state.gossip.rate_limit(client_ip(peer, &headers, &state.config.gossip.trusted_proxies))?;
    let request = json_body(body)?;
    let pk_hash = state.gossip.ingest(&state.store, request).await?;
    Ok(Json(json!({ "ok": true, "relay_pk_hash": pk_hash })))
}

/// The client's address: a configured proxy (the sector's relay) names the real client in
/// `X-Real-IP`; from anyone else, loopback included, the header is ignored (it could be forged).
fn client_ip(peer: SocketAddr, headers: &axum::http::HeaderMap, trusted: &[std::net::IpAddr]) -> std::net::IpAddr {
    let forwarded = || headers.get("x-real-ip")?.to_str().ok()?.parse().ok();
    if trusted.contains(&peer.ip()) { forwarded().unwrap_or(peer.ip()) } else { peer.ip() }
}

async fn peers(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let peers = state
        .snapshot()?
        .peers()?
        .iter()
        .map(|raw| serde_json::from_slice::<Value>(raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal("peer record", &e))?;
    Ok(Json(json!({ "ok": true, "count": peers.len(), "peers": peers })))
}

async fn peer_sths(
    State(state): State<SharedState>,
    jsonapi::PathParam(pk_hash): jsonapi::PathParam,
    Query(params): Params,
) -> ApiResult<Json<Value>> {
    let key = wire::parse_hash_hex(&pk_hash).map_err(|_| ApiError::bad_request("pk_hash must be 64 hex characters"))?;
    let limit = query_u64(&params, "limit")?.unwrap_or(50).clamp(1, MAX_LIMIT) as usize;
    let offset = query_u64(&params, "offset")?.unwrap_or(0);
    let snapshot = state.snapshot()?;
    let record: Value = match snapshot.peer(&key)? {
        Some(raw) => serde_json::from_slice(&raw).map_err(|e| ApiError::internal("peer record", &e))?,
        None => return Err(ApiError::not_found("unknown peer")),
    };
    let sths = snapshot
        .peer_sths(&key, offset, limit)?
        .iter()
        .map(|raw| serde_json::from_slice::<Value>(raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal("peer sth", &e))?;
    Ok(Json(json!({
        "ok": true,
        "relay_pk_hash": hex::encode(key),
        "relay_id": record["relay_id"],
        "sths": sths,
        "total": record["sth_count"],
        "limit": limit,
        "offset": offset,
    })))
}

async fn forks(State(state): State<SharedState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let forks = state
        .snapshot()?
        .forks(limit(&params, 100)?)?
        .iter()
        .map(|raw| serde_json::from_slice::<Value>(raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal("fork record", &e))?;
    Ok(Json(json!({ "ok": true, "count": forks.len(), "forks": forks })))
}

async fn verify_receipt(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<impl IntoResponse> {
    let request: Value = json_body(body)?;
    let receipt = request.get("receipt").ok_or_else(|| ApiError::bad_request("receipt is required"))?;
    let verdict = receipt::verify(&state, receipt)?;
    Ok(Json(verdict))
}
