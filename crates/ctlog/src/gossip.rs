//! Peer STH gossip: `/v2/sth/ingest` archives other logs' signed tree heads after checking
//! them, pins each peer's key to its relay id, and records fork evidence. Also pushes our own
//! newest STH to configured peers.
//!
//! The reference relay trusted self-supplied keys with no time window; here a key is pinned on
//! first sight (or from configuration) to one relay id and a relay id to one key, timestamps
//! must be within the configured skew, and roots are compared as canonical lower-case hex.
//! Evidence is recorded only for two heads the peer's key signed that cannot both be true: two
//! roots for one size, or a smaller tree signed later than a larger one. An older head replayed
//! (smaller and earlier) is refused as stale, and a failed consistency proof (unsigned bytes
//! from the network) is refused without evidence.
//!
//! Configured peers always have a place. Unconfigured ones are bounded by `max_peers`, admitted
//! at most [`NEW_PEERS_PER_MINUTE`] a minute, and the least recently heard one is evicted to
//! make room; each peer keeps its newest [`MAX_HISTORY`] heads.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crypto::LogVerifyingKey;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;
use wire::{SignedSth, SthBody};

use crate::config::{Config, GossipConfig};
use crate::error::{ApiError, ApiResult};
use crate::peer_client;
use crate::sequencer::now_ms;
use crate::store::{GossipTables, LogStore, StoreError};

/// Most client IPs tracked by the ingest rate limiter before stale windows are dropped.
const MAX_TRACKED_IPS: usize = 10_000;
/// Most signed heads kept per peer (the newest); evidence copies the heads it needs.
pub const MAX_HISTORY: u64 = 64;
/// Most unconfigured peers admitted per minute (all sources together).
pub const NEW_PEERS_PER_MINUTE: u32 = 10;

/// A gossiped STH as peers send it (defined once in `wire`).
pub use wire::log_api::GossipSth as IngestRequest;

/// What we keep about a peer (served by `/v2/sth/peers`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerRecord {
    pub relay_pk_hash: String,
    pub relay_id: String,
    pub public_key: String,
    pub sth_count: u64,
    pub latest_root: String,
    pub latest_tree_size: u64,
    pub latest_ts: String,
    pub latest_timestamp: u64,
    pub first_seen: String,
    /// Whether the newest growth was checked with the peer's consistency proof.
    pub consistency: String,
    pub forks: u64,
}

/// Gossip state: configuration and the per-IP rate limiter.
pub struct Gossip {
    config: GossipConfig,
    own_relay_id: String,
    own_pk_hash: [u8; 32],
    /// Per IP: (minute window, requests in it).
    limiter: Mutex<HashMap<IpAddr, (u64, u32)>>,
    /// New unconfigured peers: (minute window, admitted in it).
    admissions: Mutex<(u64, u32)>,
}

impl Gossip {
    pub fn new(config: &Config, own_pk_hash: [u8; 32]) -> Self {
        Self {
            config: config.gossip.clone(),
            own_relay_id: config.relay_id.clone(),
            own_pk_hash,
            limiter: Mutex::new(HashMap::new()),
            admissions: Mutex::new((0, 0)),
        }
    }

    /// Checks and archives one STH; returns the peer's pk_hash (hex).
    pub async fn ingest(&self, store: &LogStore, request: IngestRequest) -> ApiResult<String> {
        let (key, body) = parse(&request)?;
        let pk_hash = key.pk_hash();
        let configured = self.check_identity(store, &body.relay_id, &pk_hash)?;
        self.check_fresh(body.timestamp)?;
        let previous = match store.snapshot()?.peer(&pk_hash)? {
            Some(raw) => Some(decode_record(&raw)?),
            None => None,
        };
        let consistency = match &previous {
            Some(prev) => self.check_growth(store, prev, &request, &body).await?,
            None => {
                if !configured {
                    self.admit_new_peer()?;
                }
                "first".to_string()
            }
        };
        let sth_json = serde_json::to_vec(&SignedSth {
            body: body.clone(),
            signature: request.signature.clone(),
            pk_hash: hex::encode(pk_hash),
        })
        .map_err(|e| ApiError::internal("encode sth", &e))?;
        let max_peers = self.config.max_peers;
        let public_key = request.public_key.clone();
        let is_configured = |pk: &[u8; 32]| self.configured_keys().contains(pk);
        store.gossip_write(|t| {
            archive(t, &pk_hash, &public_key, &body, &sth_json, &consistency, max_peers, configured, &is_configured)
        })??;
        Ok(hex::encode(pk_hash))
    }

    /// Fingerprints of the configured peers' keys.
    fn configured_keys(&self) -> Vec<[u8; 32]> {
        self.config
            .peers
            .iter()
            .filter_map(|p| wire::parse_b64(&p.public_key).ok())
            .filter_map(|k| LogVerifyingKey::from_bytes(&k).ok())
            .map(|k| k.pk_hash())
            .collect()
    }

    /// Counts one admission of an unconfigured peer; refuses past [`NEW_PEERS_PER_MINUTE`].
    fn admit_new_peer(&self) -> ApiResult<()> {
        let minute = now_ms() / 60_000;
        let mut window = self.admissions.lock().map_err(|_| ApiError::internal("admissions", &"poisoned"))?;
        if window.0 != minute {
            *window = (minute, 0);
        }
        if window.1 >= NEW_PEERS_PER_MINUTE {
            return Err(ApiError::rate_limited("too many new peers; try again in a minute", 60));
        }
        window.1 += 1;
        Ok(())
    }

    /// Counts one ingest request from `ip`; refuses past the configured rate per minute.
    pub fn rate_limit(&self, ip: IpAddr) -> ApiResult<()> {
        let minute = now_ms() / 60_000;
        let mut map = self.limiter.lock().map_err(|_| ApiError::internal("limiter", &"poisoned"))?;
        if map.len() >= MAX_TRACKED_IPS {
            map.retain(|_, (window, _)| *window == minute);
        }
        let entry = map.entry(ip).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        if entry.1 > self.config.ingest_per_ip_per_minute {
            return Err(ApiError::rate_limited("too many STH submissions from this address", 60));
        }
        Ok(())
    }

    /// A relay id is bound to one key: our own id to our key, configured peers to theirs,
    /// everyone else to the first key seen with that id; and a key signs for one relay id only.
    /// Returns whether the relay id is a configured peer's.
    fn check_identity(&self, store: &LogStore, relay_id: &str, pk_hash: &[u8; 32]) -> ApiResult<bool> {
        let one_id = |other: &str| {
            ApiError::conflict("key_mismatch", format!("this key signs for relay_id {other}, not {relay_id}"))
        };
        if *pk_hash == self.own_pk_hash && relay_id != self.own_relay_id {
            return Err(one_id(&self.own_relay_id));
        }
        if let Some(peer) =
            self.config.peers.iter().find(|p| p.relay_id != relay_id && self.key_of(p) == Some(*pk_hash))
        {
            return Err(one_id(&peer.relay_id));
        }
        if let Some(raw) = store.snapshot()?.peer(pk_hash)? {
            let record = decode_record(&raw)?;
            if record.relay_id != relay_id {
                return Err(one_id(&record.relay_id));
            }
        }
        let configured = self.config.peers.iter().any(|p| p.relay_id == relay_id);
        let pinned = if relay_id == self.own_relay_id {
            Some(self.own_pk_hash)
        } else if let Some(peer) = self.config.peers.iter().find(|p| p.relay_id == relay_id) {
            let key = wire::parse_b64(&peer.public_key)
                .ok()
                .and_then(|k| LogVerifyingKey::from_bytes(&k).ok())
                .ok_or_else(|| ApiError::internal("configured peer key", &relay_id))?;
            Some(key.pk_hash())
        } else {
            store.snapshot()?.pinned_key(relay_id)?
        };
        match pinned {
            Some(p) if p != *pk_hash => {
                Err(ApiError::conflict("key_mismatch", format!("relay_id {relay_id} is pinned to another key")))
            }
            _ => Ok(configured),
        }
    }

    fn key_of(&self, peer: &crate::config::PeerConfig) -> Option<[u8; 32]> {
        let key = wire::parse_b64(&peer.public_key).ok()?;
        Some(LogVerifyingKey::from_bytes(&key).ok()?.pk_hash())
    }

    fn check_fresh(&self, timestamp: u64) -> ApiResult<()> {
        let skew_ms = self.config.max_clock_skew_secs * 1000;
        if now_ms().abs_diff(timestamp) > skew_ms {
            return Err(ApiError::bad_request(format!(
                "timestamp_out_of_window: STH timestamp must be within {} s of now",
                self.config.max_clock_skew_secs
            )));
        }
        Ok(())
    }

    /// Refuses contradictions, stale heads and (when the peer's URL is configured) growth
    /// without a valid consistency proof. Evidence is stored only for two signed heads that
    /// cannot both be true (M5): the same size with two roots, or a smaller tree signed later.
    async fn check_growth(
        &self,
        store: &LogStore,
        prev: &PeerRecord,
        request: &IngestRequest,
        body: &SthBody,
    ) -> ApiResult<String> {
        let offending =
            SignedSth { body: body.clone(), signature: request.signature.clone(), pk_hash: prev.relay_pk_hash.clone() };
        let evidence = |kind: &str, detail: &str| -> ApiResult<serde_json::Value> {
            let previous = store
                .snapshot()?
                .peer_sths(&parse_pk(&prev.relay_pk_hash)?, prev.sth_count.saturating_sub(1), 1)?
                .pop()
                .map(|raw| serde_json::from_slice::<serde_json::Value>(&raw))
                .transpose()
                .map_err(|e| ApiError::internal("stored peer sth", &e))?;
            Ok(json!({
                "kind": kind,
                "relay_id": body.relay_id,
                "relay_pk_hash": prev.relay_pk_hash,
                "public_key": prev.public_key,
                "detail": detail,
                "detected_at": wire::iso8601_ms(now_ms()),
                "previous": previous,
                "offending": offending,
            }))
        };
        // I1: the root is compared as canonical lower-case hex.
        let same_root = body.sha3_root.eq_ignore_ascii_case(&prev.latest_root);
        if body.tree_size == prev.latest_tree_size {
            if !same_root {
                record_fork(store, &prev.relay_pk_hash, evidence("fork", "two signed roots for one tree size")?)?;
                return Err(ApiError::conflict("fork_detected", "different root for an already seen tree size"));
            }
            return Ok(prev.consistency.clone());
        }
        if body.tree_size < prev.latest_tree_size {
            if body.timestamp > prev.latest_timestamp {
                record_fork(
                    store,
                    &prev.relay_pk_hash,
                    evidence("shrink", "a smaller tree signed after a larger one")?,
                )?;
                return Err(ApiError::conflict("tree_shrank", "tree size is smaller than an earlier STH of this peer"));
            }
            // An older head replayed: true once, and no contradiction; nothing to record.
            return Err(ApiError::conflict("stale_sth", "a newer head of this peer is already known"));
        }
        if body.timestamp <= prev.latest_timestamp {
            return Err(ApiError::conflict("timestamp_regression", "a larger tree must carry a later timestamp"));
        }
        let Some(url) = self.peer_url(&body.relay_id) else {
            return Ok("unchecked".into());
        };
        match peer_client::consistency_proof(url, prev.latest_tree_size, body.tree_size).await {
            Err(e) => Ok(format!("unchecked: {e}")),
            Ok(proof) => {
                let old =
                    wire::parse_hash_hex(&prev.latest_root).map_err(|_| ApiError::internal("stored root", &"hex"))?;
                let new = wire::parse_hash_hex(&body.sha3_root)
                    .map_err(|_| ApiError::bad_request("sha3_root must be 64 hex characters"))?;
                match tlog::verify_consistency::<tlog::Sha3_256>(
                    prev.latest_tree_size,
                    body.tree_size,
                    &proof,
                    &old,
                    &new,
                ) {
                    Ok(()) => Ok("verified".into()),
                    // The proof is unsigned bytes from the network: a reason to refuse, not
                    // evidence against the peer.
                    Err(_) => Err(ApiError::conflict(
                        "inconsistent",
                        "the peer's consistency proof does not show this tree extends its earlier one",
                    )),
                }
            }
        }
    }

    fn peer_url(&self, relay_id: &str) -> Option<&str> {
        self.config.peers.iter().find(|p| p.relay_id == relay_id)?.url.as_deref()
    }
}

/// Parses and signature-checks the request; the returned body is exactly what was signed.
fn parse(request: &IngestRequest) -> ApiResult<(LogVerifyingKey, SthBody)> {
    let key_bytes =
        wire::parse_b64(&request.public_key).map_err(|_| ApiError::bad_request("public_key is not base64"))?;
    let key = LogVerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| ApiError::bad_request("public_key is not an ML-DSA-65 public key"))?;
    if let Some(claimed) = &request.pk_hash
        && !claimed.eq_ignore_ascii_case(&hex::encode(key.pk_hash()))
    {
        return Err(ApiError::bad_request("pk_hash does not match public_key"));
    }
    wire::parse_hash_hex(&request.sha3_root)
        .map_err(|_| ApiError::bad_request("sha3_root must be 64 hex characters"))?;
    if request.version != 1 || request.relay_id.is_empty() || request.relay_id.len() > 253 {
        return Err(ApiError::bad_request("version must be 1 and relay_id 1-253 characters"));
    }
    let body = SthBody {
        relay_id: request.relay_id.clone(),
        sha3_root: request.sha3_root.to_ascii_lowercase(),
        timestamp: request.timestamp,
        tree_size: request.tree_size,
        version: request.version,
    };
    let signature =
        wire::parse_b64(&request.signature).map_err(|_| ApiError::bad_request("signature is not base64"))?;
    // The signature covers the root exactly as sent.
    let signed = SthBody { sha3_root: request.sha3_root.clone(), ..body.clone() };
    key.verify(&signed.signed_bytes(), &signature).map_err(|_| {
        ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "signature_invalid", "ML-DSA-65 signature does not verify")
    })?;
    Ok((key, signed))
}

fn decode_record(raw: &[u8]) -> ApiResult<PeerRecord> {
    serde_json::from_slice(raw).map_err(|e| ApiError::internal("peer record", &e))
}

fn parse_pk(pk_hash_hex: &str) -> ApiResult<[u8; 32]> {
    wire::parse_hash_hex(pk_hash_hex).map_err(|_| ApiError::internal("pk hash", &"hex"))
}

fn record_fork(store: &LogStore, pk_hash_hex: &str, evidence: serde_json::Value) -> ApiResult<()> {
    let key = parse_pk(pk_hash_hex)?;
    let raw = serde_json::to_vec(&evidence).map_err(|e| ApiError::internal("evidence", &e))?;
    store.gossip_write(|t| {
        let next = t.forks.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0);
        t.forks.insert(next, raw.as_slice())?;
        let existing = t.peers.get(&key)?.map(|v| v.value().to_vec());
        if let Some(record) = existing {
            let mut record: PeerRecord =
                serde_json::from_slice(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            record.forks += 1;
            let updated = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            t.peers.insert(&key, updated.as_slice())?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Stores the STH and updates the peer record, inside one write transaction. A new
/// unconfigured peer beyond `max_peers` evicts the least recently heard unconfigured one;
/// configured peers are never counted or evicted. Only the newest [`MAX_HISTORY`] heads of a
/// peer are kept.
#[allow(clippy::too_many_arguments)]
fn archive(
    t: &mut GossipTables<'_>,
    pk_hash: &[u8; 32],
    public_key: &str,
    body: &SthBody,
    sth_json: &[u8],
    consistency: &str,
    max_peers: usize,
    configured: bool,
    is_configured: &dyn Fn(&[u8; 32]) -> bool,
) -> Result<Result<(), ApiError>, StoreError> {
    let existing = t.peers.get(pk_hash)?.map(|v| v.value().to_vec());
    let mut record = match existing {
        Some(raw) => serde_json::from_slice::<PeerRecord>(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        None => {
            if t.peer_ids.get(body.relay_id.as_str())?.is_some_and(|p| p.value() != *pk_hash) {
                return Ok(Err(ApiError::conflict("key_mismatch", "relay_id is pinned to another key")));
            }
            if !configured && !make_room(t, max_peers, is_configured)? {
                return Ok(Err(ApiError::rate_limited("peer limit reached; no new peers accepted", 3600)));
            }
            t.peer_ids.insert(body.relay_id.as_str(), pk_hash)?;
            PeerRecord {
                relay_pk_hash: hex::encode(pk_hash),
                relay_id: body.relay_id.clone(),
                public_key: public_key.to_owned(),
                sth_count: 0,
                latest_root: String::new(),
                latest_tree_size: 0,
                latest_ts: String::new(),
                latest_timestamp: 0,
                first_seen: wire::iso8601_ms(now_ms()),
                consistency: String::new(),
                forks: 0,
            }
        }
    };
    let duplicate =
        record.sth_count > 0 && record.latest_timestamp == body.timestamp && record.latest_tree_size == body.tree_size;
    if duplicate {
        return Ok(Ok(()));
    }
    t.peer_sths.insert((*pk_hash, record.sth_count), sth_json)?;
    if let Some(dropped) = record.sth_count.checked_sub(MAX_HISTORY) {
        t.peer_sths.remove((*pk_hash, dropped))?;
    }
    record.sth_count += 1;
    record.latest_root = body.sha3_root.to_ascii_lowercase();
    record.latest_tree_size = body.tree_size;
    record.latest_timestamp = body.timestamp;
    record.latest_ts = wire::iso8601_ms(body.timestamp);
    record.consistency = consistency.to_owned();
    let raw = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    t.peers.insert(pk_hash, raw.as_slice())?;
    Ok(Ok(()))
}

/// Makes room for one more unconfigured peer: evicts the least recently heard unconfigured
/// peer (its record, pin and history) when `max_peers` unconfigured ones are stored. False if
/// there is no room and nobody to evict.
fn make_room(
    t: &mut GossipTables<'_>,
    max_peers: usize,
    is_configured: &dyn Fn(&[u8; 32]) -> bool,
) -> Result<bool, StoreError> {
    let mut unconfigured: Vec<([u8; 32], PeerRecord)> = Vec::new();
    for row in t.peers.iter()? {
        let (k, v) = row?;
        let key = k.value();
        if !is_configured(&key) {
            let record = serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            unconfigured.push((key, record));
        }
    }
    if unconfigured.len() < max_peers {
        return Ok(true);
    }
    let Some((key, oldest)) = unconfigured.into_iter().min_by_key(|(_, r)| r.latest_timestamp) else {
        return Ok(false);
    };
    t.peers.remove(&key)?;
    t.peer_ids.remove(oldest.relay_id.as_str())?;
    let kept = oldest.sth_count.saturating_sub(MAX_HISTORY);
    for sequence in kept..oldest.sth_count {
        t.peer_sths.remove((key, sequence))?;
    }
    Ok(true)
}
