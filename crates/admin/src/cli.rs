//! Command line of `paramant-admin` (also reachable as `paramant admin …`): `run`,
//! `check-config`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;

const USAGE: &str = "usage: paramant-admin run --config FILE
       paramant-admin check-config --config FILE   (validates; prints the landlock ABI and the sandbox)";

/// Runs the command line `args` (without the program name).
pub fn main_with_args(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paramant-admin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> anyhow::Result<()> {
    let (command, rest) = args.split_first().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
    let config_path = match rest {
        [flag, path] if flag == "--config" => PathBuf::from(path),
        _ => anyhow::bail!("{USAGE}"),
    };
    let config = Config::load(&config_path)?;
    match command.as_str() {
        "run" => run(config, &config_path),
        "check-config" => check_config(&config, &config_path),
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// Opens secrets and storage and binds on this one thread, then the sandbox and the
/// capability drop (which bind this thread and every later one), then the runtime.
fn run(config: Config, config_path: &Path) -> anyhow::Result<()> {
    monitoring::init_logging("paramant-admin", monitoring::LogFormat::from_env());
    let policy = config.sandbox_policy(config_path);
    let opened = crate::open(config)?;
    let listeners = crate::bind(&opened.config)?;
    let hardening = crate::DAEMON.lock_down(&policy, config_path)?;
    let runtime = harden::service_runtime()?;
    runtime.block_on(crate::serve(opened, hardening, listeners))
}

/// Validates the file, prints what the sandbox would be here, and fails when `run` would
/// refuse to start.
fn check_config(config: &Config, config_path: &Path) -> anyhow::Result<()> {
    println!(
        "{}: ok (public {}, {} relay(s), audit log {})",
        config_path.display(),
        config.public_url(),
        config.relays.len(),
        if config.ctlog.is_some() { "configured" } else { "NOT configured: admin actions will be refused" }
    );
    if config.danger_clock_offset_file.is_some() {
        println!("  WARNING: danger_clock_offset_file is set (test only)");
    }
    Ok(crate::DAEMON.check_config(&config.sandbox_policy(config_path), config_path)?)
}
