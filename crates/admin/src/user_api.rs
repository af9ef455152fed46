//! `/api/user/*`: the accounts API of the API reference, JSON in and out, the session in the
//! `paramant_user_session` cookie (HttpOnly; Secure; SameSite=Strict).

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonapi::{ApiError, ApiResult, PathParam};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{self, Client};
use crate::state::SharedState;
use crate::store::{SessionKind, UserRecord};

/// The user session cookie's name (API reference).
pub const USER_COOKIE: &str = "paramant_user_session";

/// The user API (`/api/user/*`, session cookie).
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/api/user/signup", post(signup))
        .route("/api/user/auth/setup/{token}", post(setup))
        .route("/api/user/auth/setup/{token}/confirm", post(confirm))
        .route("/api/user/auth/login", post(login))
        .route("/api/user/auth/login-with-backup", post(login_with_backup))
        .route("/api/user/auth/logout", post(logout))
        .route("/api/user/session/verify", get(verify))
        .route("/api/user/account", get(account).delete(delete_account))
        .route("/api/user/account/totp/reset", post(reset_totp))
        .route("/api/user/account/sessions/revoke-others", post(revoke_others))
        .route("/api/user/account/backup-codes/regenerate", post(regenerate_codes))
        .route("/api/user/account/key/rotate", post(rotate_key))
        .route("/api/user/billing/checkout", post(checkout))
        .route("/api/user/billing/cancel", post(cancel))
        .route("/api/user/billing/status", get(billing_status))
        .route("/api/user/billing/history", get(billing_history))
}

/// The caller's address and user agent.
pub fn client(peer: SocketAddr, headers: &HeaderMap) -> Client {
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Client { ip: peer.ip(), user_agent }
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a session token (`Max-Age` = the absolute lifetime), or clearing it.
pub fn session_cookie(name: &str, path: &str, token: Option<&str>, max_age: u64) -> HeaderValue {
    let text = match token {
        Some(token) => format!("{name}={token}; HttpOnly; Secure; SameSite=Strict; Path={path}; Max-Age={max_age}"),
        None => format!("{name}=; HttpOnly; Secure; SameSite=Strict; Path={path}; Max-Age=0"),
    };
    // Invariant: tokens are prefix + hex, names and paths are constants: always a valid value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn with_cookie(body: Value, cookie: HeaderValue) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The signed-in user behind the request's cookie: 401 `unauthorized` otherwise.
pub struct Authed {
    /// The signed-in account.
    pub user: UserRecord,
    /// SHA-256 of the session token (the session's key in the database).
    pub session_hash: [u8; 32],
}

/// The account whose session cookie came with the request (401 `unauthorized` without a live one).
pub fn authenticate(state: &SharedState, headers: &HeaderMap) -> ApiResult<Authed> {
    let token = cookie(headers, USER_COOKIE).ok_or_else(|| ApiError::unauthorized("no session cookie"))?;
    let (session, session_hash) = accounts::session(state, token, SessionKind::User)?
        .ok_or_else(|| ApiError::unauthorized("session expired or unknown"))?;
    let user = state.db.user(&session.user_id)?.ok_or_else(|| ApiError::unauthorized("account no longer exists"))?;
    Ok(Authed { user, session_hash })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    email: String,
}

async fn signup(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: SignupBody = jsonapi::json_body(body)?;
    accounts::signup(&state, &request.email, &client(peer, &headers)).await?;
    Ok(Json(json!({ "ok": true })))
}

async fn setup(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PathParam(token): PathParam,
) -> ApiResult<Response> {
    let view = accounts::setup(&state, &token, &client(peer, &headers)).await?;
    let body = json!({
        "ok": true,
        "email": view.email,
        "secret": view.secret,
        "otpauth": view.otpauth,
        "backup_codes": view.backup_codes,
    });
    Ok(no_store(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    totp_code: String,
}

async fn confirm(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PathParam(token): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let request: CodeBody = jsonapi::json_body(body)?;
    let confirmed = accounts::confirm(&state, &token, &request.totp_code, &client(peer, &headers)).await?;
    let cookie = session_cookie(USER_COOKIE, "/", Some(&confirmed.session_token), state.config.sessions.absolute_secs);
    Ok(with_cookie(json!({ "ok": true, "email": confirmed.email, "api_key": confirmed.api_key }), cookie))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    totp_code: String,
}

async fn login(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let request: LoginBody = jsonapi::json_body(body)?;
    let token = accounts::login(&state, &request.email, &request.totp_code, &client(peer, &headers))?;
    let cookie = session_cookie(USER_COOKIE, "/", Some(&token), state.config.sessions.absolute_secs);
    Ok(with_cookie(json!({ "ok": true }), cookie))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    email: String,
    backup_code: String,
}

async fn login_with_backup(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let request: BackupBody = jsonapi::json_body(body)?;
    let login =
        accounts::login_with_backup(&state, &request.email, &request.backup_code, &client(peer, &headers)).await?;
    let cookie = session_cookie(USER_COOKIE, "/", Some(&login.session_token), state.config.sessions.absolute_secs);
    let body = json!({
        "ok": true,
        "totp_reenrollment_required": true,
        "setup_url": accounts::setup_url(&state, &login.setup_token),
    });
    Ok(with_cookie(body, cookie))
}

async fn logout(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = cookie(&headers, USER_COOKIE) {
        accounts::end_session(&state, token)?;
    }
    Ok(with_cookie(json!({ "ok": true }), session_cookie(USER_COOKIE, "/", None, 0)))
}

async fn verify(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let authed = authenticate(&state, &headers)?;
    Ok(Json(json!({ "ok": true, "user_id": authed.user.user_id, "email": authed.user.email })))
}

/// The account view (API and web page share it).
pub fn account_view(state: &SharedState, authed: &Authed) -> ApiResult<Value> {
    let user = &authed.user;
    let totp = state.db.totp(&user.user_id)?;
    let sessions: Vec<Value> = accounts::sessions_of(state, &user.user_id)?
        .into_iter()
        .map(|(hash, s)| {
            json!({
                "id": hex::encode(&hash[..8]),
                "created_at": wire::iso8601_ms(s.created_ms),
                "last_seen": wire::iso8601_ms(s.last_seen_ms),
                "ip": s.ip,
                "user_agent": s.user_agent,
                "via": s.via,
                "current": hash == authed.session_hash,
            })
        })
        .collect();
    Ok(json!({
        "ok": true,
        "user_id": user.user_id,
        "email": user.email,
        "plan": user.plan,
        "status": user.status,
        "created_at": wire::iso8601_ms(user.created_ms),
        "totp_active": totp.as_ref().is_some_and(|t| t.active),
        "totp_required": user.totp_required,
        "backup_codes_remaining": totp.as_ref().filter(|t| t.active).map_or(0, |t| t.backup_hashes.len()),
        "api_key_masked": user.key.as_ref().map(|k| k.masked.clone()),
        "sessions": sessions,
        "billing": billing(user),
    }))
}

fn billing(user: &UserRecord) -> Value {
    json!({ "plan": user.plan, "subscription": user.subscription, "provider": null })
}

async fn account(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Response> {
    let authed = authenticate(&state, &headers)?;
    Ok(no_store(account_view(&state, &authed)?))
}

/// Body of the sensitive actions: a fresh TOTP code.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StepUp {
    #[serde(default)]
    totp_code: Option<String>,
}

/// The gate of every sensitive action: the session, then a fresh TOTP code of its account in
/// the body (an empty body is a missing code).
fn stepped_up(state: &SharedState, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Authed> {
    let authed = authenticate(state, headers)?;
    let bytes = jsonapi::body_bytes(body)?;
    let request = if bytes.is_empty() { StepUp::default() } else { jsonapi::parse_json(&bytes)? };
    accounts::require_fresh_code(state, &authed.user.user_id, request.totp_code.as_deref())?;
    Ok(authed)
}

async fn delete_account(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let authed = stepped_up(&state, &headers, body)?;
    accounts::delete_account(&state, &authed.user).await?;
    crate::audit::note(&state, "user_account_deleted", &authed.user.user_id, "")?;
    Ok(with_cookie(json!({ "ok": true }), session_cookie(USER_COOKIE, "/", None, 0)))
}

async fn reset_totp(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let authed = stepped_up(&state, &headers, body)?;
    accounts::reset_totp(&state, &authed.user, "you asked to set up your authenticator again.").await?;
    crate::audit::note(&state, "user_totp_reset", &authed.user.user_id, "")?;
    Ok(with_cookie(json!({ "ok": true, "setup_email_sent": true }), session_cookie(USER_COOKIE, "/", None, 0)))
}

async fn revoke_others(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let authed = authenticate(&state, &headers)?;
    let user_id = authed.user.user_id.clone();
    let revoked = state
        .db
        .write(|txn| Ok::<_, ApiError>(crate::store::tx::revoke_sessions(txn, &user_id, Some(authed.session_hash))?))?;
    Ok(Json(json!({ "ok": true, "revoked": revoked })))
}

async fn regenerate_codes(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let authed = stepped_up(&state, &headers, body)?;
    let codes = accounts::regenerate_backup(&state, &authed.user.user_id).await?;
    crate::audit::note(&state, "user_backup_codes_regenerated", &authed.user.user_id, "")?;
    Ok(no_store(json!({ "ok": true, "backup_codes": codes })))
}

async fn rotate_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let authed = stepped_up(&state, &headers, body)?;
    let key = accounts::new_account_key(&state, &authed.user.user_id).await?;
    crate::audit::note(&state, "user_key_rotated", &authed.user.user_id, "")?;
    Ok(no_store(json!({ "ok": true, "api_key": key })))
}

/// A JSON answer that carries a secret: never cached.
fn no_store(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn checkout(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    authenticate(&state, &headers)?;
    Err(ApiError::conflict(
        "billing_not_configured",
        "no payment provider is configured on this installation; ask the operator to change your plan",
    ))
}

async fn cancel(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let authed = authenticate(&state, &headers)?;
    let user_id = authed.user.user_id.clone();
    let now = state.now_ms();
    let user = state.db.write(|txn| {
        let mut user = crate::store::tx::user(txn, &user_id)?.ok_or_else(|| ApiError::unauthorized("no account"))?;
        if user.subscription != "active" {
            return Err(ApiError::conflict("no_active_subscription", "there is no active subscription to cancel"));
        }
        user.subscription = "cancel_scheduled".into();
        user.billing_history.push(crate::store::BillingEvent {
            event: "cancellation_scheduled".into(),
            plan: user.plan.clone(),
            at_ms: now,
        });
        crate::store::tx::put_user(txn, &user)?;
        Ok(user)
    })?;
    Ok(Json(json!({ "ok": true, "billing": billing(&user) })))
}

async fn billing_status(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let authed = authenticate(&state, &headers)?;
    Ok(Json(json!({ "ok": true, "billing": billing(&authed.user), "checkout_available": false })))
}

async fn billing_history(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let authed = authenticate(&state, &headers)?;
    let history: Vec<Value> = authed
        .user
        .billing_history
        .iter()
        .map(|e| json!({ "event": e.event, "plan": e.plan, "at": wire::iso8601_ms(e.at_ms) }))
        .collect();
    Ok(Json(json!({ "ok": true, "history": history })))
}
