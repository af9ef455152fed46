//! Command line of `paramant-ctlog` (also reachable as `paramant ctlog …`): `run`,
//! `check-config`, `pubkey`, `checkpoint-key`, `fsck`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;

const USAGE: &str = "usage: paramant-ctlog run --config FILE
       paramant-ctlog check-config --config FILE   (validates; prints the landlock ABI and the sandbox)
       paramant-ctlog pubkey --config FILE   (prints the log public key and its SHA3-256)
       paramant-ctlog checkpoint-key --config FILE   (prints the C2SP note verifier key of the
                                                       checkpoint: what witnesses and tlog clients pin)
       paramant-ctlog fsck --config FILE [--repair]   (checks the stopped log's database; --repair
                                                         fixes only what is provably safe)";

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
    if command == "fsck" {
        let (repair, rest) = match rest {
            [flag, path @ ..] if flag == "--repair" => (true, path),
            [path @ .., flag] if flag == "--repair" => (true, path),
            _ => (false, rest),
        };
        let config_path = config_flag(rest)?;
        return fsck(&Config::load(&config_path)?, repair);
    }
    let config_path = config_flag(rest)?;
    let config = Config::load(&config_path)?;
    match command.as_str() {
        "run" => run(config, &config_path),
        "check-config" => check_config(&config, &config_path),
        "pubkey" => {
            let key = <crypto::LogSigningKey as crypto::KeyFile>::load(&config.signing_key_path())?.verifying_key();
            println!("public_key {}", wire::b64(key.to_bytes()));
            println!("pk_hash {}", hex::encode(key.pk_hash()));
            Ok(())
        }
        "checkpoint-key" => {
            use anyhow::Context;
            let path = config.note_key_path();
            let key = crypto::NoteSigningKey::load(&path)
                .with_context(|| format!("{} (the log creates it on its first start)", path.display()))?;
            let origin = crate::tiles_api::origin_for(&config.public_url());
            println!("{}", crate::tiles_api::CheckpointSigner::new(key, origin).verifier_key());
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// Runs the service. The order is what makes the sandbox hold: everything that needs files
/// outside the state directory or privileges happens first, on this one thread; then landlock
/// and the capability drop, which bind this thread and every thread started after them.
fn run(config: Config, config_path: &Path) -> anyhow::Result<()> {
    monitoring::init_logging("paramant-ctlog", monitoring::LogFormat::from_env());
    let policy = config.sandbox_policy(config_path);
    let opened = crate::open(config)?;
    let listeners = crate::bind(&opened.config)?;
    let hardening = crate::DAEMON.lock_down(&policy, config_path)?;
    let state = opened.start(hardening)?;
    let runtime = harden::service_runtime()?;
    runtime.block_on(crate::serve(state, listeners))
}

/// Validates the file, prints what the sandbox would be on this machine, and fails when `run`
/// would refuse to start.
fn check_config(config: &Config, config_path: &Path) -> anyhow::Result<()> {
    println!("{}: ok (relay_id {}, state_dir {})", config_path.display(), config.relay_id, config.state_dir.display());
    Ok(crate::DAEMON.check_config(&config.sandbox_policy(config_path), config_path)?)
}

/// Checks (and with `repair`, repairs) the log database of a stopped log; fails when problems
/// remain, so scripts and operators see it in the exit status.
fn fsck(config: &Config, repair: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let key = <crypto::LogSigningKey as crypto::KeyFile>::load(&config.signing_key_path())?.verifying_key();
    let path = config.state_dir.join(crate::DB_FILE);
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    let store = crate::store::LogStore::open(&path)
        .with_context(|| format!("cannot open {} (stop the log first: fsck needs it alone)", path.display()))?;
    let report = if repair {
        let (repaired, report) = crate::fsck::repair(&store, &key)?;
        if matches!(repaired, crate::fsck::Repaired::Rebuilt) {
            println!("repaired: removed rows beyond the head and rebuilt tiles and indexes from the leaves");
        }
        report
    } else {
        crate::fsck::check(&store, &key)?
    };
    print!("{report}");
    if report.is_clean() {
        println!("ok");
        return Ok(());
    }
    if report.is_repairable() {
        anyhow::bail!("{} problems found; `fsck --repair` can fix them", report.problems.len())
    }
    anyhow::bail!("{} problems found; signed history is broken, restore a backup", report.problems.len())
}

fn config_flag(rest: &[String]) -> anyhow::Result<PathBuf> {
    match rest {
        [flag, path] if flag == "--config" => Ok(PathBuf::from(path)),
        _ => anyhow::bail!("{USAGE}"),
    }
}
