//! The admin service's configuration file (strict TOML), validated at load with messages that
//! say the fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use harden::{http_port, smtp_port};
use serde::Deserialize;

/// `paramant-admin` settings. Unknown keys are an error, so typos never pass silently.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public listener: the accounts API (`/api/user/*`), the admin API (`/admin/api/admin/*`)
    /// and the web panel, e.g. "127.0.0.1:8300" behind the TLS-terminating proxy.
    pub public_listen: SocketAddr,
    /// Public base URL of the panel as users reach it ("https://paramant.example"); setup links
    /// in mails point there. Default: `http://<public_listen>`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Internal listener (loopback only): the internal `/v2/user/*` TOTP endpoints, with
    /// `X-Internal-Auth`.
    pub internal_listen: SocketAddr,
    /// Directory of `admin.redb`, generated secrets (when no `$CREDENTIALS_DIRECTORY` holds them)
    /// and the mail outbox.
    pub state_dir: PathBuf,
    /// The sector relays whose API keys the panel manages (at least one).
    pub relays: Vec<RelayConfig>,
    /// The sector log that records admin actions (admin-action leaves). Absent: admin actions
    /// are refused (503 `audit_log_unavailable`), since every one must be logged first.
    #[serde(default)]
    pub ctlog: Option<CtlogConfig>,
    /// Outgoing mail (setup links, notices).
    #[serde(default)]
    pub mail: MailConfig,
    /// Session lifetimes.
    #[serde(default)]
    pub sessions: SessionConfig,
    /// Rate limits for strangers.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Test-only: a file holding a number of seconds added to the wall clock for TOTP steps,
    /// sessions and setup tokens, so tests can move time without sleeping. Never set it in
    /// production (`check-config` and the start-up log say so when it is set).
    #[serde(default)]
    pub danger_clock_offset_file: Option<PathBuf>,
    /// The license (`license_gate`): the `plk_` token and the state `paramant-license`
    /// publishes, re-verified here. Absent: Community Edition (5 users). The cap applies before
    /// every user the panel creates (account activation, admin key creation).
    #[serde(default)]
    pub license: license_gate::LicenseConfig,
    /// How strictly the process sandbox is enforced (`landlock = "required"`, the default, or
    /// `"best-effort"`). It allows reading this file, `$CREDENTIALS_DIRECTORY`, the relays' and
    /// the log's token files, the license files and the clock file; read-write `state_dir`; binding the two listen
    /// ports; connecting to the relays', the log's and the SMTP ports only.
    #[serde(default)]
    pub sandbox: harden::SandboxConfig,
    /// Timeouts and connection caps of both listeners (`header_read_timeout_secs`,
    /// `idle_timeout_secs`, `max_connections`, `max_connections_per_ip`), as the relay and the log.
    #[serde(default)]
    pub connections: httpserve::Limits,
}

/// One relay's internal API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Sector name, as the relay's config names it.
    pub sector: String,
    /// "http://127.0.0.1:PORT" of the relay's internal listener.
    pub internal_url: String,
    /// File holding the relay's internal token (its `X-Internal-Auth`).
    pub token_file: PathBuf,
}

/// The log's internal API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CtlogConfig {
    /// "http://127.0.0.1:PORT" of the log's internal listener.
    pub internal_url: String,
    /// File holding the log's internal token.
    pub token_file: PathBuf,
}

/// Mail delivery.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP relay "host:port" (plain SMTP to a local MTA); absent: mails go to `state_dir/outbox/`.
    #[serde(default)]
    pub smtp: Option<String>,
    /// Sender address.
    #[serde(default = "default_mail_from")]
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self { smtp: None, from: default_mail_from() }
    }
}

fn default_mail_from() -> String {
    "paramant accounts <noreply@localhost>".into()
}

/// Session lifetimes (users and the admin).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// A session unused this long ends, seconds (default 30 minutes).
    #[serde(default = "default_idle")]
    pub idle_secs: u64,
    /// A session ends this long after login whatever its use, seconds (default 12 hours).
    #[serde(default = "default_absolute")]
    pub absolute_secs: u64,
    /// A setup link is valid this long, seconds (default 24 hours).
    #[serde(default = "default_setup")]
    pub setup_token_secs: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { idle_secs: default_idle(), absolute_secs: default_absolute(), setup_token_secs: default_setup() }
    }
}

fn default_idle() -> u64 {
    30 * 60
}
fn default_absolute() -> u64 {
    12 * 3600
}
fn default_setup() -> u64 {
    24 * 3600
}

/// Rate limits. None is keyed by the account alone, so nobody can lock another user out.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Signups per client network (/24, /64) per hour (default 5).
    #[serde(default = "default_signups")]
    pub signups_per_ip_per_hour: u32,
    /// Login and setup attempts per client network per 15 minutes (default 30).
    #[serde(default = "default_logins_ip")]
    pub logins_per_ip_per_15min: u32,
    /// Login attempts per client network and account per 15 minutes (default 5; a success
    /// clears it).
    #[serde(default = "default_logins_account")]
    pub logins_per_ip_and_account_per_15min: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            signups_per_ip_per_hour: default_signups(),
            logins_per_ip_per_15min: default_logins_ip(),
            logins_per_ip_and_account_per_15min: default_logins_account(),
        }
    }
}

fn default_signups() -> u32 {
    5
}
fn default_logins_ip() -> u32 {
    30
}
fn default_logins_account() -> u32 {
    5
}

pub use configfile::ConfigError;

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        configfile::load(path, Self::validate)
    }

    fn validate(&self) -> Result<(), configfile::Invalid> {
        let invalid = |field, message: &str| configfile::Invalid::new(field, message);
        self.connections.check().map_err(|m| invalid("connections", m))?;
        if !self.internal_listen.ip().is_loopback() {
            return Err(invalid("internal_listen", "the internal API must listen on loopback only"));
        }
        if self.relays.is_empty() {
            return Err(invalid("relays", "list at least one relay ([[relays]] sector, internal_url, token_file)"));
        }
        for relay in &self.relays {
            if http_port(&relay.internal_url).is_none() {
                return Err(invalid("relays.internal_url", "must be \"http://127.0.0.1:PORT\" of a relay"));
            }
        }
        let mut sectors: Vec<&str> = self.relays.iter().map(|r| r.sector.as_str()).collect();
        sectors.sort_unstable();
        sectors.dedup();
        if sectors.len() != self.relays.len() {
            return Err(invalid("relays", "each sector may be listed once"));
        }
        if let Some(ctlog) = &self.ctlog
            && http_port(&ctlog.internal_url).is_none()
        {
            return Err(invalid("ctlog.internal_url", "must be \"http://127.0.0.1:PORT\" of the log"));
        }
        if let Some(smtp) = &self.mail.smtp
            && smtp_port(smtp).is_none()
        {
            return Err(invalid("mail.smtp", "must be \"HOST:PORT\" of the local MTA, e.g. \"127.0.0.1:25\""));
        }
        let s = &self.sessions;
        if s.idle_secs == 0 || s.absolute_secs < s.idle_secs || s.setup_token_secs == 0 {
            return Err(invalid("sessions", "idle_secs ≥ 1, absolute_secs ≥ idle_secs, setup_token_secs ≥ 1"));
        }
        let l = &self.limits;
        if l.signups_per_ip_per_hour == 0
            || l.logins_per_ip_per_15min == 0
            || l.logins_per_ip_and_account_per_15min == 0
        {
            return Err(invalid("limits", "every limit must be at least 1"));
        }
        if let Err(e) = self.license.trust_roots() {
            return Err(invalid("license", &e.to_string()));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid("public_url", "must be an http(s) URL"));
        }
        Ok(())
    }

    /// Public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.public_listen),
        }
    }

    /// A secret file: `$CREDENTIALS_DIRECTORY/<name>` when present, else `state_dir/<name>`
    /// (generated there on first start).
    pub fn secret_path(&self, name: &str) -> PathBuf {
        crypto::credential_path(name).unwrap_or_else(|| self.state_dir.join(name))
    }

    /// What the sandbox allows, for this file at `config_file` (see the `sandbox` field).
    pub fn sandbox_policy(&self, config_file: &Path) -> harden::SandboxPolicy {
        let mut read_only = vec![config_file.to_path_buf()];
        read_only.extend(std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from));
        read_only.extend(self.relays.iter().map(|r| r.token_file.clone()));
        read_only.extend(self.ctlog.iter().map(|c| c.token_file.clone()));
        read_only.extend(self.danger_clock_offset_file.clone());
        read_only.extend(self.license.read_paths());
        read_only.extend(harden::RESOLVER_FILES.iter().map(PathBuf::from));
        let mut ports: Vec<u16> = self.relays.iter().filter_map(|r| http_port(&r.internal_url)).collect();
        ports.extend(self.ctlog.iter().filter_map(|c| http_port(&c.internal_url)));
        ports.extend(self.mail.smtp.as_deref().and_then(smtp_port));
        ports.sort_unstable();
        ports.dedup();
        harden::SandboxPolicy {
            read_only,
            read_write: vec![self.state_dir.clone()],
            bind_tcp: vec![self.public_listen.port(), self.internal_listen.port()],
            connect_tcp: harden::TcpConnect::Ports(ports),
            enforcement: self.sandbox.landlock,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = "public_listen = \"127.0.0.1:8300\"\ninternal_listen = \"127.0.0.1:8301\"\n\
        state_dir = \"/var/lib/paramant-admin\"\n\
        [[relays]]\nsector = \"relay\"\ninternal_url = \"http://127.0.0.1:8101\"\ntoken_file = \"/t\"\n";

    fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| format!("{}: {}", e.field, e.message))?;
        Ok(config)
    }

    #[test]
    fn a_minimal_file_is_valid_and_unknown_keys_are_refused() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.public_url(), "http://127.0.0.1:8300");
        assert!(parse(&format!("typo = 1\n{MINIMAL}")).unwrap_err().contains("typo"));
    }

    #[test]
    fn an_internal_listener_off_loopback_is_refused() {
        let text = MINIMAL.replace("127.0.0.1:8301", "0.0.0.0:8301");
        assert!(parse(&text).unwrap_err().starts_with("internal_listen"));
    }

    #[test]
    fn connection_limits_default_like_the_relays_and_a_zero_cap_is_refused() {
        assert_eq!(parse(MINIMAL).unwrap().connections.max_connections_per_ip, 256);
        let text = format!("{MINIMAL}[connections]\nmax_connections_per_ip = 0\n");
        assert!(parse(&text).unwrap_err().starts_with("connections"));
    }

    #[test]
    fn the_sandbox_connects_only_to_the_relays_and_the_log() {
        let text = format!("{MINIMAL}[ctlog]\ninternal_url = \"http://127.0.0.1:8201\"\ntoken_file = \"/c\"\n");
        let policy = parse(&text).unwrap().sandbox_policy(Path::new("/etc/admin.toml"));
        assert_eq!(policy.connect_tcp, harden::TcpConnect::Ports(vec![8101, 8201]));
        assert_eq!(policy.bind_tcp, vec![8300, 8301]);
    }

    #[test]
    fn the_license_files_are_readable_in_the_sandbox_and_a_bad_key_is_refused() {
        let text = format!(
            "{MINIMAL}[license]\ntoken_file = \"/lic/token\"\nstate_file = \"/run/paramant-license/state.json\"\n"
        );
        let policy = parse(&text).unwrap().sandbox_policy(Path::new("/etc/admin.toml"));
        assert!(policy.read_only.contains(&PathBuf::from("/lic/token")));
        assert!(policy.read_only.contains(&PathBuf::from("/run/paramant-license")));
        let bad = format!("{MINIMAL}[license]\ntrusted_ed25519_keys = [\"not hex\"]\n");
        assert!(parse(&bad).unwrap_err().starts_with("license"));
        assert!(parse(MINIMAL).unwrap().license.token_file.is_none(), "no table: Community");
    }
}
