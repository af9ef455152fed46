//! The relay as the load generator sees it: uploads and burning downloads over pooled HTTP/1.1
//! keep-alive connections on loopback (one connection per concurrent client, reused).

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::body::{Chunks, Upload};

/// Longest one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a request did not succeed, as the report counts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// The relay answered with this status and API error code.
    Status(u16, String),
    /// No HTTP answer: connection error or timeout.
    Transport(String),
    /// A download delivered a different number of bytes than were uploaded.
    ShortBody { expected: usize, got: usize },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(status, code) => write!(f, "HTTP {status} {code}"),
            Failure::Transport(e) => write!(f, "transport: {e}"),
            Failure::ShortBody { expected, got } => write!(f, "download of {got} bytes, expected {expected}"),
        }
    }
}

/// A pooled HTTP client bound to one relay and one API key.
#[derive(Clone)]
pub struct RelayClient {
    http: Client<HttpConnector, Chunks>,
    base: String,
    api_key: String,
}

impl RelayClient {
    pub fn new(base: &str, api_key: &str) -> Self {
        Self { http: http_client(), base: base.trim_end_matches('/').to_owned(), api_key: api_key.to_owned() }
    }

    /// `POST /v2/inbound`; the answer body is read and dropped.
    pub async fn upload(&self, upload: Upload) -> Result<(), Failure> {
        let request = Request::post(format!("{}/v2/inbound", self.base))
            .header("content-type", "application/json")
            .header("x-api-key", &self.api_key)
            .body(upload.body)
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let (status, body) = send(&self.http, request).await?;
        if status != StatusCode::OK {
            return Err(refusal(status, &body));
        }
        Ok(())
    }

    /// `GET /v2/outbound/{hash}`, reading (and so burning) the whole body.
    pub async fn download(&self, hash: &str, expected: usize) -> Result<(), Failure> {
        let request = Request::get(format!("{}/v2/outbound/{hash}", self.base))
            .header("x-api-key", &self.api_key)
            .body(Chunks::empty())
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let (status, got) = send_counting(&self.http, request).await?;
        if status != StatusCode::OK {
            return Err(Failure::Status(status.as_u16(), String::new()));
        }
        if got != expected {
            return Err(Failure::ShortBody { expected, got });
        }
        Ok(())
    }
}

/// A keep-alive pool large enough for every concurrent client.
pub fn http_client() -> Client<HttpConnector, Chunks> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(4096).build(connector)
}

async fn send(http: &Client<HttpConnector, Chunks>, request: Request<Chunks>) -> Result<(StatusCode, Bytes), Failure> {
    let exchange = async {
        let response = http.request(request).await.map_err(|e| Failure::Transport(format!("{e:?}")))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| Failure::Transport(e.to_string()))?.to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| Failure::Transport("timeout".into()))?
}

/// Like `send`, but counts the body's bytes instead of keeping them (downloads of 5 MiB).
async fn send_counting(
    http: &Client<HttpConnector, Chunks>,
    request: Request<Chunks>,
) -> Result<(StatusCode, usize), Failure> {
    let exchange = async {
        let response = http.request(request).await.map_err(|e| Failure::Transport(format!("{e:?}")))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut got = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::Transport(e.to_string()))?;
            got += frame.data_ref().map_or(0, |d| d.len());
        }
        Ok((status, got))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| Failure::Transport("timeout".into()))?
}

fn refusal(status: StatusCode, body: &[u8]) -> Failure {
    let code = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Failure::Status(status.as_u16(), code)
}

/// One plain request for setup (health, key minting): status and body.
pub async fn call(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Chunks::new([Bytes::copy_from_slice(body)])).context("request")?;
    let http = http_client();
    match tokio::time::timeout(Duration::from_secs(10), send(&http, request)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => bail!("{url}: {e}"),
        Err(_) => bail!("{url}: timeout"),
    }
}
