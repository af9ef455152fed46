//! The relay configuration file (strict TOML), validated at load with messages that say the fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `paramant-relay` settings. Unknown keys are an error, so typos never pass silently.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Sector served: relay, health, legal, finance or iot.
    pub sector: String,
    /// Public data-plane listener, e.g. "0.0.0.0:443" or "127.0.0.1:8000".
    pub public_listen: SocketAddr,
    /// Public base URL of this relay (download links and the relay registry use it).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Directory for `relay.redb` (keys, devices, DIDs, webhooks, usage) and the trial outbox.
    pub state_dir: PathBuf,
    /// Internal API (admin panel → relay): "127.0.0.1:PORT", loopback only.
    pub internal_listen: SocketAddr,
    /// Secret the admin panel sends as `X-Internal-Auth`. Default: `$CREDENTIALS_DIRECTORY/internal-token`,
    /// else `state_dir/internal-token` (generated on first start).
    #[serde(default)]
    pub internal_token_file: Option<PathBuf>,
    /// The sector's transparency log.
    pub ctlog: CtlogConfig,
    /// TLS for the public listener; plain HTTP when absent (loopback/dev, or behind a proxy).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Blob memory and size limits.
    #[serde(default)]
    pub limits: Limits,
    /// Outgoing webhooks.
    #[serde(default)]
    pub webhook: WebhookConfig,
    /// Trial key requests (`POST /v2/request-trial`).
    #[serde(default)]
    pub trial: TrialConfig,
}

/// Where the log is and how to authenticate to it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtlogConfig {
    /// The log's internal API, "http://127.0.0.1:PORT".
    pub internal_url: String,
    /// The log's public API, "http://127.0.0.1:PORT"; CT endpoints are served on the relay's
    /// origin by forwarding there.
    pub public_url: String,
    /// File holding the log's internal token. Default: `$CREDENTIALS_DIRECTORY/ctlog-internal-token`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// PEM certificate chain and private key for rustls.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Memory and size limits of the blob store.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Bytes of payload held in RAM at most; uploads beyond get 503 + Retry-After.
    #[serde(default = "default_budget")]
    pub blob_budget_bytes: u64,
    /// Largest decoded payload (API reference: 5 MiB).
    #[serde(default = "default_max_blob")]
    pub max_blob_bytes: usize,
    /// Retention of Enterprise keys (others follow their tier), seconds.
    #[serde(default = "default_enterprise_retention")]
    pub enterprise_retention_secs: u64,
    /// Requests per minute per client IP on unauthenticated endpoints.
    #[serde(default = "default_ip_rate")]
    pub requests_per_ip_per_minute: u32,
    /// Requests per minute per API key (Enterprise keys are exempt).
    #[serde(default = "default_key_rate")]
    pub requests_per_key_per_minute: u32,
}

/// Outgoing webhook policy.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Allow private, loopback and link-local targets (off: SSRF protection). For tests and
    /// closed networks only.
    #[serde(default)]
    pub danger_allow_private_targets: bool,
}

/// Trial key delivery.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// SMTP relay "host:port" (plain SMTP to a local MTA); when absent, mails go to `state_dir/outbox/`.
    #[serde(default)]
    pub smtp: Option<String>,
    /// Sender address of trial mails.
    #[serde(default = "default_mail_from")]
    pub mail_from: String,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            blob_budget_bytes: default_budget(),
            max_blob_bytes: default_max_blob(),
            enterprise_retention_secs: default_enterprise_retention(),
            requests_per_ip_per_minute: default_ip_rate(),
            requests_per_key_per_minute: default_key_rate(),
        }
    }
}

fn default_budget() -> u64 {
    1 << 30
}
fn default_max_blob() -> usize {
    5 * 1024 * 1024
}
fn default_enterprise_retention() -> u64 {
    7 * 24 * 3600
}
fn default_ip_rate() -> u32 {
    600
}
fn default_key_rate() -> u32 {
    6000
}
fn default_mail_from() -> String {
    "paramant relay <noreply@localhost>".into()
}

/// Sectors of the API reference.
pub const SECTORS: [&str; 5] = ["relay", "health", "legal", "finance", "iot"];

/// A configuration file that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("{path}: {field}: {message}")]
    Invalid { path: PathBuf, field: &'static str, message: String },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let config: Config = toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| ConfigError::Invalid { path: path.into(), field, message: message.into() };
        if !SECTORS.contains(&self.sector.as_str()) {
            return Err(invalid("sector", "must be one of relay, health, legal, finance, iot"));
        }
        if !self.internal_listen.ip().is_loopback() {
            return Err(invalid("internal_listen", "the internal API must listen on loopback only"));
        }
        for (field, url) in [("ctlog.internal_url", &self.ctlog.internal_url), ("ctlog.public_url", &self.ctlog.public_url)] {
            if !url.starts_with("http://") {
                return Err(invalid(field, "must be an http:// URL of the local log, e.g. \"http://127.0.0.1:8200\""));
            }
        }
        let limits = &self.limits;
        if limits.max_blob_bytes == 0 || limits.blob_budget_bytes < limits.max_blob_bytes as u64 {
            return Err(invalid("limits", "blob_budget_bytes must hold at least one max_blob_bytes blob"));
        }
        if limits.requests_per_ip_per_minute == 0 || limits.requests_per_key_per_minute == 0 {
            return Err(invalid("limits", "request rates must be at least 1 per minute"));
        }
        Ok(())
    }

    /// Public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", self.public_listen)
            }
        }
    }

    /// Path of our internal API token.
    pub fn internal_token_path(&self) -> PathBuf {
        secret_path(&self.internal_token_file, "internal-token", &self.state_dir)
    }

    /// Path of the log's internal token.
    pub fn ctlog_token_path(&self) -> PathBuf {
        secret_path(&self.ctlog.token_file, "ctlog-internal-token", &self.state_dir)
    }
}

/// An explicit path wins; then the systemd credential; then a file in the state directory.
fn secret_path(explicit: &Option<PathBuf>, name: &str, state_dir: &Path) -> PathBuf {
    explicit.clone().or_else(|| crypto::credential_path(name)).unwrap_or_else(|| state_dir.join(name))
}
