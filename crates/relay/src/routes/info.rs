//! Small endpoints: health, capabilities, key checks, the per-key audit trail and the device
//! queue (`stream-next`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonapi::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::ids::DeviceId;
use crate::state::{SharedState, now_ms};
use crate::wire_v1::{KEMS, SIGS};

/// Most audit entries one request returns.
const MAX_AUDIT_LIMIT: u64 = 1_000;

/// `GET /health`.
pub async fn health(State(state): State<SharedState>) -> Json<Value> {
    let (blobs, bytes, budget) = state.blobs.usage();
    let license = crate::license::health(&state);
    Json(json!({
        "ok": true,
        "service": "paramant-relay",
        "version": env!("CARGO_PKG_VERSION"),
        "sector": state.config.sector,
        "edition": license["edition"],
        "license": license,
        "blobs": blobs,
        "blob_bytes": bytes,
        "blob_budget_bytes": budget,
        "draining": state.is_draining(),
        "sandbox": state.hardening.health(),
    }))
}

/// `GET /v2/capabilities`: what the SDK negotiates before its first send (wire format v1).
pub async fn capabilities() -> Json<Value> {
    let list = |algs: &[(u16, &str)]| {
        algs.iter().map(|(id, name)| json!({ "id": id, "name": name, "loaded": true })).collect::<Vec<_>>()
    };
    Json(json!({ "wire_version": 1, "kem": list(&KEMS), "sig": list(&SIGS) }))
}

/// The OpenAPI 3.1 document of this API (`openapi/generate.py` writes it; CI checks it against
/// the running relay with schemathesis).
const OPENAPI: &str = include_str!("../openapi/openapi.json");

/// `GET /v2/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /v2/auth/capabilities`: which authentication modes this relay offers.
pub async fn auth_capabilities(State(state): State<SharedState>) -> Json<Value> {
    // User TOTP lives in the admin panel service, not in the relay: it is available when this
    // sector has one.
    let accounts = state.config.user_accounts_url.as_deref();
    Json(json!({
        "user_totp_available": accounts.is_some(),
        "api_key": true,
        "user_totp": accounts.is_some(),
        "user_accounts_url": accounts,
        "capabilities_version": 1,
    }))
}

/// `GET /v2/check-key`: whether the presented key is valid, and its plan (public; a key that
/// does not authenticate counts against the client address's limit like no key).
pub async fn check_key(caller: Option<CheckedKey>) -> Json<Value> {
    let plan = caller.map(|CheckedKey(c)| c.plan());
    Json(json!({ "valid": plan.is_some(), "plan": plan }))
}

/// The caller if the key authenticated, `None` for a missing or invalid key (never a refusal).
pub struct CheckedKey(Caller);

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for CheckedKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Option<Self>, std::convert::Infallible> {
        Ok(parts.extensions.get::<Caller>().cloned().map(CheckedKey))
    }
}

/// `GET /v2/audit?limit=N`: the caller's uploads and downloads, newest first.
pub async fn audit(
    State(state): State<SharedState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let limit = jsonapi::query_u64(&params, "limit")?.unwrap_or(100).clamp(1, MAX_AUDIT_LIMIT) as usize;
    let entries = state.audit.entries(caller.key_hash(), limit);
    Ok(Json(json!({ "ok": true, "count": entries.len(), "entries": entries })))
}

/// `GET /v2/stream-next?device=D` (the SDK: always 200 with `available`) or with an
/// `X-Device-Id` header (the API reference: 200 with the blob, or 204 when none is pending).
pub async fn stream_next(
    State(state): State<SharedState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let from_header = headers.get("x-device-id").and_then(|v| v.to_str().ok());
    let (device, sdk_style) = match (params.get("device"), from_header) {
        (Some(d), _) => (d.as_str(), true),
        (None, Some(d)) => (d, false),
        (None, None) => return Err(ApiError::bad_request("give the device as ?device= or X-Device-Id")),
    };
    let device = DeviceId::parse(device)?;
    let device = device.as_str();
    let now = now_ms();
    let next = state.queues.next(*caller.key_hash(), device, |hash| state.blobs.is_available(hash, now));
    match next {
        Some((hash, queued_ms)) => Ok(Json(json!({
            "ok": true,
            "device": device,
            "available": true,
            "hash": hash,
            "blob_hash": hash,
            "queued_at": wire::iso8601_ms(queued_ms),
        }))
        .into_response()),
        None if sdk_style => {
            Ok(Json(json!({ "ok": true, "device": device, "available": false, "hash": null })).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
