//! The admin's pages. Signing in takes the admin token and a TOTP code; the first sign-in
//! (no admin TOTP yet) enrolls the authenticator after the token was checked. Wrong token and
//! wrong code get the same answer (no token oracle). Pages: users, keys, TOTP-required,
//! license, audit.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use jsonapi::{ApiError, PathParam};
use serde::Deserialize;
use serde_json::Value;

use super::{Csrf, api_error_page, esc, form, html, page, redirect};
use crate::accounts::{self, OnValid};
use crate::admin_ops::{self, Admin};
use crate::state::{AppState, SharedState};
use crate::store::{ADMIN_SUBJECT, SessionKind};
use crate::totp;
use crate::user_api::{client, cookie, session_cookie};

/// The admin session cookie (path `/admin`).
pub const ADMIN_COOKIE: &str = "paramant_admin_session";

const NAV: &str = " <a href=\"/admin/users\">Users</a> <a href=\"/admin/keys\">Keys</a> <a href=\"/admin/totp\">TOTP required</a> \
                   <a href=\"/admin/license\">License</a> <a href=\"/admin/audit\">Audit</a>";

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/admin", get(sign_in_page))
        .route("/admin/login", post(sign_in))
        .route("/admin/enroll", post(enroll))
        .route("/admin/enroll/confirm", post(enroll_confirm))
        .route("/admin/logout", post(logout))
        .route("/admin/users", get(users_page))
        .route("/admin/users/{id}/require-totp", post(require_totp))
        .route("/admin/users/{id}/remove-totp-requirement", post(remove_requirement))
        .route("/admin/users/{id}/deactivate", post(deactivate))
        .route("/admin/users/{id}/delete", post(delete_user))
        .route("/admin/keys", get(keys_page))
        .route("/admin/keys/create", post(create_key))
        .route("/admin/keys/revoke", post(revoke_key))
        .route("/admin/keys/plan", post(change_plan))
        .route("/admin/totp", get(totp_page))
        .route("/admin/license", get(license_page))
        .route("/admin/audit", get(audit_page))
}

macro_rules! csrf_or_return {
    ($headers:expr) => {
        match Csrf::of(&$headers) {
            Ok(csrf) => csrf,
            Err(e) => return api_error_page(&e),
        }
    };
}

/// The admin behind the session cookie.
fn admin(state: &AppState, headers: &HeaderMap) -> Option<Admin> {
    let token = cookie(headers, ADMIN_COOKIE)?;
    accounts::session(state, token, SessionKind::Admin).ok().flatten().map(|_| Admin::authenticated())
}

/// The admin and the form fields of a POST, or the answer to send instead.
fn admin_form<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Admin, T), Response> {
    let fields = form(state, headers, body)?;
    let admin = admin(state, headers).ok_or_else(|| redirect("/admin", None))?;
    Ok((admin, fields))
}

fn sign_in_form(state: &AppState, csrf: &Csrf, message: Option<&str>) -> Result<String, ApiError> {
    let message = message.map(|m| format!("<p class=\"error\" id=\"error\">{}</p>", esc(m))).unwrap_or_default();
    let field = csrf.field(state);
    if accounts::totp_active(state, ADMIN_SUBJECT)? {
        Ok(format!(
            "{message}<form method=\"post\" action=\"/admin/login\">{field}<label for=\"token\">Admin token</label>\
             <input type=\"password\" id=\"token\" name=\"token\" required><label for=\"code\">Code from your authenticator</label>\
             <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" required><button type=\"submit\" id=\"sign-in\">Sign in</button></form>"
        ))
    } else {
        Ok(format!(
            "{message}<p>First sign-in: enter the admin token (printed by <code>paramant up</code>, or in the service's \
             credentials directory) to set up the admin authenticator.</p>\
             <form method=\"post\" action=\"/admin/enroll\">{field}<label for=\"token\">Admin token</label>\
             <input type=\"password\" id=\"token\" name=\"token\" required><button type=\"submit\" id=\"enroll\">Continue</button></form>"
        ))
    }
}

async fn sign_in_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    if admin(&state, &headers).is_some() {
        return redirect("/admin/users", None);
    }
    match sign_in_form(&state, &csrf, None) {
        Ok(body) => html(StatusCode::OK, &csrf, page("Administration", "", &body)),
        Err(e) => api_error_page(&e),
    }
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
    #[serde(default)]
    code: String,
}

/// The same refusal for a wrong token and a wrong code.
fn refused(state: &AppState, csrf: &Csrf) -> Response {
    match sign_in_form(state, csrf, Some("Wrong admin token or code.")) {
        Ok(body) => html(StatusCode::UNAUTHORIZED, csrf, page("Administration", "", &body)),
        Err(e) => api_error_page(&e),
    }
}

fn signed_in(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Response {
    match accounts::create_session(state, SessionKind::Admin, ADMIN_SUBJECT, &client(peer, headers), "totp") {
        Ok(token) => {
            let cookie = session_cookie(ADMIN_COOKIE, "/admin", Some(&token), state.config.sessions.absolute_secs);
            redirect("/admin/users", Some(cookie))
        }
        Err(e) => api_error_page(&e),
    }
}

async fn sign_in(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let fields: SignInForm = match form(&state, &headers, body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(e) = state.limit(&state.limits.admin_login_per_ip, &AppState::network(peer.ip())) {
        return api_error_page(&e);
    }
    // Both factors are always checked, so timing and answer do not tell which one failed.
    let token_ok = state.admin_token.matches(fields.token.as_bytes());
    // (A code is consumed only when valid, which a stranger without the authenticator cannot
    // produce.)
    let code_ok = accounts::check_code(&state, ADMIN_SUBJECT, &fields.code, OnValid::Nothing).unwrap_or(false);
    if !(token_ok && code_ok) {
        return refused(&state, &csrf);
    }
    signed_in(&state, peer, &headers)
}

async fn enroll(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let fields: SignInForm = match form(&state, &headers, body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(e) = state.limit(&state.limits.admin_login_per_ip, &AppState::network(peer.ip())) {
        return api_error_page(&e);
    }
    if !state.admin_token.matches(fields.token.as_bytes()) {
        return refused(&state, &csrf);
    }
    let provisioned = match accounts::provision(&state, ADMIN_SUBJECT).await {
        Ok(p) => p,
        Err(e) => return api_error_page(&e),
    };
    let uri = totp::otpauth_uri(&provisioned.secret, "admin");
    let qr = base64::engine::general_purpose::STANDARD.encode(totp::qr_svg(&uri));
    let body = format!(
        "<p>Scan the QR code with the admin's authenticator app, or type the secret, then enter the admin token \
         again and the first code.</p><p class=\"qr\"><img alt=\"QR code of the admin TOTP secret\" src=\"data:image/svg+xml;base64,{qr}\"></p>\
         <p>Secret: <span class=\"secret\" id=\"secret\">{secret}</span></p>\
         <form method=\"post\" action=\"/admin/enroll/confirm\">{field}<label for=\"token\">Admin token</label>\
         <input type=\"password\" id=\"token\" name=\"token\" required><label for=\"code\">Code</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" required><button type=\"submit\" id=\"confirm\">Activate and sign in</button></form>",
        secret = esc(&provisioned.secret),
        field = csrf.field(&state),
    );
    html(StatusCode::OK, &csrf, page("Set up the admin authenticator", "", &body))
}

async fn enroll_confirm(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let fields: SignInForm = match form(&state, &headers, body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(e) = state.limit(&state.limits.admin_login_per_ip, &AppState::network(peer.ip())) {
        return api_error_page(&e);
    }
    let token_ok = state.admin_token.matches(fields.token.as_bytes());
    let active = accounts::totp_active(&state, ADMIN_SUBJECT).unwrap_or(true);
    let code_ok = token_ok
        && !active
        && accounts::check_code(&state, ADMIN_SUBJECT, &fields.code, OnValid::Activate).unwrap_or(false);
    if !code_ok {
        return refused(&state, &csrf);
    }
    signed_in(&state, peer, &headers)
}

async fn logout(State(state): State<SharedState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    if let Err(r) = form::<Vec<(String, String)>>(&state, &headers, body) {
        return r;
    }
    if let Some(token) = cookie(&headers, ADMIN_COOKIE) {
        let _ = accounts::end_session(&state, token);
    }
    redirect("/admin", Some(session_cookie(ADMIN_COOKIE, "/admin", None, 0)))
}

fn logout_form(state: &AppState, csrf: &Csrf) -> String {
    format!(
        "<form method=\"post\" action=\"/admin/logout\">{}<button type=\"submit\" id=\"sign-out\">Sign out</button></form>",
        csrf.field(state)
    )
}

fn s(value: &Value) -> String {
    match value {
        Value::String(s) => esc(s),
        Value::Null => String::new(),
        other => esc(&other.to_string()),
    }
}

/// A small POST form with one button (and hidden fields).
fn button(state: &AppState, csrf: &Csrf, action: &str, hidden: &[(&str, &str)], label: &str, id: &str) -> String {
    let fields: String =
        hidden.iter().map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v))).collect();
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}{fields}<button type=\"submit\" id=\"{}\">{}</button></form>",
        esc(action),
        csrf.field(state),
        esc(id),
        esc(label)
    )
}

async fn users_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let Some(admin) = admin(&state, &headers) else { return redirect("/admin", None) };
    let users = match admin_ops::users(&admin, &state) {
        Ok(u) => u,
        Err(e) => return api_error_page(&e),
    };
    let rows: String = users
        .iter()
        .map(|u| {
            let id = u["user_id"].as_str().unwrap_or_default();
            let requirement = if u["totp_required"] == true {
                button(&state, &csrf, &format!("/admin/users/{id}/remove-totp-requirement"), &[], "Remove TOTP requirement", &format!("unrequire-{id}"))
            } else {
                button(&state, &csrf, &format!("/admin/users/{id}/require-totp"), &[], "Require TOTP", &format!("require-{id}"))
            };
            format!(
                "<tr><td class=\"email\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{requirement}{}{}</td></tr>",
                s(&u["email"]),
                s(&u["status"]),
                s(&u["plan"]),
                s(&u["totp_status"]),
                s(&u["totp_required"]),
                s(&u["key_masked"]),
                button(&state, &csrf, &format!("/admin/users/{id}/deactivate"), &[], "Deactivate", &format!("deactivate-{id}")),
                button(&state, &csrf, &format!("/admin/users/{id}/delete"), &[], "Delete", &format!("delete-{id}")),
            )
        })
        .collect();
    let body = format!(
        "<table id=\"users\"><tr><th>Email</th><th>Status</th><th>Plan</th><th>TOTP</th><th>TOTP required</th><th>Key</th><th>Actions</th></tr>{rows}</table>{}",
        logout_form(&state, &csrf)
    );
    html(StatusCode::OK, &csrf, page("Users", NAV, &body))
}

/// Runs an admin action from a form and returns to `back`, or shows the error.
async fn act<F, Fut>(
    state: &SharedState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    back: &str,
    action: F,
) -> Response
where
    F: FnOnce(Admin, Vec<(String, String)>, SharedState) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    let (admin, fields) = match admin_form::<Vec<(String, String)>>(state, headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match action(admin, fields, state.clone()).await {
        Ok(_) => redirect(back, None),
        Err(e) => api_error_page(&e),
    }
}

async fn require_totp(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&state, &headers, body, "/admin/users", |admin, _, state| async move {
        admin_ops::force_totp(&admin, &state, &id, true).await
    })
    .await
}

async fn remove_requirement(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&state, &headers, body, "/admin/users", |admin, _, state| async move {
        admin_ops::force_totp(&admin, &state, &id, false).await
    })
    .await
}

async fn deactivate(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&state, &headers, body, "/admin/users", |admin, _, state| async move {
        admin_ops::deactivate_user(&admin, &state, &id).await
    })
    .await
}

async fn delete_user(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&state, &headers, body, "/admin/users", |admin, _, state| async move {
        admin_ops::delete_user(&admin, &state, &id).await
    })
    .await
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

const PLAN_OPTIONS: &str = "<option value=\"free\">free</option><option value=\"community\" selected>community</option>\
                            <option value=\"professional\">professional</option><option value=\"enterprise\">enterprise</option>";

async fn keys_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let Some(admin) = admin(&state, &headers) else { return redirect("/admin", None) };
    let keys = match admin_ops::keys(&admin, &state).await {
        Ok(k) => k,
        Err(e) => return api_error_page(&e),
    };
    let mut tables = String::new();
    if let Some(sectors) = keys["sectors"].as_object() {
        for (sector, list) in sectors {
            let rows: String = list
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|k| {
                            let hash = k["key_hash"].as_str().unwrap_or_default();
                            let revoke = if k["active"] == true {
                                button(&state, &csrf, "/admin/keys/revoke", &[("key_hash", hash)], "Revoke", &format!("revoke-{}", &hash[..hash.len().min(16)]))
                            } else {
                                String::new()
                            };
                            let plan = format!(
                                "<form class=\"inline\" method=\"post\" action=\"/admin/keys/plan\">{}<input type=\"hidden\" name=\"key_hash\" value=\"{}\">\
                                 <select name=\"plan\">{PLAN_OPTIONS}</select><button type=\"submit\">Change plan</button></form>",
                                csrf.field(&state),
                                esc(hash)
                            );
                            format!(
                                "<tr class=\"key\" data-hash=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"active\">{}</td><td>{}</td><td>{revoke}{plan}</td></tr>",
                                esc(hash),
                                s(&k["masked"]),
                                s(&k["plan"]),
                                s(&k["label"]),
                                s(&k["active"]),
                                s(&k["user_id"]),
                            )
                        })
                        .collect()
                })
                .unwrap_or_else(|| format!("<tr><td colspan=\"6\">{}</td></tr>", s(&list["error"])));
            tables.push_str(&format!(
                "<h2>Sector {}</h2><table><tr><th>Key (hash)</th><th>Plan</th><th>Label</th><th>Active</th><th>Account</th><th>Actions</th></tr>{rows}</table>",
                esc(sector)
            ));
        }
    }
    let body = format!(
        "<form method=\"post\" action=\"/admin/keys/create\">{}<label for=\"label\">Label</label><input type=\"text\" id=\"label\" name=\"label\">\
         <label for=\"plan\">Plan</label><select id=\"plan\" name=\"plan\">{PLAN_OPTIONS}</select>\
         <button type=\"submit\" id=\"create-key\">Create key on every relay</button></form>{tables}",
        csrf.field(&state)
    );
    html(StatusCode::OK, &csrf, page("API keys", NAV, &body))
}

async fn create_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let csrf = csrf_or_return!(headers);
    let (admin, fields) = match admin_form::<Vec<(String, String)>>(&state, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match admin_ops::create_key(&admin, &state, field(&fields, "label"), field(&fields, "plan")).await {
        Ok(created) => {
            let body = format!(
                "<p>The new key — shown only now:</p><p class=\"secret\" id=\"new-key\">{}</p><p>Hash: <code id=\"new-key-hash\">{}</code></p><p><a href=\"/admin/keys\">Back to the keys</a></p>",
                s(&created["key"]),
                s(&created["key_hash"])
            );
            html(StatusCode::OK, &csrf, page("Key created", NAV, &body))
        }
        Err(e) => api_error_page(&e),
    }
}

async fn revoke_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&state, &headers, body, "/admin/keys", |admin, fields, state| async move {
        admin_ops::revoke_key(&admin, &state, field(&fields, "key_hash")).await
    })
    .await
}

async fn change_plan(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    act(&state, &headers, body, "/admin/keys", |admin, fields, state| async move {
        admin_ops::change_plan(&admin, &state, field(&fields, "key_hash"), field(&fields, "plan")).await
    })
    .await
}

async fn totp_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let Some(admin) = admin(&state, &headers) else { return redirect("/admin", None) };
    let users = match admin_ops::users(&admin, &state) {
        Ok(u) => u,
        Err(e) => return api_error_page(&e),
    };
    let rows: String = users
        .iter()
        .map(|u| {
            let id = u["user_id"].as_str().unwrap_or_default();
            let action = if u["totp_required"] == true {
                button(
                    &state,
                    &csrf,
                    &format!("/admin/users/{id}/remove-totp-requirement"),
                    &[],
                    "Remove requirement",
                    &format!("totp-off-{id}"),
                )
            } else {
                button(
                    &state,
                    &csrf,
                    &format!("/admin/users/{id}/require-totp"),
                    &[],
                    "Require TOTP",
                    &format!("totp-on-{id}"),
                )
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
                s(&u["email"]),
                s(&u["totp_status"]),
                s(&u["totp_required"])
            )
        })
        .collect();
    let body = format!(
        "<p>Requiring TOTP ends every session of the user, removes their current authenticator and mails them a setup \
         link; they cannot log in (not even with a backup code) until they set it up again. At most 20 changes a day.</p>\
         <table><tr><th>Email</th><th>TOTP</th><th>Required</th><th></th></tr>{rows}</table>"
    );
    html(StatusCode::OK, &csrf, page("TOTP required", NAV, &body))
}

async fn license_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let Some(admin) = admin(&state, &headers) else { return redirect("/admin", None) };
    let license = admin_ops::license(&admin, &state).await;
    let l = &license["license"];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(t) => t.clone(),
        other => other.to_string(),
    };
    let users = match l["users"].as_u64() {
        Some(n) => n.to_string(),
        None => text(&l["users_error"]),
    };
    let rows = [
        ("Edition", text(&l["edition_name"])),
        ("Users now", users),
        ("User limit", text(&l["max_users"])),
        ("Source", text(&l["source"])),
        ("Valid until", text(&l["expires_at"])),
        ("Issued to", text(&l["issued_to"])),
        ("Tier", text(&l["tier"])),
        ("Notice", text(&l["notice"])),
    ];
    let mut body = String::new();
    if let Some(offer) = l["update_offer"].as_object() {
        body.push_str(&format!(
            "<p class=\"notice\" id=\"update-offer\">An update is offered: {} — it is installed only when you approve it.</p>",
            esc(&text(offer.get("version").unwrap_or(&serde_json::Value::Null)))
        ));
    }
    body.push_str("<table id=\"license\">");
    for (name, value) in rows {
        body.push_str(&format!("<tr><th>{name}</th><td>{}</td></tr>", esc(&value)));
    }
    body.push_str("</table>");
    html(StatusCode::OK, &csrf, page("License", NAV, &body))
}

async fn audit_page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let csrf = csrf_or_return!(headers);
    let Some(admin) = admin(&state, &headers) else { return redirect("/admin", None) };
    let audit = match admin_ops::audit_view(&admin, &state, 200).await {
        Ok(a) => a,
        Err(e) => return api_error_page(&e),
    };
    let rows: String = audit["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    let proof = &e["proof"];
                    let inclusion = if proof.is_null() {
                        if e["leaf_hash"].is_null() { "not in the log (account event)".to_owned() } else { "log unreachable".to_owned() }
                    } else {
                        let verified = crate::audit::proof_holds(proof);
                        format!(
                            "leaf {} of tree size {}, root <code>{}</code>, {} path nodes — {}",
                            s(&proof["proof"]["leaf_index"]),
                            s(&proof["sth"]["tree_size"]),
                            s(&proof["sth"]["sha3_root"]),
                            proof["proof"]["audit_path"].as_array().map_or(0, Vec::len),
                            if verified { "<strong class=\"verified\">proof verified</strong>" } else { "<strong>PROOF DOES NOT VERIFY</strong>" }
                        )
                    };
                    format!(
                        "<tr class=\"event\"><td>{}</td><td class=\"action\">{}</td><td>{}</td><td><code>{}…</code></td><td>{}</td><td>{inclusion}</td></tr>",
                        s(&e["at"]),
                        s(&e["action"]),
                        s(&e["actor"]),
                        esc(&e["subject"].as_str().unwrap_or_default().chars().take(16).collect::<String>()),
                        s(&e["detail"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let body = format!(
        "<p>Every admin action is a leaf in the sector log; its inclusion proof is re-walked here against the log's signed tree head.</p>\
         <table id=\"audit\"><tr><th>When</th><th>Action</th><th>Actor</th><th>Subject (salted hash)</th><th>Detail</th><th>Inclusion</th></tr>{rows}</table>"
    );
    html(StatusCode::OK, &csrf, page("Audit", NAV, &body))
}
