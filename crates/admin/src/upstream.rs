//! Clients of the internal APIs the panel drives: each sector relay's (`/internal/keys`: API
//! keys and plans) and the sector log's (`/internal/append`, `/internal/prove`: admin-action
//! leaves and their inclusion proofs). Loopback HTTP/1.1 with the shared `X-Internal-Auth`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonapi::ApiError;
use serde_json::{Value, json};

/// Longest an internal call may take (a log append waits for a durable, signed batch).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read (key lists of a big relay stay far below).
const MAX_RESPONSE: usize = 16 << 20;

/// Why an internal call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No answer (connection refused, timeout, unreadable answer).
    #[error("{service} unreachable: {detail}")]
    Unreachable {
        /// Which service.
        service: String,
        /// What went wrong, for the operator.
        detail: String,
    },
    /// An answer other than 2xx.
    #[error("{service} answered {status}: {body}")]
    Refused {
        /// Which service.
        service: String,
        /// The HTTP status it answered.
        status: u16,
        /// Its JSON answer.
        body: Value,
    },
}

impl UpstreamError {
    /// The HTTP status the service answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            Self::Unreachable { .. } => None,
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        // A relay's own user cap (the final choke point) is the same 402 as ours, never a 5xx.
        if let UpstreamError::Refused { status: 402, body, .. } = &e {
            let detail = body["detail"].as_str().unwrap_or("user limit reached on a relay").to_owned();
            return ApiError::new(hyper::StatusCode::PAYMENT_REQUIRED, "tier_limit_users", detail).with_fields(body);
        }
        crate::DAEMON.log(&e);
        ApiError::unavailable("upstream_unavailable", "a relay or the log did not complete the request", 30)
    }
}

/// One internal API: base URL and token.
pub struct Upstream {
    /// Which service this is, for messages: the relay's sector, or `log`.
    pub name: String,
    base: String,
    token: crypto::Secret,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Upstream {
    /// The internal API at `base`, authenticated with `token`.
    pub fn new(name: &str, base: &str, token: crypto::Secret) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Self {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            token,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Calls `method path` with an optional JSON body; the answer's JSON on 2xx.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, UpstreamError> {
        let unreachable = |detail: String| UpstreamError::Unreachable { service: self.name.clone(), detail };
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("x-internal-auth", self.token.danger_expose())
            .header("content-type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| unreachable(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, UpstreamError>((status, body))
        };
        let (status, body) =
            tokio::time::timeout(CALL_TIMEOUT, exchange).await.map_err(|_| unreachable("timed out".into()))??;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != StatusCode::OK {
            return Err(UpstreamError::Refused { service: self.name.clone(), status: status.as_u16(), body: value });
        }
        Ok(value)
    }
}

/// The relays of every sector.
pub struct Relays {
    /// One internal API per sector relay.
    pub relays: Vec<Upstream>,
}

impl Relays {
    /// Stores the key (by hash) with `plan` on every relay. If one refuses, the key is
    /// deactivated on those that took it, so no relay is left with a key the account lacks.
    pub async fn create_key(&self, key_hash: &str, plan: &str, label: &str) -> Result<(), UpstreamError> {
        let body = json!({ "key_hash": key_hash, "plan": plan, "label": label });
        let mut done = Vec::new();
        for relay in &self.relays {
            match relay.call(Method::POST, "/internal/keys", Some(&body)).await {
                Ok(_) => done.push(relay),
                Err(e) => {
                    for undo in done {
                        let _ = undo.call(Method::POST, "/internal/keys/update", Some(&deactivate(key_hash))).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Sets `active` and/or `plan` of a key on every relay. A relay that does not know the key
    /// (404) is skipped; every other failure is an error after all relays were tried.
    pub async fn update_key(
        &self,
        key_hash: &str,
        plan: Option<&str>,
        active: Option<bool>,
    ) -> Result<usize, UpstreamError> {
        let mut body = json!({ "key_hash": key_hash });
        if let Some(plan) = plan {
            body["plan"] = plan.into();
        }
        if let Some(active) = active {
            body["active"] = active.into();
        }
        let mut updated = 0;
        let mut failure = None;
        for relay in &self.relays {
            match relay.call(Method::POST, "/internal/keys/update", Some(&body)).await {
                Ok(_) => updated += 1,
                Err(e) if e.status() == Some(404) => {}
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(updated),
        }
    }

    /// Every relay's key list: `(sector, keys)`; keys carry hashes, never the keys.
    pub async fn list_keys(&self) -> Vec<(String, Result<Vec<Value>, UpstreamError>)> {
        let mut out = Vec::new();
        for relay in &self.relays {
            let keys = relay
                .call(Method::GET, "/internal/keys", None)
                .await
                .map(|v| v["keys"].as_array().cloned().unwrap_or_default());
            out.push((relay.name.clone(), keys));
        }
        out
    }
}

fn deactivate(key_hash: &str) -> Value {
    json!({ "key_hash": key_hash, "active": false })
}
