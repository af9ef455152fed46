//! `GET /.well-known/paramant-release.pub`: the release public keys (ECDSA P-256 and ML-DSA-65)
//! that `paramant release verify` and the appliance's updater check releases with.

use anyhow::Context;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jsonapi::ApiError;

use crate::config::Config;
use crate::state::SharedState;

/// The configured file, read on each request (an operator may rotate it without a restart) and
/// served only while it still holds both keys.
pub async fn release_public_keys(State(state): State<SharedState>) -> Response {
    let Some(path) = &state.config.release_public_keys_file else {
        return ApiError::not_found("this relay publishes no release keys").into_response();
    };
    let text = match tokio::fs::read_to_string(path).await {
        Ok(text) => text,
        Err(e) => return ApiError::internal("release public keys", &e).into_response(),
    };
    if let Err(e) = release::PublicKeys::parse(&text, path) {
        return ApiError::internal("release public keys", &e).into_response();
    }
    ([(CONTENT_TYPE, "text/plain; charset=utf-8"), (CACHE_CONTROL, "public, max-age=300")], text).into_response()
}

/// At start: a relay refuses to run with a release key file `paramant release verify` would reject.
pub fn check(config: &Config) -> anyhow::Result<()> {
    if let Some(path) = &config.release_public_keys_file {
        release::PublicKeys::load(path).context("release_public_keys_file")?;
    }
    Ok(())
}

/// `GET /.well-known/paramant-relay.json`: which sector log's key speaks for this relay's URL
/// (`{"url", "sector", "pk_hash"}`). A registry that accepts registrations by URL proof
/// (`registry_url_proof`) fetches it from the URL being registered: only whoever serves that
/// URL can make it name their log's key. 503 while the log has not answered yet.
pub async fn relay_identity(State(state): State<SharedState>) -> Response {
    let Some(pk_hash) = super::registry::log_pk_hash(&state).await else {
        return ApiError::unavailable("log_unavailable", "the sector log has not answered yet", 5).into_response();
    };
    let body = serde_json::json!({
        "url": state.config.public_url(),
        "sector": state.config.sector,
        "pk_hash": pk_hash,
    });
    ([(CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}
