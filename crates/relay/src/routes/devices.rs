//! Device identities: public keys (`/v2/pubkey`), W3C DIDs (`/v2/did/*`) and attestation
//! (`/v2/attest`) that proves possession of the registered key by challenge–response.
//! Registrations are appended to the log; re-registering identical keys changes nothing.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use jsonapi::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sha3::Sha3_256;

use crate::attest::Issued;
use crate::auth::Caller;
use crate::db::{DeviceRecord, DidRecord};
use crate::ids::DeviceId;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    device_id: DeviceId,
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
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: RegisterRequest = jsonapi::json_body(body)?;
    decode_key("ecdh_pub", &request.ecdh_pub, MAX_ECDH_BYTES)?;
    let kyber = request.kyber_pub.unwrap_or_default();
    if !kyber.is_empty() {
        decode_key("kyber_pub", &kyber, MAX_KEM_BYTES)?;
    }
    if let Some(dsa) = &request.dsa_pub {
        decode_key("dsa_pub", dsa, MAX_DSA_BYTES)?;
    }
    let existing = state.db.device(caller.key_hash(), &request.device_id)?;
    if let Some(record) = &existing
        && record.same_keys(&request.ecdh_pub, &kyber, &request.dsa_pub)
    {
        let mut answer = record.json();
        answer["registered"] = json!("unchanged");
        return Ok(Json(answer));
    }
    if existing.is_none() && state.db.device_count(caller.key_hash())? >= caller.plan().device_limit() {
        return Err(ApiError::rate_limited("device limit of this plan reached", 3600));
    }
    let appended = state
        .log
        .append(json!({
            "type": "device_registered",
            "device_id": request.device_id,
            "ecdh_pub": request.ecdh_pub,
            "kyber_pub": kyber,
            "dsa_pub": request.dsa_pub,
            "sector": state.config.sector,
        }))
        .await?;
    let record = DeviceRecord {
        device_id: request.device_id,
        ecdh_pub: request.ecdh_pub,
        kyber_pub: kyber,
        dsa_pub: request.dsa_pub,
        registered_at: wire::iso8601_ms(now_ms()),
        ct_index: appended.leaf_index,
    };
    state.db.put_device(caller.key_hash(), &record, None)?;
    let mut answer = record.json();
    answer["registered"] = json!(if existing.is_some() { "rotated" } else { "new" });
    Ok(Json(answer))
}

/// `GET /v2/pubkey/{device}`: the keys a sender encrypts to (same API key only).
pub async fn get_pubkey(
    State(state): State<SharedState>,
    caller: Caller,
    PathParam(device): PathParam,
) -> ApiResult<Json<Value>> {
    let device = DeviceId::parse(&device)?;
    let record = state
        .db
        .device(caller.key_hash(), &device)?
        .ok_or_else(|| ApiError::not_found("no keys registered for this device"))?;
    Ok(Json(record.json()))
}

// ---------------------------------------------------------------- DIDs

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DidRequest {
    device_id: DeviceId,
    ecdh_pub: String,
    #[serde(default)]
    dsa_pub: Option<String>,
    #[serde(default)]
    kyber_pub: Option<String>,
}

/// `did:paramant:` + the first 128 bits of SHA3-256(device_id ‖ ecdh public key bytes), hex.
fn did_for(device_id: &DeviceId, ecdh: &[u8]) -> String {
    let digest = Sha3_256::digest([device_id.as_str().as_bytes(), ecdh].concat());
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
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: DidRequest = jsonapi::json_body(body)?;
    let ecdh = decode_key("ecdh_pub", &request.ecdh_pub, MAX_ECDH_BYTES)?;
    let point = p256::PublicKey::from_sec1_bytes(&ecdh)
        .map_err(|_| ApiError::bad_request("ecdh_pub must be a P-256 public key (65-byte uncompressed SEC1)"))?;
    let dsa = request.dsa_pub.as_deref().map(|d| decode_key("dsa_pub", d, MAX_DSA_BYTES)).transpose()?;
    if let Some(dsa) = &dsa {
        crypto::LogVerifyingKey::from_bytes(dsa)
            .map_err(|_| ApiError::bad_request("dsa_pub must be an ML-DSA-65 public key (1952 bytes)"))?;
    }
    let did = did_for(&request.device_id, &ecdh);
    if let Some(existing) = state.db.did(&did)? {
        if existing.owner != hex::encode(caller.key_hash()) {
            return Err(ApiError::conflict("did_taken", "this DID is registered by another API key"));
        }
        return Ok(Json(
            json!({ "ok": true, "did": did, "document": existing.document, "ct_index": existing.ct_index }),
        ));
    }
    if state.db.did_count(caller.key_hash())? >= MAX_DIDS_PER_KEY {
        return Err(ApiError::rate_limited("at most 500 DIDs per API key", 3600));
    }
    let ecdh_hex = hex::encode(&ecdh);
    let dsa_hex = dsa.as_ref().map(hex::encode);
    let appended = state
        .log
        .append(json!({
            "type": "did_registered",
            "did": did,
            "device_id": request.device_id,
            "ecdh_pub": ecdh_hex,
            "dsa_pub": dsa_hex,
            "sector": state.config.sector,
        }))
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
        owner: hex::encode(caller.key_hash()),
        created: created.clone(),
        ct_index: appended.leaf_index,
        document: document.clone(),
    };
    // The device's keys become its registered keys too, so it can attest and receive.
    let device = DeviceRecord {
        device_id: request.device_id,
        ecdh_pub: ecdh_hex,
        kyber_pub: request.kyber_pub.unwrap_or_default(),
        dsa_pub: dsa_hex,
        registered_at: created,
        ct_index: appended.leaf_index,
    };
    state.db.put_did(Some(caller.key_hash()), &record, Some((&device, None)))?;
    Ok(Json(json!({ "ok": true, "did": did, "document": document, "ct_index": appended.leaf_index })))
}

/// `GET /v2/did/{did}`: public DID resolution.
pub async fn resolve_did(State(state): State<SharedState>, PathParam(did): PathParam) -> ApiResult<Response> {
    let valid =
        did.strip_prefix("did:paramant:").is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(ApiError::bad_request("expected did:paramant: followed by 32 hex characters"));
    }
    let record = state.db.did(&did.to_ascii_lowercase())?.ok_or_else(|| ApiError::not_found("DID not found"))?;
    let mut response = Json(record.document).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/did+json"));
    Ok(response)
}

/// `GET /v2/did`: the caller's DIDs.
pub async fn list_dids(State(state): State<SharedState>, caller: Caller) -> ApiResult<Json<Value>> {
    let out: Vec<Value> = state
        .db
        .dids_of(caller.key_hash())?
        .into_iter()
        .map(|r| json!({ "did": r.did, "device": r.device_id, "ts": r.created, "ct_index": r.ct_index }))
        .collect();
    Ok(Json(json!({ "ok": true, "count": out.len(), "dids": out })))
}

// ---------------------------------------------------------------- attestation

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    device_id: DeviceId,
}

/// `POST /v2/attest/challenge`: a fresh single-use challenge and the relay's ephemeral P-256
/// key for the ECDH method.
pub async fn attest_challenge(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let request: ChallengeRequest = jsonapi::json_body(body)?;
    state
        .db
        .device(caller.key_hash(), &request.device_id)?
        .ok_or_else(|| ApiError::not_found("no keys registered for this device"))?;
    let challenge = random_bytes::<32>()?;
    let secret = ephemeral_secret()?;
    let relay_pub = secret.public_key().to_sec1_point(false);
    let now = now_ms();
    let issued = Issued { challenge: challenge.to_vec(), secret, expires_ms: now + CHALLENGE_TTL_MS };
    state.attest.issue(*caller.key_hash(), request.device_id.clone(), issued, now);
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
    device_id: DeviceId,
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
fn attest_message(challenge: &[u8], device_id: &DeviceId) -> Vec<u8> {
    [ATTEST_CONTEXT, challenge, device_id.as_str().as_bytes()].concat()
}

/// `POST /v2/attest`: checks the device's answer to an open challenge.
/// - `ecdh-challenge`: `response = HMAC-SHA256(ECDH(device key, relay_ecdh_pub).x, message)`.
/// - `ml-dsa-65`: `response = ML-DSA-65 signature of message` by the registered `dsa_pub`.
pub async fn attest(
    State(state): State<SharedState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: AttestRequest = jsonapi::json_body(body)?;
    let device = state
        .db
        .device(caller.key_hash(), &request.device_id)?
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
    let open = state.attest.take(*caller.key_hash(), &request.device_id);
    let verdict = match open {
        None => Err("no open challenge for this device (request one from /v2/attest/challenge)"),
        Some(issued) if issued.expires_ms <= now_ms() => Err("the challenge has expired"),
        Some(issued) if !crypto::ct_eq(&issued.challenge, &challenge) => {
            Err("the challenge was not issued for this device")
        }
        Some(issued) => check_response(
            &request.attestation.method,
            &device,
            &issued.secret,
            &attest_message(&issued.challenge, &request.device_id),
            &response,
        ),
    };
    let valid = verdict.is_ok();
    if valid {
        state.audit.record(*caller.key_hash(), "attestation", "", 0, Some(request.device_id.to_string()));
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
