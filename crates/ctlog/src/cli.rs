//! Command line of `paramant-ctlog` (also reachable as `paramant ctlog …`): `run`,
//! `check-config`, `pubkey`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;

const USAGE: &str = "usage: paramant-ctlog run --config FILE
       paramant-ctlog check-config --config FILE
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
        "run" => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(crate::serve(config))
        }
        "check-config" => {
            println!("{}: ok (relay_id {}, state_dir {})", config_path.display(), config.relay_id, config.state_dir.display());
            Ok(())
        }
        "pubkey" => {
            let key = crypto::LogSigningKey::load(&config.signing_key_path())?.verifying_key();
            println!("public_key {}", wire::b64(key.to_bytes()));
            println!("pk_hash {}", hex::encode(key.pk_hash()));
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn config_flag(rest: &[String]) -> anyhow::Result<PathBuf> {
    match rest {
        [flag, path] if flag == "--config" => Ok(PathBuf::from(path)),
        _ => anyhow::bail!("{USAGE}"),
    }
}
