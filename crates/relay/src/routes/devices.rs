//! Device identities: public keys (`/v2/pubkey`), W3C DIDs (`/v2/did/*`) and attestation
//! (`/v2/attest`) that proves possession of the registered key by challenge–response.
//! Registrations are appended to the log; re-registering identical keys changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use jsonapi::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sha3::Sha3_256;

use crate::db::{DEVICES, DIDS, DIDS_BY_KEY, DbError};
use crate::keys::{Caller, KeyHash};
use crate::routes::PathParam;
use crate::state::{SharedState, now_ms};

/// Most DIDs one API key may register (API reference).
const MAX_DIDS_PER_KEY: u64 = 500;
/// Largest accepted public keys, decoded: P-521 point, ML-KEM-1024, ML-DSA-87.
const MAX_ECDH_BYTES: usize = 133;
const MAX_KEM_BYTES: usize = 1568;
const MAX_DSA_BYTES: usize = 2592;
/// How long an attestation challenge may be answered.
const CHALLENGE_TTL_MS: u64 = 5 * 60 * 1000;
/// Domain separation of attestation responses.
const ATTEST_CONTEXT: &[u8] = b"paramant-attest-v1";

/// A device id: 1–256 characters of `[A-Za-z0-9._:@-]` (it appears in URL paths unencoded).
pub fn check_device_id(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 256
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'));
    if ok { Ok(()) } else { Err(ApiError::bad_request("device_id must be 1-256 characters of A-Z a-z 0-9 . _ : @ -")) }
}

/// Decodes a public key sent as hex (what the SDK sends) or base64 (the API reference's form).
fn decode_key(field: &'static str, text: &str, max: usize) -> ApiResult<Vec<u8>> {
    let is_hex = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
    let bytes =
        if is_hex { hex::decode(text).ok() } else { base64::engine::general_purpose::STANDARD.decode(text).ok() };
    match bytes {
        Some(b) if !b.is_empty() && b.len() <= max => Ok(b),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be 1-{max} bytes"))),
        None => Err(ApiError::bad_request(format!("{field} must be hex or base64"))),
    }
}

/// A registered device, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub device_id: String,
    pub ecdh_pub: String,
    #[serde(default)]
    pub kyber_pub: String,
    #[serde(default)]
    pub dsa_pub: Option<String>,
    pub registered_at: String,
    pub ct_index: u64,
}

impl DeviceRecord {
    fn same_keys(&self, ecdh: &str, kyber: &str, dsa: &Option<String>) -> bool {
        self.ecdh_pub == ecdh && self.kyber_pub == kyber && &self.dsa_pub == dsa
    }

    /// `SHA-256(kyber ‖ ecdh)[..10]` as five groups of four hex digits (what the SDK shows).
    fn fingerprint(&self) -> String {
        let kyber = decode_key("kyber_pub", &self.kyber_pub, MAX_KEM_BYTES).unwrap_or_default();
        let ecdh = decode_key("ecdh_pub", &self.ecdh_pub, MAX_ECDH_BYTES).unwrap_or_default();
        let digest = Sha256::digest([kyber, ecdh].concat());
        let hex = hex::encode_upper(&digest[..10]);
        hex.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
    }

    fn json(&self) -> Value {
        json!({
            "ok": true,
            "device_id": self.device_id,
            "ecdh_pub": self.ecdh_pub,
            "kyber_pub": self.kyber_pub,
            "dsa_pub": self.dsa_pub,
            "registered_at": self.registered_at,
            "ts": self.registered_at,
            "ct_index": self.ct_index,
            "fingerprint": self.fingerprint(),
        })
    }
}

fn load_device(state: &SharedState, key: &KeyHash, device_id: &str) -> ApiResult<Option<DeviceRecord>> {
    let txn = state.db.read()?;
    let table = txn.open_table(DEVICES).map_err(DbError::from)?;
    let raw = table.get((*key, device_id)).map_err(DbError::from)?;
    Ok(raw.map(|v| serde_json::from_slice(v.value())).transpose().map_err(DbError::from)?)
}

fn count_devices(state: &SharedState, key: &KeyHash) -> ApiResult<usize> {
    let txn = state.db.read()?;
    let table = txn.open_table(DEVICES).map_err(DbError::from)?;
    let range = table.range((*key, "")..=(*key, "\u{10FFFF}")).map_err(DbError::from)?;
    Ok(range.count())
}

fn save_device(state: &SharedState, key: &KeyHash, record: &DeviceRecord) -> ApiResult<()> {
    let json = serde_json::to_vec(record).map_err(DbError::from)?;
    state.db.write(|txn| {
        let mut table = txn.open_table(DEVICES).map_err(DbError::from)?;
        table.insert((*key, record.device_id.as_str()), json.as_slice()).map_err(DbError::from)?;
        Ok::<_, ApiError>(())
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    device_id: String,
    ecdh_pub: String,
    #[serde(default)]
    kyber_pub: Option<String>,
    #[serde(default)]
    dsa_pub: Option<String>,
}

/// `POST /v2/pubkey`: registers a device's keys under the caller's key. Identical keys again:
/// 200 and nothing changes; new keys: a rotation, logged like a first registration.
pub async fn register_pubkey(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = state.caller(&headers)?;
    let request: RegisterRequest = jsonapi::json_body(body)?;
    check_device_id(&request.device_id)?;
    decode_key("ecdh_pub", &request.ecdh_pub, MAX_ECDH_BYTES)?;
    let kyber = request.kyber_pub.unwrap_or_default();
    if !kyber.is_empty() {
        decode_key("kyber_pub", &kyber, MAX_KEM_BYTES)?;
    }
    if let Some(dsa) = &request.dsa_pub {
        decode_key("dsa_pub", dsa, MAX_DSA_BYTES)?;
    }
    let existing = load_device(&state, &caller.key_hash, &request.device_id)?;
    if let Some(record) = &existing
        && record.same_keys(&request.ecdh_pub, &kyber, &request.dsa_pub)
    {
        let mut answer = record.json();
        answer["registered"] = json!("unchanged");
        return Ok(Json(answer));
    }
    if existing.is_none() && count_devices(&state, &caller.key_hash)? >= caller.plan.device_limit() {
        return Err(ApiError::rate_limited("device limit of this plan reached", 3600));
    }
    let appended = state
        .log
        .append(wire::LogEvent::DeviceRegistered {
            device_id: request.device_id.clone(),
            ecdh_pub: request.ecdh_pub.clone(),
            kyber_pub: kyber.clone(),
            dsa_pub: request.dsa_pub.clone(),
            sector: state.config.sector.clone(),
            timestamp: String::new(),
        })
        .await?;
    let record = DeviceRecord {
        device_id: request.device_id,
        ecdh_pub: request.ecdh_pub,
        kyber_pub: kyber,
        dsa_pub: request.dsa_pub,
        registered_at: wire::iso8601_ms(now_ms()),
        ct_index: appended.leaf_index,
    };
    save_device(&state, &caller.key_hash, &record)?;
    let mut answer = record.json();
    answer["registered"] = json!(if existing.is_some() { "rotated" } else { "new" });
    Ok(Json(answer))
}

/// `GET /v2/pubkey/{device}`: the keys a sender encrypts to (same API key only).
pub async fn get_pubkey(
    State(state): State<SharedState>,
    headers: HeaderMap,
    PathParam(device): PathParam,
) -> ApiResult<Json<Value>> {
    let caller = state.caller(&headers)?;
    check_device_id(&device)?;
    let record = load_device(&state, &caller.key_hash, &device)?
        .ok_or_else(|| ApiError::not_found("no keys registered for this device"))?;
    Ok(Json(record.json()))
}

// ---------------------------------------------------------------- DIDs

/// A DID as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DidRecord {
    did: String,
    device_id: String,
    owner: String,
    created: String,
    ct_index: u64,
    document: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DidRequest {
    device_id: String,
    ecdh_pub: String,
    #[serde(default)]
    dsa_pub: Option<String>,
    #[serde(default)]
    kyber_pub: Option<String>,
}

/// `did:paramant:` + the first 128 bits of SHA3-256(device_id ‖ ecdh public key bytes), hex.
fn did_for(device_id: &str, ecdh: &[u8]) -> String {
    let digest = Sha3_256::digest([device_id.as_bytes(), ecdh].concat());
    format!("did:paramant:{}", hex::encode(&digest[..16]))
}

/// The W3C DID document of a device: its P-256 key for key agreement and authentication, its
/// ML-DSA-65 key (if any) for assertions, the relay as service, and where the log holds it.
fn did_document(
    did: &str,
    point: &p256::PublicKey,
    ecdh_hex: &str,
    dsa: Option<&[u8]>,
    relay_url: &str,
    created: &str,
    ct_index: u64,
) -> Value {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let encoded = point.to_sec1_point(false);
    let b64url = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let ec_key = format!("{did}#keys-1");
    let mut methods = vec![json!({
        "id": ec_key,
        "type": "JsonWebKey2020",
        "controller": did,
        "publicKeyJwk": { "kty": "EC", "crv": "P-256", "x": b64url(encoded.x().map(|x| x.as_slice()).unwrap_or_default()), "y": b64url(encoded.y().map(|y| y.as_slice()).unwrap_or_default()) },
        "publicKeyHex": ecdh_hex,
    })];
    let mut assertion = vec![json!(ec_key)];
    if let Some(dsa) = dsa {
        let dsa_key = format!("{did}#keys-2");
        methods.push(json!({
            "id": dsa_key,
            "type": "JsonWebKey2020",
            "controller": did,
            "publicKeyJwk": { "kty": "AKP", "alg": "ML-DSA-65", "pub": b64url(dsa) },
        }));
        assertion.push(json!(dsa_key));
    }
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
        "id": did,
        "controller": did,
        "created": created,
        "verificationMethod": methods,
        "authentication": [ec_key],
        "keyAgreement": [ec_key],
        "assertionMethod": assertion,
        "service": [{ "id": format!("{did}#ghost-pipe"), "type": "GhostPipeRelay", "serviceEndpoint": relay_url }],
        "ct_index": ct_index,
    })
}

/// `POST /v2/did/register`.
pub async fn register_did(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = state.caller(&headers)?;
    let request: DidRequest = jsonapi::json_body(body)?;
    check_device_id(&request.device_id)?;
    let ecdh = decode_key("ecdh_pub", &request.ecdh_pub, MAX_ECDH_BYTES)?;
    let point = p256::PublicKey::from_sec1_bytes(&ecdh)
        .map_err(|_| ApiError::bad_request("ecdh_pub must be a P-256 public key (65-byte uncompressed SEC1)"))?;
    let dsa = request.dsa_pub.as_deref().map(|d| decode_key("dsa_pub", d, MAX_DSA_BYTES)).transpose()?;
    if let Some(dsa) = &dsa {
        crypto::LogVerifyingKey::from_bytes(dsa)
            .map_err(|_| ApiError::bad_request("dsa_pub must be an ML-DSA-65 public key (1952 bytes)"))?;
    }
    let did = did_for(&request.device_id, &ecdh);
    if let Some(existing) = load_did(&state, &did)? {
        if existing.owner != hex::encode(caller.key_hash) {
            return Err(ApiError::conflict("did_taken", "this DID is registered by another API key"));
        }
        return Ok(Json(
            json!({ "ok": true, "did": did, "document": existing.document, "ct_index": existing.ct_index }),
        ));
    }
    if count_dids(&state, &caller)? >= MAX_DIDS_PER_KEY {
        return Err(ApiError::rate_limited("at most 500 DIDs per API key", 3600));
    }
    let ecdh_hex = hex::encode(&ecdh);
    let dsa_hex = dsa.as_ref().map(hex::encode);
    let appended = state
        .log
        .append(wire::LogEvent::DidRegistered {
            did: did.clone(),
            device_id: request.device_id.clone(),
            ecdh_pub: ecdh_hex.clone(),
            dsa_pub: dsa_hex.clone(),
            sector: state.config.sector.clone(),
            timestamp: String::new(),
        })
        .await?;
    let created = wire::iso8601_ms(now_ms());
    let document = did_document(
        &did,
        &point,
        &ecdh_hex,
        dsa.as_deref(),
        &state.config.public_url(),
        &created,
        appended.leaf_index,
    );
    let record = DidRecord {
        did: did.clone(),
        device_id: request.device_id.clone(),
        owner: hex::encode(caller.key_hash),
        created: created.clone(),
        ct_index: appended.leaf_index,
        document: document.clone(),
    };
    save_did(&state, &caller.key_hash, &record)?;
    // The device's keys become its registered keys too, so it can attest and receive.
    let device = DeviceRecord {
        device_id: request.device_id,
        ecdh_pub: ecdh_hex,
        kyber_pub: request.kyber_pub.unwrap_or_default(),
        dsa_pub: dsa_hex,
        registered_at: created,
        ct_index: appended.leaf_index,
    };
    save_device(&state, &caller.key_hash, &device)?;
    Ok(Json(json!({ "ok": true, "did": did, "document": document, "ct_index": appended.leaf_index })))
}

fn load_did(state: &SharedState, did: &str) -> ApiResult<Option<DidRecord>> {
    let txn = state.db.read()?;
    let table = txn.open_table(DIDS).map_err(DbError::from)?;
    let raw = table.get(did).map_err(DbError::from)?;
    Ok(raw.map(|v| serde_json::from_slice(v.value())).transpose().map_err(DbError::from)?)
}

fn count_dids(state: &SharedState, caller: &Caller) -> ApiResult<u64> {
    let txn = state.db.read()?;
    let table = txn.open_table(DIDS_BY_KEY).map_err(DbError::from)?;
    let key = caller.key_hash;
    let count = table.range((key, "")..=(key, "\u{10FFFF}")).map_err(DbError::from)?.count();
    Ok(count as u64)
}

fn save_did(state: &SharedState, key: &KeyHash, record: &DidRecord) -> ApiResult<()> {
    let json = serde_json::to_vec(record).map_err(DbError::from)?;
    state.db.write(|txn| {
        txn.open_table(DIDS)
            .map_err(DbError::from)?
            .insert(record.did.as_str(), json.as_slice())
            .map_err(DbError::from)?;
        txn.open_table(DIDS_BY_KEY)
            .map_err(DbError::from)?
            .insert((*key, record.did.as_str()), ())
            .map_err(DbError::from)?;
        Ok::<_, ApiError>(())
    })
}

/// `GET /v2/did/{did}`: public DID resolution.
pub async fn resolve_did(State(state): State<SharedState>, PathParam(did): PathParam) -> ApiResult<Response> {
    let valid =
        did.strip_prefix("did:paramant:").is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(ApiError::bad_request("expected did:paramant: followed by 32 hex characters"));
    }
    let record = load_did(&state, &did.to_ascii_lowercase())?.ok_or_else(|| ApiError::not_found("DID not found"))?;
    let mut response = Json(record.document).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/did+json"));
    Ok(response)
}

/// `GET /v2/did`: the caller's DIDs.
pub async fn list_dids(State(state): State<SharedState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let caller = state.caller(&headers)?;
    let txn = state.db.read()?;
    let by_key = txn.open_table(DIDS_BY_KEY).map_err(DbError::from)?;
    let dids = txn.open_table(DIDS).map_err(DbError::from)?;
    let key = caller.key_hash;
    let mut out = Vec::new();
    for row in by_key.range((key, "")..=(key, "\u{10FFFF}")).map_err(DbError::from)? {
        let (k, _) = row.map_err(DbError::from)?;
        let did = k.value().1.to_owned();
        if let Some(raw) = dids.get(did.as_str()).map_err(DbError::from)? {
            let record: DidRecord = serde_json::from_slice(raw.value()).map_err(DbError::from)?;
            out.push(json!({ "did": record.did, "device": record.device_id, "ts": record.created, "ct_index": record.ct_index }));
        }
    }
    Ok(Json(json!({ "ok": true, "count": out.len(), "dids": out })))
}

// ---------------------------------------------------------------- attestation

/// An issued challenge: its bytes, the relay's ephemeral ECDH secret, and its expiry (ms).
type OpenChallenge = (Vec<u8>, p256::SecretKey, u64);

/// Open attestation challenges, one per (key, device).
#[derive(Default)]
pub struct Challenges {
    open: Mutex<HashMap<(KeyHash, String), OpenChallenge>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    device_id: String,
}

/// `POST /v2/attest/challenge`: a fresh single-use challenge and the relay's ephemeral P-256
/// key for the ECDH method.
pub async fn attest_challenge(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let caller = state.caller(&headers)?;
    let request: ChallengeRequest = jsonapi::json_body(body)?;
    check_device_id(&request.device_id)?;
    load_device(&state, &caller.key_hash, &request.device_id)?
        .ok_or_else(|| ApiError::not_found("no keys registered for this device"))?;
    let challenge = random_bytes::<32>()?;
    let secret = ephemeral_secret()?;
    let relay_pub = secret.public_key().to_sec1_point(false);
    let expires = now_ms() + CHALLENGE_TTL_MS;
    {
        let mut open = state.attest.open.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        open.retain(|_, (_, _, exp)| *exp > now);
        open.insert((caller.key_hash, request.device_id.clone()), (challenge.to_vec(), secret, expires));
    }
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(Json(json!({
        "ok": true,
        "device_id": request.device_id,
        "challenge": b64(&challenge),
        "relay_ecdh_pub": b64(relay_pub.as_bytes()),
        "expires_in_ms": CHALLENGE_TTL_MS,
        "methods": ["ecdh-challenge", "ml-dsa-65"],
    })))
}

fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| ApiError::internal("rng", &e))?;
    Ok(out)
}

fn ephemeral_secret() -> ApiResult<p256::SecretKey> {
    // Rejection sampling: a uniformly random 32-byte string is a valid scalar almost always.
    for _ in 0..8 {
        if let Ok(secret) = p256::SecretKey::from_slice(&random_bytes::<32>()?) {
            return Ok(secret);
        }
    }
    Err(ApiError::internal("attest", &"could not draw a P-256 scalar"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestRequest {
    device_id: String,
    attestation: Attestation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Attestation {
    method: String,
    challenge: String,
    response: String,
}

/// The message a device answers: context ‖ challenge ‖ device id.
fn attest_message(challenge: &[u8], device_id: &str) -> Vec<u8> {
    [ATTEST_CONTEXT, challenge, device_id.as_bytes()].concat()
}

/// `POST /v2/attest`: checks the device's answer to an open challenge.
/// - `ecdh-challenge`: `response = HMAC-SHA256(ECDH(device key, relay_ecdh_pub).x, message)`.
/// - `ml-dsa-65`: `response = ML-DSA-65 signature of message` by the registered `dsa_pub`.
pub async fn attest(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let caller = state.caller(&headers)?;
    let request: AttestRequest = jsonapi::json_body(body)?;
    check_device_id(&request.device_id)?;
    let device = load_device(&state, &caller.key_hash, &request.device_id)?
        .ok_or_else(|| ApiError::not_found("no keys registered for this device"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let challenge =
        b64.decode(&request.attestation.challenge).map_err(|_| ApiError::bad_request("challenge must be base64"))?;
    let response =
        b64.decode(&request.attestation.response).map_err(|_| ApiError::bad_request("response must be base64"))?;
    if !matches!(request.attestation.method.as_str(), "ecdh-challenge" | "ml-dsa-65") {
        return Err(ApiError::bad_request("method must be ecdh-challenge or ml-dsa-65"));
    }
    // Single use: the challenge is taken out whatever the verdict.
    let open = state
        .attest
        .open
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(caller.key_hash, request.device_id.clone()));
    let verdict = match open {
        None => Err("no open challenge for this device (request one from /v2/attest/challenge)"),
        Some((_, _, expires)) if expires <= now_ms() => Err("the challenge has expired"),
        Some((issued, _, _)) if !crypto::ct_eq(&issued, &challenge) => {
            Err("the challenge was not issued for this device")
        }
        Some((issued, secret, _)) => check_response(
            &request.attestation.method,
            &device,
            &secret,
            &attest_message(&issued, &request.device_id),
            &response,
        ),
    };
    let valid = verdict.is_ok();
    if valid {
        state.audit.record(caller.key_hash, "attestation", "", 0, Some(request.device_id.clone()));
    }
    let mut answer =
        json!({ "ok": true, "valid": valid, "device": request.device_id, "method": request.attestation.method });
    if let Err(reason) = verdict {
        answer["reason"] = json!(reason);
    }
    Ok(Json(answer))
}

fn check_response(
    method: &str,
    device: &DeviceRecord,
    secret: &p256::SecretKey,
    message: &[u8],
    response: &[u8],
) -> Result<(), &'static str> {
    match method {
        "ecdh-challenge" => {
            let device_pub = decode_key("ecdh_pub", &device.ecdh_pub, MAX_ECDH_BYTES)
                .ok()
                .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
                .ok_or("the registered ecdh_pub is not a P-256 key")?;
            let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), device_pub.as_affine());
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(shared.raw_secret_bytes().as_slice())
                .map_err(|_| "hmac key")?;
            mac.update(message);
            mac.verify_slice(response).map_err(|_| "the response does not prove possession of the registered key")
        }
        _ => {
            let dsa = device.dsa_pub.as_deref().ok_or("the device registered no dsa_pub")?;
            let key = decode_key("dsa_pub", dsa, MAX_DSA_BYTES)
                .ok()
                .and_then(|b| crypto::LogVerifyingKey::from_bytes(&b).ok())
                .ok_or("the registered dsa_pub is not an ML-DSA-65 key")?;
            key.verify(message, response).map_err(|_| "the signature does not verify with the registered key")
        }
    }
}
