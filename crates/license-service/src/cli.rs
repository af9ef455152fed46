//! `paramant license …` (and the `paramant-license` binary): issue and inspect tokens, run the
//! check-in service, show the status and the telemetry preview, revoke support keys, and run
//! and administer the reference license server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use license::capability::Capabilities;
use license::remote::{CapabilityChange, DrainMode, DrainOrder, Role, SupportKey, UpdateOffer};
use license::state::{self, UserLimit};
use license::token::{self, LicenseToken, Payload};

use crate::config::Config;
use crate::server::{LicenseRecord, ServerConfig, ServerDb, Status};

const USAGE: &str = "usage: paramant license issue --key SEED_FILE --max-keys N|unlimited --expires DATE --issued-to NAME [--issued-at TIME]
       paramant license keygen --out SEED_FILE        (a new Ed25519 token-signing seed; prints its public key)
       paramant license show TOKEN [--trust ED25519_HEX]...
       paramant license status --config FILE
       paramant license telemetry-preview --config FILE
       paramant license run --config FILE [--loop]     (one check-in, or check in every 6 hours)
       paramant license check-config --config FILE
       paramant license support-key revoke ID --config FILE
       paramant license server run --config FILE
       paramant license server public-key --config FILE
       paramant license server add --db FILE --token TOKEN --tier NAME --max-users N|unlimited [--max-blob-mb N] [--retention-secs N]
       paramant license server set --db FILE --token TOKEN active|payment_required|revoked
       paramant license server remove --db FILE --token TOKEN
       paramant license server outage --db FILE on|off
       paramant license server delay --db FILE MILLISECONDS
       paramant license server drain|undrain --db FILE --token TOKEN --role owner|support
       paramant license server offer-update --db FILE --token TOKEN --version V [--notes-url URL] --role owner|support
       paramant license server support-key --db FILE --token TOKEN --hours N --role owner|support
       paramant license server adjust --db FILE --token TOKEN --tier NAME --max-users N|unlimited --role owner|support [--reason TEXT]
       paramant license server show --db FILE";

/// Runs the command line `args` (without the program name).
pub fn main_with_args(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paramant license: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` flags, `--loop` style switches, and the positional words.
struct Args {
    flags: HashMap<String, Vec<String>>,
    switches: Vec<String>,
    words: Vec<String>,
}

impl Args {
    fn parse(args: &[String]) -> Self {
        let mut out = Args { flags: HashMap::new(), switches: Vec::new(), words: Vec::new() };
        let mut it = args.iter().peekable();
        while let Some(arg) = it.next() {
            match arg.strip_prefix("--") {
                Some(name) if name == "loop" => out.switches.push(name.into()),
                Some(name) => {
                    let value = it.next().cloned().unwrap_or_default();
                    out.flags.entry(name.into()).or_default().push(value);
                }
                None => out.words.push(arg.clone()),
            }
        }
        out
    }

    fn one(&self, name: &str) -> anyhow::Result<&str> {
        self.opt(name).ok_or_else(|| anyhow::anyhow!("--{name} is required\n{USAGE}"))
    }

    fn opt(&self, name: &str) -> Option<&str> {
        self.flags.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    fn config(&self) -> anyhow::Result<(Config, PathBuf)> {
        let path = PathBuf::from(self.one("config")?);
        Ok((Config::load(&path)?, path))
    }
}

/// `run` (the check-in service) and `server run` are daemons and keep Rust's ignored SIGPIPE
/// (a closed stdout must not end them); every other command is a short-lived filter
/// ([`harden::end_quietly_on_closed_stdout`]).
#[must_use]
pub fn is_long_running(args: &[String]) -> bool {
    match args {
        [cmd, ..] if cmd == "run" => true,
        [cmd, sub, ..] => cmd == "server" && sub == "run",
        _ => false,
    }
}

fn dispatch(args: &[String]) -> anyhow::Result<()> {
    let (command, rest) = args.split_first().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
    let a = Args::parse(rest);
    match command.as_str() {
        "issue" => issue(&a),
        "keygen" => keygen(&a),
        "show" => show(&a),
        "status" => status(&a),
        "telemetry-preview" => telemetry_preview(&a),
        "run" => run(&a),
        "check-config" => {
            let (config, path) = a.config()?;
            println!("{}: ok (server {})", path.display(), config.server_url);
            Ok(crate::DAEMON.check_config(&config.sandbox_policy(&path), &path)?)
        }
        "support-key" => match a.words.as_slice() {
            [verb, id] if verb == "revoke" => {
                let (config, _) = a.config()?;
                let file =
                    config.license.revoked_support_keys_file.clone().ok_or_else(|| {
                        anyhow::anyhow!("[license] revoked_support_keys_file is not set in the config")
                    })?;
                license_gate::revoke_support_key(&file, id)?;
                println!("support key {id} revoked (the relay refuses it from its next request)");
                Ok(())
            }
            _ => bail!("{USAGE}"),
        },
        "server" => server(rest),
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

fn read_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("{} must hold a 32-byte Ed25519 seed as 64 hex characters", path.display()))
}

fn user_limit(text: &str) -> anyhow::Result<UserLimit> {
    match text {
        "unlimited" => Ok(UserLimit::Unlimited),
        n => Ok(UserLimit::Limited(n.parse().context("a user cap is a number or \"unlimited\"")?)),
    }
}

fn issue(a: &Args) -> anyhow::Result<()> {
    let seed = read_seed(Path::new(a.one("key")?))?;
    let payload = Payload {
        max_keys: user_limit(a.one("max-keys")?)?,
        expires_at: a.one("expires")?.to_owned(),
        issued_to: a.one("issued-to")?.to_owned(),
        issued_at: Some(a.opt("issued-at").map_or_else(|| wire::iso8601_ms(now_ms()), str::to_owned)),
    };
    println!("{}", token::issue(&seed, &payload)?);
    Ok(())
}

fn keygen(a: &Args) -> anyhow::Result<()> {
    let out = PathBuf::from(a.one("out")?);
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&out)
        .with_context(|| format!("cannot create {} (it must not exist yet)", out.display()))?;
    file.write_all(hex::encode(seed).as_bytes())?;
    println!("{}", token::public_key_hex(&seed));
    Ok(())
}

fn show(a: &Args) -> anyhow::Result<()> {
    let text = a.words.first().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
    let mut roots = license::TrustRoots::embedded();
    for key in a.flags.get("trust").into_iter().flatten() {
        roots.add_ed25519_hex(key)?;
    }
    let parsed = LicenseToken::parse(text)?;
    match parsed.verified_payload(&roots) {
        Ok(payload) => {
            println!("signature: valid (a trusted licensing key)");
            println!("{}", serde_json::to_string_pretty(&payload)?);
            match parsed.verify(&roots, now_ms()) {
                Ok(_) => println!("state: valid"),
                Err(e) => println!("state: {e} (Community Edition)"),
            }
        }
        Err(e) => println!("signature: {e} (Community Edition)"),
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn status(a: &Args) -> anyhow::Result<()> {
    let (config, _) = a.config()?;
    let roots = config.license.trust_roots()?;
    let token = crate::service::read_token(&config);
    let st = crate::service::load_state(&config.state_file());
    let e = state::evaluate(token.as_deref(), Some(&st), &roots, None, now_ms());
    let mut out = serde_json::to_value(&e)?;
    // The operator may see whom the license names (never shown on /health).
    out["licensee"] = e.licensee.clone().into();
    out["last_check_in"] = st.last_attempt_ms.map(wire::iso8601_ms).into();
    out["last_outcome"] = st.last_outcome.clone().into();
    out["next_pubkey_hash"] = st.next_pubkey_hash.clone().into();
    out["telemetry"] = if config.telemetry { "on" } else { "off" }.into();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn log_client(config: &Config) -> anyhow::Result<crate::log::LogClient> {
    let token = crypto::Secret::load(&config.ctlog_token_path())?;
    Ok(crate::log::LogClient::new(&config.ctlog.internal_url, &config.ctlog.public_url, token))
}

fn telemetry_preview(a: &Args) -> anyhow::Result<()> {
    let (config, _) = a.config()?;
    let log = log_client(&config)?;
    runtime()?.block_on(async {
        let relay_id = log.relay_id().await?;
        let request = crate::service::next_request(&config, &relay_id).await?;
        eprintln!(
            "paramant license: the next check-in sends exactly these bytes to {} (telemetry {}):",
            config.server_url,
            if config.telemetry { "on" } else { "off" }
        );
        println!("{}", String::from_utf8_lossy(&request.body()));
        Ok(())
    })
}

/// The service: one check-in (the systemd timer's oneshot), or a loop (`paramant up`).
fn run(a: &Args) -> anyhow::Result<()> {
    monitoring::init_logging("paramant-license", monitoring::LogFormat::from_env());
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (config, path) = a.config()?;
    let repeat = a.switches.iter().any(|s| s == "loop");
    let policy = config.sandbox_policy(&path);
    std::fs::create_dir_all(&config.state_dir)?;
    let log = log_client(&config)?;
    let ctx = crate::service::Context::new(config)?;
    crate::DAEMON.lock_down(&policy, &path)?;
    crate::service::republish(&ctx.config)?;
    runtime()?.block_on(async move {
        loop {
            let next = match log.relay_id().await {
                Ok(relay_id) => crate::service::check_in(&ctx, &log, &relay_id, now_ms()).await?.next,
                Err(e) => {
                    eprintln!("paramant-license: the log does not answer ({e:#}); no check-in");
                    license::state::Next::CheckInAfter(60_000)
                }
            };
            if !repeat {
                return Ok(());
            }
            let wait = match next {
                license::state::Next::CheckInAfter(ms) => ms + jitter_ms(),
                license::state::Next::StopRetrying => license::CHECK_IN_INTERVAL_MS,
            };
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
    })
}

/// Up to 5 minutes, so that many relays do not check in at the same instant.
fn jitter_ms() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b) % 300_000
}

fn server(args: &[String]) -> anyhow::Result<()> {
    let (command, rest) = args.split_first().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
    let a = Args::parse(rest);
    if command == "run" || command == "public-key" {
        let path = PathBuf::from(a.one("config")?);
        let config: ServerConfig = configfile::load(&path, |_| Ok(()))?;
        if command == "public-key" {
            let (key, _) = <crypto::LogSigningKey as crypto::KeyFile>::load_or_generate(&config.signing_key_file)?;
            println!("{}", hex::encode(key.verifying_key().to_bytes()));
            return Ok(());
        }
        monitoring::init_logging("paramant-license server", monitoring::LogFormat::from_env());
        return runtime()?.block_on(crate::server::run(config));
    }
    let db_path = PathBuf::from(a.one("db")?);
    if command == "show" {
        println!("{}", serde_json::to_string_pretty(&ServerDb::load(&db_path)?)?);
        return Ok(());
    }
    // Read, change and write under the db's lock (the server may be answering meanwhile).
    let shown = ServerDb::update(&db_path, |db| edit_db(command, &a, db))?;
    // A new support key is shown once, to the Paramant engineer, once it is stored; the relay
    // only ever sees its hash.
    if let Some(key) = shown {
        println!("{key}");
    }
    Ok(())
}

/// Applies one admin command to the db; a new support key comes back to be shown.
fn edit_db(command: &str, a: &Args, db: &mut ServerDb) -> anyhow::Result<Option<String>> {
    match command {
        "outage" => db.outage = a.words.first().is_some_and(|w| w == "on"),
        "delay" => db.delay_ms = a.words.first().map(|w| w.parse()).transpose()?.unwrap_or(0),
        "add" => {
            let record = LicenseRecord {
                status: Status::Active,
                tier: a.one("tier")?.to_owned(),
                capabilities: Capabilities {
                    max_users: user_limit(a.one("max-users")?)?,
                    max_blob_size_mb: a.opt("max-blob-mb").map(str::parse).transpose()?.unwrap_or(5),
                    retention_max_seconds: a.opt("retention-secs").map(str::parse).transpose()?.unwrap_or(3600),
                    addons_allowed: Vec::new(),
                    ml_dsa_required: false,
                    support_level: "email".into(),
                    custom_branding: false,
                },
                remote: Default::default(),
                next_pubkey_hash: None,
                relay_ids: Vec::new(),
                last_request_body: None,
                last_kx_group: None,
                check_ins: 0,
            };
            db.licenses.insert(crate::server::license_id(a.one("token")?), record);
        }
        "remove" => {
            db.licenses.remove(&crate::server::license_id(a.one("token")?));
        }
        _ => return edit_license(command, a, db),
    }
    Ok(None)
}

fn role(a: &Args) -> anyhow::Result<Role> {
    match a.one("role")? {
        "owner" => Ok(Role::Owner),
        "support" => Ok(Role::Support),
        _ => bail!("--role is owner or support"),
    }
}

fn action_id() -> anyhow::Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    Ok(hex::encode(b))
}

fn edit_license(command: &str, a: &Args, db: &mut ServerDb) -> anyhow::Result<Option<String>> {
    let id = crate::server::license_id(a.one("token")?);
    let record = db.licenses.get_mut(&id).ok_or_else(|| anyhow::anyhow!("no such license in the db"))?;
    match command {
        "set" => {
            record.status = match a.words.first().map(String::as_str) {
                Some("active") => Status::Active,
                Some("payment_required") => Status::PaymentRequired,
                Some("revoked") => Status::Revoked,
                _ => bail!("status is active, payment_required or revoked"),
            }
        }
        "drain" | "undrain" => {
            let mode = if command == "drain" { DrainMode::Drain } else { DrainMode::Undrain };
            record.remote.drain = Some(DrainOrder { id: action_id()?, role: role(a)?, mode });
        }
        "offer-update" => {
            record.remote.update_offer = Some(UpdateOffer {
                id: action_id()?,
                role: role(a)?,
                version: a.one("version")?.to_owned(),
                notes_url: a.opt("notes-url").unwrap_or_default().to_owned(),
            });
        }
        "support-key" => {
            let hours: u64 = a.one("hours")?.parse()?;
            let key = crypto::random_token("pgp_")?;
            record.remote.support_keys.push(SupportKey {
                id: action_id()?,
                role: role(a)?,
                key_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes())),
                expires_at: wire::iso8601_ms(now_ms() + hours.min(72) * 3_600_000),
            });
            return Ok(Some(key));
        }
        "adjust" => {
            record.tier = a.one("tier")?.to_owned();
            record.capabilities.max_users = user_limit(a.one("max-users")?)?;
            record.remote.capability_change = Some(CapabilityChange {
                id: action_id()?,
                role: role(a)?,
                reason: a.opt("reason").unwrap_or_default().to_owned(),
            });
        }
        other => bail!("unknown server command {other:?}\n{USAGE}"),
    }
    Ok(None)
}
