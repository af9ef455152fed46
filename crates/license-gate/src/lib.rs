//! The license gate: what the relay and the admin panel call on every request that needs the
//! entitlement. It reads the offline `plk_` token and the state `paramant-license` publishes,
//! and re-verifies both itself (signatures, expiry, grace) — it never trusts a plain file to
//! grant anything. Evaluations are cached for at most [`REFRESH_MS`], never past the instant
//! the grant ends (a license that expires while running takes effect at once), and never once
//! one of the files changed (checked by a `stat` per call: a new check-in applies at once).
//!
//! For the admin service (the library call it wires in): build a [`Gate`] from the `[license]`
//! table of its config ([`LicenseConfig`]), count users (active accounts plus active `pgp_` keys
//! not owned by an account, across every sector's relay), and call [`Gate::check_new_user`]
//! before creating or activating one; on `Err` answer [`TierLimit::STATUS`] (402) with
//! [`tier_limit_body`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use license::state::{self, Entitlement, LicenseState, TierLimit};
use license::{LicenseToken, TrustRoots};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Longest an evaluation is reused (files are re-read and re-verified after this).
pub const REFRESH_MS: u64 = 10_000;
/// Largest file read (token, state, revocation list).
const MAX_FILE: u64 = 256 * 1024;
/// Operator keys remembered after verification.
const MAX_OPERATOR_CACHE: usize = 64;

/// The `[license]` table of a service's config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseConfig {
    /// File holding the offline `plk_` token. Default: `$CREDENTIALS_DIRECTORY/license-token`
    /// when present. No token (or an empty file): Community Edition.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The state `paramant-license` publishes (its cache, with the last signed capability set).
    /// None: the offline token alone decides.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// Ed25519 keys (hex) trusted to sign `plk_` tokens, besides the embedded reference key.
    #[serde(default)]
    pub trusted_ed25519_keys: Vec<String>,
    /// ML-DSA-65 keys trusted to sign capability sets.
    #[serde(default)]
    pub ml_dsa_keys: Vec<MlDsaKeyConfig>,
    /// Ids of support keys the operator revoked (a JSON array of strings), written by
    /// `paramant license support-key revoke` and the admin panel.
    #[serde(default)]
    pub revoked_support_keys_file: Option<PathBuf>,
    /// This relay's identity (SHA3-256 hex of its log's public key): a capability set for
    /// another relay is refused. None: not checked here (the service checks it at check-in).
    #[serde(default)]
    pub relay_id: Option<String>,
}

/// One trusted ML-DSA-65 licensing key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlDsaKeyConfig {
    /// The 1952-byte public key, hex.
    pub key: String,
    /// Honoured until this date (a rotated-out key), `YYYY-MM-DD` or ISO-8601.
    #[serde(default)]
    pub not_after: Option<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A key in the config is malformed.
    #[error("[license] {field}: {source}")]
    Key {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        source: license::Error,
    },
}

impl LicenseConfig {
    /// The trust roots: the embedded ones plus the configured keys.
    ///
    /// # Errors
    /// [`GateError::Key`].
    pub fn trust_roots(&self) -> Result<TrustRoots, GateError> {
        let mut roots = TrustRoots::embedded();
        for key in &self.trusted_ed25519_keys {
            roots.add_ed25519_hex(key).map_err(|source| GateError::Key { field: "trusted_ed25519_keys", source })?;
        }
        for k in &self.ml_dsa_keys {
            let field = "ml_dsa_keys";
            let bytes = hex::decode(k.key.trim())
                .map_err(|_| GateError::Key { field, source: license::Error::Key("not hex".into()) })?;
            let not_after = k
                .not_after
                .as_deref()
                .map(license::token::parse_date)
                .transpose()
                .map_err(|source| GateError::Key { field, source })?;
            roots.add_ml_dsa(&bytes, not_after).map_err(|source| GateError::Key { field, source })?;
        }
        Ok(roots)
    }

    /// The token file in force (explicit, else the systemd credential `license-token`).
    #[must_use]
    pub fn token_path(&self) -> Option<PathBuf> {
        self.token_file.clone().or_else(|| crypto::credential_path("license-token"))
    }

    /// Files the gate reads (for a sandbox's read-only list).
    #[must_use]
    pub fn read_paths(&self) -> Vec<PathBuf> {
        let state_dir = self.state_file.as_deref().and_then(Path::parent).map(Path::to_path_buf);
        [self.token_path(), state_dir, self.revoked_support_keys_file.clone()].into_iter().flatten().collect()
    }
}

/// The enforcement point (one per process, shared by every request).
pub struct Gate {
    config: LicenseConfig,
    roots: TrustRoots,
    cached: Mutex<Option<Cached>>,
    operators: Mutex<HashMap<[u8; 32], u64>>,
}

struct Cached {
    at_ms: u64,
    files: Vec<Option<FileStamp>>,
    entitlement: Entitlement,
    revoked_support_keys: Vec<String>,
}

impl Gate {
    /// A gate for this configuration.
    ///
    /// # Errors
    /// [`GateError::Key`] when a configured key is malformed.
    pub fn new(config: LicenseConfig) -> Result<Self, GateError> {
        let roots = config.trust_roots()?;
        Ok(Self { config, roots, cached: Mutex::new(None), operators: Mutex::new(HashMap::new()) })
    }

    /// The entitlement at `now_ms`: re-read and re-verified when the last evaluation is older
    /// than [`REFRESH_MS`] or its grant has ended.
    pub fn entitlement(&self, now_ms: u64) -> Entitlement {
        self.with_fresh(now_ms, |c| c.entitlement.clone())
    }

    /// Checks that one more user fits beside `current_users` (see the crate docs for who counts).
    ///
    /// # Errors
    /// [`TierLimit`]: answer 402 with [`tier_limit_body`].
    pub fn check_new_user(&self, current_users: u64, now_ms: u64) -> Result<(), TierLimit> {
        self.entitlement(now_ms).check_new_user(current_users)
    }

    /// Whether `presented` is a `plk_` license token that verifies and has not expired: the
    /// operator's data-plane key (API reference: "Operator key (plk_)").
    pub fn operator_key_valid(&self, presented: &str, now_ms: u64) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut known = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&expires) = known.get(&digest) {
            return now_ms < expires;
        }
        drop(known);
        let Ok(license) = LicenseToken::parse(presented).and_then(|t| t.verify(&self.roots, now_ms)) else {
            return false;
        };
        known = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_OPERATOR_CACHE {
            known.clear();
        }
        known.insert(digest, license.expires_at_ms);
        true
    }

    /// Whether a signed capability set in force orders the relay to drain.
    pub fn drain_ordered(&self, now_ms: u64) -> bool {
        self.with_fresh(now_ms, |c| c.entitlement.drain)
    }

    /// Whether `presented` is a support key of the signed set in force, unexpired and not
    /// revoked by the operator; its id if so.
    pub fn support_key(&self, presented: &str, now_ms: u64) -> Option<String> {
        let digest = hex::encode(Sha256::digest(presented.as_bytes()));
        self.with_fresh(now_ms, |c| {
            c.entitlement.support_keys.iter().find_map(|k| {
                let one = Entitlement { support_keys: vec![k.clone()], ..c.entitlement.clone() };
                one.support_key_valid(&digest, &c.revoked_support_keys, now_ms).then(|| k.id.clone())
            })
        })
    }

    fn with_fresh<T>(&self, now_ms: u64, read: impl FnOnce(&Cached) -> T) -> T {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        let files = self.stamps();
        let stale = cached.as_ref().is_none_or(|c| {
            c.files != files
                || now_ms.saturating_sub(c.at_ms) >= REFRESH_MS
                || now_ms < c.at_ms
                || c.entitlement.valid_until_ms.is_some_and(|until| now_ms >= until)
        });
        if stale {
            *cached = Some(self.evaluate(now_ms, files));
        }
        // Just filled when it was empty.
        match cached.as_ref() {
            Some(c) => read(c),
            None => read(&self.evaluate(now_ms, self.stamps())),
        }
    }

    /// Modification time and length of each file the gate reads.
    fn stamps(&self) -> Vec<Option<FileStamp>> {
        let paths =
            [self.config.token_path(), self.config.state_file.clone(), self.config.revoked_support_keys_file.clone()];
        paths
            .iter()
            .map(|p| {
                let meta = std::fs::metadata(p.as_ref()?).ok()?;
                Some(FileStamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
            })
            .collect()
    }

    fn evaluate(&self, now_ms: u64, files: Vec<Option<FileStamp>>) -> Cached {
        let token = self.config.token_path().and_then(|p| read_small(&p));
        let state = self.config.state_file.as_deref().and_then(read_small).map(|text| {
            // An unreadable state is treated as a tampered cache: Community, never a grant.
            serde_json::from_str::<LicenseState>(&text).unwrap_or(LicenseState {
                online: state::Online::Active { set: String::new() },
                ..LicenseState::default()
            })
        });
        let entitlement =
            state::evaluate(token.as_deref(), state.as_ref(), &self.roots, self.config.relay_id.as_deref(), now_ms);
        let revoked_support_keys = self
            .config
            .revoked_support_keys_file
            .as_deref()
            .and_then(read_small)
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Cached { at_ms: now_ms, files, entitlement, revoked_support_keys }
    }
}

/// What tells a changed file apart (an atomic rename over it gives a new inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

/// Reads a small text file; absent, unreadable or oversized reads as absent.
fn read_small(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MAX_FILE).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The JSON body of a 402 `tier_limit_users` answer.
#[must_use]
pub fn tier_limit_body(limit: &TierLimit) -> serde_json::Value {
    serde_json::json!({
        "ok": false,
        "error": TierLimit::CODE,
        "detail": limit.to_string(),
        "current_users": limit.current_users,
        "max_users": limit.max_users,
    })
}

/// Adds a support key id to the operator's revocation list (atomically replaced; takes effect
/// at the next refresh of every gate reading it).
///
/// # Errors
/// IO errors writing the file.
pub fn revoke_support_key(file: &Path, id: &str) -> std::io::Result<()> {
    let mut ids: Vec<String> = read_small(file).and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    if !ids.iter().any(|i| i == id) {
        ids.push(id.to_owned());
    }
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&ids)?)?;
    std::fs::rename(tmp, file)
}
