//! The `paramant-license` configuration file (strict TOML).

use std::path::{Path, PathBuf};

/// The sector's log.
pub use configfile::CtlogConfig;
use serde::Deserialize;

/// `paramant-license` settings. Unknown keys are an error.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The license server's check-in endpoint, an `https://` URL (ADR R013:
    /// `https://license.paramant.app/v1/license/check`). The only outbound connection besides
    /// the local log and relay.
    pub server_url: String,
    /// Extra PEM CA certificates to trust for the server (someone running their own license
    /// server, or a test CA). The Mozilla roots (webpki-roots) are always trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Where the service keeps its state (`state.json`: the last signed capability set).
    pub state_dir: PathBuf,
    /// Where the state is published for the relay and the admin panel to read (they re-verify
    /// it). Default: `state_dir/state.json` only.
    #[serde(default)]
    pub publish_file: Option<PathBuf>,
    /// Opt in to telemetry (off by default): aggregate numbers only, see `telemetry-preview`.
    #[serde(default)]
    pub telemetry: bool,
    /// Longest a check-in may take, seconds (connect, TLS, answer).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The token, the trust roots and the support-key revocation list (as the relay has them).
    #[serde(default)]
    pub license: license_gate::LicenseConfig,
    /// The sector's log: its public key is the relay's identity, and every check-in and remote
    /// action is appended to it.
    pub ctlog: CtlogConfig,
    /// The relay's internal API, for the user count of opted-in telemetry.
    #[serde(default)]
    pub relay: Option<RelayConfig>,
    /// How strictly the sandbox is enforced.
    #[serde(default)]
    pub sandbox: harden::SandboxConfig,
}

/// The relay's internal API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `http://127.0.0.1:PORT`.
    pub internal_url: String,
    /// File with the relay's internal token. Default: `$CREDENTIALS_DIRECTORY/relay-internal-token`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_timeout() -> u64 {
    30
}

impl Config {
    /// Reads and validates the file.
    ///
    /// # Errors
    /// A [`configfile::ConfigError`] naming the file and the field.
    pub fn load(path: &Path) -> Result<Self, configfile::ConfigError> {
        configfile::load(path, Self::validate)
    }

    fn validate(&self) -> Result<(), configfile::Invalid> {
        let invalid = |field, message: &str| configfile::Invalid::new(field, message);
        if crate::client::Endpoint::parse(&self.server_url).is_none() {
            return Err(invalid(
                "server_url",
                "must be an https:// URL, e.g. \"https://license.paramant.app/v1/license/check\"",
            ));
        }
        for (field, url) in
            [("ctlog.internal_url", &self.ctlog.internal_url), ("ctlog.public_url", &self.ctlog.public_url)]
        {
            if crate::log::http_port(url).is_none() {
                return Err(invalid(field, "must be an http:// URL of the local log"));
            }
        }
        if let Some(relay) = &self.relay
            && crate::log::http_port(&relay.internal_url).is_none()
        {
            return Err(invalid("relay.internal_url", "must be an http:// URL of the relay's internal API"));
        }
        if self.timeout_secs == 0 || self.timeout_secs > 300 {
            return Err(invalid("timeout_secs", "must be 1-300"));
        }
        self.license.trust_roots().map_err(|e| invalid("license", &e.to_string()))?;
        Ok(())
    }

    /// The state file.
    #[must_use]
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }

    /// The log's internal token file.
    #[must_use]
    pub fn ctlog_token_path(&self) -> PathBuf {
        self.ctlog
            .token_file
            .clone()
            .or_else(|| crypto::credential_path("ctlog-internal-token"))
            .unwrap_or_else(|| self.state_dir.join("ctlog-internal-token"))
    }

    /// The relay's internal token file, if a relay is configured.
    #[must_use]
    pub fn relay_token_path(&self) -> Option<PathBuf> {
        let relay = self.relay.as_ref()?;
        relay.token_file.clone().or_else(|| crypto::credential_path("relay-internal-token"))
    }

    /// What the sandbox allows: read the config, credentials, token, CA and resolver files;
    /// write the state directory and the publish file's directory; connect to the license
    /// server's port and the local log's and relay's ports. No listening port, no other
    /// connection, no exec.
    #[must_use]
    pub fn sandbox_policy(&self, config_file: &Path) -> harden::SandboxPolicy {
        let mut read_only = vec![config_file.to_path_buf()];
        read_only.extend(std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from));
        read_only.extend(self.license.read_paths());
        read_only.extend(self.ca_file.clone());
        read_only.push(self.ctlog_token_path());
        read_only.extend(self.relay_token_path());
        read_only.extend(harden::RESOLVER_FILES.iter().map(PathBuf::from));
        let mut read_write = vec![self.state_dir.clone()];
        read_write.extend(self.publish_file.as_deref().and_then(Path::parent).map(Path::to_path_buf));
        let mut ports: Vec<u16> = [&self.ctlog.internal_url, &self.ctlog.public_url]
            .into_iter()
            .chain(self.relay.as_ref().map(|r| &r.internal_url))
            .filter_map(|u| crate::log::http_port(u))
            .collect();
        ports.extend(crate::client::Endpoint::parse(&self.server_url).map(|e| e.port));
        ports.sort_unstable();
        ports.dedup();
        harden::SandboxPolicy {
            read_only,
            read_write,
            bind_tcp: Vec::new(),
            connect_tcp: harden::TcpConnect::Ports(ports),
            enforcement: self.sandbox.landlock,
        }
    }
}
