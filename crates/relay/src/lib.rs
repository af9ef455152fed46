//! paramant-relay: the data plane of one sector. It parses every untrusted upload, keeps blobs
//! in RAM only, and asks its sector's log (over the internal API) to record transfers and sign
//! receipts. It never holds the log's signing key.
//!
//! Module layering (no cycles): the leaves `clock` and `ids` (identifiers parsed at the edge)
//! and `keys` (key values) → `db` (`RelayDb`, the only code that opens `relay.redb`'s tables)
//! → `auth` (`Caller`), `webhook` (outgoing calls), `attest`, `blobs`, `log_client`,
//! `ratelimit`, `config` → `state` (what handlers share) → `routes`, `internal_api`,
//! `registration` → this file (start-up and serving).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod attest;
mod auth;
mod blobs;
pub mod cli;
mod clock;
pub mod config;
mod ct_cache;
mod db;
mod delivery;
mod ids;
mod internal_api;
mod keys;
mod license;
mod log_batch;
mod log_client;
mod payload_pool;
mod ratelimit;
mod registration;
mod routes;
mod sender;
mod state;
mod stats;
mod tls;
mod upload_json;
mod uploads;
mod webhook;
mod wire_v1;

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;

use config::Config;
use state::{AppState, SharedState};

/// File name of the relay database inside the state directory.
pub const DB_FILE: &str = "relay.redb";
/// How often expired blobs are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// How long a stopping relay waits for downloads in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How this service names itself in its log lines.
pub const DAEMON: harden::Daemon = harden::Daemon::new("paramant-relay");

/// How often the `STATUS=` line is checked for changes.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Secrets, the database and the TLS certificate, opened (our token generated on a first
/// start) before the sandbox: afterwards only the state directory is writable.
pub struct Opened {
    /// The configuration it was opened with.
    pub config: Config,
    internal_token: crypto::Secret,
    ctlog_token: crypto::Secret,
    db: db::RelayDb,
    tls: Option<tokio_rustls::TlsAcceptor>,
    license: license_gate::Gate,
}

/// Creates the state directory, loads the secrets, opens the database and loads the TLS
/// certificate. No thread is started: the sandbox comes next.
pub fn open(config: Config) -> anyhow::Result<Opened> {
    // rustls panics on first use if two crypto providers are linked and none was chosen.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.state_dir)
        .with_context(|| format!("cannot create state directory {}", config.state_dir.display()))?;
    routes::well_known::check(&config)?;
    let internal_token = crypto::Secret::load_or_generate(&config.internal_token_path(), "pit_")?;
    let ctlog_token_path = config.ctlog_token_path();
    let ctlog_token = crypto::Secret::load(&ctlog_token_path)
        .with_context(|| format!("cannot read the log's internal token {}", ctlog_token_path.display()))?;
    let db = db::RelayDb::open(&config.state_dir.join(DB_FILE)).context("cannot open the relay database")?;
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let license = license_gate::Gate::new(config.license.clone())?;
    Ok(Opened { config, internal_token, ctlog_token, db, tls, license })
}

impl Opened {
    /// The state every handler shares, with the hardening `/health` reports. Runs inside the
    /// async runtime (the log client's connection pool belongs to it).
    fn start(self, hardening: harden::Hardening) -> (SharedState, Option<tokio_rustls::TlsAcceptor>) {
        let Opened { config, internal_token, ctlog_token, db, tls, license } = self;
        let log = log_client::LogClient::new(&config.ctlog.internal_url, &config.ctlog.public_url, ctlog_token)
            .with_public_origin(&config.public_url());
        let state = Arc::new(AppState {
            blobs: blobs::BlobStore::new(
                config.limits.blob_budget_bytes,
                config.limits.blob_budget_bytes * u64::from(config.transfers.max_key_share_percent) / 100,
            ),
            uploads: Default::default(),
            per_ip: ratelimit::AddressLimiter::new(60_000),
            per_key: ratelimit::RateLimiter::new(60_000),
            daily_uploads: ratelimit::RateLimiter::new(86_400_000),
            sessions_per_ip: ratelimit::AddressLimiter::new(3_600_000),
            sessions: ratelimit::RateLimiter::new(3_600_000),
            queues: Default::default(),
            audit: Default::default(),
            tokens: Default::default(),
            burn_receipts: Default::default(),
            draining: Default::default(),
            webhooks: webhook::Webhooks::new(if config.webhook.danger_allow_private_targets {
                webhook::Reach::Any
            } else {
                webhook::Reach::PublicOnly
            }),
            attest: Default::default(),
            internal_token,
            log,
            db,
            hardening,
            log_pk_hash: Default::default(),
            license,
            stats: stats::Stats::new(state::now_ms()),
            config,
        });
        (state, tls)
    }
}

/// The listening sockets, bound before the sandbox and before capabilities are dropped (a
/// port below 1024 needs CAP_NET_BIND_SERVICE).
pub struct Listeners {
    public: std::net::TcpListener,
    internal: std::net::TcpListener,
}

/// Binds the public and internal listeners.
pub fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let bind = |addr: SocketAddr| -> anyhow::Result<std::net::TcpListener> {
        httpserve::bind_tcp(addr).with_context(|| format!("cannot listen on {addr}"))
    };
    Ok(Listeners { public: bind(config.public_listen)?, internal: bind(config.internal_listen)? })
}

/// Serves until SIGTERM or Ctrl-C, then drains: new uploads are refused while downloads in
/// flight finish (bounded by a timeout). Tells the service manager `READY=1` once both
/// listeners serve, pings its watchdog, keeps `STATUS=` current and says `STOPPING=1` on drain.
pub async fn serve(opened: Opened, hardening: harden::Hardening, listeners: Listeners) -> anyhow::Result<()> {
    let (state, tls) = opened.start(hardening);
    let public = tokio::net::TcpListener::from_std(listeners.public)?;
    let internal = tokio::net::TcpListener::from_std(listeners.internal)?;
    spawn_sweeper(&state);
    monitoring::service_started("relay", state.hardening.sandbox.landlock == harden::LandlockState::FullyEnforced);
    registration::spawn(&state);
    let drain = harden::Drain::new();
    let scheme = if tls.is_some() { "TLS" } else { "plain HTTP" };
    let limits = state.config.connections.clone();
    let public_server = httpserve::Server {
        app: routes::router(state.clone()),
        limits: limits.clone(),
        tls,
        on_refused: || monitoring::connection_rejected("relay"),
    };
    let public_task = tokio::spawn(public_server.serve(httpserve::Listener::Tcp(public), drain.started()));
    let internal_server = httpserve::Server {
        app: internal_api::router(state.clone()),
        limits: limits.without_per_ip_cap(),
        tls: None,
        on_refused: || monitoring::connection_rejected("relay"),
    };
    let internal_task = tokio::spawn(internal_server.serve(httpserve::Listener::Tcp(internal), drain.started()));
    DAEMON.log(format_args!("{} on {} ({scheme})", status_line(&state), state.config.public_url()));
    DAEMON.ready(&status_line(&state));
    let status_state = state.clone();
    DAEMON.spawn_status_updates(STATUS_INTERVAL, move || status_line(&status_state));
    DAEMON.stop_requested("draining: refusing uploads, finishing downloads").await;
    state.draining.store(true, Ordering::Relaxed);
    drain.start();
    match tokio::time::timeout(DRAIN_TIMEOUT, public_task).await {
        Ok(joined) => joined?.context("public listener")?,
        Err(_) => DAEMON.log(format_args!("downloads still running after {DRAIN_TIMEOUT:?}; stopping anyway")),
    }
    // The burns of the last downloads are logged after their bodies ended: wait for them.
    state.log.flush().await;
    internal_task.await?.context("internal listener")?;
    Ok(())
}

/// The `STATUS=` line: the sector, the blobs held in RAM, and a sandbox shortfall if any.
fn status_line(state: &AppState) -> String {
    let (blobs, bytes, _) = state.blobs.usage();
    let doing = if state.is_draining() { "draining" } else { "serving" };
    let plural = if blobs == 1 { "" } else { "s" };
    format!(
        "{doing} sector {}, {blobs} blob{plural} held ({bytes} bytes){}",
        state.config.sector,
        state.hardening.status_suffix()
    )
}

fn spawn_sweeper(state: &SharedState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            let now = state::now_ms();
            state.blobs.sweep(now);
            state.blobs.release_idle_buffers();
            state.tokens.sweep(now);
        }
    });
}
