//! What every paramant daemon says and does about its own hardening, in the same words: lock
//! itself down between binding and starting the runtime ([`Daemon::lock_down`]), print in
//! `check-config` what the sandbox would be ([`Daemon::check_config`]), and the [`Hardening`]
//! that `/health` reports. The service manager's side (READY, STATUS, watchdog, signals,
//! drain) is in `lifecycle`.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{Enforcement, HardenError, LandlockState, SandboxPolicy, SandboxReport, TcpConnect};

/// A daemon, by the name its log lines start with ("paramant-relay").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Daemon {
    name: &'static str,
}

/// The hardening in force, as `/health` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hardening {
    /// What the sandbox put in force.
    pub sandbox: SandboxReport,
    /// Every capability was dropped after binding ([`crate::drop_capabilities`] succeeded).
    pub capabilities_dropped: bool,
}

/// `/health`'s `"sandbox"` object:
/// `{"landlock":"fully_enforced","abi":7,"net":true,"no_new_privs":true,"capabilities":"none"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SandboxHealth {
    landlock: &'static str,
    abi: u8,
    net: bool,
    no_new_privs: bool,
    capabilities: &'static str,
}

impl Hardening {
    /// What `/health` shows under `"sandbox"`.
    pub fn health(&self) -> SandboxHealth {
        SandboxHealth {
            landlock: self.sandbox.landlock.as_str(),
            abi: self.sandbox.abi,
            net: self.sandbox.net_rules,
            no_new_privs: self.sandbox.no_new_privs,
            capabilities: if self.capabilities_dropped { "none" } else { "kept" },
        }
    }

    /// `" (sandbox: landlock partially_enforced)"` for a `STATUS=` line, empty when the
    /// sandbox is fully in force: `systemctl status` shows a shortfall at a glance.
    pub fn status_suffix(&self) -> String {
        match self.sandbox.landlock {
            LandlockState::FullyEnforced => String::new(),
            other => format!(" (sandbox: landlock {other})"),
        }
    }
}

impl Daemon {
    /// The daemon called `name` (its log prefix).
    pub const fn new(name: &'static str) -> Self {
        Self { name }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// One line on stderr, prefixed with the daemon's name (the journal adds the time).
    pub fn log(&self, message: impl Display) {
        // The services install a `tracing` subscriber (text or JSON lines); without one (tools,
        // tests of this crate) the line goes to stderr as before.
        if tracing::dispatcher::has_been_set() {
            tracing::info!("{message}");
        } else {
            eprintln!("{}: {message}", self.name);
        }
    }

    /// [`crate::apply`] `policy`, logs what is in force, then [`crate::drop_capabilities`]. Call
    /// it after storage is open and listeners are bound, before any other thread exists. A
    /// required sandbox that would fall short is [`HardenError::Refused`], naming `config_file`.
    pub fn lock_down(&self, policy: &SandboxPolicy, config_file: &Path) -> Result<Hardening, HardenError> {
        let sandbox = crate::apply(policy).map_err(|e| e.refusal(config_file))?;
        self.log_sandbox(&sandbox, policy);
        crate::drop_capabilities()?;
        Ok(Hardening { sandbox, capabilities_dropped: true })
    }

    fn log_sandbox(&self, sandbox: &SandboxReport, policy: &SandboxPolicy) {
        self.log(format_args!(
            "sandbox: landlock {} (ABI {}), tcp rules {}, no_new_privs {}",
            sandbox.landlock,
            sandbox.abi,
            on_off(sandbox.net_rules),
            on_off(sandbox.no_new_privs)
        ));
        if let Some(shortfall) = &sandbox.shortfall {
            self.log(format_args!("sandbox is best effort only: {shortfall}"));
        }
        if let TcpConnect::AnyPort { reason } = &policy.connect_tcp {
            self.log(format_args!("sandbox: tcp connect to any port: {reason}"));
        }
        for path in &sandbox.skipped {
            self.log(format_args!("sandbox: {} does not exist; no access granted", path.display()));
        }
    }

    /// `check-config`'s account of the sandbox on this machine: the landlock ABI, what `policy`
    /// allows and any shortfall, on stdout. `Err` (the refusal `run` would give) when the
    /// sandbox is required and would not be fully in force.
    pub fn check_config(&self, policy: &SandboxPolicy, config_file: &Path) -> Result<(), HardenError> {
        let outlook = crate::outlook();
        let mode = match policy.enforcement {
            Enforcement::Required => "required sandbox",
            Enforcement::BestEffort => "best-effort sandbox",
        };
        println!(
            "landlock ABI {} (rules use ABI {}): {mode} would be {}",
            outlook.abi(),
            outlook.rules_abi(),
            outlook.landlock
        );
        let paths = |paths: &[PathBuf]| paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
        let ports = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
        println!("  read-only:   {}", paths(&policy.read_only));
        println!("  read-write:  {}", paths(&policy.read_write));
        println!("  tcp bind:    {}", ports(&policy.bind_tcp));
        println!("  tcp connect: {}", policy.connect_tcp);
        println!("  no_new_privs, all capabilities dropped after binding; reload (SIGHUP) not supported");
        if let Some(shortfall) = &outlook.shortfall {
            println!("  shortfall: {shortfall}");
        }
        outlook.require(policy.enforcement).map_err(|e| e.refusal(config_file))
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hardening(landlock: LandlockState) -> Hardening {
        let sandbox = SandboxReport {
            landlock,
            abi: 3,
            net_rules: false,
            no_new_privs: true,
            skipped: Vec::new(),
            shortfall: None,
        };
        Hardening { sandbox, capabilities_dropped: true }
    }

    #[test]
    fn health_names_the_state_and_the_dropped_capabilities() {
        let health = hardening(LandlockState::PartiallyEnforced).health();
        let expected = SandboxHealth {
            landlock: "partially_enforced",
            abi: 3,
            net: false,
            no_new_privs: true,
            capabilities: "none",
        };
        assert_eq!(health, expected);
    }

    #[test]
    fn only_a_shortfall_shows_in_the_status_line() {
        assert_eq!(hardening(LandlockState::FullyEnforced).status_suffix(), "");
        assert_eq!(hardening(LandlockState::NotEnforced).status_suffix(), " (sandbox: landlock not_enforced)");
    }

    #[test]
    fn a_refusal_names_the_setting_and_the_file() {
        let not_enforced = HardenError::NotEnforced { state: "not_enforced", cause: "seccomp".into() };
        let message = not_enforced.refusal(Path::new("/etc/relay.toml")).to_string();
        assert!(
            message.starts_with("refusing to start: landlock is not_enforced but the sandbox is required: seccomp")
        );
        assert!(message.ends_with("set landlock = \"best-effort\" under [sandbox] in /etc/relay.toml)"), "{message}");
        let other = HardenError::ThreadsRunning { threads: 2 }.refusal(Path::new("/c"));
        assert!(matches!(other, HardenError::ThreadsRunning { threads: 2 }));
    }
}
