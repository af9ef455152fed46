//! The API reference's internal `/v2/user/*` TOTP endpoints, served here on the admin service's
//! internal listener (loopback, `X-Internal-Auth` compared in constant time) instead of by the
//! relays: the process that parses untrusted uploads never holds TOTP secrets.

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

use crate::accounts::{self, OnValid};
use crate::state::SharedState;

/// Largest internal request (API reference: bodies ≤ 4096 bytes).
const MAX_BODY: usize = 4096;

/// The internal API (`X-Internal-Auth`), served on the internal listener.
pub fn router(state: SharedState) -> Router {
    Router::new()
        .route("/v2/user/setup-totp", post(setup_totp))
        .route("/v2/user/verify-totp", post(verify_totp))
        .route("/v2/user/activate-totp", post(activate_totp))
        .route("/v2/user/consume-backup", post(consume_backup))
        .route("/v2/user/regenerate-backup", post(regenerate_backup))
        .route("/v2/user/delete-totp", post(delete_totp))
        .route("/v2/user/get-totp-provisional", post(get_provisional))
        .route("/v2/user/get-backup-codes-plaintext", post(get_codes))
        .route("/health", get(health))
        .fallback(jsonapi::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn require_auth(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let presented = request.headers().get("x-internal-auth").map(|v| v.as_bytes()).unwrap_or_default();
    if !state.internal_token.matches(presented) {
        return ApiError::unauthorized("missing or wrong X-Internal-Auth").into_response();
    }
    next.run(request).await
}

async fn health() -> Json<Value> {
    Json(json!({ "ok": true, "service": "paramant-admin (internal)" }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    user_id: String,
    #[serde(default)]
    totp_code: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    provisional: Option<bool>,
}

/// Parses the body and checks the account exists (404 `not_found` otherwise).
fn user_body(state: &SharedState, body: Result<Bytes, BytesRejection>) -> ApiResult<UserBody> {
    let request: UserBody = jsonapi::json_body(body)?;
    if state.db.user(&request.user_id)?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    Ok(request)
}

fn required<'a>(value: &'a Option<String>, name: &str) -> ApiResult<&'a str> {
    value.as_deref().ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

/// Provisions a secret; idempotent while provisional, 409 `totp_already_configured` when active.
async fn setup_totp(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    let _ = request.provisional; // every enrollment starts provisional until a code activates it
    let provisioned = accounts::provision(&state, &request.user_id).await?;
    Ok(Json(json!({ "ok": true, "secret": provisioned.secret, "backup_codes": provisioned.backup_codes })))
}

async fn verify_totp(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    let code = required(&request.totp_code, "totp_code")?;
    if state.db.totp(&request.user_id)?.is_none() {
        return Err(ApiError::not_found("no TOTP setup for this user"));
    }
    let valid = accounts::check_code(&state, &request.user_id, code, OnValid::Nothing)?;
    Ok(Json(json!({ "ok": true, "valid": valid })))
}

/// Activates only with a valid code for an existing provisional secret (the reference
/// activated without either).
async fn activate_totp(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    let code = required(&request.totp_code, "totp_code")?;
    match state.db.totp(&request.user_id)? {
        None => return Err(ApiError::not_found("no TOTP setup for this user")),
        Some(record) if record.active => {
            return Err(ApiError::conflict("totp_already_configured", "TOTP is already active"));
        }
        Some(_) => {}
    }
    let activated = accounts::check_code(&state, &request.user_id, code, OnValid::Activate)?;
    if !activated {
        return Err(ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_totp_code", "TOTP code incorrect"));
    }
    Ok(Json(json!({ "ok": true, "activated": true })))
}

async fn consume_backup(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    let code = required(&request.code, "code")?;
    let valid = accounts::consume_backup(&state, &request.user_id, code).await?;
    Ok(Json(json!({ "ok": true, "valid": valid })))
}

async fn regenerate_backup(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    let codes = accounts::regenerate_backup(&state, &request.user_id).await?;
    Ok(Json(json!({ "ok": true, "backup_codes": codes })))
}

async fn delete_totp(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    accounts::delete_totp(&state, &request.user_id)?;
    Ok(Json(json!({ "ok": true })))
}

async fn get_provisional(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    match state.db.totp(&request.user_id)? {
        Some(record) if !record.active => {
            let provisioned = accounts::provision(&state, &request.user_id).await?;
            Ok(Json(
                json!({ "ok": true, "exists": true, "secret": provisioned.secret, "backup_codes": provisioned.backup_codes }),
            ))
        }
        _ => Ok(Json(json!({ "ok": true, "exists": false }))),
    }
}

/// The plaintext codes exist only while the enrollment is provisional (for the setup page).
async fn get_codes(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let request = user_body(&state, body)?;
    match state.db.totp(&request.user_id)? {
        Some(record) if !record.active => {
            let provisioned = accounts::provision(&state, &request.user_id).await?;
            Ok(Json(json!({ "ok": true, "backup_codes": provisioned.backup_codes })))
        }
        _ => Err(ApiError::not_found("plaintext backup codes exist only during a provisional enrollment")),
    }
}
