//! Authentication: the [`Caller`] behind an `X-Api-Key` header, and key administration.
//!
//! The router's middleware authenticates every request once, before any handler or body
//! reader runs, and stores the `Caller` in the request; handlers that need one take it as an
//! extractor. A `Caller` has private fields and no constructor outside this module: a handler
//! that takes one cannot run for an unauthenticated request.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use jsonapi::ApiError;
use sha2::{Digest, Sha256};

use crate::db::{DbError, RelayDb};
use crate::keys::{KeyHash, KeyRecord, Plan, PresentedKey, parse_key_hash};

/// A caller whose key was found, active.
#[derive(Clone, Debug)]
pub struct Caller {
    key_hash: KeyHash,
    plan: Plan,
    credential: Credential,
}

/// What authenticated a [`Caller`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credential {
    /// A `pgp_` key of this relay.
    RelayKey,
    /// The operator's `plk_` license token: unlimited throughput (API reference, credential table).
    OperatorLicense,
    /// A short-lived Paramant support key of the signed capability set in force.
    SupportKey,
}

impl Caller {
    /// SHA-256 of the caller's key: who owns what it uploads and registers.
    pub fn key_hash(&self) -> &KeyHash {
        &self.key_hash
    }

    /// The key's tier.
    pub fn plan(&self) -> Plan {
        self.plan
    }

    /// Whether the operator's license token authenticated this caller (no per-key rate).
    pub fn is_operator(&self) -> bool {
        self.credential == Credential::OperatorLicense
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Ok(caller.clone()),
            None if parts.headers.contains_key("x-api-key") => {
                Err(ApiError::unauthorized("invalid or inactive API key"))
            }
            None => Err(ApiError::unauthorized("X-Api-Key header required (pgp_… key)")),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// `None` when no key was sent; a key that was sent must be valid.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, ApiError> {
        if parts.headers.contains_key("x-api-key") {
            <Caller as FromRequestParts<S>>::from_request_parts(parts, state).await.map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The active caller behind the `X-Api-Key` header, if one was sent and it authenticates: the
/// operator's `plk_` license token (when it verifies and has not expired: unlimited throughput,
/// API reference credential table), a `pgp_` key of this relay, or a Paramant support key of
/// the signed capability set in force.
pub fn authenticate(
    db: &RelayDb,
    license: &license_gate::Gate,
    headers: &HeaderMap,
) -> Result<Option<Caller>, DbError> {
    let Some(raw) = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim) else { return Ok(None) };
    let now = crate::state::now_ms();
    if raw.starts_with("plk_") {
        let valid = license.operator_key_valid(raw, now);
        let key_hash = Sha256::digest(raw.as_bytes()).into();
        return Ok(valid.then_some(Caller {
            key_hash,
            plan: Plan::Community,
            credential: Credential::OperatorLicense,
        }));
    }
    if let Some(caller) = find(db, raw)? {
        return Ok(Some(caller));
    }
    let support = license.support_key(raw, now).is_some();
    let key_hash = Sha256::digest(raw.as_bytes()).into();
    Ok(support.then_some(Caller { key_hash, plan: Plan::Community, credential: Credential::SupportKey }))
}

/// The active caller for a raw key string, if any.
pub fn find(db: &RelayDb, raw: &str) -> Result<Option<Caller>, DbError> {
    let Some(key) = PresentedKey::parse(raw) else { return Ok(None) };
    let hash = key.hash();
    let Some(record) = db.key(&hash)? else { return Ok(None) };
    let matches = crypto::ct_eq(&record.key_hash, &hash);
    Ok((matches && record.active).then_some(Caller {
        key_hash: hash,
        plan: record.plan,
        credential: Credential::RelayKey,
    }))
}

/// What a new key is: its plan, a label and an optional contact address.
pub struct NewKey<'a> {
    /// The key's tier.
    pub plan: Plan,
    /// A name for operators.
    pub label: &'a str,
    /// Where trial and account mail goes.
    pub email: Option<&'a str>,
}

/// Mints a new `pgp_` key — a new user, so the license's user cap applies: the count and the
/// insert are one write transaction, and a full appliance answers 402 `tier_limit_users`. The
/// plaintext is returned once, only its hash is stored. (`plk_` keys are license tokens, issued
/// by `paramant license issue`; the relay never mints them.)
pub fn create_key(db: &RelayDb, license: &license_gate::Gate, new: NewKey, now_ms: u64) -> Result<String, ApiError> {
    let key = crypto::random_token("pgp_").map_err(|e| ApiError::internal("rng", &e))?;
    let key_hash: KeyHash = Sha256::digest(key.as_bytes()).into();
    if insert_new_user(db, license, key_hash, new, now_ms)?.is_none() {
        // 256 random bits never collide; refuse rather than overwrite if they ever did.
        return Err(ApiError::internal("key", &"a freshly minted key already exists"));
    }
    Ok(key)
}

/// Stores a key minted elsewhere, by its hash (hex) — the admin panel gives one account the
/// same key on every relay and sends only its hash. A new user: the license's cap applies.
/// 409 `key_exists` when the relay already has it.
pub fn import_key(
    db: &RelayDb,
    license: &license_gate::Gate,
    key_hash_hex: &str,
    new: NewKey,
    now_ms: u64,
) -> Result<KeyRecord, ApiError> {
    let key_hash = parse_key_hash(key_hash_hex)?;
    insert_new_user(db, license, key_hash, new, now_ms)?
        .ok_or_else(|| ApiError::conflict("key_exists", "a key with this hash exists"))
}

/// The one place a key (a user) is added: under the license's cap, counted in the insert's
/// transaction. `None` when a key with this hash exists (nothing changed).
fn insert_new_user(
    db: &RelayDb,
    license: &license_gate::Gate,
    key_hash: KeyHash,
    new: NewKey,
    now_ms: u64,
) -> Result<Option<KeyRecord>, ApiError> {
    let record = KeyRecord {
        plan: new.plan,
        label: new.label.to_owned(),
        email: new.email.map(str::to_owned),
        created_ms: now_ms,
        active: true,
        key_hash,
    };
    let admit = |users| license.check_new_user(users, now_ms).map_err(|l| crate::license::tier_limit(&l));
    Ok(db.insert_key(&record, admit)?.then_some(record))
}

/// Changes a key's plan or active flag, by the key's hash (hex).
///
/// Re-activating a key adds a user: the license's cap applies, in the same transaction.
pub fn update_key(
    db: &RelayDb,
    license: &license_gate::Gate,
    key_hash_hex: &str,
    plan: Option<Plan>,
    active: Option<bool>,
) -> Result<KeyRecord, ApiError> {
    let hash = parse_key_hash(key_hash_hex)?;
    let admit =
        |users| license.check_new_user(users, crate::state::now_ms()).map_err(|l| crate::license::tier_limit(&l));
    let changed = db.update_key(
        &hash,
        |record| {
            if let Some(plan) = plan {
                record.plan = plan;
            }
            if let Some(active) = active {
                record.active = active;
            }
        },
        admit,
    )?;
    changed.ok_or_else(|| ApiError::not_found("no such key"))
}
