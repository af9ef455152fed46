//! API keys and tiers. Keys are stored only as SHA-256 hashes and compared in constant time;
//! the plan is a property of the key (a `pgp_` key may carry any plan).

use std::time::Duration;

use axum::http::HeaderMap;
use jsonapi::ApiError;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::{DbError, KEYS, RelayDb};

/// SHA-256 of an API key: how keys are stored and how ownership is recorded.
pub type KeyHash = [u8; 32];

/// Tiers of the API reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// 10 uploads/day, 1 h retention (new trial keys).
    Free,
    /// Unlimited uploads, 1 h retention.
    Community,
    /// Unlimited uploads, 24 h retention.
    Professional,
    /// Unlimited uploads, configurable retention, no per-key request limit.
    Enterprise,
}

impl Plan {
    /// Longest time a blob of this plan is kept.
    pub fn retention(self, enterprise: Duration) -> Duration {
        match self {
            Plan::Free | Plan::Community => Duration::from_secs(3600),
            Plan::Professional => Duration::from_secs(24 * 3600),
            Plan::Enterprise => enterprise,
        }
    }
    /// Uploads per UTC day, if limited.
    pub fn uploads_per_day(self) -> Option<u32> {
        match self {
            Plan::Free => Some(10),
            _ => None,
        }
    }
    /// Most downloads one upload may allow (`max_views`).
    pub fn max_views(self) -> u32 {
        match self {
            Plan::Free | Plan::Community => 1,
            Plan::Professional => 10,
            Plan::Enterprise => 100,
        }
    }
    /// Most registered devices per key.
    pub fn device_limit(self) -> usize {
        match self {
            Plan::Free => 5,
            Plan::Community => 50,
            Plan::Professional => 500,
            Plan::Enterprise => 100_000,
        }
    }
    /// Parses a plan name (as the admin API and the CLI accept it).
    pub fn parse(name: &str) -> Option<Plan> {
        match name {
            "free" => Some(Plan::Free),
            "community" => Some(Plan::Community),
            "professional" | "pro" => Some(Plan::Professional),
            "enterprise" => Some(Plan::Enterprise),
            _ => None,
        }
    }
}

/// What the relay knows about a key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub plan: Plan,
    pub label: String,
    #[serde(default)]
    pub email: Option<String>,
    pub created_ms: u64,
    pub active: bool,
    /// Stored hash, compared in constant time after the lookup.
    #[serde(with = "hex_array")]
    pub key_hash: KeyHash,
}

mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(s).map_err(serde::de::Error::custom)?;
        v.try_into().map_err(|_| serde::de::Error::custom("key hash must be 32 bytes"))
    }
}

/// A key as presented in `X-Api-Key`, syntactically valid (prefix `pgp_` or `plk_`, 8–200
/// characters of `[A-Za-z0-9_-]`). Parsing never touches storage.
pub struct PresentedKey(String);

impl PresentedKey {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let shaped = (raw.starts_with("pgp_") || raw.starts_with("plk_"))
            && (8..=200).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        shaped.then(|| Self(raw.to_owned()))
    }
    pub fn hash(&self) -> KeyHash {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// A caller whose key was found, active. Only [`Keys::authenticate`] makes one, so a handler
/// that takes a `Caller` cannot run for an unauthenticated request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_hash: KeyHash,
    pub plan: Plan,
    pub label: String,
}

/// Key lookup and administration.
pub struct Keys<'a> {
    pub db: &'a RelayDb,
}

impl Keys<'_> {
    /// The caller behind the `X-Api-Key` header. A key in the query string is refused by the
    /// router before this runs.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let raw = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("X-Api-Key header required (pgp_… key)"))?;
        self.find(raw)?.ok_or_else(|| ApiError::unauthorized("invalid or inactive API key"))
    }

    /// The active caller for a raw key string, if any.
    pub fn find(&self, raw: &str) -> Result<Option<Caller>, DbError> {
        let Some(key) = PresentedKey::parse(raw) else { return Ok(None) };
        let hash = key.hash();
        let txn = self.db.read()?;
        let table = txn.open_table(KEYS)?;
        let Some(raw) = table.get(&hash)? else { return Ok(None) };
        let record: KeyRecord = serde_json::from_slice(raw.value())?;
        let matches = crypto::ct_eq(&record.key_hash, &hash);
        Ok((matches && record.active).then_some(Caller { key_hash: hash, plan: record.plan, label: record.label }))
    }

    /// Mints a new key (`prefix` is "pgp_" or "plk_"); the plaintext is returned once, only its
    /// hash is stored.
    pub fn create(
        &self,
        prefix: &str,
        plan: Plan,
        label: &str,
        email: Option<&str>,
        now_ms: u64,
    ) -> Result<String, ApiError> {
        let key = crypto::random_token(prefix).map_err(|e| ApiError::internal("rng", &e))?;
        let key_hash: KeyHash = Sha256::digest(key.as_bytes()).into();
        let record = KeyRecord {
            plan,
            label: label.to_owned(),
            email: email.map(str::to_owned),
            created_ms: now_ms,
            active: true,
            key_hash,
        };
        let json = serde_json::to_vec(&record).map_err(DbError::from)?;
        self.db.write(|txn| {
            txn.open_table(KEYS).map_err(DbError::from)?.insert(&key_hash, json.as_slice()).map_err(DbError::from)?;
            Ok::<_, ApiError>(())
        })?;
        Ok(key)
    }

    /// Stores a key minted elsewhere, by its hash (hex); 409 if the relay already has it.
    pub fn import(
        &self,
        key_hash_hex: &str,
        plan: Plan,
        label: &str,
        email: Option<&str>,
        now_ms: u64,
    ) -> Result<KeyRecord, ApiError> {
        let key_hash = parse_key_hash(key_hash_hex)?;
        let record = KeyRecord {
            plan,
            label: label.to_owned(),
            email: email.map(str::to_owned),
            created_ms: now_ms,
            active: true,
            key_hash,
        };
        let json = serde_json::to_vec(&record).map_err(DbError::from)?;
        self.db.write(|txn| {
            let mut table = txn.open_table(KEYS).map_err(DbError::from)?;
            if table.get(&key_hash).map_err(DbError::from)?.is_some() {
                return Err(ApiError::conflict("key_exists", "a key with this hash exists"));
            }
            table.insert(&key_hash, json.as_slice()).map_err(DbError::from)?;
            Ok::<_, ApiError>(())
        })?;
        Ok(record)
    }

    /// Changes a key's plan or active flag, by the key's hash (hex).
    pub fn update(&self, key_hash_hex: &str, plan: Option<Plan>, active: Option<bool>) -> Result<KeyRecord, ApiError> {
        let hash = parse_key_hash(key_hash_hex)?;
        self.db.write(|txn| {
            let mut table = txn.open_table(KEYS).map_err(DbError::from)?;
            let existing = table.get(&hash).map_err(DbError::from)?.map(|v| v.value().to_vec());
            let raw = existing.ok_or_else(|| ApiError::not_found("no such key"))?;
            let mut record: KeyRecord = serde_json::from_slice(&raw).map_err(DbError::from)?;
            if let Some(plan) = plan {
                record.plan = plan;
            }
            if let Some(active) = active {
                record.active = active;
            }
            let json = serde_json::to_vec(&record).map_err(DbError::from)?;
            table.insert(&hash, json.as_slice()).map_err(DbError::from)?;
            Ok(record)
        })
    }

    /// Every key record (hashes only).
    pub fn list(&self) -> Result<Vec<KeyRecord>, DbError> {
        let txn = self.db.read()?;
        let table = txn.open_table(KEYS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            out.push(serde_json::from_slice(row?.1.value())?);
        }
        Ok(out)
    }
}

fn parse_key_hash(hex_str: &str) -> Result<KeyHash, ApiError> {
    hex::decode(hex_str)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("key_hash must be 64 hex characters"))
}
