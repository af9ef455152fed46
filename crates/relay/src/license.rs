//! The relay's side of licensing: the `plk_` operator key and support keys on the data plane,
//! the user cap (402 `tier_limit_users`) on every path that creates a user, and what `/health`
//! shows (the edition, never the licensee). The decisions are `license_gate`'s; this module
//! only maps them to callers and API errors.

use axum::http::{HeaderMap, StatusCode};
use jsonapi::ApiError;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::keys::{Caller, Plan};
use crate::state::{AppState, now_ms};

fn presented(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The operator, when `X-Api-Key` is a `plk_` license token that verifies and has not expired.
/// Plan Community (API reference: "Community (plk_) — unlimited, 1 hour").
pub fn operator_caller(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
    let raw = presented(headers)?;
    if !raw.starts_with("plk_") || !state.license.operator_key_valid(raw, now_ms()) {
        return None;
    }
    Some(Caller { key_hash: Sha256::digest(raw.as_bytes()).into(), plan: Plan::Community, label: "operator".into() })
}

/// A Paramant support key of the signed capability set in force (unexpired, not revoked).
pub fn support_caller(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
    let raw = presented(headers)?;
    let id = state.license.support_key(raw, now_ms())?;
    Some(Caller {
        key_hash: Sha256::digest(raw.as_bytes()).into(),
        plan: Plan::Community,
        label: format!("support:{id}"),
    })
}

/// The 402 answer of a refused new user.
pub fn tier_limit(limit: &license::state::TierLimit) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, license::state::TierLimit::CODE, limit.to_string())
}

/// What `/health` says about the license: the edition and the cap, never who holds it.
pub fn health(state: &AppState) -> Value {
    let e = state.license.entitlement(now_ms());
    json!({
        "edition": e.edition,
        "max_users": e.max_users,
        "license_source": e.source,
        "update_offered": e.update_offer.map(|o| o.version),
    })
}
