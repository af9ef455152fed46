//! paramant-ctlog: the append-only Merkle transparency log of one sector. It alone holds the
//! log signing key; it signs STHs (group-committed) and delivery receipts, serves the public CT
//! API, the `/ct/` UI and feeds, archives peers' STHs, and offers relays an internal API.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod cli;
pub mod config;
mod error;
mod feed;
pub mod fsck;
mod gossip;
mod index;
mod internal_api;
mod internal_batch;
mod peer_client;
mod public_api;
mod receipt;
pub mod sequencer;
mod state;
pub mod store;
pub mod tiles_api;
pub mod warm;

use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crypto::{KeyFile, KeyOrigin, LogSigningKey, NoteSigningKey, Secret};

use config::{Config, InternalListen};
use gossip::Gossip;
use sequencer::{Sequencer, SequencerConfig};
use state::{AppState, SharedState};
use store::LogStore;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use harden::Hardening;
pub use internal_api::AUTH_HEADER;

/// How this service names itself in its log lines and to the service manager's helpers.
pub const DAEMON: harden::Daemon = harden::Daemon::new("paramant-ctlog");

/// File name of the log database inside the state directory.
pub const DB_FILE: &str = "ctlog.redb";

/// Keys, secrets and the database, opened (and generated on a first start) before the sandbox
/// is applied: afterwards only the state directory is writable and nothing else is readable.
pub struct Opened {
    /// The service's configuration.
    pub config: Config,
    key: Arc<LogSigningKey>,
    note_key: NoteSigningKey,
    internal_token: Secret,
    store: Arc<LogStore>,
}

/// Creates the state directory and loads keys and secrets (generating them on first start),
/// then opens the database. No thread is started: the sandbox comes next.
pub fn open(config: Config) -> anyhow::Result<Opened> {
    // The state directory holds the key and secrets when no credentials directory is used.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.state_dir)
        .with_context(|| format!("cannot create state directory {}", config.state_dir.display()))?;
    let key_path = config.signing_key_path();
    let (key, origin) = LogSigningKey::load_or_generate(&key_path)?;
    if matches!(origin, KeyOrigin::Generated) {
        DAEMON.log(format_args!("generated a new log signing key at {}", key_path.display()));
    }
    let note_key_path = config.note_key_path();
    let (note_key, note_origin) = NoteSigningKey::load_or_generate(&note_key_path)?;
    if matches!(note_origin, KeyOrigin::Generated) {
        DAEMON.log(format_args!("generated a new checkpoint note key at {}", note_key_path.display()));
    }
    let internal_token = Secret::load_or_generate(&config.internal_token_path(), "pit_")?;
    let store = Arc::new(
        LogStore::open_with_cache(&config.state_dir.join(DB_FILE), config.cache_mib.saturating_mul(1 << 20))
            .context("cannot open the log database")?,
    );
    Ok(Opened { config, key: Arc::new(key), note_key, internal_token, store })
}

impl Opened {
    /// Checks the log against the key and starts the sequencer thread; call it after the
    /// sandbox so the thread inherits it.
    pub fn start(self, hardening: Hardening) -> anyhow::Result<SharedState> {
        let Opened { config, key, note_key, internal_token, store } = self;
        let public_key = key.verifying_key();
        let sequencer_config =
            SequencerConfig { relay_id: config.relay_id.clone(), refresh_interval: config.refresh_interval() };
        let fatal = sequencer::exit_on_storage_fault();
        let (sequencer, _, _) = Sequencer::start(store.clone(), key.clone(), sequencer_config, fatal)?;
        warm::spawn(store.clone(), store.snapshot()?.tree_size()?);
        Ok(Arc::new(AppState {
            gossip: Gossip::new(&config, public_key.pk_hash()),
            checkpoint: tiles_api::CheckpointSigner::new(note_key, tiles_api::origin_for(&config.public_url())),
            public_key_b64: wire::b64(public_key.to_bytes()),
            pk_hash: hex::encode(public_key.pk_hash()),
            public_key,
            signing_key: key,
            internal_token,
            sequencer,
            store,
            hardening,
            config,
        }))
    }
}

/// The listening sockets, bound before the sandbox and before capabilities are dropped.
pub struct Listeners {
    public: std::net::TcpListener,
    internal: StdInternalListener,
}

enum StdInternalListener {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

/// Binds the public and internal listeners.
pub fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let public = httpserve::bind_tcp(config.public_listen)
        .with_context(|| format!("cannot listen on {}", config.public_listen))?;
    let internal = match config.internal_listen().map_err(anyhow::Error::msg)? {
        InternalListen::Unix(path) => {
            // A socket file left by a previous run would make bind fail.
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove stale {}", path.display()))?;
            }
            let listener = std::os::unix::net::UnixListener::bind(&path)
                .with_context(|| format!("cannot listen on {}", path.display()))?;
            StdInternalListener::Unix(listener)
        }
        InternalListen::Tcp(addr) => {
            StdInternalListener::Tcp(httpserve::bind_tcp(addr).with_context(|| format!("cannot listen on {addr}"))?)
        }
    };
    Ok(Listeners { public, internal })
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests. Tells the service manager
/// `READY=1` once both listeners serve, pings its watchdog, and says `STOPPING=1` on drain.
pub async fn serve(state: SharedState, listeners: Listeners) -> anyhow::Result<()> {
    let public = tokio_tcp(listeners.public)?;
    let internal = match listeners.internal {
        StdInternalListener::Unix(l) => {
            l.set_nonblocking(true)?;
            httpserve::Listener::Unix(tokio::net::UnixListener::from_std(l)?)
        }
        StdInternalListener::Tcp(l) => httpserve::Listener::Tcp(tokio_tcp(l)?),
    };
    spawn_timers(&state);
    monitoring::service_started("ctlog", state.hardening.sandbox.landlock == harden::LandlockState::FullyEnforced);
    let drain = harden::Drain::new();
    let public_addr = public.local_addr()?;
    let limits = state.config.connections.clone();
    let public_server = httpserve::Server {
        app: public_api::router(state.clone()),
        limits: limits.clone(),
        tls: None,
        on_refused: || monitoring::connection_rejected("ctlog"),
    };
    let public_task = tokio::spawn(public_server.serve(httpserve::Listener::Tcp(public), drain.started()));
    let internal_server = httpserve::Server {
        app: internal_api::router(state.clone()),
        limits: limits.without_per_ip_cap(),
        tls: None,
        on_refused: || monitoring::connection_rejected("ctlog"),
    };
    let internal_task = tokio::spawn(internal_server.serve(internal, drain.started()));
    DAEMON.log(format_args!("{} on http://{public_addr} (key {})", status_line(&state), state.pk_hash));
    DAEMON.ready(&status_line(&state));
    let status_state = state.clone();
    DAEMON.spawn_status_updates(STATUS_INTERVAL, move || status_line(&status_state));
    DAEMON.stop_requested("draining: finishing requests in flight").await;
    drain.start();
    public_task.await?.context("public API")?;
    internal_task.await?.context("internal API")?;
    Ok(())
}

/// How often the `STATUS=` line is checked for changes.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

fn tokio_tcp(listener: std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// The `STATUS=` line: what this log serves, how big it is, and a sandbox shortfall if any.
fn status_line(state: &AppState) -> String {
    let size = state.snapshot().ok().and_then(|s| s.tree_size().ok()).unwrap_or(0);
    format!("serving {}, tree size {size}{}", state.config.relay_id, state.hardening.status_suffix())
}

fn spawn_timers(state: &SharedState) {
    let refresher = state.clone();
    let every = state.config.refresh_interval().min(Duration::from_secs(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            refresher.sequencer.refresh().await;
        }
    });
    if state.config.gossip.peers.iter().any(|p| p.url.is_some()) {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(state.config.gossip.push_interval_secs));
            loop {
                tick.tick().await;
                push_to_peers(&state).await;
            }
        });
    }
}

/// Sends our newest STH (with our key) to every configured peer URL; failures are logged.
async fn push_to_peers(state: &AppState) {
    let Ok(Some(sth)) = state.store.snapshot().and_then(|s| s.latest_sth()) else { return };
    let payload = wire::log_api::GossipSth::new(&sth, &state.public_key);
    for peer in &state.config.gossip.peers {
        if let Some(url) = &peer.url
            && let Err(e) = peer_client::push_sth(url, &payload).await
        {
            DAEMON.log(format_args!("pushing our STH to {} failed: {e}", peer.relay_id));
        }
    }
}
