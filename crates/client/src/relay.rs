//! The relay's HTTP API, as a blocking client (ureq; TLS with rustls and the web PKI roots).

use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};
use ureq::{Agent, Body, SendBody, http::Response};

use crate::Error;

/// The largest body read from a relay: a 5 MiB blob, base64 inflated, with room to spare.
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// The largest JSON answer read from a relay (STH lists, peers, feeds).
const MAX_JSON: u64 = 8 * 1024 * 1024;

/// Told how many bytes of a transfer are done.
pub trait Progress {
    /// `done` of `total` bytes transferred.
    fn update(&self, done: u64, total: u64);
}

/// No progress reporting.
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _: u64, _: u64) {}
}

/// A relay (or log) origin and, for the data plane, an API key.
pub struct Relay {
    base: String,
    api_key: Option<String>,
    agent: Agent,
}

/// A downloaded blob and the relay's headers about it.
pub struct Download {
    /// The bytes as stored (padded).
    pub bytes: Vec<u8>,
    /// `X-Paramant-Receipt`, base64url.
    pub receipt: Option<String>,
    /// `X-Paramant-Burned`.
    pub burned: Option<bool>,
}

impl Relay {
    /// A client for `base` (`https://relay.example` or `http://127.0.0.1:PORT`).
    ///
    /// # Errors
    /// [`Error::Usage`] when `base` is not an http(s) URL.
    pub fn new(base: &str, api_key: Option<String>) -> Result<Self, Error> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Usage(format!("relay URL must start with http:// or https:// (got {base:?})")));
        }
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .timeout_connect(Some(Duration::from_secs(15)))
            .user_agent(concat!("paramant-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self { base, api_key, agent })
    }

    /// The origin this client talks to.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    fn key(&self) -> Result<&str, Error> {
        self.api_key.as_deref().ok_or_else(|| {
            Error::Usage("this command needs an API key: --api-key, PARAMANT_API_KEY or --dev dev.json".into())
        })
    }

    fn transport(&self, what: &str, e: &ureq::Error) -> Error {
        Error::Transport(format!("{}{what}: {e}", self.base))
    }

    /// GET a JSON document (public; the API key is sent when `auth`).
    ///
    /// # Errors
    /// Transport errors and non-2xx answers.
    pub fn get_json(&self, path: &str, auth: bool) -> Result<Value, Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if auth {
            request = request.header("X-Api-Key", self.key()?);
        }
        let response = request.call().map_err(|e| self.transport(path, &e))?;
        self.json_of(path, response)
    }

    /// GET a text document (the RSS feed).
    ///
    /// # Errors
    /// Transport errors and non-2xx answers.
    pub fn get_text(&self, path: &str) -> Result<String, Error> {
        let mut response =
            self.agent.get(format!("{}{path}", self.base)).call().map_err(|e| self.transport(path, &e))?;
        let status = response.status().as_u16();
        let text =
            response.body_mut().with_config().limit(MAX_JSON).read_to_string().map_err(|e| self.transport(path, &e))?;
        if !(200..300).contains(&status) {
            return Err(Error::Status { what: path.into(), status, detail: shorten(&text) });
        }
        Ok(text)
    }

    /// POST a JSON body (the API key is sent when `auth`).
    ///
    /// # Errors
    /// Transport errors and non-2xx answers.
    pub fn post_json(&self, path: &str, body: &Value, auth: bool) -> Result<Value, Error> {
        let mut request = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if auth {
            request = request.header("X-Api-Key", self.key()?);
        }
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Usage(e.to_string()))?;
        let response = request.send(&bytes[..]).map_err(|e| self.transport(path, &e))?;
        self.json_of(path, response)
    }

    fn json_of(&self, path: &str, mut response: Response<Body>) -> Result<Value, Error> {
        let status = response.status().as_u16();
        let bytes =
            response.body_mut().with_config().limit(MAX_JSON).read_to_vec().map_err(|e| self.transport(path, &e))?;
        if !(200..300).contains(&status) {
            return Err(Error::Status { what: path.into(), status, detail: shorten(&String::from_utf8_lossy(&bytes)) });
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Transport(format!("{}{path}: not JSON: {e}", self.base)))
    }

    /// Registers a device's public keys (`POST /v2/pubkey`, the SDK's hex form).
    ///
    /// # Errors
    /// As [`Relay::post_json`].
    pub fn register_device(&self, device: &str, kem_pub: &[u8], dsa_pub: &[u8]) -> Result<Value, Error> {
        use sha2::Digest;
        // The SDK registers SHA-256 of its ML-KEM key as the legacy `ecdh_pub` anchor.
        let anchor = sha2::Sha256::digest(kem_pub);
        let body = json!({
            "device_id": device,
            "ecdh_pub": hex::encode(anchor),
            "kyber_pub": hex::encode(kem_pub),
            "dsa_pub": hex::encode(dsa_pub),
        });
        self.post_json("/v2/pubkey", &body, true)
    }

    /// A device's registered ML-KEM-768 key (`GET /v2/pubkey/{device}`): (key, fingerprint
    /// as the SDK computes it).
    ///
    /// # Errors
    /// The device has no keys (404 → [`Error::Status`]), or they are not hex.
    pub fn device_key(&self, device: &str) -> Result<(Vec<u8>, String), Error> {
        let path = format!("/v2/pubkey/{}", crate::store::safe_name(device)?);
        let doc = self.get_json(&path, true)?;
        let field = |name: &str| doc.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
        let kem_hex = field("kyber_pub");
        let kem = hex::decode(&kem_hex)
            .map_err(|_| Error::Invalid(format!("device {device}: kyber_pub is not hex (not an SDK 3 device)")))?;
        let ecdh = hex::decode(field("ecdh_pub")).unwrap_or_default();
        Ok((kem, fingerprint(&hex::decode(&kem_hex).unwrap_or_default(), &ecdh)))
    }

    /// Uploads a blob (`POST /v2/inbound`): `fields` (hash, ttl_ms, …) plus `"payload"`, the
    /// blob in base64, encoded while the body streams out — the base64 text and the JSON body
    /// are never held in memory. Reports progress.
    ///
    /// # Errors
    /// As [`Relay::post_json`].
    pub fn inbound(&self, fields: &Value, blob: &[u8], progress: &dyn Progress) -> Result<Value, Error> {
        let mut prefix = serde_json::to_vec(fields).map_err(|e| Error::Usage(e.to_string()))?;
        if prefix.pop() != Some(b'}') {
            return Err(Error::Usage("inbound fields must be a JSON object".into()));
        }
        prefix.extend_from_slice(if prefix.len() > 1 { b",\"payload\":\"" } else { b"\"payload\":\"" });
        let total = (prefix.len() + blob.len().div_ceil(3) * 4 + 2) as u64;
        let body = (&prefix[..]).chain(Base64Reader { blob, at: 0, out: String::new(), sent: 0 }).chain(&b"\"}"[..]);
        let mut reader = Counting { inner: body, done: 0, total, progress };
        let response = self
            .agent
            .post(format!("{}/v2/inbound", self.base))
            .header("Content-Type", "application/json")
            .header("Content-Length", total.to_string())
            .header("X-Api-Key", self.key()?)
            .send(SendBody::from_reader(&mut reader))
            .map_err(|e| self.transport("/v2/inbound", &e))?;
        self.json_of("/v2/inbound", response)
    }

    /// Downloads (and so burns) a blob (`GET /v2/outbound/{hash}`), reporting progress.
    ///
    /// # Errors
    /// 404 when it is gone or never existed, transport errors.
    pub fn outbound(&self, hash: &str, progress: &dyn Progress) -> Result<Download, Error> {
        let hash = hex_hash(hash)?;
        let path = format!("/v2/outbound/{hash}");
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", self.key()?)
            .call()
            .map_err(|e| self.transport(&path, &e))?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let receipt = header("x-paramant-receipt");
        let burned = header("x-paramant-burned").map(|v| v == "true");
        let total = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if !(200..300).contains(&status) {
            let detail = response.body_mut().with_config().limit(MAX_JSON).read_to_string().unwrap_or_default();
            return Err(Error::Status { what: path, status, detail: shorten(&detail) });
        }
        let mut reader = response.body_mut().with_config().limit(MAX_BODY).reader();
        let mut bytes = Vec::with_capacity(usize::try_from(total).unwrap_or(0).min(MAX_BODY as usize));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| Error::Transport(format!("{}{path}: {e}", self.base)))?;
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
            progress.update(bytes.len() as u64, total.max(bytes.len() as u64));
        }
        Ok(Download { bytes, receipt, burned })
    }

    /// The receipt confirming a burn, once the relay has consumed the view (it does so after
    /// the client's TCP stack acknowledged the whole body, so shortly after a download ends):
    /// `GET /v2/status/{hash}` answers the owner `burned: true` with `burn_receipt`. `None`
    /// while the blob is still there or the relay kept no confirmed receipt.
    ///
    /// # Errors
    /// Transport errors.
    pub fn burn_receipt(&self, hash: &str) -> Result<Option<String>, Error> {
        let path = format!("/v2/status/{}", hex_hash(hash)?);
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", self.key()?)
            .call()
            .map_err(|e| self.transport(&path, &e))?;
        let bytes =
            response.body_mut().with_config().limit(MAX_JSON).read_to_vec().map_err(|e| self.transport(&path, &e))?;
        let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(doc["burn_receipt"].as_str().filter(|_| doc["burned"] == Value::Bool(true)).map(str::to_owned))
    }
}

/// The SDK's device fingerprint: SHA-256(kyber_pub ‖ ecdh_pub), first 20 hex, upper case, in
/// groups of four.
#[must_use]
pub fn fingerprint(kem_pub: &[u8], ecdh_pub: &[u8]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(kem_pub);
    h.update(ecdh_pub);
    let hex = hex::encode_upper(h.finalize());
    [&hex[0..4], &hex[4..8], &hex[8..12], &hex[12..16], &hex[16..20]].join("-")
}

/// Checks a blob address: 64 hex characters (lower-cased).
///
/// # Errors
/// [`Error::Usage`] otherwise.
pub fn hex_hash(hash: &str) -> Result<String, Error> {
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash)
    } else {
        Err(Error::Usage(format!("{hash:?} is not a blob hash (64 hex characters)")))
    }
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

struct Counting<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.update(self.done, self.total);
        Ok(n)
    }
}

/// Standard base64 (padded) of a blob, encoded 48 KiB at a time as it is read.
struct Base64Reader<'a> {
    blob: &'a [u8],
    at: usize,
    out: String,
    sent: usize,
}

impl Read for Base64Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use base64::Engine;
        if self.sent == self.out.len() {
            // A multiple of 3 bytes, so only the last chunk carries padding.
            let end = (self.at + 48 * 1024).min(self.blob.len());
            self.out.clear();
            base64::engine::general_purpose::STANDARD.encode_string(&self.blob[self.at..end], &mut self.out);
            self.at = end;
            self.sent = 0;
        }
        let n = buf.len().min(self.out.len() - self.sent);
        buf[..n].copy_from_slice(&self.out.as_bytes()[self.sent..self.sent + n]);
        self.sent += n;
        Ok(n)
    }
}
