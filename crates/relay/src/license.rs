//! The relay's side of licensing: the `plk_` operator key and support keys on the data plane,
//! the user cap (402 `tier_limit_users`) on every path that creates a user, and what `/health`
//! shows (the edition, never the licensee). The decisions are `license_gate`'s; this module
//! only maps them to API errors (`auth` maps them to callers).

use axum::http::StatusCode;
use jsonapi::ApiError;
use serde_json::{Value, json};

use crate::state::{AppState, now_ms};

/// The 402 answer of a refused new user (`license_gate::tier_limit_body`: with the count and
/// the cap).
pub fn tier_limit(limit: &license::state::TierLimit) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, license::state::TierLimit::CODE, limit.to_string())
        .with_fields(&license_gate::tier_limit_body(limit))
}

/// The edition in force (`community` or `licensed`), as `/health` and the registry show it.
pub fn edition(state: &AppState) -> &'static str {
    state.license.entitlement(now_ms()).edition.name()
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
