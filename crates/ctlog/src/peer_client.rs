//! Outbound calls to gossip peers: fetch a consistency proof, push our newest STH.
//! Plain HTTP/1.1 with hard timeouts and a response size cap; peers are other logs, not trusted.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tlog::Hash;

/// Longest we wait for a peer, connect to last byte.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest peer response we read.
const MAX_RESPONSE: usize = 256 * 1024;

/// A failed peer call, as text for the peer record.
pub type PeerError = String;

/// `GET {base}/v2/sth/consistency?from=&to=` → the proof hashes.
pub async fn consistency_proof(base: &str, from: u64, to: u64) -> Result<Vec<Hash>, PeerError> {
    let path = format!("/v2/sth/consistency?from={from}&to={to}");
    let body = call(base, "GET", &path, None).await?;
    let proof = body["proof"].as_array().ok_or("response has no proof array")?;
    proof
        .iter()
        .map(|h| {
            h.as_str().and_then(|s| wire::parse_hash_hex(s).ok()).ok_or_else(|| "proof hash is not hex".to_string())
        })
        .collect()
}

/// `POST {base}/v2/sth/ingest` with our STH and key.
pub async fn push_sth(base: &str, payload: &wire::log_api::GossipSth) -> Result<(), PeerError> {
    let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    call(base, "POST", "/v2/sth/ingest", Some(body)).await.map(|_| ())
}

async fn call(base: &str, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Value, PeerError> {
    tokio::time::timeout(PEER_TIMEOUT, call_inner(base, method, path, body))
        .await
        .map_err(|_| "peer timed out".to_string())?
}

async fn call_inner(base: &str, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Value, PeerError> {
    let authority =
        base.strip_prefix("http://").ok_or("only http:// peer URLs are supported by this build")?.trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(authority).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE).collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !status.is_success() {
        return Err(format!("peer answered {status}"));
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}
