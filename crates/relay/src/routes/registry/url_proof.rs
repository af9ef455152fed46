//! Registration by proof of control of the relay's URL (`registry_url_proof = true`): the
//! registry fetches `<url>/.well-known/paramant-relay.json` from the URL being registered and
//! accepts the registration only if that document names the same URL and the `pk_hash` of the
//! key that signed the registration. Only whoever serves the URL can make it say so, so a
//! stranger cannot register (and so lock out) someone else's URL with a self-made key. The
//! signed registration's ±5-minute timestamp makes the proof current; the fetch obeys the
//! webhook rules (public addresses and `[webhook] ports` only, unless the operator allowed
//! private targets), is bounded in time and size, and strangers can trigger at most
//! [`FETCHES_PER_MINUTE`] of them.

use std::sync::LazyLock;
use std::time::Duration;

use jsonapi::ApiError;
use serde::Deserialize;

use crate::ids::PeerUrl;
use crate::ratelimit::RateLimiter;
use crate::state::{SharedState, now_ms};
use crate::webhook::check_registration;

/// Where a relay says which log key speaks for it.
pub const PATH: &str = "/.well-known/paramant-relay.json";
/// Proof fetches per minute, for all registrants together (each is an outgoing connection a
/// stranger can cause).
pub const FETCHES_PER_MINUTE: u32 = 10;
/// Connect, TLS and answer, in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest document read.
const MAX_DOCUMENT: usize = 4096;

static FETCHES: LazyLock<RateLimiter<()>> = LazyLock::new(|| RateLimiter::new(60_000));

#[derive(Deserialize)]
struct Identity {
    url: String,
    pk_hash: String,
}

/// Fetches the URL's identity document; `Ok` if it names `reg.url` and `pk_hash`.
pub async fn check(
    state: &SharedState,
    url: &PeerUrl,
    reg: &wire::RelayRegistration,
    pk_hash: &str,
) -> Result<(), ApiError> {
    FETCHES
        .check(&(), FETCHES_PER_MINUTE, now_ms())
        .map_err(|l| ApiError::rate_limited("too many registrations by URL proof", l.retry_after_secs))?;
    let failed = |why: String| ApiError::forbidden(format!("URL proof failed: {why}"));
    let target = url.join(PATH);
    let reach = state.webhooks.reach();
    check_registration(&target, reach, &state.config.webhook.ports).await.map_err(failed)?;
    let fetched = tokio::time::timeout(FETCH_TIMEOUT, state.webhooks.get_small(&target, reach, MAX_DOCUMENT))
        .await
        .map_err(|_| failed(format!("{PATH} did not answer within {} s", FETCH_TIMEOUT.as_secs())))?;
    let (status, body) = fetched.map_err(|e| failed(format!("{PATH} could not be fetched ({e})")))?;
    if !status.is_success() {
        return Err(failed(format!("{PATH} answered {status}")));
    }
    let identity: Identity =
        serde_json::from_slice(&body).map_err(|e| failed(format!("{PATH} is not a relay identity ({e})")))?;
    if identity.url.trim_end_matches('/') != reg.url.trim_end_matches('/') {
        return Err(failed(format!("{PATH} names another URL")));
    }
    if !identity.pk_hash.eq_ignore_ascii_case(pk_hash) {
        return Err(failed(format!("{PATH} names another log key than the one that signed")));
    }
    Ok(())
}
