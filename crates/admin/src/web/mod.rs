//! The web panel: server-rendered HTML, no script at all, no CDN, a strict CSP (set for every
//! answer in `lib.rs`), and a CSRF token on every form: the `paramant_csrf` cookie (random,
//! HttpOnly, SameSite=Strict) and, in each form, an HMAC of it under the panel key; a POST
//! without both matching is refused before anything is done.
// A refused form is answered with a whole page (the `Err` of the form helpers); once per request.
#![allow(clippy::result_large_err)]

mod admin_pages;
mod user_pages;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonapi::ApiError;
use serde::de::DeserializeOwned;

use crate::state::{AppState, SharedState};
use crate::user_api::cookie;

/// The CSRF cookie's name.
pub const CSRF_COOKIE: &str = "paramant_csrf";

/// The web panel's pages (user and admin) and its stylesheet.
pub fn router() -> Router<SharedState> {
    Router::new().route("/static/panel.css", get(css)).merge(user_pages::router()).merge(admin_pages::router())
}

async fn css() -> Response {
    let mut response = include_str!("panel.css").into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    response
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The CSRF state of one request: the cookie value (new if the browser sent none).
pub struct Csrf {
    cookie: String,
    fresh: bool,
}

impl Csrf {
    /// The request's CSRF cookie, or a new one to set.
    pub fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        match cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 68 && v.starts_with("pcs_")) {
            Some(value) => Ok(Self { cookie: value.to_owned(), fresh: false }),
            None => {
                let value = crypto::random_token("pcs_").map_err(|e| ApiError::internal("rng", &e))?;
                Ok(Self { cookie: value, fresh: true })
            }
        }
    }

    /// The hidden form field carrying the token.
    pub fn field(&self, state: &AppState) -> String {
        format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", state.mac("csrf", &self.cookie))
    }
}

/// A form POST: the CSRF check, then the fields. A missing or wrong token is 403
/// `csrf_token_invalid` before anything else happens.
pub fn form<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Response> {
    let bytes = jsonapi::body_bytes(body).map_err(|e| error_page(e.status(), "The form was too large."))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| error_page(StatusCode::BAD_REQUEST, "The form could not be read."))?;
    let presented = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
    let valid = cookie(headers, CSRF_COOKIE)
        .is_some_and(|c| crypto::ct_eq(state.mac("csrf", c).as_bytes(), presented.as_bytes()));
    if !valid {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "The form's security token (CSRF) is missing or wrong. Reload the page and try again.",
        ));
    }
    serde_urlencoded::from_bytes(&bytes)
        .map_err(|_| error_page(StatusCode::BAD_REQUEST, "A field of the form is missing or invalid."))
}

/// A whole page.
pub fn page(title: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · paramant</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><link rel=\"stylesheet\" href=\"/static/panel.css\"></head>\
         <body><header><strong>paramant</strong>{nav}</header><main><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title)
    )
}

/// An HTML answer with the CSRF cookie set when it is new, never cached.
pub fn html(status: StatusCode, csrf: &Csrf, body: String) -> Response {
    let mut response = (status, axum::response::Html(body)).into_response();
    if csrf.fresh {
        let value = format!("{CSRF_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/", csrf.cookie);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A plain error page (no forms, so no CSRF cookie needed).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = page(
        "Something went wrong",
        "",
        &format!("<p class=\"error\" id=\"error\">{}</p><p><a href=\"/\">Start</a></p>", esc(message)),
    );
    let mut response = (status, axum::response::Html(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What an API error says on a page: its code and a short explanation.
pub fn explain(error: &ApiError) -> String {
    let text = match error.code() {
        "invalid_totp_code" => "The code is wrong or outside the allowed time window (or was already used).",
        "invalid_backup_code" => "That backup code is not valid or was already used.",
        "totp_not_activated" => "TOTP is not set up for this account. Use the setup link from your mail.",
        "invalid_or_expired_token" => "This setup link is unknown, used or expired.",
        "email_already_registered" => "An account with this email address exists.",
        "totp_already_configured" => "TOTP is already set up for this account.",
        "rate_limited" => "Too many attempts. Wait a while and try again.",
        "unauthorized" => "Please log in.",
        "bad_request" => "Something in the form is missing or invalid.",
        "audit_log_unavailable" => "The sector log did not record the action, so nothing was done.",
        "tier_limit_users" => {
            "The license's user limit is reached (Community Edition: 5 users), so nothing was done. \
             Free a place or install a license that allows more users."
        }
        _ => "The request could not be completed.",
    };
    format!("{text} ({})", error.code())
}

/// An error page for an API error.
pub fn api_error_page(error: &ApiError) -> Response {
    error_page(error.status(), &explain(error))
}

/// A 303 redirect, optionally setting a cookie.
pub fn redirect(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
