//! `/admin/api/admin/*`: the admin API, authenticated by `X-Admin-Token` (compared in constant
//! time). The token is generated at first start into the credentials/state directory and
//! printed by `paramant up`; no endpoint hands it out.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonapi::{ApiError, ApiResult, PathParam};
use serde::Deserialize;
use serde_json::Value;

use crate::admin_ops::{self, Admin};
use crate::state::SharedState;

/// The admin API (`/api/admin/*`, `X-Admin-Token`).
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/admin/api/admin/users", get(users))
        .route("/admin/api/admin/users/{user_id}", get(user_detail).delete(delete_user))
        .route("/admin/api/admin/users/{user_id}/deactivate", post(deactivate_user))
        .route("/admin/api/admin/keys", get(keys).post(create_key))
        .route("/admin/api/admin/keys/revoke", post(revoke_key))
        .route("/admin/api/admin/keys/plan", post(change_plan))
        .route("/admin/api/admin/force-totp", post(force_totp))
        .route("/admin/api/admin/audit", get(audit))
        .route("/admin/api/admin/license", get(license))
}

/// The admin, if `X-Admin-Token` is right; 401 `unauthorized` otherwise.
pub fn authenticate(state: &SharedState, headers: &HeaderMap) -> ApiResult<Admin> {
    let presented = headers.get("x-admin-token").map(|v| v.as_bytes()).unwrap_or_default();
    if presented.is_empty() || !state.admin_token.matches(presented) {
        return Err(ApiError::unauthorized("missing or wrong X-Admin-Token"));
    }
    Ok(Admin::authenticated())
}

async fn users(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    let users = admin_ops::users(&admin, &state)?;
    Ok(Json(serde_json::json!({ "ok": true, "count": users.len(), "users": users })))
}

async fn user_detail(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    let mut detail = admin_ops::user_detail(&admin, &state, &id)?;
    detail["ok"] = true.into();
    Ok(Json(detail))
}

async fn delete_user(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    Ok(Json(admin_ops::delete_user(&admin, &state, &id).await?))
}

async fn deactivate_user(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(id): PathParam,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    Ok(Json(admin_ops::deactivate_user(&admin, &state, &id).await?))
}

async fn keys(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    Ok(Json(admin_ops::keys(&admin, &state).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    #[serde(default)]
    label: String,
    plan: String,
}

async fn create_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    let request: CreateKey = jsonapi::json_body(body)?;
    Ok(Json(admin_ops::create_key(&admin, &state, &request.label, &request.plan).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    key_hash: String,
    #[serde(default)]
    plan: Option<String>,
}

async fn revoke_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    let request: KeyBody = jsonapi::json_body(body)?;
    Ok(Json(admin_ops::revoke_key(&admin, &state, &request.key_hash).await?))
}

async fn change_plan(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    let request: KeyBody = jsonapi::json_body(body)?;
    let plan = request.plan.as_deref().ok_or_else(|| ApiError::bad_request("plan is required"))?;
    Ok(Json(admin_ops::change_plan(&admin, &state, &request.key_hash, plan).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceTotp {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    required: bool,
    /// Accepted for compatibility with the API reference; not stored in the public log.
    #[serde(default)]
    reason: Option<String>,
}

async fn force_totp(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    let request: ForceTotp = jsonapi::json_body(body)?;
    if request.reason.as_ref().is_some_and(|r| r.len() > 500) {
        return Err(ApiError::bad_request("reason must be at most 500 characters"));
    }
    let user_id = admin_ops::resolve_user(&state, request.user_id.as_deref(), request.key.as_deref())?;
    Ok(Json(admin_ops::force_totp(&admin, &state, &user_id, request.required).await?))
}

async fn audit(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    let limit = jsonapi::query_u64(&params, "limit")?.unwrap_or(100).clamp(1, 500) as usize;
    Ok(Json(admin_ops::audit_view(&admin, &state, limit).await?))
}

async fn license(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let admin = authenticate(&state, &headers)?;
    Ok(Json(admin_ops::license(&admin, &state).await))
}
