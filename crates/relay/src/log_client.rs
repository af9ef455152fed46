//! The relay's connection to its sector's log: the internal API (append, deliver, prove) with
//! the shared secret, and forwarding of the public CT endpoints so they answer on the relay's
//! origin too. Pooled HTTP/1.1 keep-alive connections over loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonapi::ApiError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;
use wire::LogEvent;

use crate::ct_cache::CtCache;
use crate::log_batch::Batcher;
use wire::log_api::{BurnReceiptRequest, ReceiptRequest, RegistrationRequest};

/// Longest a log call may take; an append waits for a durable, signed batch.
const LOG_TIMEOUT: Duration = Duration::from_secs(30);
/// Headers of a forwarded answer that reach the client.
const FORWARDED_HEADERS: [&str; 4] = ["content-type", "retry-after", "content-security-policy", "cache-control"];
/// Largest log answer we read (proofs and receipts are a few KiB).
const MAX_LOG_RESPONSE: usize = 1 << 20;

/// Client of one log.
pub struct LogClient {
    link: Arc<Link>,
    /// Appends, sent in batches.
    batcher: Arc<Batcher>,
    public_url: String,
    /// This relay's public base URL, sent with forwarded public reads so the log's feed links
    /// point at the relay's origin (see [`LogClient::with_public_origin`]).
    public_origin: String,
    /// Writes nobody waits for (a delivery is logged after its body was sent); a stopping
    /// relay waits for them in [`LogClient::flush`] so that no burn goes unlogged.
    background: Mutex<JoinSet<()>>,
}

/// The connection to the log's internal API, shared with the append batcher.
pub struct Link {
    client: Client<HttpConnector, Full<Bytes>>,
    pub internal_url: String,
    pub token: crypto::Secret,
    /// Public GET answers, kept briefly (see `ct_cache`); emptied by every append.
    pub cache: CtCache,
}

/// The log's receipt answer ([`wire::log_api::ReceiptAnswer`]), as the relay sends it on.
#[derive(Deserialize)]
struct ReceiptAnswer {
    receipt_header: String,
}

/// What an append returned: the API's `merkle_proof` object and the leaf hash.
pub struct Appended {
    pub leaf_hash: String,
    pub leaf_index: u64,
    pub merkle_proof: ProofJson,
}

/// The API's `merkle_proof` object, already rendered as JSON: `{"audit_path","leaf_hash",
/// "leaf_index","root","sth","sth_signature","tree_size"}` (keys in this order, as
/// `serde_json::Value` writes them). The part with the signed tree head and its signature —
/// most of the bytes — is rendered once per batch and shared by every proof under it.
pub struct ProofJson {
    /// `{"audit_path":…,"leaf_hash":…,"leaf_index":…,"root":…,`
    head: String,
    /// `"sth":{…},"sth_signature":"…"` of this proof's STH.
    sth: Arc<str>,
    tree_size: u64,
}

impl ProofJson {
    /// Renders the shared part of every proof under `sth`.
    pub fn render_sth(sth: &wire::SignedSth) -> Result<Arc<str>, ApiError> {
        let encode = |e: serde_json::Error| ApiError::internal("encode", &e);
        // Through `Value`, so the STH's keys come sorted, as in a `json!` answer.
        let object = serde_json::to_string(&serde_json::to_value(sth).map_err(encode)?).map_err(encode)?;
        let signature = serde_json::to_string(&sth.signature).map_err(encode)?;
        Ok(format!("\"sth\":{object},\"sth_signature\":{signature}").into())
    }

    pub fn new(
        audit_path: &[wire::AuditStep],
        leaf_hash: &str,
        leaf_index: u64,
        root: &str,
        sth: Arc<str>,
        tree_size: u64,
    ) -> Result<Self, ApiError> {
        let encode = |e: serde_json::Error| ApiError::internal("encode", &e);
        let mut head = String::with_capacity(96 * audit_path.len() + 192);
        head.push_str("{\"audit_path\":");
        head.push_str(&serde_json::to_string(audit_path).map_err(encode)?);
        head.push_str(",\"leaf_hash\":");
        head.push_str(&serde_json::to_string(leaf_hash).map_err(encode)?);
        head.push_str(",\"leaf_index\":");
        head.push_str(&leaf_index.to_string());
        head.push_str(",\"root\":");
        head.push_str(&serde_json::to_string(root).map_err(encode)?);
        head.push(',');
        Ok(Self { head, sth, tree_size })
    }

    /// Appends the object to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(self.sth.as_bytes());
        out.extend_from_slice(b",\"tree_size\":");
        out.extend_from_slice(self.tree_size.to_string().as_bytes());
        out.push(b'}');
    }

    /// About how many bytes [`ProofJson::write_to`] appends.
    pub fn len_hint(&self) -> usize {
        self.head.len() + self.sth.len() + 40
    }
}

impl LogClient {
    pub fn new(internal_url: &str, public_url: &str, token: crypto::Secret) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let link = Arc::new(Link {
            client: Client::builder(TokioExecutor::new()).build(connector),
            internal_url: internal_url.trim_end_matches('/').to_owned(),
            token,
            cache: CtCache::default(),
        });
        Self {
            batcher: Batcher::new(link.clone()),
            link,
            public_url: public_url.trim_end_matches('/').to_owned(),
            public_origin: String::new(),
            background: Mutex::default(),
        }
    }

    /// Names this relay's public base URL (e.g. `https://relay.example.org`) to the log.
    #[must_use]
    pub fn with_public_origin(mut self, origin: &str) -> Self {
        self.public_origin = origin.trim_end_matches('/').to_owned();
        self
    }

    /// Runs `write` (a log call whose answer nobody waits for) as a task of the runtime.
    pub fn spawn_write(&self, write: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.background.lock().unwrap_or_else(|p| p.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(write);
    }

    /// Waits for every write started with [`LogClient::spawn_write`] (each is bounded by the
    /// log call timeout).
    pub async fn flush(&self) {
        let mut tasks = std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        while tasks.join_next().await.is_some() {}
    }

    /// Appends an event (its timestamp is the log's to set) and returns its proof, once the
    /// event is durable in the log under a signed STH (sent in a batch, see `log_batch`).
    pub async fn append(&self, event: LogEvent) -> Result<Appended, ApiError> {
        let json = serde_json::to_vec(&event).map_err(|e| ApiError::internal("encode", &e))?;
        self.batcher.append(json).await
    }

    /// A signed receipt (header value) proving the transfer leaf against the newest STH; it
    /// does not confirm a burn (it is sent before the body).
    pub async fn receipt(&self, blob_hash: &str, sector: &str, transfer_leaf_hash: &str) -> Result<String, ApiError> {
        let body = ReceiptRequest {
            blob_hash: blob_hash.to_owned(),
            sector: sector.to_owned(),
            transfer_leaf_hash: transfer_leaf_hash.to_owned(),
        };
        let answer: ReceiptAnswer = self.internal("/internal/receipt", &body).await?;
        Ok(answer.receipt_header)
    }

    /// The receipt (header value) confirming the burn that the delivery leaf
    /// `delivery_leaf_hash` recorded; the log signs it only for such a leaf.
    pub async fn burn_receipt(&self, request: &BurnReceiptRequest) -> Result<String, ApiError> {
        let answer: ReceiptAnswer = self.internal("/internal/burn-receipt", request).await?;
        Ok(answer.receipt_header)
    }

    /// The relay's registry entry, signed by the log ([`wire::SignedRegistration`]).
    pub async fn sign_registration(
        &self,
        url: &str,
        version: &str,
        edition: &str,
    ) -> Result<wire::SignedRegistration, ApiError> {
        let request =
            RegistrationRequest { url: url.to_owned(), version: version.to_owned(), edition: edition.to_owned() };
        self.internal("/internal/sign-registration", &request).await
    }

    async fn internal<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, ApiError> {
        self.link.internal(path, body).await
    }

    /// Forwards a public CT request (GET or POST with a small body) to the log and relays the
    /// answer as is; `client_ip` travels as `X-Real-IP` for the log's per-IP limits. A GET is
    /// answered from the cache while its answer is fresh (see `ct_cache`).
    pub async fn forward_public(
        &self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
        client_ip: &str,
    ) -> Result<Response<Body>, ApiError> {
        let miss = if method == Method::GET {
            match self.link.cache.get(path_and_query) {
                Ok(hit) => return Ok(hit),
                Err(miss) => Some(miss),
            }
        } else {
            None
        };
        let uri: Uri = format!("{}{path_and_query}", self.public_url)
            .parse()
            .map_err(|_| ApiError::bad_request("invalid request path"))?;
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-real-ip", client_ip)
            .header("x-paramant-public-origin", self.public_origin.as_str())
            .body(Full::new(body))
            .map_err(|e| ApiError::internal("forward", &e))?;
        let response = tokio::time::timeout(LOG_TIMEOUT, self.link.client.request(request))
            .await
            .map_err(|_| ApiError::unavailable("log_unavailable", "the transparency log is not answering", 5))?
            .map_err(|e| ApiError::internal("forward", &e))?;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, 4 * MAX_LOG_RESPONSE)
            .collect()
            .await
            .map_err(|e| ApiError::internal("forward body", &e))?
            .to_bytes();
        let headers: Vec<(HeaderName, HeaderValue)> = FORWARDED_HEADERS
            .iter()
            .filter_map(|name| Some((HeaderName::from_static(name), parts.headers.get(*name)?.clone())))
            .collect();
        if let Some(miss) = miss {
            self.link.cache.put(miss, path_and_query, parts.status, &headers, &bytes);
        }
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() = parts.status;
        for (name, value) in headers {
            out.headers_mut().insert(name, value);
        }
        Ok(out)
    }
}

impl Link {
    /// Calls the internal API; a success is parsed as `T` (a log answer that does not fit is
    /// the relay's problem, a 500), a refusal becomes the relay's answer.
    pub async fn internal<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, ApiError> {
        let uri: Uri = format!("{}{path}", self.internal_url).parse().map_err(|e| ApiError::internal("log url", &e))?;
        let request = Request::post(uri)
            .header("content-type", "application/json")
            .header("x-internal-auth", self.token.danger_expose())
            .body(Full::new(Bytes::from(serde_json::to_vec(body).map_err(|e| ApiError::internal("encode", &e))?)))
            .map_err(|e| ApiError::internal("log request", &e))?;
        let (status, bytes) = self.send(request).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ApiError::internal("log answer", &e));
        }
        Err(self.refusal(status, &bytes))
    }

    /// The relay's answer to a log that did not say yes: a client error of ours maps to a 4xx
    /// of the relay only when the log says 4xx; anything else is the relay's problem.
    pub fn refusal(&self, status: StatusCode, bytes: &[u8]) -> ApiError {
        if status.is_client_error() {
            let answer: Value = serde_json::from_slice(bytes).unwrap_or_default();
            let detail = answer["detail"].as_str().unwrap_or("the log refused the request").to_owned();
            return ApiError::new(status, "log_refused", detail);
        }
        ApiError::unavailable("log_unavailable", "the transparency log is not answering", 5)
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), ApiError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            crate::DAEMON.log(format_args!("log call failed: {e}"));
            ApiError::unavailable("log_unavailable", "the transparency log is not answering", 5)
        };
        let response = tokio::time::timeout(LOG_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| unavailable(&"timeout"))?
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_LOG_RESPONSE)
            .collect()
            .await
            .map_err(|e| unavailable(&e))?
            .to_bytes();
        Ok((status, bytes))
    }
}
