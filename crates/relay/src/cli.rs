//! Command line of `paramant-relay` (also reachable as `paramant relay …`): `run`,
//! `check-config`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;

const USAGE: &str = "usage: paramant-relay run --config FILE
       paramant-relay check-config --config FILE   (validates; prints the landlock ABI and the sandbox)";

/// Runs the command line `args` (without the program name).
pub fn main_with_args(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::DAEMON.log(format_args!("{e:#}"));
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

/// Runs the service. The order is what makes the sandbox hold: everything that needs files
/// outside the state directory or privileges happens first, on this one thread; then landlock
/// and the capability drop, which bind this thread and every thread started after them.
fn run(config: Config, config_path: &Path) -> anyhow::Result<()> {
    // Payload buffers are unmapped when freed, so the relay's memory follows what it holds.
    let returned = harden::return_large_allocations();
    monitoring::init_logging("paramant-relay", monitoring::LogFormat::from_env());
    let policy = config.sandbox_policy(config_path);
    let opened = crate::open(config)?;
    let listeners = crate::bind(&opened.config)?;
    let hardening = crate::DAEMON.lock_down(&policy, config_path)?;
    if !returned {
        crate::DAEMON.log(format_args!("malloc kept its dynamic mmap threshold: freed payloads may stay resident"));
    }
    let runtime = harden::service_runtime()?;
    runtime.block_on(crate::serve(opened, hardening, listeners))
}

/// Validates the file, prints what the sandbox would be on this machine, and fails when `run`
/// would refuse to start.
fn check_config(config: &Config, config_path: &Path) -> anyhow::Result<()> {
    println!("{}: ok (sector {}, public {})", config_path.display(), config.sector, config.public_url());
    Ok(crate::DAEMON.check_config(&config.sandbox_policy(config_path), config_path)?)
}
