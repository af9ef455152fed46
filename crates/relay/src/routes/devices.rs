//! Device identities: public keys (`/v2/pubkey`), W3C DIDs (`/v2/did/*`) and attestation
//! (`/v2/attest`) that proves possession of the registered key by challenge–response.
//! Registrations are appended to the log; re-registering identical keys changes nothing.
//! Every key is checked before it is stored: ECDH keys are P-256 points (or, on `/v2/pubkey`,
//! the SDK's 32-byte identity anchor), `kyber_pub` an ML-KEM-768 encapsulation key (1184 bytes,
//! every coefficient below q), `dsa_pub` an ML-DSA-65 key (1952 bytes).

use axum::Json;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
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
use crate::ids::{DeviceId, decode_public_key, signer_id};
use crate::routes::PathParam;
use crate::state::{SharedState, now_ms};

/// Most DIDs one API key may register (API reference).
const MAX_DIDS_PER_KEY: u64 = 500;
/// Size of an ML-KEM-768 encapsulation key (FIPS 203): 3 × 384 bytes of coefficients + ρ.
const ML_KEM_768_KEY_BYTES: usize = 1184;
/// The SDK's `ecdh_pub`: SHA-256 of its ML-KEM key, an identity anchor rather than a point.
const IDENTITY_ANCHOR_BYTES: usize = 32;
/// Accepted clock difference of a one-shot attestation challenge.
const ONE_SHOT_SKEW_MS: u64 = 5 * 60 * 1000;
/// How long an attestation challenge may be answered.
const CHALLENGE_TTL_MS: u64 = 5 * 60 * 1000;
/// Domain separation of attestation responses.
const ATTEST_CONTEXT: &[u8] = b"paramant-attest-v1";

/// Decodes a public key field sent as hex or base64.
fn decode_key(field: &'static str, text: &str) -> ApiResult<Vec<u8>> {
    decode_public_key(text)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{field} must be hex or base64")))
}

/// Which ECDH keys a registration accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EcdhKey {
    /// A P-256 point only (DIDs: it goes into the DID document and answers challenges).
    P256Only,
    /// A P-256 point or the SDK's 32-byte identity anchor (`/v2/pubkey`).
    P256OrAnchor,
}

fn check_ecdh(text: &str, accepted: EcdhKey) -> ApiResult<Vec<u8>> {
    let bytes = decode_key("ecdh_pub", text)?;
    let anchor = accepted == EcdhKey::P256OrAnchor && bytes.len() == IDENTITY_ANCHOR_BYTES;
    if anchor || p256::PublicKey::from_sec1_bytes(&bytes).is_ok() {
        return Ok(bytes);
    }
    Err(ApiError::bad_request(match accepted {
        EcdhKey::P256Only => "ecdh_pub must be a P-256 public key (65-byte uncompressed SEC1)",
        EcdhKey::P256OrAnchor => "ecdh_pub must be a P-256 public key (SEC1) or a 32-byte identity anchor",
    }))
}

/// An ML-KEM-768 encapsulation key: 1184 bytes whose 768 12-bit coefficients are all below
/// q = 3329 (FIPS 203's modulus check).
fn check_kem(text: &str) -> ApiResult<Vec<u8>> {
    let bytes = decode_key("kyber_pub", text)?;
    let coefficients_ok = bytes.len() == ML_KEM_768_KEY_BYTES
        && bytes[..ML_KEM_768_KEY_BYTES - 32].chunks_exact(3).all(|c| {
            let first = u16::from(c[0]) | (u16::from(c[1] & 0x0f) << 8);
            let second = u16::from(c[1] >> 4) | (u16::from(c[2]) << 4);
            first < 3329 && second < 3329
        });
    if coefficients_ok {
        Ok(bytes)
    } else {
        Err(ApiError::bad_request("kyber_pub must be an ML-KEM-768 public key (1184 bytes)"))
    }
}

fn check_dsa(text: &str) -> ApiResult<Vec<u8>> {
    let bytes = decode_key("dsa_pub", text)?;
    crypto::LogVerifyingKey::from_bytes(&bytes)
        .map_err(|_| ApiError::bad_request("dsa_pub must be an ML-DSA-65 public key (1952 bytes)"))?;
    Ok(bytes)
}

impl DeviceRecord {
    fn same_keys(&self, ecdh: &str, kyber: &str, dsa: &Option<String>) -> bool {
        self.ecdh_pub == ecdh && self.kyber_pub == kyber && &self.dsa_pub == dsa
    }

    /// Whether a DID registration names this device's keys: the same ECDH key, and the same
    /// ML-DSA and ML-KEM keys where it names them (compared as bytes: hex and base64 agree).
    fn holds(&self, ecdh: &[u8], dsa: Option<&[u8]>, kem: Option<&[u8]>) -> bool {
        let same = |stored: Option<&str>, given: Option<&[u8]>| {
            given.is_none_or(|g| stored.and_then(decode_public_key).as_deref() == Some(g))
        };
        decode_public_key(&self.ecdh_pub).as_deref() == Some(ecdh)
            && same(self.dsa_pub.as_deref(), dsa)
            && same(Some(self.kyber_pub.as_str()).filter(|k| !k.is_empty()), kem)
    }

    /// `SHA-256(kyber ‖ ecdh)[..10]` as five groups of four hex digits (what the SDK shows).
    fn fingerprint(&self) -> String {
        let kyber = decode_public_key(&self.kyber_pub).unwrap_or_default();
        let ecdh = decode_public_key(&self.ecdh_pub).unwrap_or_default();
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
    check_ecdh(&request.ecdh_pub, EcdhKey::P256OrAnchor)?;
    let kyber = request.kyber_pub.unwrap_or_default();
    if !kyber.is_empty() {
        check_kem(&kyber)?;
    }
    let signer = request.dsa_pub.as_deref().map(check_dsa).transpose()?.map(|dsa| signer_id(&dsa));
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
        .append(wire::LogEvent::DeviceRegistered {
            device_id: request.device_id.to_string(),
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
    state.db.put_device(caller.key_hash(), &record, signer.as_ref())?;
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

/// Who registers a DID: an API key, or nobody for a receiver session (`inv_…`).
enum Registrant {
    Key(Caller),
    ReceiverSession,
}

/// `POST /v2/did/register`. With an API key: the DID's device becomes a device of the key —
/// a new device counts against the plan's device limit and is logged (`device_registered`)
/// besides the DID; an existing device must be registered with the same keys (they are never
/// replaced here: rotation is `POST /v2/pubkey`, which logs it). Without a key: only receiver
/// sessions (`device_id` starting with `inv_`), limited per client address and in all, and the
/// DID is not bound to any key's devices.
pub async fn register_did(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    caller: Option<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let request: DidRequest = jsonapi::json_body(body)?;
    let registrant = match caller {
        Some(caller) => Registrant::Key(caller),
        None if request.device_id.is_receiver_session() => Registrant::ReceiverSession,
        None => {
            return Err(ApiError::unauthorized(
                "X-Api-Key header required (receiver sessions, device_id inv_…, register without one)",
            ));
        }
    };
    let ecdh = check_ecdh(&request.ecdh_pub, EcdhKey::P256Only)?;
    let point = p256::PublicKey::from_sec1_bytes(&ecdh)
        .map_err(|_| ApiError::bad_request("ecdh_pub must be a P-256 public key (65-byte uncompressed SEC1)"))?;
    let dsa = request.dsa_pub.as_deref().map(check_dsa).transpose()?;
    let kem = request.kyber_pub.as_deref().map(check_kem).transpose()?;
    let did = did_for(&request.device_id, &ecdh);
    let owner = match &registrant {
        Registrant::Key(caller) => hex::encode(caller.key_hash()),
        Registrant::ReceiverSession => String::new(),
    };
    if let Some(existing) = state.db.did(&did)? {
        if existing.owner != owner {
            return Err(ApiError::conflict("did_taken", "this DID is registered by another API key"));
        }
        return Ok(Json(
            json!({ "ok": true, "did": did, "document": existing.document, "ct_index": existing.ct_index }),
        ));
    }
    let new_device = match &registrant {
        Registrant::Key(caller) => {
            device_for_did(&state, caller, &request.device_id, &ecdh, dsa.as_deref(), kem.as_deref())?
        }
        Registrant::ReceiverSession => {
            limit_receiver_sessions(&state, peer)?;
            false
        }
    };
    let ecdh_hex = hex::encode(&ecdh);
    let dsa_hex = dsa.as_ref().map(hex::encode);
    let kem_hex = kem.as_ref().map(hex::encode).unwrap_or_default();
    let device_leaf = if new_device {
        let appended = state
            .log
            .append(wire::LogEvent::DeviceRegistered {
                device_id: request.device_id.to_string(),
                ecdh_pub: ecdh_hex.clone(),
                kyber_pub: kem_hex.clone(),
                dsa_pub: dsa_hex.clone(),
                sector: state.config.sector.clone(),
                timestamp: String::new(),
            })
            .await?;
        Some(appended.leaf_index)
    } else {
        None
    };
    let appended = state
        .log
        .append(wire::LogEvent::DidRegistered {
            did: did.clone(),
            device_id: request.device_id.to_string(),
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
        owner,
        created: created.clone(),
        ct_index: appended.leaf_index,
        document: document.clone(),
    };
    let device = device_leaf.map(|ct_index| DeviceRecord {
        device_id: request.device_id,
        ecdh_pub: ecdh_hex,
        kyber_pub: kem_hex,
        dsa_pub: dsa_hex,
        registered_at: created,
        ct_index,
    });
    let signer = dsa.as_deref().map(signer_id);
    let key = match &registrant {
        Registrant::Key(caller) => Some(caller.key_hash()),
        Registrant::ReceiverSession => None,
    };
    state.db.put_did(key, &record, device.as_ref().map(|d| (d, signer.as_ref())))?;
    Ok(Json(json!({ "ok": true, "did": did, "document": document, "ct_index": appended.leaf_index })))
}

/// Whether a keyed DID registration brings a new device (checked against the plan's device
/// limit and the DID cap); an existing device must hold the same keys.
fn device_for_did(
    state: &SharedState,
    caller: &Caller,
    device_id: &DeviceId,
    ecdh: &[u8],
    dsa: Option<&[u8]>,
    kem: Option<&[u8]>,
) -> ApiResult<bool> {
    if state.db.did_count(caller.key_hash())? >= MAX_DIDS_PER_KEY {
        return Err(ApiError::rate_limited("at most 500 DIDs per API key", 3600));
    }
    match state.db.device(caller.key_hash(), device_id)? {
        Some(device) if device.holds(ecdh, dsa, kem) => Ok(false),
        Some(_) => Err(ApiError::conflict(
            "device_keys_differ",
            "this device is registered with other keys; rotate them with POST /v2/pubkey first",
        )),
        None if state.db.device_count(caller.key_hash())? >= caller.plan().device_limit() => {
            Err(ApiError::rate_limited("device limit of this plan reached", 3600))
        }
        None => Ok(true),
    }
}

/// Receiver sessions register without a key: limited per client address and in all (config
/// `[limits] receiver_sessions_per_ip_per_hour`, `receiver_sessions_per_hour`).
fn limit_receiver_sessions(state: &SharedState, peer: SocketAddr) -> ApiResult<()> {
    let limits = &state.config.limits;
    let now = now_ms();
    state
        .sessions_per_ip
        .check(peer.ip(), limits.receiver_sessions_per_ip_per_hour, now)
        .map_err(|l| ApiError::rate_limited("too many receiver sessions from this address", l.retry_after_secs))?;
    state
        .sessions
        .check(&(), limits.receiver_sessions_per_hour, now)
        .map_err(|l| ApiError::rate_limited("too many receiver sessions on this relay", l.retry_after_secs))
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

/// `POST /v2/attest`: checks the device's answer to a fresh challenge. Fresh means either
/// - open: issued by `/v2/attest/challenge` to this key and device, unexpired (single use); or
/// - one-shot (the API reference's single request): made by the device, bound to the time —
///   8 bytes big-endian Unix ms within ±5 minutes of the relay's clock, then 16–120 random
///   bytes — and never accepted before.
///
/// Responses, over `message = "paramant-attest-v1" ‖ challenge ‖ device_id`:
/// - `ecdh-challenge`, open: `HMAC-SHA256(ECDH(device key, relay_ecdh_pub).x, message)`;
///   one-shot: an ECDSA P-256/SHA-256 signature of `message` by the registered `ecdh_pub`
///   (64-byte `r ‖ s` or DER) — there is no relay key to agree with in one request.
/// - `ml-dsa-65`: an ML-DSA-65 signature of `message` by the registered `dsa_pub` (both).
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
    let method = match request.attestation.method.as_str() {
        "ecdh-challenge" => Method::EcdhChallenge,
        "ml-dsa-65" => Method::MlDsa65,
        _ => return Err(ApiError::bad_request("method must be ecdh-challenge or ml-dsa-65")),
    };
    let message = attest_message(&challenge, &request.device_id);
    let now = now_ms();
    let verdict = match state.attest.take_matching(*caller.key_hash(), &request.device_id, &challenge) {
        Some(issued) if issued.expires_ms <= now => Err("the challenge has expired"),
        Some(issued) => check_response(method, &device, Some(&issued.secret), &message, &response),
        None => one_shot_time(&challenge, now)
            .and_then(|_| check_response(method, &device, None, &message, &response))
            .and_then(|_| state.attest.accept_once(&challenge, now)),
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

/// The attestation methods.
#[derive(Clone, Copy)]
enum Method {
    EcdhChallenge,
    MlDsa65,
}

/// Checks that a challenge the relay did not issue is bound to the current time.
fn one_shot_time(challenge: &[u8], now: u64) -> Result<(), &'static str> {
    let stale = "the challenge is neither open nor fresh: request one from /v2/attest/challenge, or start it \
                 with the current Unix time in ms (8 bytes big-endian) followed by 16-120 random bytes";
    let (time, nonce) = challenge.split_first_chunk::<8>().ok_or(stale)?;
    if !(16..=120).contains(&nonce.len()) || now.abs_diff(u64::from_be_bytes(*time)) > ONE_SHOT_SKEW_MS {
        return Err(stale);
    }
    Ok(())
}

/// Checks a response; `secret` is the relay's ephemeral key of an open `ecdh-challenge`.
fn check_response(
    method: Method,
    device: &DeviceRecord,
    secret: Option<&p256::SecretKey>,
    message: &[u8],
    response: &[u8],
) -> Result<(), &'static str> {
    match method {
        Method::EcdhChallenge => {
            let device_pub = decode_public_key(&device.ecdh_pub)
                .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
                .ok_or("the registered ecdh_pub is not a P-256 key")?;
            let Some(secret) = secret else { return check_ecdsa(&device_pub, message, response) };
            let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), device_pub.as_affine());
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(shared.raw_secret_bytes().as_slice())
                .map_err(|_| "hmac key")?;
            mac.update(message);
            mac.verify_slice(response).map_err(|_| "the response does not prove possession of the registered key")
        }
        Method::MlDsa65 => {
            let dsa = device.dsa_pub.as_deref().ok_or("the device registered no dsa_pub")?;
            let key = decode_public_key(dsa)
                .and_then(|b| crypto::LogVerifyingKey::from_bytes(&b).ok())
                .ok_or("the registered dsa_pub is not an ML-DSA-65 key")?;
            key.verify(message, response).map_err(|_| "the signature does not verify with the registered key")
        }
    }
}

/// An ECDSA P-256/SHA-256 signature (64-byte `r ‖ s` or DER) of `message` by `key`.
fn check_ecdsa(key: &p256::PublicKey, message: &[u8], response: &[u8]) -> Result<(), &'static str> {
    use p256::ecdsa::signature::Verifier;
    let signature = p256::ecdsa::Signature::from_slice(response)
        .or_else(|_| p256::ecdsa::Signature::from_der(response))
        .map_err(|_| "the response is not an ECDSA P-256 signature")?;
    p256::ecdsa::VerifyingKey::from(key)
        .verify(message, &signature)
        .map_err(|_| "the signature does not verify with the registered key")
}
