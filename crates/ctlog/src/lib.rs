//! paramant-ctlog: the append-only Merkle transparency log of one sector. It alone holds the
//! log signing key; it signs STHs (group-committed) and delivery receipts, serves the public CT
//! API, the `/ct/` UI and feeds, archives peers' STHs, and offers relays an internal API.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
mod error;
mod feed;
mod gossip;
mod internal_api;
mod peer_client;
mod public_api;
mod receipt;
pub mod sequencer;
mod state;
pub mod store;

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crypto::{KeyOrigin, LogSigningKey, Secret};
use serde_json::json;

use config::{Config, InternalListen};
use gossip::Gossip;
use sequencer::{Sequencer, SequencerConfig};
use state::{AppState, SharedState};
use store::LogStore;

pub use internal_api::AUTH_HEADER;

/// File name of the log database inside the state directory.
pub const DB_FILE: &str = "ctlog.redb";

/// Opens the log and serves it until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let state = open(config)?;
    let public = tokio::net::TcpListener::bind(state.config.public_listen)
        .await
        .with_context(|| format!("cannot listen on {}", state.config.public_listen))?;
    let internal = bind_internal(&state.config)?;
    spawn_timers(&state);
    let shutdown = shutdown_signal();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    eprintln!(
        "paramant-ctlog: {} serving on http://{} (tree size {}, key {})",
        state.config.relay_id,
        public.local_addr()?,
        state.snapshot().ok().and_then(|s| s.tree_size().ok()).unwrap_or(0),
        state.pk_hash,
    );
    let public_app = public_api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let public_task = tokio::spawn(
        axum::serve(public, public_app).with_graceful_shutdown(wait_for(stop_rx.clone())).into_future(),
    );
    let internal_task = tokio::spawn(serve_internal(internal, state.clone(), stop_rx));
    shutdown.await;
    eprintln!("paramant-ctlog: stopping; finishing requests in flight");
    let _ = stop_tx.send(true);
    public_task.await?.context("public API")?;
    internal_task.await?.context("internal API")?;
    Ok(())
}

/// Loads keys and secrets (generating them on first start), opens storage, starts the sequencer.
pub fn open(config: Config) -> anyhow::Result<SharedState> {
    // The state directory holds the key and secrets when no credentials directory is used.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.state_dir)
        .with_context(|| format!("cannot create state directory {}", config.state_dir.display()))?;
    let key_path = config.signing_key_path();
    let (key, origin) = LogSigningKey::load_or_generate(&key_path)?;
    if matches!(origin, KeyOrigin::Generated) {
        eprintln!("paramant-ctlog: generated a new log signing key at {}", key_path.display());
    }
    let internal_token = Secret::load_or_generate(&config.internal_token_path(), "pit_")?;
    let store = Arc::new(LogStore::open(&config.state_dir.join(DB_FILE)).context("cannot open the log database")?);
    let key = Arc::new(key);
    let public_key = key.verifying_key();
    let sequencer_config =
        SequencerConfig { relay_id: config.relay_id.clone(), refresh_interval: config.refresh_interval() };
    let (sequencer, _) = Sequencer::start(store.clone(), key.clone(), sequencer_config)?;
    Ok(Arc::new(AppState {
        gossip: Gossip::new(&config, public_key.pk_hash()),
        public_key_b64: wire::b64(public_key.to_bytes()),
        pk_hash: hex::encode(public_key.pk_hash()),
        public_key,
        signing_key: key,
        internal_token,
        sequencer,
        store,
        config,
    }))
}

enum InternalListener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

fn bind_internal(config: &Config) -> anyhow::Result<InternalListener> {
    match config.internal_listen().map_err(anyhow::Error::msg)? {
        InternalListen::Unix(path) => {
            // A socket file left by a previous run would make bind fail.
            if path.exists() {
                std::fs::remove_file(&path).with_context(|| format!("cannot remove stale {}", path.display()))?;
            }
            let listener = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("cannot listen on {}", path.display()))?;
            Ok(InternalListener::Unix(listener))
        }
        InternalListen::Tcp(addr) => {
            let listener = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
            listener.set_nonblocking(true)?;
            Ok(InternalListener::Tcp(tokio::net::TcpListener::from_std(listener)?))
        }
    }
}

async fn serve_internal(
    listener: InternalListener,
    state: SharedState,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = internal_api::router(state);
    match listener {
        InternalListener::Unix(l) => axum::serve(l, app).with_graceful_shutdown(wait_for(stop)).await,
        InternalListener::Tcp(l) => axum::serve(l, app).with_graceful_shutdown(wait_for(stop)).await,
    }
}

fn spawn_timers(state: &SharedState) {
    let refresher = state.sequencer.clone();
    let every = state.config.refresh_interval().min(Duration::from_secs(10));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            refresher.refresh().await;
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
    let payload = json!({
        "relay_id": sth.body.relay_id,
        "sha3_root": sth.body.sha3_root,
        "timestamp": sth.body.timestamp,
        "tree_size": sth.body.tree_size,
        "version": sth.body.version,
        "signature": sth.signature,
        "public_key": state.public_key_b64,
    });
    for peer in &state.config.gossip.peers {
        if let Some(url) = &peer.url
            && let Err(e) = peer_client::push_sth(url, &payload).await
        {
            eprintln!("paramant-ctlog: pushing our STH to {} failed: {e}", peer.relay_id);
        }
    }
}

async fn wait_for(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
