//! The relay registry (`/v2/relays`: relays of every sector register with an ML-DSA-65 signed,
//! time-windowed request) and trial key requests (`/v2/request-trial`).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Query, State};
use jsonapi::{ApiError, ApiResult};
use mail::Mail;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth;
use crate::config::SECTORS;
use crate::db::{Refused, RelayRecord, TrialLimits};
use crate::ids::{PeerUrl, Scheme};
use crate::keys::Plan;
use crate::state::{SharedState, now_ms};
use crate::webhook::{Reach, is_public};

mod url_proof;

/// Accepted clock difference of a registration.
const MAX_SKEW_MS: u64 = 5 * 60 * 1000;
/// Trial limits (API reference): 3 requests per IP per 24 h, 1 per email per 7 days.
const TRIALS_PER_IP: usize = 3;
const IP_WINDOW_MS: u64 = 24 * 3600 * 1000;
const TRIALS_PER_EMAIL: usize = 1;
const EMAIL_WINDOW_MS: u64 = 7 * 24 * 3600 * 1000;

/// Least time between two changes of one relay's entry: each change is a permanent log leaf.
const MIN_CHANGE_INTERVAL_MS: u64 = 10 * 60 * 1000;

/// `POST /v2/relays/register`: a [`wire::SignedRegistration`]. Only relays whose log key the
/// operator listed in `registry_keys` may register, or — with `registry_url_proof` — relays
/// whose URL serves `/.well-known/paramant-relay.json` naming the signing key ([`url_proof`]);
/// anything else is refused before anything is stored; the log gets a leaf only when the entry changed, at most once per 10 minutes per
/// relay; a renewal only updates `last_seen`.
pub async fn register_relay(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: wire::SignedRegistration = jsonapi::json_body(body)?;
    let reg = &request.body;
    let reach = state.webhooks.reach();
    let scheme = if reach == Reach::Any { Scheme::AllowPlainHttp } else { Scheme::HttpsOnly };
    let url = PeerUrl::parse(&reg.url, scheme).map_err(ApiError::bad_request)?;
    if reach == Reach::PublicOnly && url.target().ip_literal().is_some_and(|ip| !is_public(ip)) {
        return Err(ApiError::bad_request("url must be a public address"));
    }
    if !SECTORS.contains(&reg.sector.as_str()) {
        return Err(ApiError::bad_request("sector must be a known sector"));
    }
    let signed_at = wire::parse_iso8601_ms(&reg.timestamp)
        .map_err(|_| ApiError::bad_request("timestamp must be ISO-8601 with milliseconds"))?;
    if now_ms().abs_diff(signed_at) > MAX_SKEW_MS {
        return Err(ApiError::bad_request("timestamp is more than 5 minutes from now"));
    }
    let key = request.verify().map_err(|e| match e {
        wire::Error::Signature(
            crypto::SignatureError::BadSignature | crypto::SignatureError::SignatureLength { .. },
        ) => ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "signature_invalid",
            "ML-DSA-65 signature does not verify",
        ),
        other => ApiError::bad_request(other.to_string()),
    })?;
    let pk_hash = hex::encode(key.pk_hash());
    let configured = state.config.registry_keys.iter().any(|k| k.eq_ignore_ascii_case(&pk_hash));
    if !configured && !state.config.registry_url_proof {
        return Err(ApiError::forbidden("this relay's log key is not one the registry's operator allows"));
    }
    let existing = state.db.relay(url.as_str())?;
    if let Some(old) = &existing
        && old.pk_hash != pk_hash
    {
        return Err(ApiError::conflict("key_mismatch", "this URL is registered with another key"));
    }
    // A key the operator did not list must prove the URL names it, once per (URL, key): a
    // renewal of an entry proven before does not fetch again.
    if !configured && existing.is_none() {
        url_proof::check(&state, &url, reg, &pk_hash).await?;
    }
    let now_ms = now_ms();
    let now = wire::iso8601_ms(now_ms);
    let changed = existing
        .as_ref()
        .is_none_or(|old| old.version != reg.version || old.sector != reg.sector || old.edition != reg.edition);
    let (ct_index, changed_ms) = match &existing {
        Some(old) if !changed => (old.ct_index, old.changed_ms),
        _ => {
            if let Some(old) = &existing {
                let wait = (old.changed_ms + MIN_CHANGE_INTERVAL_MS).saturating_sub(now_ms);
                if wait > 0 {
                    return Err(ApiError::rate_limited("this relay's entry changed recently", wait.div_ceil(1000)));
                }
            }
            let detail = format!("sector={} version={} edition={}", reg.sector, reg.version, reg.edition);
            let event = wire::LogEvent::admin_action("relay_registered", &pk_hash, &reg.url, &detail);
            (state.log.append(event).await?.leaf_index, now_ms)
        }
    };
    let record = RelayRecord {
        url: reg.url.clone(),
        sector: reg.sector.clone(),
        version: reg.version.clone(),
        edition: reg.edition.clone(),
        pk_hash: pk_hash.clone(),
        verified_since: existing.map(|o| o.verified_since).unwrap_or_else(|| now.clone()),
        last_seen: now,
        ct_index,
        changed_ms,
    };
    state.db.put_relay(&record)?;
    Ok(Json(json!({ "ok": true, "pk_hash": pk_hash, "ct_index": ct_index, "verified_since": record.verified_since })))
}

/// `GET /v2/relays?limit&offset`: this relay first (always, marked `"self": true`), then the
/// registered relays in URL order.
pub async fn list_relays(
    State(state): State<SharedState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let limit = jsonapi::query_u64(&params, "limit")?.unwrap_or(50).clamp(1, 200) as usize;
    let offset = jsonapi::query_u64(&params, "offset")?.unwrap_or(0) as usize;
    let me = state.config.public_url();
    let mut stored = state.db.relays()?;
    let registered_self = stored.iter().position(|r| r.url == me).map(|i| stored.remove(i));
    let mut all = vec![self_entry(&state, registered_self).await];
    for record in stored {
        all.push(listed(record));
    }
    let total = all.len();
    let relays: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Ok(Json(json!({ "ok": true, "total": total, "relays": relays, "limit": limit, "offset": offset })))
}

/// A registry record as `/v2/relays` lists it (without the rate-limit bookkeeping).
fn listed(record: RelayRecord) -> Value {
    let mut entry = serde_json::to_value(record).unwrap_or_default();
    if let Value::Object(fields) = &mut entry {
        fields.remove("changed_ms");
    }
    entry
}

/// The serving relay's own entry: its registry record if it registered itself here, else what
/// it is now; `pk_hash` names its log's key (asked once from the log).
async fn self_entry(state: &SharedState, registered: Option<RelayRecord>) -> Value {
    let mut entry = match registered {
        Some(record) => listed(record),
        None => json!({
            "url": state.config.public_url(),
            "sector": state.config.sector,
            "version": env!("CARGO_PKG_VERSION"),
            "last_seen": wire::iso8601_ms(now_ms()),
        }),
    };
    // The edition in force now (a registration of itself here may be minutes old).
    entry["edition"] = json!(crate::license::edition(state));
    entry["self"] = json!(true);
    if entry.get("pk_hash").is_none() {
        entry["pk_hash"] = json!(log_pk_hash(state).await);
    }
    entry
}

/// The log's `pk_hash`, cached after the first answer (None while the log does not answer).
pub(crate) async fn log_pk_hash(state: &SharedState) -> Option<String> {
    if let Some(known) = state.log_pk_hash.get() {
        return Some(known.clone());
    }
    let response = state.log.forward_public(axum::http::Method::GET, "/v2/pubkey", Bytes::new(), "127.0.0.1").await;
    let body = axum::body::to_bytes(response.ok()?.into_body(), 64 * 1024).await.ok()?;
    let pk_hash = serde_json::from_slice::<Value>(&body).ok()?["pk_hash"].as_str()?.to_owned();
    Some(state.log_pk_hash.get_or_init(|| pk_hash).clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrialRequest {
    name: String,
    email: String,
    #[serde(default)]
    use_case: String,
}

fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.contains(['<', '>', ',', ';', ' ', '\r', '\n', '"'])
}

/// `POST /v2/request-trial`: mints a Free `pgp_` key and mails it.
pub async fn request_trial(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: TrialRequest = jsonapi::json_body(body)?;
    let name = request.name.trim();
    let email = request.email.trim().to_ascii_lowercase();
    if name.is_empty()
        || name.len() > 200
        || name.contains(['\r', '\n'])
        || request.use_case.len() > 2000
        || !plausible_email(&email)
    {
        return Err(ApiError::bad_request("name (1-200 characters), a valid email and use_case (≤ 2000) are required"));
    }
    let now = now_ms();
    let email_key = format!("email:{}", hex::encode(Sha256::digest(email.as_bytes())));
    let ip_key = format!("ip:{}", peer.ip());
    let limits = TrialLimits {
        per_ip: TRIALS_PER_IP,
        ip_window_ms: IP_WINDOW_MS,
        per_email: TRIALS_PER_EMAIL,
        email_window_ms: EMAIL_WINDOW_MS,
    };
    match state.db.count_trial(&ip_key, &email_key, now, &limits)? {
        Ok(()) => {}
        Err(Refused::TrialsPerAddress) => {
            return Err(ApiError::rate_limited("at most 3 trial requests per address per 24 hours", 3600));
        }
        Err(_) => {
            return Err(ApiError::rate_limited("at most 1 trial request per email address per 7 days", 24 * 3600));
        }
    }
    let new = auth::NewKey { plan: Plan::Free, label: name, email: Some(&email) };
    let key = auth::create_key(&state.db, &state.license, new, now)?;
    let body = format!(
        "Hello {name},\n\nyour paramant trial API key (Free plan: 10 uploads a day, 1 hour retention):\n\n    {key}\n\nRelay: {}\nSend it in the X-Api-Key header. Keep it secret.\n",
        state.config.public_url()
    );
    let mail =
        Mail { from: &state.config.trial.mail_from, to: &email, subject: "Your paramant trial key", body: &body };
    let date = wire::rfc2822_date(now);
    let sent = match &state.config.trial.smtp {
        Some(server) => mail::send_smtp(server, &mail, &date).await,
        None => {
            mail::write_outbox(&state.config.state_dir.join("outbox"), &mail, now, &date).map_err(|e| e.to_string())
        }
    };
    if let Err(e) = sent {
        // The key exists but did not reach the requester: deactivate it rather than leak it.
        crate::DAEMON.log(format_args!("trial mail to a requester failed: {e}"));
        let hash = hex::encode(Sha256::digest(key.as_bytes()));
        let _ = auth::update_key(&state.db, &state.license, &hash, None, Some(false));
        return Err(ApiError::unavailable("mail_failed", "the trial key could not be sent; try again later", 300));
    }
    Ok(Json(json!({ "ok": true, "message": format!("Trial key sent to {email}") })))
}
