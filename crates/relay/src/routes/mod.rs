//! The public router of the relay: which path goes where, body limits, authentication with the
//! request limits (per key or per client address) before any handler runs, and the refusal of
//! API keys in query strings.

pub use jsonapi::PathParam;

pub mod ct_proxy;
pub mod devices;
pub mod info;
pub mod registry;
pub mod transfer;
pub mod webhooks;
pub mod well_known;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonapi::ApiError;

use crate::auth;
use crate::state::SharedState;

/// Body limit of everything but uploads.
const SMALL_BODY: usize = 64 * 1024;

/// The public API.
pub fn router(state: SharedState) -> Router {
    // The upload body is read by the handler itself, within its limits (see `uploads`).
    let uploads = Router::new().route("/v2/inbound", post(transfer::inbound)).layer(DefaultBodyLimit::disable());
    let ct = Router::new()
        .route("/v2/sth", get(ct_proxy::forward))
        .route("/v2/sth/{*rest}", get(ct_proxy::forward).post(ct_proxy::forward))
        .route("/v2/ct/{*rest}", get(ct_proxy::forward))
        .route("/ct", get(ct_proxy::forward))
        .route("/ct/", get(ct_proxy::forward))
        .route("/ct/{*rest}", get(ct_proxy::forward))
        .route("/checkpoint", get(ct_proxy::forward))
        .route("/tile/{*rest}", get(ct_proxy::forward))
        .route("/v2/verify-receipt", post(ct_proxy::forward));
    let api = Router::new()
        .route("/health", get(info::health))
        .route("/.well-known/paramant-release.pub", get(well_known::release_public_keys))
        .route("/.well-known/paramant-relay.json", get(well_known::relay_identity))
        .route("/v2/capabilities", get(info::capabilities))
        .route("/v2/openapi.json", get(info::openapi))
        .route("/v2/auth/capabilities", get(info::auth_capabilities))
        .route("/v2/check-key", get(info::check_key))
        .route("/v2/audit", get(info::audit))
        .route("/v2/stream-next", get(info::stream_next))
        .route("/v2/outbound/{hash}", get(transfer::outbound))
        .route("/v2/status/{hash}", get(transfer::status))
        .route("/v2/dl/{token}", get(transfer::download_page))
        .route("/v2/dl/{token}/get", get(transfer::download_get))
        .route("/v2/dl/{token}/info", get(transfer::download_info))
        // GET /v2/pubkey is the log's key (forwarded); POST registers a device.
        .route("/v2/pubkey", get(ct_proxy::forward).post(devices::register_pubkey))
        .route("/v2/pubkey/{device}", get(devices::get_pubkey))
        .route("/v2/did", get(devices::list_dids))
        .route("/v2/did/register", post(devices::register_did))
        .route("/v2/did/{did}", get(devices::resolve_did))
        .route("/v2/attest", post(devices::attest))
        .route("/v2/attest/challenge", post(devices::attest_challenge))
        .route("/v2/webhook", post(webhooks::register))
        .route("/v2/relays", get(registry::list_relays))
        .route("/v2/relays/register", post(registry::register_relay))
        .route("/v2/request-trial", post(registry::request_trial))
        .merge(ct)
        .layer(DefaultBodyLimit::max(SMALL_BODY));
    Router::new()
        .merge(uploads)
        .merge(api)
        .fallback(jsonapi::not_found)
        .method_not_allowed_fallback(jsonapi::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(refuse_key_in_query))
        .layer(middleware::map_response_with_state(state.clone(), count_response))
        .with_state(state)
}

async fn count_response(State(state): State<SharedState>, response: Response) -> Response {
    let status = response.status().as_u16();
    monitoring::observe_response("relay", status);
    state.stats.answered(status, crate::state::now_ms());
    response
}

/// Authenticates the request from its headers, before any body is read: a valid key is limited
/// per key (so many clients behind one address are not starved) and its [`auth::Caller`] goes
/// into the request for the handler; every other request — no key, or a key that does not
/// authenticate — is limited per client address.
async fn authenticate(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let limited = match auth::authenticate(&state.db, &state.license, request.headers()) {
        Err(e) => Err(e.into()),
        Ok(Some(caller)) => {
            let limited = state.limit_key(&caller);
            request.extensions_mut().insert(caller);
            limited
        }
        Ok(None) => state.limit_ip(peer.ip()),
    };
    match limited {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// API keys travel in `X-Api-Key` only: a key in a URL ends up in logs and browser history.
async fn refuse_key_in_query(request: Request, next: Next) -> Response {
    let query = request.uri().query().unwrap_or_default();
    let has_key = query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        matches!(name, "k" | "key" | "api_key" | "apikey") || pair.contains("pgp_") || pair.contains("plk_")
    });
    if has_key {
        return ApiError::bad_request("send the API key in the X-Api-Key header, never in the URL").into_response();
    }
    next.run(request).await
}
