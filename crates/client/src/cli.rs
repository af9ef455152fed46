//! The `paramant` command line (clap). The binary in `crates/paramant` adds the service
//! pass-through subcommands (`up`, `ctlog`, `relay`, …) in front of this; the names of the API
//! reference (`paramant-verify-sth`, `paramant-verify-peers`, `paramant-receipt`) run one
//! subcommand directly, as separate binaries or through argv\[0\] (a symlink).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{Value, json};

use crate::audit::{self, Monitor};
use crate::relay::{Progress, Relay, Silent};
use crate::store::{self, Store};
use crate::{Error, drop, exit, v1};

const EXIT_CODES: &str = "\
Exit codes:
  0  success; everything checked is valid
  1  invalid: a signature, proof, receipt or blob does not verify (or decryption failed)
  2  usage error: bad arguments, missing relay URL or API key
  3  unavailable: the relay or log could not be reached or answered an error; a file failed
  4  key changed: the log's signing key is not the pinned key (see --pubkey-hash)
  5  fork: two signed tree heads of one log are inconsistent
  6  unchecked: nothing checked was invalid, but a peer's own log could not be reached, so its
     history is not checked (verify-peers)

Credentials: --relay/--api-key, else PARAMANT_RELAY/PARAMANT_API_KEY, else the dev.json named by
--dev or PARAMANT_DEV (what `paramant up` writes). Keys, pins and receipts are kept in
$PARAMANT_HOME, else $XDG_CONFIG_HOME/paramant, else ~/.config/paramant (mode 0600).";

/// The paramant CLI: post-quantum burn-after-read transfers, and checks of the transparency
/// log that need no trust in its operator.
#[derive(Parser, Debug)]
#[command(
    name = "paramant",
    version,
    about = "paramant: post-quantum burn-after-read transfers, and checks of the transparency log that need no trust in its operator",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Global {
    /// Print one JSON document (or one per poll for `monitor`) instead of text
    #[arg(long, global = true)]
    json: bool,
    /// The relay's URL (its origin also serves the log's public endpoints)
    #[arg(long, global = true, env = "PARAMANT_RELAY", value_name = "URL")]
    relay: Option<String>,
    /// The API key (pgp_…) for send/receive/drop/pickup/register
    #[arg(long, global = true, env = "PARAMANT_API_KEY", value_name = "KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A dev.json (written by `paramant up --data DIR`) to take relay_url and api_key from
    #[arg(long, global = true, env = "PARAMANT_DEV", value_name = "FILE")]
    dev: Option<PathBuf>,
    /// This device's name: its keys are kept under it, and receivers are addressed by it
    #[arg(long, global = true, env = "PARAMANT_DEVICE", default_value = "cli", value_name = "NAME")]
    device: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Encrypt FILE to a device (ML-KEM-768 + AES-256-GCM, signed with ML-DSA-65) and upload it
    Send(SendArgs),
    /// Download (and so burn) a blob, verify the sender's signature, decrypt, keep the receipt
    Receive(ReceiveArgs),
    /// Anonymous drop: upload FILE under a fresh 12-word mnemonic, the only key
    Drop(DropArgs),
    /// Pick up an anonymous drop by its mnemonic (burns it)
    Pickup(PickupArgs),
    /// Create this device's keys (if needed) and register its public keys with the relay
    Register,
    /// Fetch the log's signed tree head and key, verify the ML-DSA-65 signature, pin the key
    #[command(name = "verify-sth")]
    VerifySth(VerifySthArgs),
    /// Verify every peer's mirrored tree heads: signatures against pinned keys, and consistency
    #[command(name = "verify-peers")]
    VerifyPeers(VerifyPeersArgs),
    /// Show, save or verify a delivery receipt
    Receipt(ReceiptArgs),
    /// Poll a log, archive every signed tree head, alert on a fork or a key change
    Monitor(MonitorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Write man pages (paramant.1 and one per subcommand) into DIR
    Man {
        /// The directory to write into
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
struct SendArgs {
    /// The file to send (`-` for standard input)
    file: PathBuf,
    /// The receiving device (default: --device, i.e. send to yourself)
    #[arg(long, value_name = "DEVICE")]
    to: Option<String>,
    /// Seconds the relay keeps the blob
    #[arg(long, default_value_t = 300)]
    ttl: u64,
    /// Downloads before the blob burns
    #[arg(long, default_value_t = 1)]
    max_views: u32,
    /// Padding block: 4k, 64k, 512k or 5m (what an observer sees as the size)
    #[arg(long, default_value = "5m", value_parser = parse_block)]
    pad_block: usize,
    /// Send unsigned (sig id 0): the receiver cannot tell who sent it
    #[arg(long)]
    anonymous: bool,
    /// A pre-shared secret both sides pass (mixed into the key)
    #[arg(long, value_name = "SECRET", env = "PARAMANT_PRE_SHARED_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Accept a receiver key that differs from the one seen on first send
    #[arg(long)]
    trust_new_key: bool,
}

#[derive(Args, Debug)]
struct ReceiveArgs {
    /// The blob's hash (64 hex)
    hash: String,
    /// Write the data here (default: standard output; with --json it is in the JSON as base64)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The pre-shared secret the sender used
    #[arg(long, value_name = "SECRET", env = "PARAMANT_PRE_SHARED_SECRET", hide_env_values = true)]
    secret: Option<String>,
}

#[derive(Args, Debug)]
struct DropArgs {
    /// The file to drop (`-` for standard input)
    file: PathBuf,
    /// Seconds the relay keeps the drop
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Padding block: 4k, 64k, 512k or 5m
    #[arg(long, default_value = "5m", value_parser = parse_block)]
    pad_block: usize,
}

#[derive(Args, Debug)]
struct PickupArgs {
    /// The 12-word mnemonic (quote it)
    mnemonic: String,
    /// Write the data here (default: standard output)
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct VerifySthArgs {
    /// The log key's SHA3-256 you expect (confirmed out of band); overrides and replaces the pin
    #[arg(long, value_name = "HEX")]
    pubkey_hash: Option<String>,
    /// Also print the tree state
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Args, Debug)]
struct VerifyPeersArgs {
    /// Where a peer's own log answers consistency proofs (default https://RELAY_ID)
    #[arg(long = "peer", value_name = "RELAY_ID=URL", value_parser = parse_peer)]
    peers: Vec<(String, String)>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["verify", "hash"])))]
struct ReceiptArgs {
    /// Verify a receipt: a file or the base64url text itself. A bundle (what --save writes) is
    /// checked with no network at all; a bare receipt takes the key and a signed head from --relay
    #[arg(long, value_name = "FILE|BASE64")]
    verify: Option<String>,
    /// Ask the relay (POST /v2/verify-receipt; default: the bundle's log) instead of checking here
    #[arg(long, requires = "verify")]
    online: bool,
    /// The log key's SHA3-256 you expect (needed offline when no key is pinned for the log here)
    #[arg(long, value_name = "HEX", requires = "verify")]
    pubkey_hash: Option<String>,
    /// Show the receipt kept when this blob was received
    #[arg(long, value_name = "HASH")]
    hash: Option<String>,
    /// With --hash: write the receipt bundle (receipt, log key, signed head, consistency proof) to FILE
    #[arg(long, value_name = "FILE", requires = "hash")]
    save: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct MonitorArgs {
    /// The archive directory: one file per signed tree head ever seen
    #[arg(long, value_name = "DIR")]
    archive: PathBuf,
    /// Seconds between polls
    #[arg(long, default_value_t = 60)]
    interval: u64,
    /// Stop after this many polls (default: run until a fork, key change or invalid head; an
    /// unreachable log is reported and polled again, and makes the final exit code 3)
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Poll once and exit (same as --count 1)
    #[arg(long, conflicts_with = "count")]
    once: bool,
    /// The log key's SHA3-256 you expect. The log announces no key rotation, so a new key is an
    /// alert (exit 4) until you confirm it out of band and name it here
    #[arg(long, value_name = "HEX")]
    pubkey_hash: Option<String>,
}

fn parse_block(s: &str) -> Result<usize, String> {
    v1::BLOCKS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|(_, n)| *n)
        .ok_or_else(|| "one of 4k, 64k, 512k, 5m".into())
}

fn parse_peer(s: &str) -> Result<(String, String), String> {
    let (id, url) = s.split_once('=').ok_or("RELAY_ID=URL")?;
    Ok((id.to_owned(), url.to_owned()))
}

/// The names the API reference gives single commands.
const ALIASES: [(&str, &str); 3] =
    [("paramant-verify-sth", "verify-sth"), ("paramant-verify-peers", "verify-peers"), ("paramant-receipt", "receipt")];

/// The subcommand argv\[0\] stands for, when the binary was started under an alias name.
#[must_use]
pub fn alias_of_argv0() -> Option<&'static str> {
    let argv0 = std::env::args_os().next()?;
    let name = Path::new(&argv0).file_name()?.to_str()?.to_owned();
    ALIASES.iter().find(|(alias, _)| *alias == name).map(|(_, cmd)| *cmd)
}

/// The clap command, with `services` (name, description) listed as pass-through subcommands so
/// help, completions and man pages show them.
#[must_use]
pub fn command(services: &[(&'static str, &'static str)]) -> clap::Command {
    let mut cmd = Cli::command();
    for (name, about) in services {
        cmd = cmd.subcommand(
            clap::Command::new(*name)
                .about(*about)
                .disable_help_flag(true)
                .arg(clap::Arg::new("args").num_args(0..).trailing_var_arg(true).allow_hyphen_values(true)),
        );
    }
    cmd
}

/// Runs the CLI. `forced` runs one subcommand (the alias binaries); `services` are the
/// pass-through subcommands the caller handles itself (only listed here).
#[must_use]
pub fn main_as(forced: Option<&'static str>, services: &[(&'static str, &'static str)]) -> ExitCode {
    harden::end_quietly_on_closed_stdout();
    let forced = forced.or_else(alias_of_argv0);
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let mut cmd = command(services);
    if let Some(sub) = forced {
        let alias = ALIASES.iter().find(|(_, c)| *c == sub).map_or("paramant", |(a, _)| *a);
        args.splice(0..1.min(args.len()), [OsString::from(alias), OsString::from(sub)]);
        cmd = cmd.name(alias).bin_name(alias).mut_subcommand(sub, |s| s.override_usage(format!("{alias} [OPTIONS]")));
    }
    let matches = match cmd.clone().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    if let Some((name, _)) = matches.subcommand()
        && services.iter().any(|(s, _)| *s == name)
    {
        eprintln!("paramant: {name} is handled by the paramant binary");
        return ExitCode::from(exit::USAGE);
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
    };
    let json = cli.global.json;
    match run(cli, services) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                println!(
                    "{}",
                    json!({ "ok": false, "error": e.kind(), "message": e.to_string(), "exit_code": e.exit_code() })
                );
            } else {
                eprintln!("paramant: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

struct Ctx {
    global: Global,
}

impl Ctx {
    fn dev(&self) -> Result<Option<Value>, Error> {
        let Some(path) = &self.global.dev else { return Ok(None) };
        let bytes = std::fs::read(path).map_err(|e| Error::Usage(format!("--dev {}: {e}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Usage(format!("--dev {}: not JSON: {e}", path.display())))
    }

    fn relay(&self, needs_key: bool) -> Result<Relay, Error> {
        let dev = self.dev()?;
        let from_dev = |field: &str| dev.as_ref().and_then(|d| d.get(field)).and_then(Value::as_str).map(str::to_owned);
        let url = self.global.relay.clone().or_else(|| from_dev("relay_url")).ok_or_else(|| {
            Error::Usage("no relay: pass --relay URL, set PARAMANT_RELAY, or --dev paramant-data/dev.json".into())
        })?;
        let key = self.global.api_key.clone().or_else(|| from_dev("api_key"));
        if needs_key && key.is_none() {
            return Err(Error::Usage("no API key: pass --api-key, set PARAMANT_API_KEY, or --dev dev.json".into()));
        }
        Relay::new(&url, key)
    }

    fn progress(&self, what: &str) -> Box<dyn Progress> {
        if self.global.json || !std::io::stderr().is_terminal() {
            return Box::new(Silent);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(what.to_owned());
        Box::new(Bar(bar))
    }
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn update(&self, done: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
        if done >= total {
            self.0.finish_and_clear();
        }
    }
}

/// Opens what `send` or `drop` uploads, refusing it before reading when it is larger than
/// `max` bytes (one blob). A file is then read straight into the blob; standard input, whose
/// size is unknown, is read (at most `max` + 1 bytes) into memory first.
fn open_input(path: &Path, max: usize, block: usize) -> Result<(Box<dyn Read>, usize), Error> {
    let too_large = |what: String, size: u64| Error::InputTooLarge { what, size, max, block };
    if path == Path::new("-") {
        let mut out = Vec::new();
        std::io::stdin()
            .take(max as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::Io(format!("standard input: {e}")))?;
        if out.len() > max {
            return Err(too_large("standard input".into(), out.len() as u64));
        }
        let len = out.len();
        return Ok((Box::new(std::io::Cursor::new(out)), len));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let size = file.metadata().map_err(|e| Error::Io(format!("{}: {e}", path.display())))?.len();
    if size > max as u64 {
        return Err(too_large(path.display().to_string(), size));
    }
    // Invariant: size <= max, a usize.
    Ok((Box::new(file), size as usize))
}

fn write_output(path: Option<&Path>, data: &[u8]) -> Result<(), Error> {
    match path {
        Some(p) => std::fs::write(p, data).map_err(|e| Error::Io(format!("{}: {e}", p.display()))),
        None => std::io::stdout().write_all(data).map_err(|e| Error::Io(format!("standard output: {e}"))),
    }
}

fn print(json: bool, doc: &Value, text: &str) {
    if json {
        println!("{doc}");
    } else if !text.is_empty() {
        println!("{text}");
    }
}

fn run(cli: Cli, services: &[(&'static str, &'static str)]) -> Result<u8, Error> {
    let ctx = Ctx { global: cli.global };
    let json = ctx.global.json;
    match cli.command {
        Command::Send(a) => send(&ctx, a),
        Command::Receive(a) => receive(&ctx, a),
        Command::Drop(a) => drop_cmd(&ctx, a),
        Command::Pickup(a) => pickup(&ctx, a),
        Command::Register => {
            let relay = ctx.relay(true)?;
            let store = Store::from_env()?;
            let created = register(&relay, &store, &ctx.global.device)?;
            print(
                json,
                &json!({ "ok": true, "device": ctx.global.device, "keys_created": created }),
                &format!("registered device {}", ctx.global.device),
            );
            Ok(exit::OK)
        }
        Command::VerifySth(a) => {
            let relay = ctx.relay(false)?;
            let report = audit::verify_sth_of(&relay, &Store::from_env()?, a.pubkey_hash.as_deref())?;
            let mut text = format!(
                "valid: STH of tree size {} signed by key {} ({})",
                report.sth.body.tree_size,
                report.pk_hash,
                match report.pin {
                    audit::Pin::FirstUse => "pinned now, on first use: confirm it out of band",
                    audit::Pin::Matched => "the pinned key",
                    audit::Pin::Replaced => "replaces the pinned key, as --pubkey-hash says",
                }
            );
            if a.verbose {
                text += &format!(
                    "\n  relay_id   {}\n  sha3_root  {}\n  timestamp  {} ({})\n  previous   {}",
                    report.sth.body.relay_id,
                    report.sth.body.sha3_root,
                    report.sth.body.timestamp,
                    wire::iso8601_ms(report.sth.body.timestamp),
                    match (&report.previous_tree_size, &report.consistency) {
                        (Some(size), Some(c)) => format!("tree size {size}: {c:?}"),
                        _ => "none (first check of this log)".into(),
                    }
                );
            }
            let mut doc = serde_json::to_value(&report).unwrap_or(Value::Null);
            doc["ok"] = json!(true);
            doc["valid"] = json!(true);
            print(json, &doc, &text);
            Ok(exit::OK)
        }
        Command::VerifyPeers(a) => {
            let relay = ctx.relay(false)?;
            let urls: BTreeMap<String, String> = a.peers.into_iter().collect();
            let reports = audit::verify_peers(&relay, &Store::from_env()?, &urls)?;
            let unchecked: Vec<&str> = reports
                .iter()
                .filter(|r| r.status == audit::PeerStatus::Unchecked)
                .map(|r| r.relay_id.as_str())
                .collect();
            let text = if reports.is_empty() {
                "no peers mirrored by this log".to_owned()
            } else {
                reports.iter().map(peer_line).collect::<Vec<_>>().join("\n")
            };
            let all_valid = unchecked.is_empty();
            let code = if all_valid { exit::OK } else { exit::UNCHECKED };
            let mut doc = json!({ "ok": all_valid, "valid": all_valid, "unchecked": unchecked, "peers": reports, "exit_code": code });
            if !all_valid {
                doc["error"] = json!("unchecked");
            }
            print(json, &doc, &text);
            Ok(code)
        }
        Command::Receipt(a) => receipt(&ctx, a),
        Command::Monitor(a) => monitor(&ctx, a),
        Command::Completions { shell } => {
            // Into a buffer: clap_complete panics when its writer fails.
            let mut cmd = command(services);
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "paramant", &mut script);
            write_output(None, &script)?;
            Ok(exit::OK)
        }
        Command::Man { dir } => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
            let cmd = command(services);
            clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
            print(json, &json!({ "ok": true, "dir": dir }), &format!("man pages written to {}", dir.display()));
            Ok(exit::OK)
        }
    }
}

fn peer_line(r: &audit::PeerReport) -> String {
    let checked = format!(
        "{} ({}): {} heads signed, {} consistency proofs verified, {} repeats",
        r.relay_id, r.relay_pk_hash, r.sths_verified, r.consistency_verified, r.same
    );
    match r.status {
        audit::PeerStatus::Valid => format!("valid: {checked}"),
        audit::PeerStatus::Unchecked => format!(
            "UNCHECKED: {checked}; {} consistency proofs could not be fetched from {} ({}): its history is not \
             verified (pass --peer {}=URL if its log answers elsewhere)",
            r.consistency_unchecked,
            r.log_url,
            r.unchecked_reason.as_deref().unwrap_or("unreachable"),
            r.relay_id
        ),
    }
}

fn register(relay: &Relay, store: &Store, device: &str) -> Result<bool, Error> {
    store::safe_name(device)?;
    let (keys, created) = store.device_keys(device)?;
    relay.register_device(device, &keys.kem_public_key(), &keys.signing_public_key().to_bytes())?;
    Ok(created)
}

fn send(ctx: &Ctx, a: SendArgs) -> Result<u8, Error> {
    let relay = ctx.relay(true)?;
    let store = Store::from_env()?;
    let device = &ctx.global.device;
    let to = a.to.clone().unwrap_or_else(|| device.clone());
    let (mut input, len) = open_input(&a.file, v1::max_plaintext(a.pad_block, !a.anonymous), a.pad_block)?;
    register(&relay, &store, device)?;
    let (keys, _) = store.device_keys(device)?;
    let (receiver_key, fingerprint) = relay.device_key(&to)?;
    let tofu = check_known_device(&store, relay.base(), &to, &fingerprint, a.trust_new_key)?;
    let sender = if a.anonymous { None } else { Some(&keys) };
    let blob = v1::seal_from(&mut input, len, &receiver_key, sender, a.pad_block, a.secret.as_deref())?;
    drop(input);
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob));
    let fields = json!({
        "hash": hash,
        "ttl_ms": a.ttl.saturating_mul(1000),
        "max_views": a.max_views,
        "meta": { "device_id": device },
    });
    let answer = relay.inbound(&fields, &blob, ctx.progress("upload").as_ref())?;
    let proof = answer.get("merkle_proof").cloned().unwrap_or(Value::Null);
    let logged = if proof.is_null() { None } else { Some(audit::verify_upload_proof(&relay, &store, &proof)?) };
    let doc = json!({
        "ok": true, "hash": hash, "to": to, "bytes": len, "padded_bytes": blob.len(),
        "receiver_fingerprint": fingerprint, "receiver_key": tofu, "signed": !a.anonymous,
        "log_proof": logged, "merkle_proof": proof,
    });
    let logged_text = logged.as_ref().map_or("the relay returned no log proof".to_owned(), |l| {
        format!(
            "logged: leaf {} of signed tree size {} (proof and signature verified, key {})",
            l.leaf_index, l.tree_size, l.pk_hash
        )
    });
    let text = format!(
        "sent {len} bytes to {to} (fingerprint {fingerprint}{})\nhash {hash}\n{logged_text}",
        if tofu == "first_use" { ", new device: verify it out of band" } else { "" },
    );
    print(ctx.global.json, &doc, &text);
    Ok(exit::OK)
}

/// Trust on first use of a receiver's key fingerprint, per relay and device.
fn check_known_device(
    store: &Store,
    relay: &str,
    device: &str,
    fingerprint: &str,
    trust_new: bool,
) -> Result<&'static str, Error> {
    let mut doc = store.read_json("known_devices.json")?.unwrap_or_else(|| json!({}));
    let id = format!("{relay} {device}");
    let outcome = match doc.get(&id).and_then(Value::as_str) {
        Some(known) if known == fingerprint => return Ok("known"),
        Some(known) if !trust_new => {
            return Err(Error::KeyChanged(format!(
                "device {device} now has key fingerprint {fingerprint}, but {known} was seen before; \
                 confirm the new one out of band and pass --trust-new-key"
            )));
        }
        Some(_) => "replaced",
        None => "first_use",
    };
    doc[&id] = json!(fingerprint);
    store.write_json("known_devices.json", &doc)?;
    Ok(outcome)
}

fn receive(ctx: &Ctx, a: ReceiveArgs) -> Result<u8, Error> {
    let relay = ctx.relay(true)?;
    let store = Store::from_env()?;
    let hash = crate::relay::hex_hash(&a.hash)?;
    let (keys, _) = store.device_keys(&ctx.global.device)?;
    let download = relay.outbound(&hash, ctx.progress("download").as_ref())?;
    let (burned, header_receipt) = (download.burned, download.receipt);
    let (data, sender) = v1::open_owned(download.bytes, &keys, a.secret.as_deref())?;
    // The receipt in the download's headers was signed before the body was sent, so it cannot
    // confirm the burn; after a burning download the relay keeps one signed after the burn.
    let confirmed = match burned {
        Some(true) => confirmed_burn_receipt(&relay, &hash)?,
        _ => None,
    };
    if let Some(out) = &a.output {
        write_output(Some(out), &data)?;
    } else if !ctx.global.json {
        write_output(None, &data)?;
    }
    // The receipt is checked now (key pin, signature, audit path, tied to a signed head) and
    // kept as a bundle that `receipt --verify` checks later without the network.
    let mut receipt_check = Value::Null;
    let receipt = match confirmed.as_ref().or(header_receipt.as_ref()) {
        Some(header) => {
            let parsed = audit::parse_receipt(header)?;
            let kept = match audit::bundle_receipt(&parsed, &relay, &store) {
                Ok(bundle) => {
                    receipt_check = json!("verified");
                    serde_json::to_value(&bundle).unwrap_or(Value::Null)
                }
                Err(e @ (Error::Transport(_) | Error::Status { .. })) => {
                    receipt_check = json!(format!("not verified, kept without its signed head: {e}"));
                    serde_json::to_value(&parsed).unwrap_or(Value::Null)
                }
                Err(e) => return Err(e),
            };
            let path = store.write_json(&audit::receipt_path(&hash), &kept)?;
            Some((serde_json::to_value(&parsed).unwrap_or(Value::Null), path))
        }
        None => None,
    };
    let sender_doc = match &sender {
        v1::Sender::Anonymous => json!({ "anonymous": true }),
        v1::Sender::Signed { key_hash } => json!({ "anonymous": false, "signature_valid": true, "key_hash": key_hash }),
    };
    let mut doc = json!({
        "ok": true, "hash": hash, "bytes": data.len(), "sender": sender_doc, "burned": burned,
        "receipt": receipt.as_ref().map(|r| r.0.clone()), "receipt_file": receipt.as_ref().map(|r| r.1.clone()),
        "receipt_check": receipt_check,
    });
    if a.output.is_none() {
        doc["data_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&data[..]));
    }
    if ctx.global.json {
        println!("{doc}");
    } else {
        let who = match sender {
            v1::Sender::Anonymous => "an anonymous sender".to_owned(),
            v1::Sender::Signed { key_hash } => format!("sender key {} (signature valid)", &key_hash[..16]),
        };
        eprintln!("received {} bytes from {who}; receipt kept: paramant receipt --hash {hash}", data.len());
    }
    Ok(exit::OK)
}

/// Asks the relay for the burn-confirming receipt for a few seconds: the relay consumes the view
/// once our TCP stack acknowledged the body, which follows the end of the download closely.
fn confirmed_burn_receipt(relay: &crate::relay::Relay, hash: &str) -> Result<Option<String>, Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(receipt) = relay.burn_receipt(hash)? {
            return Ok(Some(receipt));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn drop_cmd(ctx: &Ctx, a: DropArgs) -> Result<u8, Error> {
    let relay = ctx.relay(true)?;
    let (mut input, len) = open_input(&a.file, a.pad_block.saturating_sub(drop::OVERHEAD), a.pad_block)?;
    let (phrase, keys, packet) = drop::seal_from(&mut input, len, a.pad_block)?;
    let fields = json!({
        "hash": keys.lookup_hash,
        "ttl_ms": a.ttl.saturating_mul(1000),
        "max_views": 1,
        "meta": { "drop": true },
    });
    relay.inbound(&fields, &packet, ctx.progress("upload").as_ref())?;
    let doc = json!({ "ok": true, "mnemonic": phrase.as_str(), "hash": keys.lookup_hash, "bytes": len });
    print(ctx.global.json, &doc, &format!("Mnemonic: {}", phrase.as_str()));
    Ok(exit::OK)
}

fn pickup(ctx: &Ctx, a: PickupArgs) -> Result<u8, Error> {
    let relay = ctx.relay(true)?;
    let keys = drop::keys_of(&a.mnemonic)?;
    let download = relay.outbound(&keys.lookup_hash, ctx.progress("download").as_ref())?;
    let data = drop::open_owned(&keys, download.bytes)?;
    if a.output.is_some() || !ctx.global.json {
        write_output(a.output.as_deref(), &data)?;
    }
    if ctx.global.json {
        let mut doc = json!({ "ok": true, "hash": keys.lookup_hash, "bytes": data.len() });
        if a.output.is_none() {
            doc["data_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&data[..]));
        }
        println!("{doc}");
    }
    Ok(exit::OK)
}

fn receipt(ctx: &Ctx, a: ReceiptArgs) -> Result<u8, Error> {
    let json = ctx.global.json;
    if let Some(hash) = a.hash {
        let hash = crate::relay::hex_hash(&hash)?;
        let store = Store::from_env()?;
        let doc = store
            .read_json(&audit::receipt_path(&hash))?
            .ok_or_else(|| Error::Usage(format!("no receipt kept for {hash} (receive it with this CLI first)")))?;
        if let Some(path) = &a.save {
            let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Io(e.to_string()))?;
            std::fs::write(path, bytes).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        }
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        print(json, &json!({ "ok": true, "receipt": doc, "saved": a.save }), &text);
        return Ok(exit::OK);
    }
    let input = a.verify.unwrap_or_default();
    let text = match std::fs::read_to_string(&input) {
        Ok(contents) => contents,
        Err(_) if !Path::new(&input).exists() => input.clone(),
        Err(e) => return Err(Error::Io(format!("{input}: {e}"))),
    };
    let input = audit::parse_receipt_input(&text)?;
    if a.online {
        let relay = match (&input, ctx.relay(false)) {
            (_, Ok(relay)) => relay,
            (audit::ReceiptInput::Bundle(b), Err(_)) => Relay::new(&b.log, None)?,
            (audit::ReceiptInput::Bare(_), Err(e)) => return Err(e),
        };
        let header = input.receipt().to_header();
        let answer = relay.post_json("/v2/verify-receipt", &json!({ "receipt": header }), false)?;
        let valid = answer.get("valid").and_then(Value::as_bool) == Some(true);
        let reason = answer.get("reason").and_then(Value::as_str).unwrap_or("");
        print(
            json,
            &answer,
            &if valid { "valid (checked by the relay)".to_owned() } else { format!("invalid: {reason}") },
        );
        return Ok(if valid { exit::OK } else { exit::INVALID });
    }
    let store = Store::from_env()?;
    let report = match &input {
        audit::ReceiptInput::Bundle(bundle) => audit::verify_bundle(bundle, &store, a.pubkey_hash.as_deref())?,
        audit::ReceiptInput::Bare(receipt) => {
            let relay = ctx.relay(false).map_err(|_| {
                Error::Usage(
                    "a bare receipt is checked against the log: pass --relay URL (or keep the bundle `paramant \
                     receipt --hash H --save FILE` writes, which is checked offline)"
                        .into(),
                )
            })?;
            audit::verify_receipt_with_log(receipt, &relay, &store, a.pubkey_hash.as_deref())?
        }
    };
    let text = format!(
        "valid: receipt for {} (burn confirmed: {}); signature by key {}; leaf in tree {} with root {}, tied to the \
         signed head of size {} ({}); {}",
        report.blob_hash,
        report.burn_confirmed,
        report.pk_hash,
        report.tree_size,
        report.root,
        report.signed_head_size,
        report.tied_by,
        if report.offline { "checked offline from the bundle" } else { "key and signed head fetched from the log" }
    );
    let mut doc = serde_json::to_value(&report).unwrap_or(Value::Null);
    doc["ok"] = json!(true);
    print(json, &doc, &text);
    Ok(exit::OK)
}

fn monitor(ctx: &Ctx, a: MonitorArgs) -> Result<u8, Error> {
    let relay = ctx.relay(false)?;
    let store = Store::from_env()?;
    let mut monitor = Monitor::open(&a.archive)?;
    let count = if a.once { Some(1) } else { a.count };
    let (mut polls, mut unreachable) = (0u64, 0u64);
    loop {
        match monitor.poll(&relay, &store, a.pubkey_hash.as_deref()) {
            Ok(report) => {
                let text = format!(
                    "ok: tree size {} root {} ({} new heads archived, {} feed items, {})",
                    report.tree_size,
                    report.sha3_root,
                    report.archived,
                    report.feed_items,
                    report.consistency.as_ref().map_or("first head".into(), |c| format!("{c:?}"))
                );
                let mut doc = serde_json::to_value(&report).unwrap_or(Value::Null);
                doc["ok"] = json!(true);
                print(ctx.global.json, &doc, &text);
            }
            Err(e @ (Error::Fork(_) | Error::KeyChanged(_) | Error::Invalid(_))) => {
                if !ctx.global.json {
                    eprintln!("ALERT: {e}");
                }
                return Err(e);
            }
            // A log that cannot be reached is reported and polled again: an outage is not a
            // fork, and the next poll checks consistency from the last head seen.
            Err(e @ (Error::Transport(_) | Error::Status { .. })) => {
                unreachable += 1;
                let doc = json!({ "ok": false, "error": e.kind(), "message": e.to_string() });
                if ctx.global.json {
                    print(true, &doc, "");
                } else {
                    eprintln!("unreachable: {e} (polling on)");
                }
            }
            Err(e) => return Err(e),
        }
        polls += 1;
        if count.is_some_and(|n| polls >= n) {
            return Ok(if unreachable > 0 { exit::UNAVAILABLE } else { exit::OK });
        }
        std::thread::sleep(std::time::Duration::from_secs(a.interval));
    }
}
