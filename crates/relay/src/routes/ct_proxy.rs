//! The log's public endpoints on the relay's origin: requests are forwarded to the sector's
//! log unchanged (the log parses and limits them); answers come back as the log gave them.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, Uri};
use axum::response::Response;
use jsonapi::ApiResult;

use crate::state::SharedState;

/// Forwards the request as is (method, path, query and a small body: the router's 64 KiB limit).
pub async fn forward(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response<Body>> {
    let bytes = jsonapi::body_bytes(body)?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    state.log.forward_public(method, path, bytes, &peer.ip().to_string()).await
}
