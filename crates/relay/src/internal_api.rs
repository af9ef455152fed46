//! The relay's internal API for the admin panel and `paramant up`: API key administration.
//! Loopback only, and every request must carry `X-Internal-Auth` (compared in constant time).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonapi::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth;
use crate::keys::Plan;
use crate::state::{SharedState, now_ms};

/// The internal API (behind `X-Internal-Auth`).
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/internal/keys", post(create_key).get(list_keys))
        .route("/internal/keys/update", post(update_key))
        .route("/internal/stats", get(stats))
        .fallback(jsonapi::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        // After the auth layer: Prometheus scrapes without the secret (loopback only, no secrets).
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Prometheus text exposition of this process's metrics.
async fn metrics() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, monitoring::CONTENT_TYPE)], monitoring::render())
}

async fn require_auth(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let presented = request.headers().get("x-internal-auth").map(|v| v.as_bytes()).unwrap_or_default();
    if !state.internal_token.matches(presented) {
        return ApiError::unauthorized("missing or wrong X-Internal-Auth").into_response();
    }
    next.run(request).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    plan: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    email: Option<String>,
    /// "pgp_", the default and the only prefix minted: a `plk_` operator key is a license token
    /// (`paramant license issue`), never a random key.
    #[serde(default)]
    prefix: Option<String>,
    /// SHA-256 (hex) of a key minted elsewhere — the admin panel gives one account the same key
    /// on every relay and sends only its hash. Absent: the relay mints the key.
    #[serde(default)]
    key_hash: Option<String>,
}

fn parse_plan(name: &str) -> ApiResult<Plan> {
    Plan::parse(name).ok_or_else(|| ApiError::bad_request("plan must be free, community, professional or enterprise"))
}

/// `POST /internal/keys` → the new key, shown once.
async fn create_key(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request: CreateKey = jsonapi::json_body(body)?;
    let plan = parse_plan(&request.plan)?;
    match request.prefix.as_deref().unwrap_or("pgp_") {
        "pgp_" => {}
        "plk_" => {
            return Err(ApiError::bad_request(
                "plk_ keys are license tokens (paramant license issue); the relay mints pgp_ keys only",
            ));
        }
        _ => return Err(ApiError::bad_request("prefix must be pgp_")),
    }
    if request.label.len() > 200 {
        return Err(ApiError::bad_request("label must be at most 200 characters"));
    }
    let new = auth::NewKey { plan, label: &request.label, email: request.email.as_deref() };
    if let Some(hash) = &request.key_hash {
        let record = auth::import_key(&state.db, &state.license, hash, new, now_ms())?;
        return Ok(Json(json!({ "ok": true, "key_hash": hash, "plan": record.plan })));
    }
    let key = auth::create_key(&state.db, &state.license, new, now_ms())?;
    let key_hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()));
    Ok(Json(json!({ "ok": true, "key": key, "key_hash": key_hash, "plan": plan })))
}

/// `GET /internal/stats`: the aggregates opted-in license telemetry may send — users (active
/// keys), transfers, requests, 5xx answers and authentication failures over the last 24 hours,
/// and uptime. Numbers only.
async fn stats(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let users = state.db.active_users()?;
    let mut answer =
        serde_json::to_value(state.stats.snapshot(now_ms())).map_err(|e| ApiError::internal("stats", &e))?;
    answer["users"] = users.into();
    answer["ok"] = true.into();
    Ok(Json(answer))
}

/// `GET /internal/keys`: every key's hash, plan, label and state (never the key itself).
async fn list_keys(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let keys = state.db.keys()?;
    Ok(Json(json!({ "ok": true, "count": keys.len(), "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateKey {
    key_hash: String,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

/// `POST /internal/keys/update`: change a key's plan, or (de)activate it.
async fn update_key(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request: UpdateKey = jsonapi::json_body(body)?;
    let plan = request.plan.as_deref().map(parse_plan).transpose()?;
    let record = auth::update_key(&state.db, &state.license, &request.key_hash, plan, request.active)?;
    Ok(Json(json!({ "ok": true, "key": record })))
}
