//! Uploads and downloads: `POST /v2/inbound`, `GET /v2/outbound/{hash}` (burn-on-read with a
//! signed receipt), `GET /v2/status/{hash}`, and one-time download links `/v2/dl/{token}`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use jsonapi::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::blobs::{Access, BlobError, BlobMeta, Finished};
use crate::delivery::{DeliveryBody, Ending};
use crate::ids::{BlobId, DeviceId, DropId};
use crate::keys::KeyHash;
use crate::log_client::ProofJson;
use crate::routes::PathParam;
use crate::sender::{self, Sender};
use crate::state::{SharedState, now_ms};
use crate::uploads;
use crate::wire_v1::{self, WireError};

/// Payloads above this are decoded and hashed on the blocking pool, not an async worker.
/// Default lifetime when the client gives none (then capped by the plan's retention).
const DEFAULT_TTL_MS: u64 = 3_600_000;

/// `POST /v2/inbound`: authenticated (by the router) and admitted from the headers alone, then
/// the body is parsed, decoded and hashed as it arrives (see `uploads`).
pub async fn inbound(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if state.is_draining() {
        return Err(ApiError::unavailable("draining", "the relay is shutting down; retry shortly", 10));
    }
    // The license in force, re-verified by the gate: its blob size applies before a body byte
    // is read, its retention and signature requirement below.
    let license = state.license.entitlement(now_ms());
    let max_blob = uploads::max_blob_bytes(&state, &license);
    let mut admitted = uploads::admit(&state, *caller.key_hash(), peer.ip(), &headers, max_blob)?;
    let request = uploads::read(&state, body, &headers, max_blob).await?;
    let meta = request.meta.unwrap_or_default();
    let device = meta.device_id.as_deref().map(DeviceId::parse).transpose()?;
    let ids = UploadIds::parse(&request.hash, meta.drop, device.is_some())?;
    let upload = plan_upload(&state, &caller, &license, request.ttl_ms, request.max_views)?;
    let now = now_ms();
    if let Some(per_day) = caller.plan().uploads_per_day() {
        state.daily_uploads.check(caller.key_hash(), per_day, now).map_err(|l| {
            ApiError::rate_limited(format!("{per_day} uploads per day on this plan"), l.retry_after_secs)
        })?;
    }
    let meta_record = BlobMeta {
        access: if meta.drop { Access::LookupId } else { Access::Owner(*caller.key_hash()) },
        size: request.payload.len() as u64,
        expires_ms: now + upload.ttl_ms,
        max_views: upload.max_views,
        transfer_leaf_hash: String::new(),
        device_id: meta.device_id.clone(),
        sig_verified: false,
    };
    let reserved = admitted.hand_over_reservation();
    let claim = Claim::new(&state, &ids.key, meta_record, *caller.key_hash(), reserved)
        .inspect_err(|_| state.daily_uploads.refund(caller.key_hash(), now))?;
    drop(admitted);
    let decoded = Decoded { payload: request.payload, sha256: request.sha256 };
    let result = store_upload(&state, &caller, &ids, decoded, meta.drop, &upload, device.as_ref(), claim).await;
    if result.is_err() {
        state.daily_uploads.refund(caller.key_hash(), now);
    }
    result
}

/// A payload decoded and hashed while its body arrived.
struct Decoded {
    payload: Vec<u8>,
    sha256: [u8; 32],
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

/// TTL and view count after the plan's caps.
struct UploadPlan {
    ttl_ms: u64,
    max_views: u32,
    /// A capability set's `ml_dsa_required`: only blobs with a verified sender signature.
    ml_dsa_required: bool,
}

/// The TTL is clamped, not refused: to the plan's retention (the API reference's tier table)
/// and to a capability set's `retention_max_seconds`; the answer's `ttl_ms` is what applies.
fn plan_upload(
    state: &SharedState,
    caller: &Caller,
    license: &license::Entitlement,
    ttl_ms: Option<u64>,
    max_views: Option<u32>,
) -> ApiResult<UploadPlan> {
    let retention =
        caller.plan().retention(std::time::Duration::from_secs(state.config.limits.enterprise_retention_secs));
    let cap = license.retention_cap_ms(retention.as_millis() as u64);
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
    Ok(UploadPlan { ttl_ms, max_views, ml_dsa_required: license.ml_dsa_required() })
}

/// A claimed hash that is released unless the upload completes (also on panic or cancel).
struct Claim {
    state: SharedState,
    hash: String,
    published: bool,
}

impl Claim {
    fn new(state: &SharedState, hash: &str, meta: BlobMeta, uploader: KeyHash, reserved: u64) -> ApiResult<Self> {
        state.blobs.claim(hash, meta, uploader, reserved).map_err(|e| match e {
            BlobError::Duplicate => ApiError::conflict("duplicate", "a blob with this hash is already stored"),
            other => uploads::budget_error(other),
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
    decoded: Decoded,
    is_drop: bool,
    upload: &UploadPlan,
    device: Option<&DeviceId>,
    mut claim: Claim,
) -> ApiResult<Response> {
    let Decoded { payload, sha256 } = decoded;
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
        Sender::Unverified if upload.ml_dsa_required => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature_required",
                "this relay's license requires an ML-DSA-65 sender signature on every upload (a registered device's signed wire-v1 blob)",
            ));
        }
        Sender::Unverified => None,
    };
    let size = payload.len() as u64;
    let appended = state.log.append(wire::LogEvent::transfer(&sha256_hex, &state.config.sector)).await?;
    let expires_ms = now_ms() + upload.ttl_ms;
    let token = state.tokens.issue(&ids.key, expires_ms)?;
    let sig_verified = sender_device.is_some();
    state.blobs.publish(&ids.key, state.blobs.payload_bytes(payload), sha256, appended.leaf_hash.clone(), sig_verified);
    monitoring::upload_stored(size);
    state.stats.count(crate::stats::Counter::Transfer, now_ms());
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
    Ok(UploadAnswer {
        hash: &ids.public,
        ttl_ms: upload.ttl_ms,
        max_views: upload.max_views,
        size,
        sig_verified,
        download_token: &token,
        sender_device: sender_device.as_ref().map(DeviceId::as_str),
        merkle_proof: &appended.merkle_proof,
    }
    .render())
}

/// The answer to an upload: `{"ok":true,"hash","ttl_ms","max_views","size","sig_verified",
/// "download_token","sender_device"?,"merkle_proof"}`, written straight into the body (keys
/// sorted, as `serde_json::Value` writes them). The proof's signed tree head is copied as
/// rendered once per log batch, not rebuilt and re-escaped for every upload.
struct UploadAnswer<'a> {
    hash: &'a str,
    ttl_ms: u64,
    max_views: u32,
    size: u64,
    sig_verified: bool,
    download_token: &'a str,
    sender_device: Option<&'a str>,
    merkle_proof: &'a ProofJson,
}

impl UploadAnswer<'_> {
    fn render(&self) -> Response {
        use std::io::Write;
        let mut out = Vec::with_capacity(self.merkle_proof.len_hint() + 320);
        // Writing JSON into a Vec cannot fail: the strings are Rust strings.
        let string = |out: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *out, s);
        };
        out.extend_from_slice(b"{\"download_token\":");
        string(&mut out, self.download_token);
        out.extend_from_slice(b",\"hash\":");
        string(&mut out, self.hash);
        let _ = write!(out, ",\"max_views\":{},\"merkle_proof\":", self.max_views);
        self.merkle_proof.write_to(&mut out);
        out.extend_from_slice(b",\"ok\":true");
        if let Some(device) = self.sender_device {
            out.extend_from_slice(b",\"sender_device\":");
            string(&mut out, device);
        }
        let _ =
            write!(out, ",\"sig_verified\":{},\"size\":{},\"ttl_ms\":{}}}", self.sig_verified, self.size, self.ttl_ms);
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], out).into_response()
    }
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
    connection: Option<Extension<httpserve::Connection>>,
    PathParam(raw): PathParam,
) -> ApiResult<Response> {
    let id = BlobId::parse(&raw)?;
    let caller = caller.as_ref().map(|c| *c.key_hash());
    let key = resolve(&state, &id, caller.as_ref());
    deliver(&state, &key, caller, None, connection.map(|c| c.0)).await
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
    connection: Option<httpserve::Connection>,
) -> ApiResult<Response> {
    let delivery = state.blobs.begin_delivery(hash, caller.as_ref(), now_ms()).map_err(|e| match e {
        BlobError::NotFound => ApiError::not_found("not found: expired, burned, or never stored"),
        BlobError::Forbidden if caller.is_none() => ApiError::unauthorized("X-Api-Key header required for this blob"),
        BlobError::Forbidden => ApiError::forbidden("this blob belongs to another API key"),
        BlobError::Busy => ApiError::conflict("in_delivery", "this blob is being downloaded right now"),
        other => ApiError::internal("delivery", &format!("{other:?}")),
    })?;
    let meta = delivery.meta;
    // This view burns the blob when it is the last one left — once the client acknowledged
    // every byte. The receipt is signed now, before the body: it cannot confirm a burn that
    // has not happened, so its `burn_confirmed` is false; the confirmed receipt is for
    // `/v2/status/{hash}` after the burn (see `BurnReceipts`).
    let burns = delivery.views_left <= 1;
    let payload_sha256 = hex::encode(delivery.payload_sha256);
    // The receipt and the delivery leaf name the payload's SHA-256 (what the transfer leaf
    // already published), never a drop's lookup id: the log is public, and the lookup id is
    // the drop's only credential.
    let receipt = match state.log.receipt(&payload_sha256, &state.config.sector, &meta.transfer_leaf_hash).await {
        Ok(r) => r,
        Err(e) => {
            state.blobs.finish_delivery(hash, false);
            return Err(e);
        }
    };
    let ended =
        Ended { state: state.clone(), hash: hash.to_owned(), payload_sha256: payload_sha256.clone(), meta, token };
    let body = DeliveryBody::new(delivery.payload, connection, move |ending| ended.handle(ending));
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

/// What happens when a delivery body ends: the view is released, or — once the client
/// acknowledged every byte — consumed, and a burn is logged and its confirmed receipt kept.
struct Ended {
    state: SharedState,
    /// The store key.
    hash: String,
    /// What the log and receipts name (M7: never a drop's lookup id).
    payload_sha256: String,
    meta: BlobMeta,
    token: Option<String>,
}

impl Ended {
    fn handle(self, ending: Ending) {
        let watch = match ending {
            Ending::Incomplete => {
                self.state.blobs.finish_delivery(&self.hash, false);
                return;
            }
            Ending::Sent(watch) => watch,
        };
        let timeout = std::time::Duration::from_secs(self.state.config.transfers.delivery_ack_timeout_secs);
        // A tracked write: a draining relay waits for it (and for the log entries after it).
        let state = self.state.clone();
        state.log.spawn_write(async move {
            let delivered = match watch {
                Some(watch) => watch.acknowledged(timeout).await == httpserve::Delivered::Acknowledged,
                None => true,
            };
            self.consume(delivered).await;
        });
    }

    async fn consume(self, delivered: bool) {
        let Ended { state, hash, payload_sha256, meta, token } = self;
        let Finished::Consumed { burned } = state.blobs.finish_delivery(&hash, delivered) else { return };
        if burned {
            monitoring::burned();
        }
        if let Some(token) = token {
            state.tokens.consume(&token);
        }
        if let Access::Owner(owner) = meta.access {
            let event = if burned { "outbound_burn" } else { "outbound_view" };
            state.audit.record(owner, event, &hash, meta.size, meta.device_id.clone());
        }
        let event = wire::LogEvent::delivery(&payload_sha256, &state.config.sector, burned);
        let delivery = match state.log.append(event).await {
            Ok(appended) => appended,
            Err(e) => {
                crate::DAEMON.log(format_args!("logging a delivery failed: {}", e.code()));
                return;
            }
        };
        if burned {
            // The confirming receipt is signed when first asked for (`status`), from this leaf.
            let request = wire::log_api::BurnReceiptRequest {
                blob_hash: payload_sha256,
                sector: state.config.sector.clone(),
                transfer_leaf_hash: meta.transfer_leaf_hash,
                delivery_leaf_hash: delivery.leaf_hash,
            };
            state.burn_receipts.insert(&hash, crate::state::Burn { access: meta.access, request, receipt: None });
        }
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
        // The SDK reads the body whatever the status; the API reference says 404. After a burn
        // the owner also gets the receipt that confirms it.
        Err(BlobError::NotFound) => {
            let mut answer = json!({ "available": false, "error": "not_found" });
            if let Some(burn) = state.burn_receipts.for_owner(&hash, caller.key_hash()) {
                answer["burned"] = Value::Bool(true);
                if let Some(receipt) = burn_receipt(&state, &hash, burn).await {
                    answer["burn_receipt"] = Value::String(receipt);
                }
            }
            Ok((StatusCode::NOT_FOUND, Json(answer)).into_response())
        }
        Err(BlobError::Forbidden) => Err(ApiError::forbidden("this blob belongs to another API key")),
        Err(other) => Err(ApiError::internal("status", &format!("{other:?}"))),
    }
}

/// The receipt confirming a remembered burn: kept, or signed by the log now and kept. `None`
/// while the log cannot sign it (the client asks again, as it does before the burn is logged).
async fn burn_receipt(state: &SharedState, hash: &str, burn: crate::state::Burn) -> Option<String> {
    if let Some(receipt) = burn.receipt {
        return Some(receipt);
    }
    match state.log.burn_receipt(&burn.request).await {
        Ok(receipt) => {
            state.burn_receipts.keep_receipt(hash, &receipt);
            Some(receipt)
        }
        Err(e) => {
            crate::DAEMON.log(format_args!("the confirmed burn receipt failed: {}", e.code()));
            None
        }
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
pub async fn download_get(
    State(state): State<SharedState>,
    connection: Option<Extension<httpserve::Connection>>,
    PathParam(raw): PathParam,
) -> ApiResult<Response> {
    let token = parse_token(&raw)?;
    let hash = state
        .tokens
        .resolve(&token, now_ms())
        .ok_or_else(|| ApiError::new(StatusCode::GONE, "gone", "this download link was used or has expired"))?;
    let owner = match state.blobs.access(&hash) {
        Some(Access::Owner(key)) => Some(key),
        _ => None,
    };
    let mut response = deliver(&state, &hash, owner, Some(token), connection.map(|c| c.0)).await?;
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
