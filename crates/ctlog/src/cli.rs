//! Command line of `paramant-ctlog` (also reachable as `paramant ctlog …`): `run`,
//! `check-config`, `pubkey`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::Hardening;
use crate::config::Config;

const USAGE: &str = "usage: paramant-ctlog run --config FILE
       paramant-ctlog check-config --config FILE   (validates; prints the landlock ABI and the sandbox)
       paramant-ctlog pubkey --config FILE   (prints the log public key and its SHA3-256)";

/// Runs the command line `args` (without the program name).
pub fn main_with_args(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paramant-ctlog: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> anyhow::Result<()> {
    let (command, rest) = args.split_first().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
    let config_path = config_flag(rest)?;
    let config = Config::load(&config_path)?;
    match command.as_str() {
        "run" => run(config, &config_path),
        "check-config" => check_config(&config, &config_path),
        "pubkey" => {
            let key = crypto::LogSigningKey::load(&config.signing_key_path())?.verifying_key();
            println!("public_key {}", wire::b64(key.to_bytes()));
            println!("pk_hash {}", hex::encode(key.pk_hash()));
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// Runs the service. The order is what makes the sandbox hold: everything that needs files
/// outside the state directory or privileges happens first, on this one thread; then landlock
/// and the capability drop, which bind this thread and every thread started after them.
fn run(config: Config, config_path: &Path) -> anyhow::Result<()> {
    let policy = config.sandbox_policy(config_path);
    let opened = crate::open(config)?;
    let listeners = crate::bind(&opened.config)?;
    let sandbox = harden::apply(&policy).map_err(|e| refusal(e, config_path))?;
    log_sandbox(&sandbox);
    harden::drop_capabilities().context("cannot drop capabilities")?;
    let state = opened.start(Hardening { sandbox, capabilities_dropped: true })?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::serve(state, listeners))
}

/// A refused sandbox, with where to change the enforcement.
fn refusal(error: harden::HardenError, config_path: &Path) -> anyhow::Error {
    match error {
        harden::HardenError::NotEnforced { .. } => anyhow::anyhow!(
            "refusing to start: {error}\n(to start without the full sandbox, set landlock = \"best-effort\" \
             under [sandbox] in {})",
            config_path.display()
        ),
        other => anyhow::Error::new(other).context("cannot apply the sandbox"),
    }
}

fn log_sandbox(sandbox: &harden::SandboxReport) {
    eprintln!(
        "paramant-ctlog: sandbox: landlock {} (ABI {}), tcp rules {}, no_new_privs {}",
        sandbox.landlock,
        sandbox.abi,
        on_off(sandbox.net_rules),
        on_off(sandbox.no_new_privs)
    );
    if let Some(shortfall) = &sandbox.shortfall {
        eprintln!("paramant-ctlog: sandbox is best effort only: {shortfall}");
    }
    for path in &sandbox.skipped {
        eprintln!("paramant-ctlog: sandbox: {} does not exist; no access granted", path.display());
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Validates the file, prints what the sandbox would be on this machine, and fails when `run`
/// would refuse to start.
fn check_config(config: &Config, config_path: &Path) -> anyhow::Result<()> {
    println!("{}: ok (relay_id {}, state_dir {})", config_path.display(), config.relay_id, config.state_dir.display());
    let policy = config.sandbox_policy(config_path);
    let outlook = harden::outlook();
    println!(
        "landlock ABI {} (rules use ABI {}): {} would be {}",
        outlook.abi(),
        outlook.rules_abi(),
        match policy.enforcement {
            harden::Enforcement::Required => "required sandbox",
            harden::Enforcement::BestEffort => "best-effort sandbox",
        },
        outlook.landlock
    );
    let paths = |paths: &[PathBuf]| paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
    let ports = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" ");
    println!("  read-only:   {}", paths(&policy.read_only));
    println!("  read-write:  {}", paths(&policy.read_write));
    println!("  tcp bind:    {}", ports(&policy.bind_tcp));
    println!("  tcp connect: {}", if policy.connect_tcp.is_empty() { "(none)".into() } else { ports(&policy.connect_tcp) });
    println!("  no_new_privs, all capabilities dropped after binding; reload (SIGHUP) not supported");
    if let Some(shortfall) = &outlook.shortfall {
        println!("  shortfall: {shortfall}");
    }
    outlook.require(policy.enforcement).map_err(|e| refusal(e, config_path))
}

fn config_flag(rest: &[String]) -> anyhow::Result<PathBuf> {
    match rest {
        [flag, path] if flag == "--config" => Ok(PathBuf::from(path)),
        _ => anyhow::bail!("{USAGE}"),
    }
}
