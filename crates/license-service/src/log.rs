//! The sector's log, from the license service's side: its public key (whose SHA3-256 is the
//! relay's identity, computed here from the key, not taken from the log's word) and the
//! internal append of license events. Plain HTTP/1.1 on loopback, one connection per call.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha3::{Digest, Sha3_256};

/// Longest a log call may take (an append waits for a durable, signed batch).
const LOG_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest log answer read.
const MAX_ANSWER: usize = 1 << 20;

/// Where an event was appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The leaf's index.
    pub leaf_index: u64,
    /// The leaf's hash, hex.
    pub leaf_hash: String,
}

/// A log that license events are appended to (the real one, or a failing one in tests).
pub trait EventLog {
    /// Appends `event` (a `license_event` without timestamp; the log stamps it).
    fn append(&self, event: Value) -> impl Future<Output = anyhow::Result<Appended>> + Send;
}

/// The port of an `http://HOST[:PORT][/…]` URL (80 when absent).
#[must_use]
pub fn http_port(url: &str) -> Option<u16> {
    let (_, port) = host_port(url)?;
    Some(port)
}

fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.ends_with(']') => (h, p.parse().ok()?),
        _ => (authority, 80),
    };
    (!host.is_empty() && port != 0).then(|| (host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

/// The sector's log over its public and internal APIs.
pub struct LogClient {
    internal_url: String,
    public_url: String,
    token: crypto::Secret,
}

impl LogClient {
    /// A client of the log at these URLs with its internal token.
    #[must_use]
    pub fn new(internal_url: &str, public_url: &str, token: crypto::Secret) -> Self {
        Self {
            internal_url: internal_url.trim_end_matches('/').to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// The relay's identity: SHA3-256 (hex) of the log's ML-DSA-65 public key.
    ///
    /// # Errors
    /// The log does not answer, or its key is malformed.
    pub async fn relay_id(&self) -> anyhow::Result<String> {
        let (status, body) = call(&format!("{}/v2/pubkey", self.public_url), "GET", None, None).await?;
        anyhow::ensure!(status == 200, "the log's /v2/pubkey answered {status}");
        let answer: Value = serde_json::from_slice(&body)?;
        let key = wire::parse_b64(answer["public_key"].as_str().unwrap_or_default())?;
        let key = crypto::LogVerifyingKey::from_bytes(&key)?;
        Ok(hex::encode(Sha3_256::digest(key.to_bytes())))
    }
}

impl EventLog for LogClient {
    async fn append(&self, event: Value) -> anyhow::Result<Appended> {
        let body = serde_json::to_vec(&json!({ "event": event }))?;
        let url = format!("{}/internal/append", self.internal_url);
        let (status, answer) = call(&url, "POST", Some(self.token.danger_expose()), Some(body)).await?;
        anyhow::ensure!(status == 200, "the log refused the event ({status}): {}", String::from_utf8_lossy(&answer));
        let answer: Value = serde_json::from_slice(&answer)?;
        Ok(Appended {
            leaf_index: answer["leaf_index"].as_u64().ok_or_else(|| anyhow::anyhow!("no leaf_index"))?,
            leaf_hash: answer["leaf_hash"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// One HTTP/1.1 call on loopback: (status, body), bounded in time and size.
///
/// # Errors
/// Connection, protocol or timeout failures.
pub async fn call(url: &str, method: &str, token: Option<&str>, body: Option<Vec<u8>>) -> anyhow::Result<(u16, Bytes)> {
    tokio::time::timeout(LOG_TIMEOUT, exchange(url, method, token, body))
        .await
        .map_err(|_| anyhow::anyhow!("{url}: no answer within {LOG_TIMEOUT:?}"))?
}

async fn exchange(url: &str, method: &str, token: Option<&str>, body: Option<Vec<u8>>) -> anyhow::Result<(u16, Bytes)> {
    let (host, port) = host_port(url).ok_or_else(|| anyhow::anyhow!("not an http:// URL: {url}"))?;
    let path = url.strip_prefix("http://").and_then(|r| r.find('/').map(|i| &r[i..])).unwrap_or("/");
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let driver = tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", format!("{host}:{port}"));
    if let Some(token) = token {
        request = request.header("x-internal-auth", token);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes =
        Limited::new(response.into_body(), MAX_ANSWER).collect().await.map_err(|e| anyhow::anyhow!("{e}"))?.to_bytes();
    driver.abort();
    Ok((status, bytes))
}
