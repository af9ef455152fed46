//! Self-registration in the relay registry: when `registry_url` is configured, the relay asks
//! its log to sign its [`wire::RelayRegistration`] with the log key (the sector's identity) and
//! posts it to the registry's `/v2/relays/register`, at start and every 10 minutes (the
//! registry accepts a signature for ±5 minutes, and `last_seen` shows the relay is alive).

use std::time::Duration;

use bytes::Bytes;

use crate::ids::{PeerUrl, Scheme};
use crate::state::SharedState;
use crate::webhook::Reach;

/// How often the registration is renewed.
const INTERVAL: Duration = Duration::from_secs(600);

/// Starts the renewal loop if a registry is configured.
pub fn spawn(state: &SharedState) {
    let Some(registry) = state.config.registry_url.clone() else { return };
    let state = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = register(&state, &registry).await {
                crate::DAEMON.log(format_args!("registering at {registry} failed: {e}"));
            }
        }
    });
}

async fn register(state: &SharedState, registry: &str) -> Result<(), String> {
    let signed = state
        .log
        .sign_registration(&state.config.public_url(), env!("CARGO_PKG_VERSION"), crate::license::edition(state))
        .await
        .map_err(|e| format!("the log did not sign: {}", e.code()))?;
    let target = PeerUrl::parse(registry, Scheme::AllowPlainHttp)?.join("/v2/relays/register");
    let body = Bytes::from(serde_json::to_vec(&signed).map_err(|e| e.to_string())?);
    let status = state.webhooks.post(&target, Reach::Any, &[], body).await?;
    if status.is_success() { Ok(()) } else { Err(format!("the registry answered {status}")) }
}
