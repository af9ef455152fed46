//! Admission and reading of upload bodies, so that a stranger costs no memory: the caller is
//! authenticated from the headers and `Content-Length` is checked before a body byte is read;
//! uploads in flight are capped in all, per key and per client address; each reserves its
//! largest possible payload in the blob budget (and the key's share) before reading; the body
//! must arrive within a deadline set by a minimum transfer rate; and it is parsed as it
//! arrives (`upload_json`), never held whole.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use jsonapi::{ApiError, ApiResult};

use crate::blobs::BlobError;
use crate::keys::KeyHash;
use crate::state::SharedState;
use crate::upload_json::{ParseError, Upload, UploadParser};

/// JSON framing and the other fields around the payload's base64 text.
const FRAMING: u64 = 64 * 1024;

/// Counters of uploads in flight.
#[derive(Default)]
pub struct UploadGate {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: u32,
    per_key: HashMap<KeyHash, u32>,
    per_ip: HashMap<IpAddr, u32>,
}

fn bump<K: Hash + Eq + Copy>(map: &mut HashMap<K, u32>, key: K, cap: u32) -> bool {
    let n = map.entry(key).or_insert(0);
    if *n >= cap {
        return false;
    }
    *n += 1;
    true
}

fn unbump<K: Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// An admitted upload: its slot in the counters and its reservation in the blob budget, both
/// given back on drop unless the reservation was taken over by a claim.
pub struct Admitted {
    state: SharedState,
    key: KeyHash,
    ip: IpAddr,
    /// Bytes still reserved in the blob store.
    pub reserved: u64,
}

impl Admitted {
    /// The reservation is being taken over by `BlobStore::claim`.
    pub fn hand_over_reservation(&mut self) -> u64 {
        std::mem::take(&mut self.reserved)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.reserved > 0 {
            self.state.blobs.release(&self.key, self.reserved);
        }
        let mut counts = self.state.uploads.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        unbump(&mut counts.per_key, &self.key);
        unbump(&mut counts.per_ip, &self.ip);
    }
}

/// The most a body may be for `max_blob_bytes` (base64 grows 4/3, plus the JSON around it).
pub fn max_body_bytes(max_blob_bytes: usize) -> u64 {
    (max_blob_bytes as u64).div_ceil(3) * 4 + FRAMING
}

/// The largest payload this relay takes now: its configured `max_blob_bytes`, lowered to the
/// `max_blob_size_mb` of a signed capability set in force (re-verified by the license gate;
/// Community Edition and an offline token keep the configured limit).
pub fn max_blob_bytes(state: &SharedState, license: &license::Entitlement) -> usize {
    let configured = state.config.limits.max_blob_bytes as u64;
    // Never above the configured limit, so the conversion back cannot truncate.
    license.max_blob_bytes(configured) as usize
}

/// 413 `payload_too_large`.
fn too_large(max_blob_bytes: usize) -> ApiError {
    ApiError::too_large(format!("payload exceeds {max_blob_bytes} bytes"))
}

/// `Content-Length` if sent; a malformed one is a 400.
fn content_length(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else { return Ok(None) };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| ApiError::bad_request("malformed Content-Length"))
}

/// Admits an upload of `key` from `ip` with these `headers`, before any body byte is read:
/// size (`max_blob_bytes`: the relay's limit as the license in force lowers it, see
/// [`max_blob_bytes`]), concurrency and memory are checked and the memory reserved.
pub fn admit(
    state: &SharedState,
    key: KeyHash,
    ip: IpAddr,
    headers: &HeaderMap,
    max_blob_bytes: usize,
) -> ApiResult<Admitted> {
    let max_body = max_body_bytes(max_blob_bytes);
    let declared = content_length(headers)?;
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large(max_blob_bytes));
    }
    // The payload decodes to at most 3/4 of the body and never beyond max_blob_bytes (the
    // reader stops there); a chunked body may be anything up to the limit.
    let reserve = declared.map_or(max_body, |n| n / 4 * 3 + 3).min(max_blob_bytes as u64);
    let transfers = &state.config.transfers;
    {
        let mut counts = state.uploads.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= transfers.concurrent_uploads {
            return Err(ApiError::unavailable("relay_busy", "too many uploads in progress; retry shortly", 1));
        }
        if !bump(&mut counts.per_key, key, transfers.concurrent_uploads_per_key) {
            return Err(ApiError::rate_limited("too many uploads in progress for this API key", 1));
        }
        if !bump(&mut counts.per_ip, ip, transfers.concurrent_uploads_per_ip) {
            unbump(&mut counts.per_key, &key);
            return Err(ApiError::rate_limited("too many uploads in progress from this address", 1));
        }
        counts.total += 1;
    }
    // From here on the slot is given back by `Admitted::drop`.
    let mut admitted = Admitted { state: state.clone(), key, ip, reserved: 0 };
    state.blobs.reserve(&key, reserve).map_err(budget_error)?;
    admitted.reserved = reserve;
    Ok(admitted)
}

/// The answer to a budget refusal.
pub fn budget_error(e: BlobError) -> ApiError {
    match e {
        BlobError::KeyShareFull => ApiError::unavailable(
            "key_share_full",
            "this API key holds its whole share of the relay's blob memory; retry after downloads",
            30,
        ),
        _ => ApiError::unavailable("relay_full", "the relay's blob memory is full; retry later", 30),
    }
}

/// Reads and parses the body within its deadline. Malformed framing (a broken chunked
/// encoding, a connection cut short) is a 400; a body over the limit a 413; too slow a 408.
pub async fn read(state: &SharedState, body: Body, headers: &HeaderMap, max_blob_bytes: usize) -> ApiResult<Upload> {
    let transfers = &state.config.transfers;
    let max_body = max_body_bytes(max_blob_bytes);
    let expected = content_length(headers)?.unwrap_or(max_body);
    let deadline = Duration::from_secs(transfers.body_grace_secs)
        + Duration::from_secs_f64(expected as f64 / transfers.min_upload_bytes_per_sec as f64);
    let buffer = state.blobs.payload_buffer(UploadParser::buffer_len(max_blob_bytes, (expected / 4 * 3) as usize));
    let mut parser = UploadParser::with_buffer(max_blob_bytes, buffer);
    let reading = async {
        let mut body = body;
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ApiError::bad_request("malformed or truncated request body"))?;
            let Ok(data) = frame.into_data() else { continue };
            received += data.len() as u64;
            if received > max_body {
                return Err(too_large(max_blob_bytes));
            }
            parser.feed(&data).map_err(parse_error)?;
        }
        Ok(())
    };
    match tokio::time::timeout(deadline, reading).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body arrived too slowly",
            ));
        }
    }
    parser.finish().map_err(parse_error)
}

fn parse_error(e: ParseError) -> ApiError {
    match e {
        ParseError::Json(what) => ApiError::bad_request(format!("invalid JSON body: {what}")),
        ParseError::Base64 => ApiError::bad_request("payload is not valid standard base64"),
        ParseError::TooLarge => ApiError::too_large("payload exceeds the maximum blob size"),
    }
}
