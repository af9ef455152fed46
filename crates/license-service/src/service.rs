//! One check-in, start to finish: read the token and the state, build the request (telemetry
//! only if opted in), put its exact body in the journal and its digest in the sector's log
//! *before* sending it, send it over post-quantum TLS, classify the answer, log every new remote
//! action *before* the answer takes effect, then store and publish the new state — which is
//! what makes it take effect, since the relay and the admin panel read (and re-verify) only that.

use std::path::Path;

use license::checkin::{self, CheckInOutcome, CheckInRequest, Nonce};
use license::state::{LicenseState, Next};
use license::telemetry::{Aggregates, OptIn, Telemetry};
use license::{LicenseToken, TrustRoots};
use sha2::{Digest, Sha256};

use crate::client::HttpsClient;
use crate::config::Config;
use crate::log::EventLog;

/// Remote-action ids remembered (an action still in the set is never re-logged while its id is
/// among them).
const MAX_LOGGED_IDS: usize = 1000;

/// What a check-in did, for the journal and the tests.
#[derive(Debug)]
pub struct Report {
    /// `active`, `payment_required`, `unknown_key`, `revoked`, `unavailable`, or why nothing
    /// was sent (`no_token`, `bad_token`, `revoked_key`, `log_unavailable`).
    pub outcome: String,
    /// Whether a request went out.
    pub sent: bool,
    /// When to check in next.
    pub next: Next,
}

/// What every check-in needs.
pub struct Context {
    /// The configuration.
    pub config: Config,
    /// Keys that may sign capability sets (and tokens).
    pub roots: TrustRoots,
    /// The HTTPS client of the license server.
    pub client: HttpsClient,
}

impl Context {
    /// Builds the context (reads the CA file: call before the sandbox).
    ///
    /// # Errors
    /// Malformed keys, URL or CA file.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let roots = config.license.trust_roots()?;
        let ca = config.ca_file.as_deref().map(std::fs::read).transpose()?;
        let timeout = std::time::Duration::from_secs(config.timeout_secs);
        let client = HttpsClient::new(&config.server_url, ca.as_deref(), timeout)?;
        Ok(Self { config, roots, client })
    }
}

/// Writes a line to the journal (stderr under systemd).
fn journal(message: impl std::fmt::Display) {
    crate::DAEMON.log(message);
}

/// The state the service keeps (an unreadable file starts over: it grants nothing by itself,
/// the relay re-verifies whatever it reads).
#[must_use]
pub fn load_state(path: &Path) -> LicenseState {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            journal(format_args!("{} is not a license state ({e}); starting over", path.display()));
            LicenseState::default()
        }),
        Err(_) => LicenseState::default(),
    }
}

/// Mode of the state file in `state_dir`: the owner only (under `paramant up` the relay and the
/// panel run as the same user and read it there).
pub const STATE_MODE: u32 = 0o600;
/// Mode of the published copy: the owner and its group — the group the relay's and the admin
/// panel's users share with this service (`SupplementaryGroups=` in their units), never others.
pub const PUBLISH_MODE: u32 = 0o640;

/// Stores the state and publishes it (atomic replace). Neither file is world-readable: a signed
/// capability set echoes the `license_key` (the operator's `plk_` data-plane key).
///
/// # Errors
/// IO errors.
pub fn save_state(config: &Config, state: &LicenseState) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(state)?;
    write_atomically(&config.state_file(), &bytes, STATE_MODE)?;
    if let Some(publish) = &config.publish_file {
        write_atomically(publish, &bytes, PUBLISH_MODE)?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    // A leftover temporary file may carry an older, wider mode: start from a fresh one.
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode & 0o600).open(&tmp)?;
    // Exactly `mode` whatever the umask, set before a byte is written.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Publishes the stored state again (at start: after a reboot `publish_file` lives on a tmpfs),
/// so the relay sees the cached set before the first check-in completes.
///
/// # Errors
/// IO errors.
pub fn republish(config: &Config) -> anyhow::Result<()> {
    if config.publish_file.is_some() && config.state_file().exists() {
        save_state(config, &load_state(&config.state_file()))?;
    }
    Ok(())
}

/// The token in force, if any (trimmed; an empty file is no token).
#[must_use]
pub fn read_token(config: &Config) -> Option<String> {
    let text = std::fs::read_to_string(config.license.token_path()?).ok()?;
    let token = text.trim().to_owned();
    (!token.is_empty()).then_some(token)
}

fn random_nonce() -> anyhow::Result<Nonce> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("random nonce: {e}"))?;
    Ok(Nonce::from_random(bytes))
}

/// The telemetry block: nothing but `opted_in: false` unless the operator opted in; then the
/// aggregates the relay counts (`GET /internal/stats`: users, transfers, requests, 5xx answers
/// and authentication failures over 24 hours, uptime). A relay that cannot be asked gives
/// nulls, never a guess.
pub async fn telemetry(config: &Config) -> Telemetry {
    if !config.telemetry {
        return Telemetry::new(OptIn::Off, &Aggregates::default());
    }
    let aggregates = match (&config.relay, config.relay_token_path()) {
        (Some(relay), Some(token_path)) => relay_stats(&relay.internal_url, &token_path).await.unwrap_or_default(),
        _ => Aggregates::default(),
    };
    Telemetry::new(OptIn::On, &aggregates)
}

/// The relay's answer to `GET /internal/stats` (numbers only; anything else is ignored).
#[derive(serde::Deserialize)]
struct RelayStats {
    users: u64,
    transfers_24h: u64,
    requests_24h: u64,
    errors_5xx_24h: u64,
    auth_failures_24h: u64,
    uptime_seconds: u64,
}

async fn relay_stats(internal_url: &str, token_path: &Path) -> Option<Aggregates> {
    let token = crypto::Secret::load(token_path).ok()?;
    let url = format!("{}/internal/stats", internal_url.trim_end_matches('/'));
    let (status, body) = crate::log::call(&url, "GET", Some(token.danger_expose()), None).await.ok()?;
    let s: RelayStats = serde_json::from_slice(&body).ok().filter(|_| status == 200)?;
    Some(Aggregates {
        user_count: Some(s.users),
        transfer_count_24h: Some(s.transfers_24h),
        requests: Some(s.requests_24h),
        errors_5xx: Some(s.errors_5xx_24h),
        auth_failures: Some(s.auth_failures_24h),
        uptime_seconds: Some(s.uptime_seconds),
    })
}

/// The exact request the next check-in will send. Draws and stores the next nonce if none is
/// drawn yet, so what is previewed is byte for byte what goes out.
///
/// # Errors
/// No token, or the state cannot be stored.
pub async fn next_request(config: &Config, relay_id: &str) -> anyhow::Result<CheckInRequest> {
    let token = read_token(config).ok_or_else(|| anyhow::anyhow!("no license token: nothing would be sent"))?;
    let mut state = load_state(&config.state_file());
    let nonce = match &state.next_nonce {
        Some(n) => n.clone(),
        None => {
            let n = random_nonce()?.hex();
            state.next_nonce = Some(n.clone());
            save_state(config, &state)?;
            n
        }
    };
    Ok(CheckInRequest {
        license_key: token,
        relay_id: relay_id.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        telemetry: telemetry(config).await,
        nonce,
    })
}

/// The body as the journal shows it: the license key (also the operator's data-plane key) is
/// replaced by its SHA-256; everything else is byte for byte what is sent.
#[must_use]
pub fn journal_body(request: &CheckInRequest) -> String {
    let shown = CheckInRequest {
        license_key: format!("sha256:{}", hex::encode(Sha256::digest(request.license_key.as_bytes()))),
        ..request.clone()
    };
    String::from_utf8_lossy(&shown.body()).into_owned()
}

/// One check-in at `now_ms`.
///
/// # Errors
/// Only when the state cannot be stored; every other failure is an outcome in the report.
pub async fn check_in(ctx: &Context, log: &impl EventLog, relay_id: &str, now_ms: u64) -> anyhow::Result<Report> {
    let config = &ctx.config;
    let not_sent = |outcome: &str, next| Ok(Report { outcome: outcome.into(), sent: false, next });
    let Some(token_text) = read_token(config) else {
        journal("no license token: Community Edition, no check-in");
        return not_sent("no_token", Next::CheckInAfter(license::CHECK_IN_INTERVAL_MS));
    };
    let token = match LicenseToken::parse(&token_text) {
        Ok(t) => t,
        Err(e) => {
            journal(format_args!("the license token is malformed ({e}): Community Edition, no check-in"));
            return not_sent("bad_token", Next::CheckInAfter(license::CHECK_IN_INTERVAL_MS));
        }
    };
    let token_sha = token.sha256();
    if load_state(&config.state_file()).revoked(&token_sha) {
        journal("this license key was revoked (410): not checking in with it again");
        return not_sent("revoked_key", Next::StopRetrying);
    }
    let request = next_request(config, relay_id).await?;
    let body = request.body();
    journal(format_args!("check-in request body: {}", journal_body(&request)));
    match log.append(license::remote::check_in_event(&body)).await {
        Ok(at) => journal(format_args!("check-in logged as leaf {} ({})", at.leaf_index, at.leaf_hash)),
        Err(e) => {
            journal(format_args!("check-in not sent: the log cannot record it ({e})"));
            return not_sent("log_unavailable", Next::CheckInAfter(license::CHECK_IN_INTERVAL_MS));
        }
    }
    let mut state = load_state(&config.state_file());
    // The nonce is used: the next check-in draws a new one.
    state.next_nonce = Some(random_nonce()?.hex());
    let outcome = match ctx.client.post(body).await {
        Ok(answer) => checkin::classify(answer.status, &answer.body, &request.expectation(), &ctx.roots, now_ms),
        Err(e) => CheckInOutcome::Unavailable(format!("{e:#}")),
    };
    let outcome = log_remote_actions(log, &mut state, outcome).await;
    let (state, next) = state.after(&outcome, &token_sha, now_ms);
    save_state(config, &state)?;
    journal(format_args!("check-in: {}", state.last_outcome.as_deref().unwrap_or_default()));
    Ok(Report { outcome: outcome.name().into(), sent: true, next })
}

/// Appends every remote action of an active answer not logged before; if one cannot be
/// logged, the answer is not applied (it counts as unavailable: the cache and its grace stay).
async fn log_remote_actions(log: &impl EventLog, state: &mut LicenseState, outcome: CheckInOutcome) -> CheckInOutcome {
    let CheckInOutcome::Active(signed) = &outcome else { return outcome };
    let set = &signed.set;
    let mut actions = set.remote.actions(&set.tier, &set.capabilities.max_users.describe());
    actions.retain(|a| !state.logged_actions.contains(&a.id));
    for action in actions {
        match log.append(action.event.clone()).await {
            Ok(at) => {
                journal(format_args!("remote action {} logged as leaf {}: {}", action.id, at.leaf_index, action.event));
                state.logged_actions.push(action.id);
                // Ids of long-gone actions need not be kept forever.
                if state.logged_actions.len() > MAX_LOGGED_IDS {
                    state.logged_actions.remove(0);
                }
            }
            Err(e) => {
                let why = format!("remote action {} could not be logged ({e}); the answer is not applied", action.id);
                journal(&why);
                return CheckInOutcome::Unavailable(why);
            }
        }
    }
    outcome
}
