//! The landlock sandbox: a policy (paths and ports), what this machine can enforce of it
//! ([`outlook`]), and [`apply`], which sets `no_new_privs`, restricts the calling thread and
//! refuses a required sandbox that would not be fully in force.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

use crate::HardenError;
use crate::probe::{self, LandlockSupport};

/// Newest landlock ABI whose access rights this crate asks for. Newer kernels get exactly these
/// rules, never rights we have not run against (ABI 9 would also restrict connecting to Unix
/// sockets, ABI 10 UDP and so DNS). Raise it after running the tests on such a kernel.
pub const TESTED_ABI: u8 = 7;

/// First landlock ABI with TCP bind/connect rules (Linux 6.7).
pub const NET_RULES_ABI: u8 = 4;

/// What happens when the sandbox cannot be fully enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Refuse to start, naming the cause ("required").
    #[default]
    Required,
    /// Apply what the kernel allows and report the rest ("best-effort").
    BestEffort,
}

/// The `[sandbox]` table every daemon's configuration file has. What the sandbox allows is
/// derived from the rest of the file (each service documents its policy); this says only how
/// strictly it is enforced. Capabilities are dropped and `no_new_privs` is set in every mode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// "required" (default): refuse to start, naming the cause, unless landlock's filesystem and
    /// TCP rules are fully in force (Linux 6.7+, landlock syscalls not blocked by seccomp).
    /// "best-effort": start with whatever the kernel enforces and log what is missing.
    #[serde(default)]
    pub landlock: Enforcement,
}

/// Files glibc's `getaddrinfo` reads to resolve a host name ("files" and "dns" are built into
/// glibc ≥ 2.34, so no NSS module is loaded); grant them to a daemon that connects to hosts by
/// name. DNS itself is UDP, which landlock (up to [`TESTED_ABI`]) does not restrict. Missing
/// files are skipped by [`apply`].
pub const RESOLVER_FILES: [&str; 5] =
    ["/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf"];

/// Where a sandboxed daemon may connect over TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpConnect {
    /// These ports only, on any host (landlock rules name ports, not addresses).
    Ports(Vec<u16>),
    /// Every port, for the operator-visible `reason` the policy gives (logged at start and
    /// printed by `check-config`). Binding stays restricted.
    AnyPort {
        /// Why every port is needed (the setting that asks for it).
        reason: String,
    },
}

impl Default for TcpConnect {
    fn default() -> Self {
        Self::Ports(Vec::new())
    }
}

impl std::fmt::Display for TcpConnect {
    /// "8081 8082", "(none)", or "any port (reason)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ports(ports) if ports.is_empty() => f.write_str("(none)"),
            Self::Ports(ports) => f.write_str(&ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" ")),
            Self::AnyPort { reason } => write!(f, "any port ({reason})"),
        }
    }
}

/// What a daemon may touch once sandboxed. Everything else on the filesystem (execute included)
/// and every other TCP bind and connect is denied. Listeners and files opened before [`apply`]
/// keep working: landlock checks opening, binding and connecting, not file descriptors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxPolicy {
    /// Files or directories the process may read (config, `$CREDENTIALS_DIRECTORY`).
    pub read_only: Vec<PathBuf>,
    /// Directories the process may read, write, create and remove in (the state directory).
    pub read_write: Vec<PathBuf>,
    /// TCP ports the process may bind.
    pub bind_tcp: Vec<u16>,
    /// Where the process may connect over TCP.
    pub connect_tcp: TcpConnect,
    /// Whether a sandbox not fully in force is an error or a warning.
    pub enforcement: Enforcement,
}

/// How much of the sandbox is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LandlockState {
    /// Filesystem and TCP rules in force.
    FullyEnforced,
    /// Filesystem rules only (landlock ABI 1–3 cannot restrict TCP).
    PartiallyEnforced,
    /// No landlock at all.
    NotEnforced,
}

impl LandlockState {
    /// The name used in reports and `/health`: "fully_enforced", …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullyEnforced => "fully_enforced",
            Self::PartiallyEnforced => "partially_enforced",
            Self::NotEnforced => "not_enforced",
        }
    }
}

impl std::fmt::Display for LandlockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxReport {
    /// How much of the sandbox is in force.
    pub landlock: LandlockState,
    /// The kernel's landlock ABI (0: none).
    pub abi: u8,
    /// TCP bind/connect rules are in force.
    pub net_rules: bool,
    /// `no_new_privs` is set.
    pub no_new_privs: bool,
    /// Policy paths that did not exist and so got no rule (they stay inaccessible).
    pub skipped: Vec<PathBuf>,
    /// Why the sandbox is not fully enforced (best effort only; required would have failed).
    pub shortfall: Option<String>,
}

/// What this machine can enforce, known without applying anything (`check-config` prints it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outlook {
    /// What the kernel answers.
    pub support: LandlockSupport,
    /// How much of the sandbox would be in force.
    pub landlock: LandlockState,
    /// Why the sandbox would not be fully enforced.
    pub shortfall: Option<String>,
}

impl Outlook {
    /// The kernel's landlock ABI (0: none).
    pub fn abi(&self) -> u8 {
        self.support.abi()
    }

    /// The ABI whose access rights the rules use: the kernel's, capped at [`TESTED_ABI`].
    pub fn rules_abi(&self) -> u8 {
        self.abi().min(TESTED_ABI)
    }

    /// Whether TCP rules would be in force.
    pub fn net_rules(&self) -> bool {
        self.landlock == LandlockState::FullyEnforced
    }

    /// `Err` naming the cause when `enforcement` is required and the sandbox would fall short.
    pub fn require(&self, enforcement: Enforcement) -> Result<(), HardenError> {
        match (&self.shortfall, enforcement) {
            (Some(cause), Enforcement::Required) => {
                Err(HardenError::NotEnforced { state: self.landlock.as_str(), cause: cause.clone() })
            }
            _ => Ok(()),
        }
    }
}

/// What the sandbox will be on this machine.
pub fn outlook() -> Outlook {
    let support = probe::landlock_support();
    let (landlock, shortfall) = match support.abi() {
        0 => (LandlockState::NotEnforced, support.cause()),
        abi if abi < NET_RULES_ABI => (
            LandlockState::PartiallyEnforced,
            Some(format!(
                "the kernel's landlock ABI {abi} cannot restrict TCP bind and connect (ABI {NET_RULES_ABI}, \
                 Linux 6.7, can): only the filesystem rules would be in force"
            )),
        ),
        _ => (LandlockState::FullyEnforced, None),
    };
    Outlook { support, landlock, shortfall }
}

/// Sets `no_new_privs` and restricts this thread (and every thread it starts later) to
/// `policy`. Must run before any other thread exists; fails when the sandbox is required but
/// would not be fully in force, before restricting anything.
pub fn apply(policy: &SandboxPolicy) -> Result<SandboxReport, HardenError> {
    probe::ensure_single_threaded()?;
    nix::sys::prctl::set_no_new_privs().map_err(HardenError::NoNewPrivs)?;
    let outlook = outlook();
    outlook.require(policy.enforcement)?;
    let (landlock, skipped) = match outlook.support {
        LandlockSupport::Available { .. } => restrict(policy, outlook.rules_abi())?,
        _ => (LandlockState::NotEnforced, Vec::new()),
    };
    // The kernel said it supports the ABI; a different outcome means the ruleset was refused.
    let shortfall = match (landlock == outlook.landlock, &outlook.shortfall) {
        (true, shortfall) => shortfall.clone(),
        (false, _) => Some(format!(
            "landlock ABI {} should have fully enforced the ruleset but reports {landlock}",
            outlook.abi()
        )),
    };
    if landlock != outlook.landlock && policy.enforcement == Enforcement::Required {
        let cause = shortfall.unwrap_or_default();
        return Err(HardenError::NotEnforced { state: landlock.as_str(), cause });
    }
    Ok(SandboxReport {
        landlock,
        abi: outlook.abi(),
        net_rules: landlock == LandlockState::FullyEnforced,
        no_new_privs: nix::sys::prctl::get_no_new_privs().map_err(HardenError::NoNewPrivs)?,
        skipped,
        shortfall,
    })
}

/// Builds and enforces the ruleset with the access rights of `rules_abi`.
fn restrict(policy: &SandboxPolicy, rules_abi: u8) -> Result<(LandlockState, Vec<PathBuf>), HardenError> {
    let abi = ABI::from(i32::from(rules_abi));
    let handled = AccessFs::from_all(abi);
    // An unhandled access right is not restricted: that is how `TcpConnect::AnyPort` works.
    let net = match policy.connect_tcp {
        TcpConnect::Ports(_) => AccessNet::BindTcp | AccessNet::ConnectTcp,
        TcpConnect::AnyPort { .. } => AccessNet::BindTcp.into(),
    };
    let mut ruleset = Ruleset::default().handle_access(handled)?.handle_access(net)?;
    let scopes = scopes(abi);
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes)?;
    }
    let mut read_write = handled;
    read_write.remove(AccessFs::Execute);
    let mut skipped = Vec::new();
    let mut created = ruleset.create()?;
    created = allow_paths(created, &policy.read_only, AccessFs::ReadFile | AccessFs::ReadDir, abi, &mut skipped)?;
    created = allow_paths(created, &policy.read_write, read_write, abi, &mut skipped)?;
    for &port in &policy.bind_tcp {
        created = created.add_rule(NetPort::new(port, AccessNet::BindTcp))?;
    }
    if let TcpConnect::Ports(ports) = &policy.connect_tcp {
        for &port in ports {
            created = created.add_rule(NetPort::new(port, AccessNet::ConnectTcp))?;
        }
    }
    let state = match created.restrict_self()?.ruleset {
        RulesetStatus::FullyEnforced => LandlockState::FullyEnforced,
        RulesetStatus::PartiallyEnforced => LandlockState::PartiallyEnforced,
        RulesetStatus::NotEnforced => LandlockState::NotEnforced,
    };
    Ok((state, skipped))
}

/// Adds one rule per existing path; a path that does not exist is recorded in `skipped`.
fn allow_paths(
    mut created: RulesetCreated,
    paths: &[PathBuf],
    access: BitFlags<AccessFs>,
    abi: ABI,
    skipped: &mut Vec<PathBuf>,
) -> Result<RulesetCreated, HardenError> {
    for path in paths {
        let is_dir = match std::fs::metadata(path) {
            Ok(meta) => meta.is_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skipped.push(path.clone());
                continue;
            }
            // Let PathFd report the real error below.
            Err(_) => false,
        };
        let fd = PathFd::new(path).map_err(|source| HardenError::Path { path: path.clone(), source })?;
        // Directory-only rights on a file would make the kernel reject the rule (EINVAL).
        let access = if is_dir { access } else { access & AccessFs::from_file(abi) };
        created = created.add_rule(PathBeneath::new(fd, access))?;
    }
    Ok(created)
}

/// IPC scopes (ABI 6): no signals to processes outside the sandbox, no connecting to abstract
/// Unix sockets created outside it — unless `NOTIFY_SOCKET` is one, as under some containers.
fn scopes(abi: ABI) -> BitFlags<Scope> {
    let mut scopes = Scope::from_all(abi);
    let notify_abstract = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| s.as_encoded_bytes().starts_with(b"@"));
    if notify_abstract {
        scopes.remove(Scope::AbstractUnixSocket);
    }
    scopes
}

/// The port of an `http://HOST[:PORT][/…]` URL (80 when absent): what a sandbox must let the
/// service connect to for it. `None` when it is not such a URL (a config error).
#[must_use]
pub fn http_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without a port ends in ']'.
        Some((host, port)) if !port.ends_with(']') => (host, port.parse().ok()?),
        _ => (authority, 80),
    };
    (!host.is_empty() && port != 0).then_some(port)
}

/// The port of an SMTP relay's `HOST:PORT`; `None` when it is not one.
#[must_use]
pub fn smtp_port(server: &str) -> Option<u16> {
    let (host, port) = server.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Table {
        landlock: Enforcement,
    }

    fn parse(text: &str) -> Result<Enforcement, toml::de::Error> {
        toml::from_str::<Table>(text).map(|t| t.landlock)
    }

    #[test]
    fn enforcement_reads_required_and_best_effort_only() {
        assert_eq!(parse("landlock = \"required\"").ok(), Some(Enforcement::Required));
        assert_eq!(parse("landlock = \"best-effort\"").ok(), Some(Enforcement::BestEffort));
        assert!(parse("landlock = \"best_effort\"").is_err());
        assert!(parse("landlock = \"off\"").is_err());
        assert_eq!(Enforcement::default(), Enforcement::Required);
    }

    #[test]
    fn required_refuses_any_shortfall_and_best_effort_accepts_it() {
        let short = Outlook {
            support: LandlockSupport::Available { abi: 3 },
            landlock: LandlockState::PartiallyEnforced,
            shortfall: Some("ABI 3 cannot restrict TCP".into()),
        };
        let err = short.require(Enforcement::Required).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("partially_enforced") && err.contains("ABI 3 cannot restrict TCP"), "{err}");
        assert!(short.require(Enforcement::BestEffort).is_ok());
        let full = Outlook {
            support: LandlockSupport::Available { abi: 9 },
            landlock: LandlockState::FullyEnforced,
            shortfall: None,
        };
        assert!(full.require(Enforcement::Required).is_ok());
        assert_eq!(full.rules_abi(), TESTED_ABI);
    }

    #[test]
    fn outlook_matches_the_kernel_probe() {
        let outlook = outlook();
        let expected = match probe::landlock_abi() {
            0 => LandlockState::NotEnforced,
            1..=3 => LandlockState::PartiallyEnforced,
            _ => LandlockState::FullyEnforced,
        };
        assert_eq!(outlook.landlock, expected);
        assert_eq!(outlook.shortfall.is_none(), expected == LandlockState::FullyEnforced);
    }

    #[test]
    fn connect_rules_print_as_check_config_shows_them() {
        assert_eq!(TcpConnect::default().to_string(), "(none)");
        assert_eq!(TcpConnect::Ports(vec![443, 8081]).to_string(), "443 8081");
        let any = TcpConnect::AnyPort { reason: "private webhook targets".into() };
        assert_eq!(any.to_string(), "any port (private webhook targets)");
    }

    #[test]
    fn sandbox_table_rejects_unknown_keys() {
        let table: SandboxConfig = toml::from_str("landlock = \"best-effort\"").expect("valid table");
        assert_eq!(table.landlock, Enforcement::BestEffort);
        assert_eq!(toml::from_str::<SandboxConfig>("").ok(), Some(SandboxConfig::default()));
        assert!(toml::from_str::<SandboxConfig>("landlok = \"required\"").is_err());
    }

    #[test]
    fn states_have_their_report_names() {
        assert_eq!(LandlockState::FullyEnforced.to_string(), "fully_enforced");
        assert_eq!(LandlockState::PartiallyEnforced.as_str(), "partially_enforced");
        assert_eq!(LandlockState::NotEnforced.as_str(), "not_enforced");
    }

    #[test]
    fn connect_ports_come_from_http_urls_and_smtp_servers() {
        assert_eq!(http_port("http://127.0.0.1:8200"), Some(8200));
        assert_eq!(http_port("http://log.local/"), Some(80));
        assert_eq!(http_port("http://[::1]:9000/x"), Some(9000));
        assert_eq!(http_port("http://[::1]"), Some(80));
        for bad in ["https://log:1", "http://", "http://:80", "http://log:0", "http://log:x"] {
            assert_eq!(http_port(bad), None, "{bad}");
        }
        assert_eq!(smtp_port("localhost:25"), Some(25));
        assert_eq!(smtp_port("[::1]:2525"), Some(2525));
        for bad in ["localhost", ":25", "mail:0", "mail:smtp"] {
            assert_eq!(smtp_port(bad), None, "{bad}");
        }
    }
}
