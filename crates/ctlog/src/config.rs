//! The ctlog configuration file (strict TOML), validated at load with messages that say the fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `paramant-ctlog` settings. Unknown keys are an error, so typos never pass silently.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The log's identity in every STH it signs, e.g. "health.paramant.app".
    pub relay_id: String,
    /// Sector this log serves (relay, health, legal, finance, iot); shown by /health.
    #[serde(default = "default_sector")]
    pub sector: String,
    /// Directory for `ctlog.redb` (and generated secrets when no credentials directory is set).
    pub state_dir: PathBuf,
    /// Public read API (STHs, proofs, gossip ingest, feeds), e.g. "127.0.0.1:8081".
    pub public_listen: SocketAddr,
    /// Public base URL of the log as clients reach it (feeds link to it). Default:
    /// `http://<public_listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Internal API used by relays: "unix:/run/paramant/ctlog.sock" or a loopback "IP:port".
    pub internal_listen: String,
    /// ML-DSA-65 seed file. Default: `$CREDENTIALS_DIRECTORY/log-key`, else `state_dir/log-key`
    /// (generated with mode 0600 on first start).
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// Shared secret relays send as `X-Internal-Auth`. Default: `$CREDENTIALS_DIRECTORY/internal-token`,
    /// else `state_dir/internal-token` (generated on first start).
    #[serde(default)]
    pub internal_token_file: Option<PathBuf>,
    /// Sign a fresh STH when the newest is older than this many seconds.
    #[serde(default = "default_refresh_secs")]
    pub sth_refresh_secs: u64,
    /// Gossip (peer STH exchange) settings.
    #[serde(default)]
    pub gossip: GossipConfig,
}

/// Limits and peers for `/v2/sth/ingest`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GossipConfig {
    /// Most distinct peer keys remembered; ingest from a new key beyond this is refused.
    #[serde(default = "default_max_peers")]
    pub max_peers: usize,
    /// Ingest requests allowed per client IP per minute.
    #[serde(default = "default_ingest_per_minute")]
    pub ingest_per_ip_per_minute: u32,
    /// Accepted clock difference for an ingested STH's timestamp, in seconds.
    #[serde(default = "default_skew_secs")]
    pub max_clock_skew_secs: u64,
    /// How often our newest STH is pushed to peers that have a `url`, in seconds.
    #[serde(default = "default_push_secs")]
    pub push_interval_secs: u64,
    /// Peers known in advance: their key is pinned from configuration, not first sight.
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerConfig>,
}

/// A configured gossip peer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's `relay_id`.
    pub relay_id: String,
    /// The peer's ML-DSA-65 public key, base64 (as its `/v2/pubkey` returns it).
    pub public_key: String,
    /// The peer's public base URL; when set, growth is checked with its consistency proofs
    /// and our newest STH is pushed to it.
    #[serde(default)]
    pub url: Option<String>,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            max_peers: default_max_peers(),
            ingest_per_ip_per_minute: default_ingest_per_minute(),
            max_clock_skew_secs: default_skew_secs(),
            push_interval_secs: default_push_secs(),
            peers: Vec::new(),
        }
    }
}

fn default_sector() -> String {
    "relay".into()
}
fn default_refresh_secs() -> u64 {
    60
}
fn default_max_peers() -> usize {
    256
}
fn default_ingest_per_minute() -> u32 {
    60
}
fn default_push_secs() -> u64 {
    60
}
fn default_skew_secs() -> u64 {
    300
}

/// Where the internal API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InternalListen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

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
        let invalid = |field, message: &str| ConfigError::Invalid {
            path: path.into(),
            field,
            message: message.into(),
        };
        if self.relay_id.is_empty() || self.relay_id.len() > 253 {
            return Err(invalid("relay_id", "must be 1-253 characters, e.g. \"relay.example.org\""));
        }
        self.internal_listen().map_err(|m| invalid("internal_listen", &m))?;
        if self.sth_refresh_secs == 0 {
            return Err(invalid("sth_refresh_secs", "must be at least 1"));
        }
        let gossip = &self.gossip;
        if gossip.max_clock_skew_secs == 0 || gossip.ingest_per_ip_per_minute == 0 || gossip.push_interval_secs == 0 {
            return Err(invalid("gossip", "max_clock_skew_secs, ingest_per_ip_per_minute and push_interval_secs must be ≥ 1"));
        }
        for peer in &self.gossip.peers {
            let key = wire::parse_b64(&peer.public_key)
                .map_err(|_| invalid("gossip.peer.public_key", "is not base64"))?;
            crypto::LogVerifyingKey::from_bytes(&key).map_err(|_| {
                invalid("gossip.peer.public_key", "is not an ML-DSA-65 public key (1952 bytes)")
            })?;
        }
        Ok(())
    }

    /// The parsed internal listen address.
    pub fn internal_listen(&self) -> Result<InternalListen, String> {
        if let Some(path) = self.internal_listen.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err("a unix socket path must be absolute: \"unix:/run/…/ctlog.sock\"".into());
            }
            return Ok(InternalListen::Unix(path.into()));
        }
        let addr: SocketAddr = self
            .internal_listen
            .parse()
            .map_err(|_| "use \"unix:/absolute/path\" or \"127.0.0.1:PORT\"".to_string())?;
        if !addr.ip().is_loopback() {
            return Err("a TCP internal API must listen on loopback only".into());
        }
        Ok(InternalListen::Tcp(addr))
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.public_listen),
        }
    }

    /// STH refresh interval.
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.sth_refresh_secs)
    }

    /// Path of the signing key seed.
    pub fn signing_key_path(&self) -> PathBuf {
        secret_path(&self.signing_key_file, "log-key", &self.state_dir)
    }

    /// Path of the internal API token.
    pub fn internal_token_path(&self) -> PathBuf {
        secret_path(&self.internal_token_file, "internal-token", &self.state_dir)
    }
}

/// An explicit path wins; then the systemd credential; then a file in the state directory.
fn secret_path(explicit: &Option<PathBuf>, name: &str, state_dir: &Path) -> PathBuf {
    explicit
        .clone()
        .or_else(|| crypto::credential_path(name))
        .unwrap_or_else(|| state_dir.join(name))
}
