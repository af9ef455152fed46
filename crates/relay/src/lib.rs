//! paramant-relay: the data plane of one sector. It parses every untrusted upload, keeps blobs
//! in RAM only, and asks its sector's log (over the internal API) to record transfers and sign
//! receipts. It never holds the log's signing key.
#![forbid(unsafe_code)]

pub mod blobs;
pub mod cli;
pub mod config;
mod db;
mod delivery;
mod internal_api;
pub mod keys;
mod log_client;
mod mail;
pub mod ratelimit;
mod routes;
mod state;
mod tls;
mod webhook;
pub mod wire_v1;

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

/// Opens storage and secrets and builds the shared state.
pub fn open(config: Config) -> anyhow::Result<SharedState> {
    // rustls panics on first use if two crypto providers are linked and none was chosen.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.state_dir)
        .with_context(|| format!("cannot create state directory {}", config.state_dir.display()))?;
    let internal_token = crypto::Secret::load_or_generate(&config.internal_token_path(), "pit_")?;
    let ctlog_token_path = config.ctlog_token_path();
    let ctlog_token = crypto::Secret::load(&ctlog_token_path)
        .with_context(|| format!("cannot read the log's internal token {}", ctlog_token_path.display()))?;
    let db = db::RelayDb::open(&config.state_dir.join(DB_FILE)).context("cannot open the relay database")?;
    let log = log_client::LogClient::new(&config.ctlog.internal_url, &config.ctlog.public_url, ctlog_token);
    Ok(Arc::new(AppState {
        blobs: blobs::BlobStore::new(config.limits.blob_budget_bytes),
        per_ip: ratelimit::RateLimiter::new(60_000),
        per_key: ratelimit::RateLimiter::new(60_000),
        daily_uploads: ratelimit::RateLimiter::new(86_400_000),
        queues: Default::default(),
        audit: Default::default(),
        tokens: Default::default(),
        draining: Default::default(),
        webhooks: Default::default(),
        attest: Default::default(),
        internal_token,
        log,
        db,
        config,
    }))
}

/// Serves until SIGTERM or Ctrl-C, then drains: new uploads are refused while downloads in
/// flight finish (bounded by a timeout).
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let state = open(config)?;
    let public = tokio::net::TcpListener::bind(state.config.public_listen)
        .await
        .with_context(|| format!("cannot listen on {}", state.config.public_listen))?;
    let internal = tokio::net::TcpListener::bind(state.config.internal_listen)
        .await
        .with_context(|| format!("cannot listen on {}", state.config.internal_listen))?;
    let tls = state.config.tls.as_ref().map(tls::acceptor).transpose()?;
    spawn_sweeper(&state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    eprintln!(
        "paramant-relay: sector {} serving on {} ({})",
        state.config.sector,
        state.config.public_url(),
        if tls.is_some() { "TLS" } else { "plain HTTP" }
    );
    let app = routes::router(state.clone());
    let public_task = match tls {
        Some(acceptor) => tokio::spawn(tls::serve(public, acceptor, app, stop_rx.clone())),
        None => {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let stop = stop_rx.clone();
            tokio::spawn(async move { axum::serve(public, service).with_graceful_shutdown(wait_for(stop)).await })
        }
    };
    let internal_app = internal_api::router(state.clone());
    let internal_task = tokio::spawn(axum::serve(internal, internal_app).with_graceful_shutdown(wait_for(stop_rx)).into_future());
    shutdown_signal().await;
    state.draining.store(true, Ordering::Relaxed);
    eprintln!("paramant-relay: draining: refusing uploads, finishing downloads");
    let _ = stop_tx.send(true);
    match tokio::time::timeout(DRAIN_TIMEOUT, public_task).await {
        Ok(joined) => joined?.context("public listener")?,
        Err(_) => eprintln!("paramant-relay: downloads still running after {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    // The burns of the last downloads are logged after their bodies ended: wait for them.
    state.log.flush().await;
    internal_task.await?.context("internal listener")?;
    Ok(())
}

fn spawn_sweeper(state: &SharedState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            state.blobs.sweep(state::now_ms());
        }
    });
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
