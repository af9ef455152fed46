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
    /// Ed25519 seed file of the C2SP checkpoint note key. Default:
    /// `$CREDENTIALS_DIRECTORY/note-key`, else `state_dir/note-key` (generated on first start).
    #[serde(default)]
    pub note_key_file: Option<PathBuf>,
    /// Memory for pages of the log file kept inside the process, in MiB (redb's cache). Proofs
    /// whose hash tiles are in it need no system call, and nothing but the process evicts them;
    /// the tiles take 64 bytes per leaf (6.2 GiB at 100M leaves), preloaded at start-up
    /// (`ctlog::warm`). Below that, proofs read the other tiles through the kernel's page cache.
    #[serde(default = "default_cache_mib")]
    pub cache_mib: usize,
    /// Sign a fresh STH when the newest is older than this many seconds.
    #[serde(default = "default_refresh_secs")]
    pub sth_refresh_secs: u64,
    /// Gossip (peer STH exchange) settings.
    #[serde(default)]
    pub gossip: GossipConfig,
    /// How strictly the process sandbox is enforced (`landlock = "required"`, the default, or
    /// `"best-effort"`). What it allows is derived from the rest of the file: the config file
    /// and `$CREDENTIALS_DIRECTORY` read-only (and the resolver's files when a gossip peer is
    /// named by host name), `state_dir` read-write, TCP bind on the listen ports, TCP connect to
    /// the gossip peers' ports; nothing else (no exec, no other file). Capabilities are dropped
    /// after binding and `no_new_privs` is set in every mode.
    #[serde(default)]
    pub sandbox: harden::SandboxConfig,
    /// Timeouts and connection caps of both listeners (`header_read_timeout_secs`,
    /// `idle_timeout_secs`, `max_connections`, `max_connections_per_ip`).
    #[serde(default)]
    pub connections: httpserve::Limits,
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
    /// Addresses of proxies (the sector's relay) whose `X-Real-IP` names the client for the
    /// per-IP ingest limit. From any other caller, loopback included, the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
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
            trusted_proxies: Vec::new(),
        }
    }
}

fn default_sector() -> String {
    "relay".into()
}
fn default_cache_mib() -> usize {
    crate::store::DEFAULT_CACHE_BYTES >> 20
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
    /// A Unix socket at this path.
    Unix(PathBuf),
    /// A loopback TCP address.
    Tcp(SocketAddr),
}

pub use configfile::ConfigError;

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        configfile::load(path, Self::validate)
    }

    fn validate(&self) -> Result<(), configfile::Invalid> {
        let invalid = |field, message: &str| configfile::Invalid::new(field, message);
        if self.relay_id.is_empty() || self.relay_id.len() > 253 {
            return Err(invalid("relay_id", "must be 1-253 characters, e.g. \"relay.example.org\""));
        }
        self.internal_listen().map_err(|m| invalid("internal_listen", &m))?;
        self.connections.check().map_err(|m| invalid("connections", m))?;
        if self.sth_refresh_secs == 0 {
            return Err(invalid("sth_refresh_secs", "must be at least 1"));
        }
        let gossip = &self.gossip;
        if gossip.max_clock_skew_secs == 0 || gossip.ingest_per_ip_per_minute == 0 || gossip.push_interval_secs == 0 {
            return Err(invalid(
                "gossip",
                "max_clock_skew_secs, ingest_per_ip_per_minute and push_interval_secs must be ≥ 1",
            ));
        }
        for peer in &self.gossip.peers {
            if let Some(url) = &peer.url {
                peer_endpoint(url).map_err(|m| invalid("gossip.peer.url", &m))?;
            }
            let key =
                wire::parse_b64(&peer.public_key).map_err(|_| invalid("gossip.peer.public_key", "is not base64"))?;
            crypto::LogVerifyingKey::from_bytes(&key)
                .map_err(|_| invalid("gossip.peer.public_key", "is not an ML-DSA-65 public key (1952 bytes)"))?;
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

    /// What the sandbox allows, for this file at `config_file`. The Unix socket of
    /// `internal_listen` and the key and token files are absent on purpose: they are bound and
    /// read before the sandbox is applied and never opened again.
    pub fn sandbox_policy(&self, config_file: &Path) -> harden::SandboxPolicy {
        let mut read_only = vec![config_file.to_path_buf()];
        read_only.extend(std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from));
        let endpoints: Vec<(String, u16)> =
            self.gossip.peers.iter().filter_map(|p| p.url.as_deref()).filter_map(|u| peer_endpoint(u).ok()).collect();
        // A peer named by host name needs the resolver's files (DNS itself is UDP, not restricted).
        if endpoints.iter().any(|(host, _)| host.parse::<std::net::IpAddr>().is_err()) {
            read_only.extend(harden::RESOLVER_FILES.iter().map(PathBuf::from));
        }
        let mut bind_tcp = vec![self.public_listen.port()];
        if let Ok(InternalListen::Tcp(addr)) = self.internal_listen() {
            bind_tcp.push(addr.port());
        }
        let mut connect_tcp: Vec<u16> = endpoints.iter().map(|(_, port)| *port).collect();
        connect_tcp.sort_unstable();
        connect_tcp.dedup();
        harden::SandboxPolicy {
            read_only,
            read_write: vec![self.state_dir.clone()],
            bind_tcp,
            connect_tcp: harden::TcpConnect::Ports(connect_tcp),
            enforcement: self.sandbox.landlock,
        }
    }

    /// Path of the signing key seed.
    pub fn signing_key_path(&self) -> PathBuf {
        secret_path(&self.signing_key_file, "log-key", &self.state_dir)
    }

    /// Path of the internal API token.
    pub fn internal_token_path(&self) -> PathBuf {
        secret_path(&self.internal_token_file, "internal-token", &self.state_dir)
    }

    /// Path of the Ed25519 checkpoint note key seed.
    pub fn note_key_path(&self) -> PathBuf {
        secret_path(&self.note_key_file, "note-key", &self.state_dir)
    }
}

/// Host and port of a peer URL, which must be `http://HOST:PORT` (what `peer_client` can call).
pub fn peer_endpoint(url: &str) -> Result<(String, u16), String> {
    let usage = || format!("{url:?}: use \"http://HOST:PORT\" (plain HTTP, explicit port, no path)");
    let authority = url.strip_prefix("http://").ok_or_else(usage)?.trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').ok_or_else(usage)?;
    let port: u16 = port.parse().map_err(|_| usage())?;
    // An IPv6 literal comes in brackets; any other ':' or a path, user or bracket is an error.
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).map_or(host, |v6| v6);
    let bracketed = authority.starts_with('[');
    if host.is_empty() || port == 0 || host.contains(['/', '@', '[', ']']) || (host.contains(':') && !bracketed) {
        return Err(usage());
    }
    Ok((host.to_owned(), port))
}

/// An explicit path wins; then the systemd credential; then a file in the state directory.
fn secret_path(explicit: &Option<PathBuf>, name: &str, state_dir: &Path) -> PathBuf {
    explicit.clone().or_else(|| crypto::credential_path(name)).unwrap_or_else(|| state_dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "relay_id = \"log.example\"\nstate_dir = \"/var/lib/ctlog\"\npublic_listen = \"127.0.0.1:8081\"\n\
             internal_listen = \"127.0.0.1:8082\"\n{extra}"
        );
        toml::from_str(&text).expect("valid config")
    }

    #[test]
    fn peer_urls_must_be_plain_http_with_a_port() {
        assert_eq!(peer_endpoint("http://10.0.0.2:8081"), Ok(("10.0.0.2".into(), 8081)));
        assert_eq!(peer_endpoint("http://log.example:80/"), Ok(("log.example".into(), 80)));
        assert_eq!(peer_endpoint("http://[::1]:9000"), Ok(("::1".into(), 9000)));
        for bad in [
            "https://log.example:443",
            "http://log.example",
            "http://:80",
            "http://a:b",
            "http://::1:80",
            "http://h:1/x",
        ] {
            assert!(peer_endpoint(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn sandbox_defaults_to_required_and_rejects_unknown_keys() {
        assert_eq!(config("").sandbox.landlock, harden::Enforcement::Required);
        assert_eq!(config("[sandbox]\nlandlock = \"best-effort\"\n").sandbox.landlock, harden::Enforcement::BestEffort);
        let typo = "relay_id = \"x\"\nstate_dir = \"/s\"\npublic_listen = \"127.0.0.1:1\"\n\
                    internal_listen = \"127.0.0.1:2\"\n[sandbox]\nlandlok = \"required\"\n";
        assert!(toml::from_str::<Config>(typo).is_err());
    }

    #[test]
    fn sandbox_policy_allows_state_config_listen_ports_and_peer_ports_only() {
        let policy = config("").sandbox_policy(Path::new("/etc/paramant/ctlog.toml"));
        assert_eq!(policy.read_write, vec![PathBuf::from("/var/lib/ctlog")]);
        assert_eq!(policy.read_only[0], PathBuf::from("/etc/paramant/ctlog.toml"));
        assert_eq!(policy.bind_tcp, vec![8081, 8082]);
        assert_eq!(policy.connect_tcp, harden::TcpConnect::Ports(vec![]));
        assert!(!policy.read_only.contains(&PathBuf::from("/etc/resolv.conf")));
        let peers = "[[gossip.peer]]\nrelay_id = \"a\"\npublic_key = \"k\"\nurl = \"http://10.0.0.2:9001\"\n\
                     [[gossip.peer]]\nrelay_id = \"b\"\npublic_key = \"k\"\nurl = \"http://log.example:9002\"\n";
        let policy = config(peers).sandbox_policy(Path::new("/c.toml"));
        assert_eq!(policy.connect_tcp, harden::TcpConnect::Ports(vec![9001, 9002]));
        assert!(policy.read_only.contains(&PathBuf::from("/etc/resolv.conf")), "a host name needs the resolver");
    }
}
