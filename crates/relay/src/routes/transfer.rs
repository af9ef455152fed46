//! Uploads and downloads: `POST /v2/inbound`, `GET /v2/outbound/{hash}` (burn-on-read with a
//! signed receipt), `GET /v2/status/{hash}`, and one-time download links `/v2/dl/{token}`.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use jsonapi::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::blobs::{Access, BlobError, BlobMeta, Finished, payload_bytes};
use crate::delivery::DeliveryBody;
use crate::ids::{BlobId, DeviceId, DropId};
use crate::keys::KeyHash;
use crate::routes::PathParam;
use crate::sender::{self, Sender};
use crate::state::{SharedState, now_ms};
use crate::wire_v1::{self, WireError};

/// Payloads above this are decoded and hashed on the blocking pool, not an async worker.
const INLINE_DECODE_LIMIT: usize = 64 * 1024;
/// Default lifetime when the client gives none (then capped by the plan's retention).
const DEFAULT_TTL_MS: u64 = 3_600_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundRequest<'a> {
    #[serde(borrow)]
    hash: Cow<'a, str>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
    #[serde(default)]
    ttl_ms: Option<u64>,
    #[serde(default)]
    max_views: Option<u32>,
    #[serde(default)]
    meta: Option<InboundMeta>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundMeta {
    /// The sending device: the upload is announced on its `stream-next` queue and webhooks.
    #[serde(default)]
    device_id: Option<String>,
    /// An anonymous drop: `hash` is a lookup id, not `sha256(payload)`.
    #[serde(default)]
    drop: bool,
}

/// `POST /v2/inbound`.
pub async fn inbound(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    if state.is_draining() {
        return Err(ApiError::unavailable("draining", "the relay is shutting down; retry shortly", 10));
    }
    let body = jsonapi::body_bytes(body)?;
    let request: InboundRequest = jsonapi::parse_json(&body)?;
    let meta = request.meta.unwrap_or(InboundMeta { device_id: None, drop: false });
    let device = meta.device_id.as_deref().map(DeviceId::parse).transpose()?;
    let ids = UploadIds::parse(&request.hash, meta.drop, device.is_some())?;
    let upload = plan_upload(&state, &caller, request.ttl_ms, request.max_views)?;
    let limits = &state.config.limits;
    if base64_decoded_len(&request.payload) > limits.max_blob_bytes {
        return Err(ApiError::too_large(format!("payload exceeds {} bytes", limits.max_blob_bytes)));
    }
    let now = now_ms();
    if let Some(per_day) = caller.plan().uploads_per_day() {
        state.daily_uploads.check(caller.key_hash(), per_day, now).map_err(|l| {
            ApiError::rate_limited(format!("{per_day} uploads per day on this plan"), l.retry_after_secs)
        })?;
    }
    let meta_record = BlobMeta {
        access: if meta.drop { Access::LookupId } else { Access::Owner(*caller.key_hash()) },
        size: base64_decoded_len(&request.payload) as u64,
        expires_ms: now + upload.ttl_ms,
        max_views: upload.max_views,
        transfer_leaf_hash: String::new(),
        device_id: meta.device_id.clone(),
        sig_verified: false,
    };
    let claim = Claim::new(&state, &ids.key, meta_record)
        .inspect_err(|_| state.daily_uploads.refund(caller.key_hash(), now))?;
    // From here on only the payload text is needed: the rest of the body goes now, and the
    // text itself as soon as it is decoded (before the log is waited for).
    let payload_b64 = payload_text(&body, request.payload);
    drop(body);
    let result = store_upload(&state, &caller, &ids, payload_b64, meta.drop, &upload, device.as_ref(), claim).await;
    if result.is_err() {
        state.daily_uploads.refund(caller.key_hash(), now);
    }
    result.map(Json)
}

/// What an upload is called: `public`, as the client knows it (a content hash or a drop's
/// lookup id), and `key`, where the blob store keeps it (drops in their own namespace).
struct UploadIds {
    public: String,
    key: String,
}

impl UploadIds {
    fn parse(hash: &str, is_drop: bool, has_device: bool) -> ApiResult<Self> {
        if !is_drop {
            let id = BlobId::parse(hash)?;
            return Ok(Self { public: id.as_str().to_owned(), key: id.as_str().to_owned() });
        }
        if has_device {
            return Err(ApiError::bad_request("a drop is anonymous: meta.device_id cannot go with meta.drop"));
        }
        let id = DropId::parse(hash)?;
        Ok(Self { public: id.as_str().to_owned(), key: id.storage_key() })
    }
}

/// The payload's base64 text as a view into the request body, without copying it (serde
/// borrowed it from `body` because the JSON string had no escapes); an unescaped copy is owned.
fn payload_text(body: &Bytes, payload: Cow<'_, str>) -> Bytes {
    match payload {
        // `slice_ref` needs a subslice of `body`: a borrowed string was parsed out of it.
        Cow::Borrowed(text) => body.slice_ref(text.as_bytes()),
        Cow::Owned(text) => Bytes::from(text),
    }
}

/// TTL and view count after the plan's caps.
struct UploadPlan {
    ttl_ms: u64,
    max_views: u32,
}

fn plan_upload(
    state: &SharedState,
    caller: &Caller,
    ttl_ms: Option<u64>,
    max_views: Option<u32>,
) -> ApiResult<UploadPlan> {
    let retention =
        caller.plan().retention(std::time::Duration::from_secs(state.config.limits.enterprise_retention_secs));
    let cap = retention.as_millis() as u64;
    let ttl_ms = match ttl_ms {
        Some(0) => return Err(ApiError::bad_request("ttl_ms must be positive")),
        Some(ttl) => ttl.min(cap),
        None => DEFAULT_TTL_MS.min(cap),
    };
    let max_views = match max_views {
        Some(0) => return Err(ApiError::bad_request("max_views must be at least 1")),
        Some(n) => n.min(caller.plan().max_views()),
        None => 1,
    };
    Ok(UploadPlan { ttl_ms, max_views })
}

/// Decoded size of standard base64 text (exact for well-formed input).
fn base64_decoded_len(text: &str) -> usize {
    let padding = text.bytes().rev().take(2).filter(|&b| b == b'=').count();
    (text.len() / 4 * 3 + (text.len() % 4 * 3 / 4)).saturating_sub(padding)
}

/// A claimed hash that is released unless the upload completes (also on panic or cancel).
struct Claim {
    state: SharedState,
    hash: String,
    published: bool,
}

impl Claim {
    fn new(state: &SharedState, hash: &str, meta: BlobMeta) -> ApiResult<Self> {
        state.blobs.claim(hash, meta).map_err(|e| match e {
            BlobError::Duplicate => ApiError::conflict("duplicate", "a blob with this hash is already stored"),
            BlobError::Full => ApiError::unavailable("relay_full", "the relay's blob memory is full; retry later", 30),
            other => ApiError::internal("claim", &format!("{other:?}")),
        })?;
        Ok(Self { state: state.clone(), hash: hash.to_owned(), published: false })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.published {
            self.state.blobs.abandon(&self.hash);
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn store_upload(
    state: &SharedState,
    caller: &Caller,
    ids: &UploadIds,
    payload_b64: Bytes,
    is_drop: bool,
    upload: &UploadPlan,
    device: Option<&DeviceId>,
    mut claim: Claim,
) -> ApiResult<Value> {
    let decoded = decode_and_hash(payload_b64).await?;
    let (payload, sha256) = decoded;
    if payload.len() > state.config.limits.max_blob_bytes {
        return Err(ApiError::too_large(format!("payload exceeds {} bytes", state.config.limits.max_blob_bytes)));
    }
    let sha256_hex = hex::encode(sha256);
    if !is_drop && sha256_hex != ids.public {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "hash_mismatch", "hash is not the SHA-256 of the payload"));
    }
    check_wire(&payload)?;
    let (payload, sender) = check_sender(state, caller.key_hash(), payload).await?;
    let sender_device = match sender {
        Sender::Forged => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature_invalid",
                "the blob names a registered device's signing key, but its signature does not verify",
            ));
        }
        Sender::Verified(device) => Some(device.device_id),
        Sender::Unverified => None,
    };
    let size = payload.len() as u64;
    let appended = state.log.append(wire::LogEvent::transfer(&sha256_hex, &state.config.sector)).await?;
    let expires_ms = now_ms() + upload.ttl_ms;
    let token = state.tokens.issue(&ids.key, expires_ms)?;
    let sig_verified = sender_device.is_some();
    state.blobs.publish(&ids.key, payload_bytes(payload), sha256, appended.leaf_hash.clone(), sig_verified);
    monitoring::upload_stored(size);
    claim.published = true;
    state.audit.record(
        *caller.key_hash(),
        if is_drop { "drop" } else { "inbound" },
        &ids.public,
        size,
        device.map(DeviceId::to_string),
    );
    if let Some(device) = device {
        // Only content blobs get here (a drop has no device), whose store key is public.
        state.queues.push(*caller.key_hash(), device.as_str(), &ids.key, now_ms());
        state.webhooks.blob_ready(&state.db, caller.key_hash(), device, &ids.public, size, upload.ttl_ms);
    }
    let mut answer = json!({
        "ok": true,
        "hash": ids.public,
        "ttl_ms": upload.ttl_ms,
        "max_views": upload.max_views,
        "size": size,
        "sig_verified": sig_verified,
        "download_token": token,
    });
    if let Some(device) = sender_device {
        answer["sender_device"] = json!(device);
    }
    // Moved in, not through `json!` (which would deep-copy the proof and its 4.4 KB signature).
    answer["merkle_proof"] = appended.merkle_proof;
    Ok(answer)
}

/// Checks the sender signature when the blob claims one (see `sender`); a signed blob's check
/// (a hash of the blob and an ML-DSA-65 verification) runs on the blocking pool.
async fn check_sender(state: &SharedState, key: &KeyHash, payload: Vec<u8>) -> ApiResult<(Vec<u8>, Sender)> {
    if !crate::wire_v1::claims_signature(&payload) {
        return Ok((payload, Sender::Unverified));
    }
    let (state, key) = (state.clone(), *key);
    tokio::task::spawn_blocking(move || {
        let verdict = sender::check(&state.db, &key, &payload)?;
        Ok((payload, verdict))
    })
    .await
    .map_err(|e| ApiError::internal("signature task", &e))?
}

/// Base64-decodes into an exactly sized buffer and hashes it, off the async workers when large.
/// The text is dropped as soon as it is decoded.
async fn decode_and_hash(payload_b64: Bytes) -> ApiResult<(Vec<u8>, [u8; 32])> {
    fn work(text: &[u8]) -> Result<(Vec<u8>, [u8; 32]), base64::DecodeError> {
        let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
        base64::engine::general_purpose::STANDARD.decode_vec(text, &mut out)?;
        let digest: [u8; 32] = Sha256::digest(&out).into();
        Ok((out, digest))
    }
    let bad = |_| ApiError::bad_request("payload is not valid standard base64");
    if payload_b64.len() <= INLINE_DECODE_LIMIT {
        return work(&payload_b64).map_err(bad);
    }
    // `Bytes` is owned and shares the request body: no copy of the text for the blocking pool.
    tokio::task::spawn_blocking(move || work(&payload_b64))
        .await
        .map_err(|e| ApiError::internal("decode task", &e))?
        .map_err(bad)
}

fn check_wire(payload: &[u8]) -> ApiResult<()> {
    wire_v1::check(payload).map_err(|e| match e {
        WireError::UnsupportedVersion(v) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_wire_version",
            format!("wire version {v} is not supported (supported: 1)"),
        ),
        WireError::UnsupportedAlgorithm { kind, id } => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_algorithm",
            format!("{kind} id {id} is not offered; see /v2/capabilities"),
        ),
        WireError::Malformed(what) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_wire_v1", format!("malformed blob: {what}"))
        }
    })
}

/// `GET /v2/outbound/{hash}`: the bytes, burned once completely sent.
pub async fn outbound(
    State(state): State<SharedState>,
    caller: Option<Caller>,
    PathParam(raw): PathParam,
) -> ApiResult<Response> {
    let id = BlobId::parse(&raw)?;
    let caller = caller.as_ref().map(|c| *c.key_hash());
    let key = resolve(&state, &id, caller.as_ref());
    deliver(&state, &key, caller, None).await
}

/// The store key a download of `id` means: the content blob `id` when this caller may read it,
/// else the drop of that lookup id if there is one, else the content key (whose refusal the
/// caller then gets). A drop can therefore never shadow a content blob for its owner, and a
/// content blob never hides a drop from others.
fn resolve(state: &SharedState, id: &BlobId, caller: Option<&KeyHash>) -> String {
    let readable = match state.blobs.access(id) {
        Some(Access::Owner(owner)) => caller.is_some_and(|c| crypto::ct_eq(c, &owner)),
        Some(Access::LookupId) => true,
        None => false,
    };
    let drop_key = id.as_drop().storage_key();
    if !readable && state.blobs.access(&drop_key).is_some() { drop_key } else { id.as_str().to_owned() }
}

/// Starts a delivery and builds the response: receipt in the headers, burn when the body ends.
async fn deliver(
    state: &SharedState,
    hash: &str,
    caller: Option<KeyHash>,
    token: Option<String>,
) -> ApiResult<Response> {
    let delivery = state.blobs.begin_delivery(hash, caller.as_ref(), now_ms()).map_err(|e| match e {
        BlobError::NotFound => ApiError::not_found("not found: expired, burned, or never stored"),
        BlobError::Forbidden if caller.is_none() => ApiError::unauthorized("X-Api-Key header required for this blob"),
        BlobError::Forbidden => ApiError::forbidden("this blob belongs to another API key"),
        BlobError::Busy => ApiError::conflict("in_delivery", "this blob is being downloaded right now"),
        other => ApiError::internal("delivery", &format!("{other:?}")),
    })?;
    let meta = delivery.meta;
    // This view burns the blob when it is the last one left.
    let burns = delivery.views_left <= 1;
    let payload_sha256 = hex::encode(delivery.payload_sha256);
    // The receipt and the delivery leaf name the payload's SHA-256 (what the transfer leaf
    // already published), never a drop's lookup id: the log is public, and the lookup id is
    // the drop's only credential.
    let receipt = match state.log.receipt(&payload_sha256, &state.config.sector, &meta.transfer_leaf_hash, burns).await
    {
        Ok(r) => r,
        Err(e) => {
            state.blobs.finish_delivery(hash, false);
            return Err(e);
        }
    };
    let on_done = finish_callback(
        state.clone(),
        hash.to_owned(),
        payload_sha256.clone(),
        meta.access,
        meta.size,
        meta.device_id.clone(),
        token,
    );
    let body = DeliveryBody::new(delivery.payload, on_done);
    let mut response = Response::new(Body::new(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert("x-paramant-burned", HeaderValue::from_static(if burns { "true" } else { "false" }));
    headers.insert(
        "x-paramant-hash",
        HeaderValue::from_str(&payload_sha256).map_err(|e| ApiError::internal("header", &e))?,
    );
    headers
        .insert("x-paramant-receipt", HeaderValue::from_str(&receipt).map_err(|e| ApiError::internal("header", &e))?);
    Ok(response)
}

/// What happens when a delivery body ends: consume or release the view, log the burn.
#[allow(clippy::too_many_arguments)]
fn finish_callback(
    state: SharedState,
    hash: String,
    payload_sha256: String,
    access: Access,
    size: u64,
    device: Option<String>,
    token: Option<String>,
) -> impl FnOnce(bool) + Send + Sync + 'static {
    move |completed| {
        let Finished::Consumed { burned } = state.blobs.finish_delivery(&hash, completed) else { return };
        if burned {
            monitoring::burned();
        }
        if let Some(token) = token {
            state.tokens.consume(&token);
        }
        if let Access::Owner(owner) = access {
            state.audit.record(owner, if burned { "outbound_burn" } else { "outbound_view" }, &hash, size, device);
        }
        // M7: the payload's SHA-256, never the store key (a drop's lookup id).
        let event = wire::LogEvent::delivery(&payload_sha256, &state.config.sector, burned);
        let log_state = state.clone();
        state.log.spawn_write(async move {
            if let Err(e) = log_state.log.record(event).await {
                crate::DAEMON.log(format_args!("logging a delivery failed: {}", e.code()));
            }
        });
    }
}

/// `GET /v2/status/{hash}`.
pub async fn status(
    State(state): State<SharedState>,
    caller: Caller,
    PathParam(raw): PathParam,
) -> ApiResult<Response> {
    let id = BlobId::parse(&raw)?;
    let hash = resolve(&state, &id, Some(caller.key_hash()));
    let now = now_ms();
    match state.blobs.status(&hash, caller.key_hash(), now) {
        Ok(s) => Ok(Json(json!({
            "available": true,
            "bytes": s.size,
            "ttl_remaining_ms": s.expires_ms.saturating_sub(now),
            "sig_valid": s.sig_verified,
            "views_left": s.views_left,
        }))
        .into_response()),
        // The SDK reads the body whatever the status; the API reference says 404.
        Err(BlobError::NotFound) => {
            Ok((StatusCode::NOT_FOUND, Json(json!({ "available": false, "error": "not_found" }))).into_response())
        }
        Err(BlobError::Forbidden) => Err(ApiError::forbidden("this blob belongs to another API key")),
        Err(other) => Err(ApiError::internal("status", &format!("{other:?}"))),
    }
}

fn parse_token(raw: &str) -> ApiResult<String> {
    let ok = raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit());
    if ok { Ok(raw.to_ascii_lowercase()) } else { Err(ApiError::bad_request("malformed download token")) }
}

/// `GET /v2/dl/{token}`: a confirmation page, so link previews do not burn the blob.
pub async fn download_page(State(state): State<SharedState>, PathParam(raw): PathParam) -> ApiResult<Response> {
    let token = parse_token(&raw)?;
    if state.tokens.resolve(&token, now_ms()).is_none() {
        return Err(ApiError::new(StatusCode::GONE, "gone", "this download link was used or has expired"));
    }
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>paramant download</title>\
         <p>An encrypted file is waiting. It can be downloaded once; it is destroyed afterwards.</p>\
         <form method=get action=\"/v2/dl/{token}/get\"><button>Download</button></form>"
    );
    Ok(Html(page).into_response())
}

/// `GET /v2/dl/{token}/get`: the one-time download (no API key: the token is the credential).
pub async fn download_get(State(state): State<SharedState>, PathParam(raw): PathParam) -> ApiResult<Response> {
    let token = parse_token(&raw)?;
    let hash = state
        .tokens
        .resolve(&token, now_ms())
        .ok_or_else(|| ApiError::new(StatusCode::GONE, "gone", "this download link was used or has expired"))?;
    let owner = match state.blobs.access(&hash) {
        Some(Access::Owner(key)) => Some(key),
        _ => None,
    };
    let mut response = deliver(&state, &hash, owner, Some(token)).await?;
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"paramant-encrypted-payload\""),
    );
    Ok(response)
}

/// `GET /v2/dl/{token}/info`.
pub async fn download_info(
    State(state): State<SharedState>,
    PathParam(raw): PathParam,
    Query(_): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let token = parse_token(&raw)?;
    let now = now_ms();
    let hash = state.tokens.resolve(&token, now).ok_or_else(|| ApiError::not_found("no such download link"))?;
    let owner = match state.blobs.access(&hash) {
        Some(Access::Owner(key)) => key,
        Some(Access::LookupId) => [0; 32],
        None => return Err(ApiError::not_found("no such download link")),
    };
    let status = state.blobs.status(&hash, &owner, now).map_err(|_| ApiError::not_found("no such download link"))?;
    Ok(Json(json!({
        "ok": true,
        "file_size": status.size,
        "ttl_left_s": status.expires_ms.saturating_sub(now) / 1000,
        "used": false,
    })))
}
