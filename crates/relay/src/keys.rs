//! API keys and tiers, as values: a key as presented, its stored record and its plan. Keys are
//! stored only as SHA-256 hashes; the plan is a property of the key (a `pgp_` key may carry any
//! plan). Looking keys up is `auth`'s job.

use std::time::Duration;

use jsonapi::ApiError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// The key's tier.
    pub plan: Plan,
    /// Free text set when the key was minted.
    pub label: String,
    /// Where a trial key was mailed.
    #[serde(default)]
    pub email: Option<String>,
    /// When it was minted (Unix ms).
    pub created_ms: u64,
    /// Inactive keys do not authenticate.
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
    /// The key if `raw` has a key's shape.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let shaped = (raw.starts_with("pgp_") || raw.starts_with("plk_"))
            && (8..=200).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        shaped.then(|| Self(raw.to_owned()))
    }
    /// SHA-256 of the key: what is stored and looked up.
    pub fn hash(&self) -> KeyHash {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// A key hash in hex (the admin API names keys by it).
pub fn parse_key_hash(hex_str: &str) -> Result<KeyHash, ApiError> {
    hex::decode(hex_str)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("key_hash must be 64 hex characters"))
}
