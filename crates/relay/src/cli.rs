//! Command line of `paramant-relay` (also reachable as `paramant relay …`): `run`,
//! `check-config`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

const USAGE: &str = "usage: paramant-relay run --config FILE
       paramant-relay check-config --config FILE";

/// Runs the command line `args` (without the program name).
pub fn main_with_args(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paramant-relay: {e:#}");
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
        "run" => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(crate::serve(config))
        }
        "check-config" => {
            println!("{}: ok (sector {}, public {})", config_path.display(), config.sector, config.public_url());
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}
