//! The users' pages: start, sign-up, TOTP setup (QR code, secret, backup codes), login with
//! TOTP or a backup code, and the account page (sessions, key, backup codes, sensitive actions).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use jsonapi::PathParam;
use serde::Deserialize;

use super::{Csrf, api_error_page, esc, explain, form, html, page, redirect};
use crate::accounts;
use crate::state::SharedState;
use crate::totp;
use crate::user_api::{self, USER_COOKIE, client, session_cookie};

const NAV: &str = " <a href=\"/signup\">Sign up</a> <a href=\"/login\">Log in</a> <a href=\"/account\">Account</a>";

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/", get(start))
        .route("/signup", get(signup_page).post(signup))
        .route("/auth/setup/{token}", get(setup_page))
        .route("/auth/setup/{token}/confirm", post(confirm))
        .route("/login", get(login_page).post(login))
        .route("/login/backup", get(backup_page).post(backup_login))
        .route("/account", get(account_page))
        .route("/account/logout", post(logout))
        .route("/account/revoke-others", post(revoke_others))
        .route("/account/regenerate-codes", post(regenerate_codes))
        .route("/account/rotate-key", post(rotate_key))
        .route("/account/reset-totp", post(reset_totp))
        .route("/account/delete", post(delete))
}

macro_rules! csrf_or_return {
    ($headers:expr) => {
        match Csrf::of(&$headers) {
            Ok(csrf) => csrf,
            Err(e) => return api_error_page(&e),
        }
    };
}

macro_rules! form_or_return {
    ($state:expr, $headers:expr, $body:expr) => {
        match form(&$state, &$headers, $body) {
            Ok(fields) => fields,
            Err(response) => return response,
        }
    };
}

async fn start(headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let body = "<p>Accounts for the paramant relay: sign up with your email address, set up an authenticator \
                (TOTP), and get your API key.</p><ul><li><a href=\"/signup\">Sign up</a></li>\
                <li><a href=\"/login\">Log in</a></li><li><a href=\"/admin\">Administration</a></li></ul>";
    html(StatusCode::OK, &csrf, page("Welcome", NAV, body))
}

async fn signup_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let body = format!(
        "<form method=\"post\" action=\"/signup\">{}<label for=\"email\">Email address</label>\
         <input type=\"email\" id=\"email\" name=\"email\" required><button type=\"submit\" id=\"signup\">Send me a setup link</button></form>",
        csrf.field(&state)
    );
    html(StatusCode::OK, &csrf, page("Sign up", NAV, &body))
}

#[derive(Deserialize)]
struct EmailForm {
    email: String,
}

async fn signup(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let fields: EmailForm = form_or_return!(state, headers, body);
    if let Err(e) = accounts::signup(&state, &fields.email, &client(peer, &headers)).await {
        return api_error_page(&e);
    }
    let body = "<p class=\"notice\" id=\"sent\">Check your mail: we sent a link to set up your authenticator.</p>";
    html(StatusCode::OK, &csrf, page("Check your mail", NAV, body))
}

async fn setup_page(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PathParam(token): PathParam,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let view = match accounts::setup(&state, &token, &client(peer, &headers)).await {
        Ok(view) => view,
        Err(e) => return api_error_page(&e),
    };
    let svg = totp::qr_svg(&view.otpauth);
    let qr = base64::engine::general_purpose::STANDARD.encode(svg);
    let codes: String =
        view.backup_codes.iter().map(|c| format!("<li class=\"backup-code\">{}</li>", esc(c))).collect();
    let body = format!(
        "<p>Account: <strong>{email}</strong></p>\
         <p>Scan this QR code with your authenticator app, or type the secret.</p>\
         <p class=\"qr\"><img alt=\"QR code of the TOTP secret\" src=\"data:image/svg+xml;base64,{qr}\"></p>\
         <p>Secret: <span class=\"secret\" id=\"secret\">{secret}</span> (SHA-1, 6 digits, 30 seconds)</p>\
         <h2>Backup codes</h2><p>Each works once. Keep them somewhere safe: they are shown only now.</p><ul class=\"codes\">{codes}</ul>\
         <form method=\"post\" action=\"/auth/setup/{token}/confirm\">{field}<label for=\"code\">Code from your app</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <button type=\"submit\" id=\"confirm\">Activate</button></form>",
        email = esc(&view.email),
        secret = esc(&view.secret),
        token = esc(&token),
        field = csrf.field(&state),
    );
    html(StatusCode::OK, &csrf, page("Set up your authenticator", NAV, &body))
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn confirm(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PathParam(token): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let fields: CodeForm = form_or_return!(state, headers, body);
    let confirmed = match accounts::confirm(&state, &token, &fields.code, &client(peer, &headers)).await {
        Ok(confirmed) => confirmed,
        Err(e) => return api_error_page(&e),
    };
    let key = match &confirmed.api_key {
        Some(key) => {
            format!("<p>Your API key — shown only now, copy it:</p><p class=\"secret\" id=\"api-key\">{}</p>", esc(key))
        }
        None => "<p>Your account keeps its API key.</p>".to_owned(),
    };
    let body = format!(
        "<p class=\"notice\" id=\"activated\">Your authenticator is active.</p>{key}<p><a href=\"/account\" id=\"to-account\">Go to your account</a></p>"
    );
    let mut response = html(StatusCode::OK, &csrf, page("Account active", NAV, &body));
    let cookie = session_cookie(USER_COOKIE, "/", Some(&confirmed.session_token), state.config.sessions.absolute_secs);
    response.headers_mut().append(axum::http::header::SET_COOKIE, cookie);
    response
}

fn login_form(state: &SharedState, csrf: &Csrf, message: Option<&str>) -> String {
    let message = message.map(|m| format!("<p class=\"error\" id=\"error\">{}</p>", esc(m))).unwrap_or_default();
    format!(
        "{message}<form method=\"post\" action=\"/login\">{}<label for=\"email\">Email address</label>\
         <input type=\"email\" id=\"email\" name=\"email\" required><label for=\"code\">Code from your authenticator</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <button type=\"submit\" id=\"login\">Log in</button></form><p><a href=\"/login/backup\">Use a backup code</a></p>",
        csrf.field(state)
    )
}

async fn login_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    html(StatusCode::OK, &csrf, page("Log in", NAV, &login_form(&state, &csrf, None)))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    code: String,
}

async fn login(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let fields: LoginForm = form_or_return!(state, headers, body);
    match accounts::login(&state, &fields.email, &fields.code, &client(peer, &headers)) {
        Ok(token) => {
            let cookie = session_cookie(USER_COOKIE, "/", Some(&token), state.config.sessions.absolute_secs);
            redirect("/account", Some(cookie))
        }
        Err(e) => html(e.status(), &csrf, page("Log in", NAV, &login_form(&state, &csrf, Some(&explain(&e))))),
    }
}

async fn backup_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let body = format!(
        "<p>A backup code works once; afterwards you must set up your authenticator again.</p>\
         <form method=\"post\" action=\"/login/backup\">{}<label for=\"email\">Email address</label>\
         <input type=\"email\" id=\"email\" name=\"email\" required><label for=\"backup_code\">Backup code</label>\
         <input type=\"text\" id=\"backup_code\" name=\"backup_code\" required><button type=\"submit\" id=\"login\">Log in</button></form>",
        csrf.field(&state)
    );
    html(StatusCode::OK, &csrf, page("Log in with a backup code", NAV, &body))
}

#[derive(Deserialize)]
struct BackupForm {
    email: String,
    backup_code: String,
}

async fn backup_login(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let fields: BackupForm = form_or_return!(state, headers, body);
    match accounts::login_with_backup(&state, &fields.email, &fields.backup_code, &client(peer, &headers)).await {
        Ok(login) => {
            let body = format!(
                "<p class=\"notice\">You are logged in with a backup code. Your authenticator was reset: \
                 <a id=\"reenroll\" href=\"/auth/setup/{}\">set it up again now</a> (the link was also mailed to you).</p>",
                esc(&login.setup_token)
            );
            let mut response = html(StatusCode::OK, &csrf, page("Set up your authenticator again", NAV, &body));
            let cookie =
                session_cookie(USER_COOKIE, "/", Some(&login.session_token), state.config.sessions.absolute_secs);
            response.headers_mut().append(axum::http::header::SET_COOKIE, cookie);
            response
        }
        Err(e) => api_error_page(&e),
    }
}

async fn account_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let authed = match user_api::authenticate(&state, &headers) {
        Ok(authed) => authed,
        Err(_) => return redirect("/login", None),
    };
    let view = match user_api::account_view(&state, &authed) {
        Ok(view) => view,
        Err(e) => return api_error_page(&e),
    };
    let field = csrf.field(&state);
    let sessions: String = view["sessions"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(s["created_at"].as_str().unwrap_or_default()),
                        esc(s["last_seen"].as_str().unwrap_or_default()),
                        esc(s["ip"].as_str().unwrap_or_default()),
                        esc(s["via"].as_str().unwrap_or_default()),
                        if s["current"] == true { "this session" } else { "" }
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let key = view["api_key_masked"].as_str().unwrap_or("none");
    let step_up = |action: &str, label: &str, id: &str| {
        format!(
            "<form method=\"post\" action=\"/account/{action}\">{field}<label for=\"{id}-code\">{label}: a fresh code</label>\
             <input type=\"text\" id=\"{id}-code\" name=\"code\" inputmode=\"numeric\" required><button type=\"submit\" id=\"{id}\">{label}</button></form>"
        )
    };
    let body = format!(
        "<table><tr><th>Email</th><td id=\"email\">{email}</td></tr><tr><th>Plan</th><td>{plan}</td></tr>\
         <tr><th>API key</th><td><code id=\"key-masked\">{key}</code></td></tr>\
         <tr><th>Authenticator</th><td>{totp}</td></tr><tr><th>Backup codes left</th><td id=\"codes-left\">{codes}</td></tr></table>\
         <h2>Sessions</h2><table><tr><th>Started</th><th>Last seen</th><th>Address</th><th>Via</th><th></th></tr>{sessions}</table>\
         <form method=\"post\" action=\"/account/revoke-others\">{field}<button type=\"submit\" id=\"revoke-others\">Sign out everywhere else</button></form>\
         <form method=\"post\" action=\"/account/logout\">{field}<button type=\"submit\" id=\"logout\">Log out</button></form>\
         <h2>Sensitive actions</h2>{rotate}{regenerate}{reset}{delete}",
        email = esc(view["email"].as_str().unwrap_or_default()),
        plan = esc(view["plan"].as_str().unwrap_or_default()),
        key = esc(key),
        totp = if view["totp_active"] == true { "active" } else { "not active" },
        codes = view["backup_codes_remaining"],
        rotate = step_up("rotate-key", "Rotate API key", "rotate"),
        regenerate = step_up("regenerate-codes", "New backup codes", "regenerate"),
        reset = step_up("reset-totp", "Set up authenticator again", "reset"),
        delete = step_up("delete", "Delete account", "delete"),
    );
    html(StatusCode::OK, &csrf, page("Your account", NAV, &body))
}

/// The signed-in user for a form POST, or the response to send instead.
fn authed_form<T: serde::de::DeserializeOwned>(
    state: &SharedState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(user_api::Authed, T), Response> {
    let fields = form(state, headers, body)?;
    let authed = user_api::authenticate(state, headers).map_err(|_| redirect("/login", None))?;
    Ok((authed, fields))
}

async fn logout(State(state): State<SharedState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let _: Vec<(String, String)> = form_or_return!(state, headers, body);
    if let Some(token) = user_api::cookie(&headers, USER_COOKIE)
        && let Err(e) = accounts::end_session(&state, token)
    {
        return api_error_page(&e);
    }
    redirect("/login", Some(session_cookie(USER_COOKIE, "/", None, 0)))
}

async fn revoke_others(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (authed, _): (_, Vec<(String, String)>) = match authed_form(&state, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let user_id = authed.user.user_id.clone();
    let result = state.db.write(|txn| {
        Ok::<_, jsonapi::ApiError>(crate::store::tx::revoke_sessions(txn, &user_id, Some(authed.session_hash))?)
    });
    match result {
        Ok(_) => redirect("/account", None),
        Err(e) => api_error_page(&e),
    }
}

/// A sensitive action's form: the CSRF check, the session, a fresh code.
async fn step_up(
    state: &SharedState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<user_api::Authed, Response> {
    let (authed, fields): (_, CodeForm) = authed_form(state, headers, body)?;
    accounts::require_fresh_code(state, &authed.user.user_id, Some(&fields.code)).map_err(|e| api_error_page(&e))?;
    Ok(authed)
}

async fn regenerate_codes(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let authed = match step_up(&state, &headers, body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match accounts::regenerate_backup(&state, &authed.user.user_id).await {
        Ok(codes) => {
            let list: String = codes.iter().map(|c| format!("<li class=\"backup-code\">{}</li>", esc(c))).collect();
            let body = format!(
                "<p>Your new backup codes (the old ones no longer work), shown only now:</p><ul class=\"codes\">{list}</ul><p><a href=\"/account\">Back</a></p>"
            );
            html(StatusCode::OK, &csrf, page("New backup codes", NAV, &body))
        }
        Err(e) => api_error_page(&e),
    }
}

async fn rotate_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let authed = match step_up(&state, &headers, body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match accounts::new_account_key(&state, &authed.user.user_id).await {
        Ok(key) => {
            let body = format!(
                "<p>Your new API key — shown only now; the old one no longer works:</p><p class=\"secret\" id=\"api-key\">{}</p><p><a href=\"/account\">Back</a></p>",
                esc(&key)
            );
            html(StatusCode::OK, &csrf, page("New API key", NAV, &body))
        }
        Err(e) => api_error_page(&e),
    }
}

async fn reset_totp(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let authed = match step_up(&state, &headers, body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(e) = accounts::reset_totp(&state, &authed.user, "you asked to set up your authenticator again.").await {
        return api_error_page(&e);
    }
    let body = "<p class=\"notice\">Your authenticator was reset and every session ended. Check your mail for the setup link.</p>";
    let mut response = html(StatusCode::OK, &csrf, page("Authenticator reset", NAV, body));
    response.headers_mut().append(axum::http::header::SET_COOKIE, session_cookie(USER_COOKIE, "/", None, 0));
    response
}

async fn delete(State(state): State<SharedState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let csrf = csrf_or_return!(headers);
    let authed = match step_up(&state, &headers, body).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(e) = accounts::delete_account(&state, &authed.user).await {
        return api_error_page(&e);
    }
    let mut response = html(
        StatusCode::OK,
        &csrf,
        page("Account deleted", NAV, "<p class=\"notice\">Your account and its key are gone.</p>"),
    );
    response.headers_mut().append(axum::http::header::SET_COOKIE, session_cookie(USER_COOKIE, "/", None, 0));
    response
}
