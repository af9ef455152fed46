//! The relay configuration file (strict TOML), validated at load with messages that say the fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the log is and how to authenticate to it (the relay serves the CT endpoints on its
/// origin from the log's public API).
pub use configfile::CtlogConfig;
use harden::{http_port, smtp_port};
use serde::Deserialize;

use crate::ids::{PeerUrl, Scheme};

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
    /// Relay registry to announce this relay in ("https://relay.example.org"): the log signs
    /// the entry, and it is renewed every 10 minutes. None: not announced.
    #[serde(default)]
    pub registry_url: Option<String>,
    /// Relays that may register in this relay's registry (`POST /v2/relays/register`), by the
    /// fingerprint of their sector log's key (`pk_hash`, 64 hex, as `paramant ctlog pubkey`
    /// prints it). Empty (the default): the registry accepts no registrations (unless
    /// `registry_url_proof`).
    #[serde(default)]
    pub registry_keys: Vec<String>,
    /// Also accept registrations from relays whose key is not in `registry_keys` when the URL
    /// they register proves it: `<url>/.well-known/paramant-relay.json` (which every relay
    /// serves) must name that URL and the signing log key's `pk_hash`. The fetch follows the
    /// webhook rules (`[webhook] ports`, public addresses only). Default false.
    #[serde(default)]
    pub registry_url_proof: bool,
    /// Trial key requests (`POST /v2/request-trial`).
    #[serde(default)]
    pub trial: TrialConfig,
    /// The release public keys file (`paramant release keygen`: ECDSA P-256 and ML-DSA-65) served
    /// at `/.well-known/paramant-release.pub`; checked at start. None: that path answers 404.
    #[serde(default)]
    pub release_public_keys_file: Option<PathBuf>,
    /// Public URL of the admin panel (`paramant-admin`) that serves this sector's user accounts
    /// (`/api/user/*`, TOTP). When set, `/v2/auth/capabilities` reports
    /// `user_totp_available: true`; the relay itself never holds TOTP secrets.
    #[serde(default)]
    pub user_accounts_url: Option<String>,
    /// How strictly the process sandbox is enforced (`landlock = "required"`, the default, or
    /// `"best-effort"`). What it allows is derived from the rest of the file (see
    /// `Config::sandbox_policy`): read-only the config file, `$CREDENTIALS_DIRECTORY`, the TLS
    /// certificate and key, the log's token file and the resolver's files (webhook targets and
    /// the SMTP relay are resolved by name); read-write `state_dir`; TCP bind on the two listen
    /// ports; TCP connect to the log's ports, `[webhook] ports` and the `[trial] smtp` port only
    /// (any port with `[webhook] danger_allow_private_targets`). Nothing else: no exec, no other
    /// file. Capabilities are dropped after binding and `no_new_privs` is set in every mode.
    #[serde(default)]
    pub sandbox: harden::SandboxConfig,
    /// Timeouts and connection caps of both listeners (`header_read_timeout_secs`,
    /// `idle_timeout_secs`, `max_connections`, `max_connections_per_ip`).
    #[serde(default)]
    pub connections: httpserve::Limits,
    /// The license (`license_gate::LicenseConfig`): the offline `plk_` token, the state
    /// `paramant-license` publishes, extra trust roots. Absent: Community Edition unless the
    /// systemd credential `license-token` holds a valid token.
    #[serde(default)]
    pub license: license_gate::LicenseConfig,
    /// Limits of uploads in flight and of download acknowledgement.
    #[serde(default)]
    pub transfers: Transfers,
}

/// Uploads in flight (counted against the blob budget while their bodies arrive) and how long
/// a download may wait for the client's acknowledgement.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfers {
    /// Share of `blob_budget_bytes` one API key may hold, stored and in flight, in percent.
    #[serde(default = "default_key_share")]
    pub max_key_share_percent: u8,
    /// Uploads whose bodies are being received at once, in all / per API key / per client IP;
    /// beyond: 503 (all) or 429 (key, IP) with Retry-After, before any body byte is read.
    #[serde(default = "default_uploads_total")]
    pub concurrent_uploads: u32,
    /// Uploads in flight per API key.
    #[serde(default = "default_uploads_each")]
    pub concurrent_uploads_per_key: u32,
    /// Uploads in flight per client IP.
    #[serde(default = "default_uploads_each")]
    pub concurrent_uploads_per_ip: u32,
    /// Slowest upload accepted: the body must arrive within `body_grace_secs` plus its length
    /// at this rate, else 408.
    #[serde(default = "default_min_rate")]
    pub min_upload_bytes_per_sec: u64,
    /// Seconds every body gets on top of its length at `min_upload_bytes_per_sec`.
    #[serde(default = "default_body_grace")]
    pub body_grace_secs: u64,
    /// Seconds a download waits for the client's TCP stack to acknowledge the whole body; a
    /// view is consumed only then. Past it the connection is reset and the view stays.
    #[serde(default = "default_ack_timeout")]
    pub delivery_ack_timeout_secs: u64,
}

impl Default for Transfers {
    fn default() -> Self {
        Self {
            max_key_share_percent: default_key_share(),
            concurrent_uploads: default_uploads_total(),
            concurrent_uploads_per_key: default_uploads_each(),
            concurrent_uploads_per_ip: default_uploads_each(),
            min_upload_bytes_per_sec: default_min_rate(),
            body_grace_secs: default_body_grace(),
            delivery_ack_timeout_secs: default_ack_timeout(),
        }
    }
}

fn default_key_share() -> u8 {
    50
}
fn default_uploads_total() -> u32 {
    64
}
fn default_uploads_each() -> u32 {
    8
}
fn default_min_rate() -> u64 {
    64 * 1024
}
fn default_body_grace() -> u64 {
    10
}
fn default_ack_timeout() -> u64 {
    30
}

/// PEM certificate chain and private key for rustls.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
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
    /// Receiver sessions (`inv_…` DIDs registered without an API key) per client address per
    /// hour (IPv6: per /64).
    #[serde(default = "default_sessions_per_ip")]
    pub receiver_sessions_per_ip_per_hour: u32,
    /// Receiver sessions of all clients per hour (each is a DID in `relay.redb` and a log entry).
    #[serde(default = "default_sessions")]
    pub receiver_sessions_per_hour: u32,
}

/// Outgoing webhook policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Allow private, loopback and link-local targets and plain `http://` URLs (off: SSRF
    /// protection). For tests and closed networks only. Such targets listen on any port, so the
    /// sandbox then lets the relay connect to every TCP port (binding stays restricted; the
    /// relay says so at start and `check-config` prints it).
    #[serde(default)]
    pub danger_allow_private_targets: bool,
    /// TCP ports webhook targets may use (default `[443]`). The sandbox allows connecting to
    /// these only, so a URL with another port is refused when it is registered. Ignored (any
    /// port) with `danger_allow_private_targets`.
    #[serde(default = "default_webhook_ports")]
    pub ports: Vec<u16>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self { danger_allow_private_targets: false, ports: default_webhook_ports() }
    }
}

/// Trial key delivery.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// SMTP relay "host:port" (plain SMTP to a local MTA; the port is required, the sandbox
    /// allows connecting to it); when absent, mails go to `state_dir/outbox/`.
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
            receiver_sessions_per_ip_per_hour: default_sessions_per_ip(),
            receiver_sessions_per_hour: default_sessions(),
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
fn default_sessions_per_ip() -> u32 {
    10
}
fn default_sessions() -> u32 {
    1000
}
fn default_webhook_ports() -> Vec<u16> {
    vec![443]
}
fn default_mail_from() -> String {
    "paramant relay <noreply@localhost>".into()
}

/// Sectors of the API reference.
pub const SECTORS: [&str; 5] = ["relay", "health", "legal", "finance", "iot"];

pub use configfile::ConfigError;

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        configfile::load(path, Self::validate)
    }

    fn validate(&self) -> Result<(), configfile::Invalid> {
        let invalid = |field, message: &str| configfile::Invalid::new(field, message);
        if !SECTORS.contains(&self.sector.as_str()) {
            return Err(invalid("sector", "must be one of relay, health, legal, finance, iot"));
        }
        if !self.internal_listen.ip().is_loopback() {
            return Err(invalid("internal_listen", "the internal API must listen on loopback only"));
        }
        for (field, url) in
            [("ctlog.internal_url", &self.ctlog.internal_url), ("ctlog.public_url", &self.ctlog.public_url)]
        {
            if http_port(url).is_none() {
                return Err(invalid(field, "must be an http:// URL of the local log, e.g. \"http://127.0.0.1:8200\""));
            }
        }
        if let Some(smtp) = &self.trial.smtp
            && smtp_port(smtp).is_none()
        {
            return Err(invalid("trial.smtp", "must be \"HOST:PORT\" of the local MTA, e.g. \"127.0.0.1:25\""));
        }
        if self.webhook.ports.is_empty() || self.webhook.ports.contains(&0) {
            return Err(invalid("webhook.ports", "must list the TCP ports webhook targets may use, e.g. [443]"));
        }
        let limits = &self.limits;
        if limits.max_blob_bytes == 0 || limits.blob_budget_bytes < limits.max_blob_bytes as u64 {
            return Err(invalid("limits", "blob_budget_bytes must hold at least one max_blob_bytes blob"));
        }
        self.connections.check().map_err(|m| invalid("connections", m))?;
        let t = &self.transfers;
        if !(1..=100).contains(&t.max_key_share_percent)
            || limits.blob_budget_bytes * u64::from(t.max_key_share_percent) / 100 < limits.max_blob_bytes as u64
        {
            return Err(invalid(
                "transfers",
                "max_key_share_percent of blob_budget_bytes must hold one max_blob_bytes blob",
            ));
        }
        if t.concurrent_uploads == 0 || t.concurrent_uploads_per_key == 0 || t.concurrent_uploads_per_ip == 0 {
            return Err(invalid("transfers", "concurrent upload caps must be at least 1"));
        }
        if t.min_upload_bytes_per_sec == 0 || t.delivery_ack_timeout_secs == 0 {
            return Err(invalid(
                "transfers",
                "min_upload_bytes_per_sec and delivery_ack_timeout_secs must be at least 1",
            ));
        }
        if limits.requests_per_ip_per_minute == 0
            || limits.requests_per_key_per_minute == 0
            || limits.receiver_sessions_per_ip_per_hour == 0
            || limits.receiver_sessions_per_hour == 0
        {
            return Err(invalid("limits", "request rates must be at least 1 per minute"));
        }
        if let Some(url) = &self.user_accounts_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid("user_accounts_url", "must be the admin panel's http(s) URL"));
        }
        if let Some(url) = &self.registry_url {
            PeerUrl::parse(url, Scheme::AllowPlainHttp).map_err(|m| invalid("registry_url", m))?;
        }
        self.license.trust_roots().map_err(|e| invalid("license", &e.to_string()))?;
        if self.registry_keys.iter().any(|k| wire::parse_hash_hex(k).is_err()) {
            return Err(invalid("registry_keys", "each entry must be a log key's pk_hash: 64 hex characters"));
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

    /// What the sandbox allows, for this file at `config_file` (the `sandbox` field's doc says
    /// why each entry is there). Our own token file is not listed: it lives in `state_dir` or
    /// `$CREDENTIALS_DIRECTORY` unless named explicitly, and is read before the sandbox.
    pub fn sandbox_policy(&self, config_file: &Path) -> harden::SandboxPolicy {
        let mut read_only = vec![config_file.to_path_buf()];
        read_only.extend(std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from));
        if let Some(tls) = &self.tls {
            read_only.extend([tls.cert_file.clone(), tls.key_file.clone()]);
        }
        read_only.push(self.ctlog_token_path());
        read_only.extend(self.release_public_keys_file.clone());
        read_only.extend(self.license.read_paths());
        read_only.extend(harden::RESOLVER_FILES.iter().map(PathBuf::from));
        harden::SandboxPolicy {
            read_only,
            read_write: vec![self.state_dir.clone()],
            bind_tcp: vec![self.public_listen.port(), self.internal_listen.port()],
            connect_tcp: self.connect_tcp(),
            enforcement: self.sandbox.landlock,
        }
    }

    /// The log's two ports, the webhook ports, the SMTP port and the registry's port; every port when private
    /// webhook targets (which listen anywhere) are allowed.
    fn connect_tcp(&self) -> harden::TcpConnect {
        if self.webhook.danger_allow_private_targets {
            let reason =
                "[webhook] danger_allow_private_targets = true: private webhook targets may listen on any port";
            return harden::TcpConnect::AnyPort { reason: reason.into() };
        }
        let log = [&self.ctlog.internal_url, &self.ctlog.public_url].into_iter().filter_map(|url| http_port(url));
        let smtp = self.trial.smtp.as_deref().and_then(smtp_port);
        let registry = self
            .registry_url
            .as_deref()
            .and_then(|url| PeerUrl::parse(url, Scheme::AllowPlainHttp).ok())
            .map(|u| u.target().port);
        let mut ports: Vec<u16> = log.chain(self.webhook.ports.iter().copied()).chain(smtp).chain(registry).collect();
        ports.sort_unstable();
        ports.dedup();
        harden::TcpConnect::Ports(ports)
    }
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
            "sector = \"relay\"\npublic_listen = \"0.0.0.0:8443\"\ninternal_listen = \"127.0.0.1:8001\"\n\
             state_dir = \"/var/lib/relay\"\n{extra}\n[ctlog]\ninternal_url = \"http://127.0.0.1:8082\"\n\
             public_url = \"http://localhost:8081/\"\ntoken_file = \"/run/ctlog/token\"\n"
        );
        let config: Config = toml::from_str(&text).expect("valid config");
        assert!(config.validate().is_ok(), "valid values");
        config
    }

    fn ports(connect: harden::TcpConnect) -> Vec<u16> {
        match connect {
            harden::TcpConnect::Ports(ports) => ports,
            other => panic!("expected port rules, got {other:?}"),
        }
    }

    #[test]
    fn sandbox_allows_config_secrets_resolver_state_listen_and_log_ports() {
        let policy = config("").sandbox_policy(Path::new("/etc/paramant/relay.toml"));
        assert_eq!(policy.read_only[0], PathBuf::from("/etc/paramant/relay.toml"));
        assert!(policy.read_only.contains(&PathBuf::from("/run/ctlog/token")));
        assert!(policy.read_only.contains(&PathBuf::from("/etc/resolv.conf")), "webhooks resolve host names");
        assert_eq!(policy.read_write, vec![PathBuf::from("/var/lib/relay")]);
        assert_eq!(policy.bind_tcp, vec![8443, 8001]);
        assert_eq!(ports(policy.connect_tcp), vec![443, 8081, 8082]);
        assert_eq!(policy.enforcement, harden::Enforcement::Required);
    }

    #[test]
    fn tls_files_smtp_and_webhook_ports_join_the_policy() {
        let extra = "[tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n[trial]\nsmtp = \"mail.local:2525\"\n\
                     [webhook]\nports = [443, 8443]\n[sandbox]\nlandlock = \"best-effort\"";
        let policy = config(extra).sandbox_policy(Path::new("/r.toml"));
        assert!(
            policy.read_only.contains(&PathBuf::from("/c.pem")) && policy.read_only.contains(&PathBuf::from("/k.pem"))
        );
        assert_eq!(ports(policy.connect_tcp), vec![443, 2525, 8081, 8082, 8443]);
        assert_eq!(policy.enforcement, harden::Enforcement::BestEffort);
    }

    #[test]
    fn private_webhook_targets_lift_the_connect_rules_and_say_why() {
        let policy = config("[webhook]\ndanger_allow_private_targets = true").sandbox_policy(Path::new("/r.toml"));
        match policy.connect_tcp {
            harden::TcpConnect::AnyPort { reason } => {
                assert!(reason.contains("danger_allow_private_targets"), "{reason}")
            }
            other => panic!("expected any port, got {other:?}"),
        }
        assert_eq!(policy.bind_tcp, vec![8443, 8001], "binding stays restricted");
    }

    #[test]
    fn an_smtp_server_without_a_port_or_no_webhook_port_is_refused() {
        for extra in ["[trial]\nsmtp = \"localhost\"", "[webhook]\nports = []", "[sandbox]\nlandlok = \"required\""] {
            let text = format!(
                "sector = \"relay\"\npublic_listen = \"127.0.0.1:1\"\ninternal_listen = \"127.0.0.1:2\"\nstate_dir = \"/s\"\n\
                 {extra}\n[ctlog]\ninternal_url = \"http://127.0.0.1:3\"\npublic_url = \"http://127.0.0.1:4\"\n"
            );
            let refused = toml::from_str::<Config>(&text).map(|c| c.validate().is_err());
            assert!(refused.unwrap_or(true), "{extra} accepted");
        }
    }
}
