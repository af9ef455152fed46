//! Shared state of a running relay, and the small in-RAM registries that live as long as the
//! blobs they point at (device queues, audit trail, download tokens).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use jsonapi::{ApiError, ApiResult};
use serde::Serialize;

use crate::attest::Challenges;
use crate::auth::Caller;
use crate::blobs::BlobStore;
pub use crate::clock::now_ms;
use crate::config::Config;
use crate::db::RelayDb;
use crate::keys::{KeyHash, Plan};
use crate::log_client::LogClient;
use crate::ratelimit::{AddressLimiter, RateLimiter};

/// Blobs queued per device before the oldest is dropped from the queue.
const MAX_QUEUE: usize = 1_000;
/// Audit entries kept per key.
const MAX_AUDIT: usize = 1_000;

/// Everything handlers share; built once at start.
pub struct AppState {
    /// The configuration file.
    pub config: Config,
    /// `relay.redb`.
    pub db: RelayDb,
    /// Payloads in RAM.
    pub blobs: BlobStore,
    /// Uploads whose bodies are being received.
    pub uploads: crate::uploads::UploadGate,
    /// The sector's log.
    pub log: LogClient,
    /// `X-Internal-Auth` secret of our internal API.
    pub internal_token: crypto::Secret,
    /// Blobs announced per device (`stream-next`).
    pub queues: DeviceQueues,
    /// Per-key audit trails.
    pub audit: AuditTrail,
    /// One-time download links.
    pub tokens: DownloadTokens,
    /// Signed receipts confirming recent burns, for `/v2/status/{hash}`.
    pub burn_receipts: BurnReceipts,
    /// Requests of unauthenticated clients, per source address (a fixed-size table).
    pub per_ip: AddressLimiter,
    /// Requests per API key.
    pub per_key: RateLimiter<KeyHash>,
    /// Upload quota windows: one UTC day.
    pub daily_uploads: RateLimiter<KeyHash>,
    /// Receiver-session DID registrations (`inv_…`, no API key) per source address, per hour.
    pub sessions_per_ip: AddressLimiter,
    /// Receiver-session DID registrations of all clients, per hour.
    pub sessions: RateLimiter<()>,
    /// Set on SIGTERM: new uploads are refused, downloads in flight finish.
    pub draining: AtomicBool,
    /// Outgoing webhook calls.
    pub webhooks: crate::webhook::Webhooks,
    /// Attestation challenges issued and one-shot challenges seen.
    pub attest: Challenges,
    /// The sandbox and privileges in force, as `/health` reports them.
    pub hardening: harden::Hardening,
    /// `pk_hash` of the log's key (this relay's identity in the registry), once known.
    pub log_pk_hash: std::sync::OnceLock<String>,
    /// The license: edition, user cap, `plk_` operator keys, support keys, drain orders.
    pub license: license_gate::Gate,
    /// Counts for opted-in license telemetry (`GET /internal/stats`).
    pub stats: crate::stats::Stats,
}

/// The state handlers share.
pub type SharedState = std::sync::Arc<AppState>;

impl AppState {
    /// Applies the per-key request rate (Enterprise keys and the operator's license are exempt).
    pub fn limit_key(&self, caller: &Caller) -> ApiResult<()> {
        if caller.plan() == Plan::Enterprise || caller.is_operator() {
            return Ok(());
        }
        self.per_key
            .check(caller.key_hash(), self.config.limits.requests_per_key_per_minute, now_ms())
            .map_err(|l| ApiError::rate_limited("too many requests for this API key", l.retry_after_secs))
    }

    /// Applies the per-IP request rate of unauthenticated endpoints.
    pub fn limit_ip(&self, ip: IpAddr) -> ApiResult<()> {
        self.per_ip
            .check(ip, self.config.limits.requests_per_ip_per_minute, now_ms())
            .map_err(|l| ApiError::rate_limited("too many requests from this address", l.retry_after_secs))
    }

    /// Refusing uploads: stopping (SIGTERM), or drained by a signed remote action.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed) || self.license.drain_ordered(now_ms())
    }
}

/// Blob hashes announced on one device, with when they were queued (ms).
type Queue = VecDeque<(String, u64)>;

/// Per-(key, device) queues of announced blobs for `/v2/stream-next`.
#[derive(Default)]
pub struct DeviceQueues {
    queues: Mutex<HashMap<(KeyHash, String), Queue>>,
}

impl DeviceQueues {
    /// Announces `hash` on a device's queue.
    pub fn push(&self, key: KeyHash, device: &str, hash: &str, now_ms: u64) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let queue = queues.entry((key, device.to_owned())).or_default();
        if queue.len() >= MAX_QUEUE {
            queue.pop_front();
        }
        queue.push_back((hash.to_owned(), now_ms));
    }

    /// The oldest blob still available, dropping heads that are gone (a peek: the blob stays
    /// queued until it is burned or expires).
    pub fn next(&self, key: KeyHash, device: &str, available: impl Fn(&str) -> bool) -> Option<(String, u64)> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let id = (key, device.to_owned());
        let queue = queues.get_mut(&id)?;
        while let Some((hash, _)) = queue.front() {
            if available(hash) {
                return queue.front().cloned();
            }
            queue.pop_front();
        }
        queues.remove(&id);
        None
    }
}

/// One line of a key's audit trail.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    /// When (ISO-8601 ms).
    pub ts: String,
    /// What (`inbound`, `drop`, `outbound_burn`, …).
    pub event: &'static str,
    /// Which blob.
    pub hash: String,
    /// Its size.
    pub bytes: u64,
    /// The device it was announced on, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// SHA3-256 chain over (previous chain hash, this entry): a gap or edit breaks it.
    pub chain_hash: String,
}

/// Per-key audit trail of uploads and downloads, in RAM like the blobs it describes (the CT
/// log is the durable record).
#[derive(Default)]
pub struct AuditTrail {
    trails: Mutex<HashMap<KeyHash, VecDeque<AuditEntry>>>,
}

impl AuditTrail {
    /// Appends an entry to a key's trail.
    pub fn record(&self, key: KeyHash, event: &'static str, hash: &str, bytes: u64, device: Option<String>) {
        use sha3::{Digest, Sha3_256};
        let mut trails = self.trails.lock().unwrap_or_else(|p| p.into_inner());
        let trail = trails.entry(key).or_default();
        let previous = trail.back().map(|e| e.chain_hash.clone()).unwrap_or_default();
        let ts = wire::iso8601_ms(now_ms());
        let chain = Sha3_256::digest(format!("{previous}|{ts}|{event}|{hash}|{bytes}").as_bytes());
        if trail.len() >= MAX_AUDIT {
            trail.pop_front();
        }
        trail.push_back(AuditEntry { ts, event, hash: hash.to_owned(), bytes, device, chain_hash: hex::encode(chain) });
    }

    /// Newest first.
    pub fn entries(&self, key: &KeyHash, limit: usize) -> Vec<AuditEntry> {
        let trails = self.trails.lock().unwrap_or_else(|p| p.into_inner());
        trails.get(key).map(|t| t.iter().rev().take(limit).cloned().collect()).unwrap_or_default()
    }
}

/// One-time download links (`download_token` → `/v2/dl/{token}`), valid while the blob lives.
#[derive(Default)]
pub struct DownloadTokens {
    tokens: Mutex<HashMap<String, (String, u64)>>,
}

impl DownloadTokens {
    /// A fresh token for `hash`, expiring with it.
    pub fn issue(&self, hash: &str, expires_ms: u64) -> ApiResult<String> {
        let token = crypto::random_token("").map_err(|e| ApiError::internal("rng", &e))?;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(token.clone(), (hash.to_owned(), expires_ms));
        Ok(token)
    }

    /// The blob hash of a live token (constant-time compare is unnecessary: the token is looked
    /// up by its full 256-bit value).
    pub fn resolve(&self, token: &str, now_ms: u64) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.get(token).filter(|(_, expires)| *expires > now_ms).map(|(hash, _)| hash.clone())
    }

    /// Forgets expired tokens (from the 1 s sweeper, not the upload path: a scan per upload
    /// grew with the number of blobs stored).
    pub fn sweep(&self, now_ms: u64) {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, (_, expires)| *expires > now_ms);
    }

    /// Consumes a token (after its download completed).
    pub fn consume(&self, token: &str) {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
    }
}

/// Burns remembered at most (each a few hundred bytes, plus its receipt of about 10 KB once
/// someone asked for it).
const MAX_BURN_RECEIPTS: usize = 10_000;

/// The last burns, for the blob's owner to get the receipt confirming one from
/// `/v2/status/{hash}` (the receipt in the download's headers was signed before the body was
/// sent and cannot confirm the burn). A burn is remembered once its delivery leaf is in the log;
/// its receipt is signed by the log when first asked for, against that leaf, and kept. The
/// oldest are forgotten first.
#[derive(Default)]
pub struct BurnReceipts {
    inner: Mutex<(HashMap<String, Burn>, VecDeque<String>)>,
}

/// One remembered burn.
#[derive(Clone)]
pub struct Burn {
    /// Who may read its receipt.
    pub access: crate::blobs::Access,
    /// What the log signs it from (payload SHA-256, transfer and delivery leaves; never a
    /// drop's lookup id).
    pub request: wire::log_api::BurnReceiptRequest,
    /// The receipt (header form), once signed.
    pub receipt: Option<String>,
}

impl BurnReceipts {
    /// Remembers a burn under its store key.
    pub fn insert(&self, hash: &str, burn: Burn) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *inner;
        if map.insert(hash.to_owned(), burn).is_none() {
            order.push_back(hash.to_owned());
        }
        while order.len() > MAX_BURN_RECEIPTS {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// The burn of a blob, for its owner (anyone, for a drop).
    pub fn for_owner(&self, hash: &str, caller: &KeyHash) -> Option<Burn> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let burn = inner.0.get(hash)?;
        match &burn.access {
            crate::blobs::Access::Owner(owner) if !crypto::ct_eq(owner, caller) => None,
            _ => Some(burn.clone()),
        }
    }

    /// Keeps the signed receipt of a remembered burn (if it is still remembered).
    pub fn keep_receipt(&self, hash: &str, receipt: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(burn) = inner.0.get_mut(hash) {
            burn.receipt = Some(receipt.to_owned());
        }
    }
}
