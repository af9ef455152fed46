//! The panel's side of licensing: the user cap before every user it creates, and the verified
//! status the admin sees. The decisions are `license_gate`'s (it re-reads and re-verifies the
//! `plk_` token and the signed capability set `paramant-license` publishes); this module counts
//! the users and maps a refusal to 402 `tier_limit_users`.
//!
//! Who counts (issue 11): every active account, plus every active `pgp_` key on any configured
//! relay that no account owns (keys the admin created, trial keys minted by a relay). A key the
//! panel gave to an account is on every relay under the same hash; it counts once, as its
//! account.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use jsonapi::{ApiError, ApiResult};
use license::state::{Edition, TierLimit};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::store::AccountStatus;

/// The 402 answer of a refused new user: `license_gate::tier_limit_body`.
pub fn tier_limit(limit: &TierLimit) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, TierLimit::CODE, limit.to_string())
        .with_fields(&license_gate::tier_limit_body(limit))
}

/// Users now: active accounts plus active keys no account owns, across every relay. A relay
/// that cannot list its keys fails the count (503): the cap is never checked on a guess.
pub async fn count_users(state: &AppState) -> ApiResult<u64> {
    let users = state.db.users()?;
    let owned: BTreeSet<String> = users.iter().filter_map(|u| u.key.as_ref().map(|k| k.key_hash.clone())).collect();
    let accounts = users.iter().filter(|u| u.status == AccountStatus::Active).count() as u64;
    let mut unowned = BTreeSet::new();
    for (_, keys) in state.relays.list_keys().await {
        for key in keys? {
            let Some(hash) = key["key_hash"].as_str() else { continue };
            if key["active"] == true && !owned.contains(hash) {
                unowned.insert(hash.to_owned());
            }
        }
    }
    Ok(accounts + unowned.len() as u64)
}

/// Checks that one more user fits: 402 `tier_limit_users` when the license (or Community
/// Edition) does not allow it. Call it with [`AppState::user_creation`] held, before anything
/// is changed or logged.
pub async fn admit_new_user(state: &AppState) -> ApiResult<()> {
    let users = count_users(state).await?;
    state.license.check_new_user(users, state.now_ms()).map_err(|limit| tier_limit(&limit))
}

/// The verified license status for the admin: edition, user cap, users counted now, source,
/// expiry, tier and capabilities of a signed set, an update on offer, why it is not better. The
/// licensee's name (`issued_to`) is shown here — this is the operator's own panel, behind the
/// admin token — and never on `/health`.
pub async fn status(state: &AppState) -> Value {
    let now = state.now_ms();
    let e = state.license.entitlement(now);
    let (users, users_error) = match count_users(state).await {
        Ok(n) => (Some(n), None),
        Err(_) => (None, Some("a relay did not list its keys; the count is unknown")),
    };
    json!({
        "edition": e.edition,
        "edition_name": match e.edition { Edition::Community => "Community Edition", Edition::Licensed => "Licensed" },
        "max_users": e.max_users,
        "users": users,
        "users_error": users_error,
        "source": e.source,
        "expires_at": e.valid_until_ms.map(wire::iso8601_ms),
        "issued_to": e.licensee,
        "tier": e.tier,
        "capabilities": e.capabilities,
        "update_offer": e.update_offer,
        "drain": e.drain,
        "notice": e.notice,
    })
}
