//! Who a device is and who sent a blob: DID registration never replaces a device's keys and
//! respects the plan (L1), receiver sessions register without a key (`inv_…`), one-shot
//! attestation with a fresh challenge, and `sig_verified` telling the truth about a wire-v1
//! blob's ML-DSA-65 sender signature.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToSec1Point;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn device_key() -> p256::SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

fn public_hex(secret: &p256::SecretKey) -> String {
    hex::encode(secret.public_key().to_sec1_point(false).as_bytes())
}

fn logged(sector: &Sector, kind: &str, device: &str) -> Vec<Value> {
    sector.log_entries().into_iter().filter(|e| e["type"] == kind && e["device_id"] == device).collect()
}

#[test]
fn a_did_registration_never_replaces_a_devices_keys_and_logs_a_new_device() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let (registered, other) = (device_key(), device_key());
    let kyber = hex::encode(mlkem768_key(5));
    let device = json!({ "device_id": "plc-1", "ecdh_pub": public_hex(&registered), "kyber_pub": kyber });
    assert_eq!(sector.post("/v2/pubkey", Some(&key), &device).status, 200);

    let takeover = json!({ "device_id": "plc-1", "ecdh_pub": public_hex(&other) });
    sector.post("/v2/did/register", Some(&key), &takeover).assert_error(409, "device_keys_differ");
    let wrong_kem =
        json!({ "device_id": "plc-1", "ecdh_pub": public_hex(&registered), "kyber_pub": hex::encode(mlkem768_key(6)) });
    sector.post("/v2/did/register", Some(&key), &wrong_kem).assert_error(409, "device_keys_differ");
    let keys = sector.get("/v2/pubkey/plc-1", Some(&key)).json();
    assert_eq!((keys["ecdh_pub"].clone(), keys["kyber_pub"].clone()), (json!(public_hex(&registered)), json!(kyber)));

    let same = json!({ "device_id": "plc-1", "ecdh_pub": b64(&hex::decode(public_hex(&registered)).unwrap()) });
    let did = sector.post("/v2/did/register", Some(&key), &same);
    assert_eq!(did.status, 200, "the same key in base64 is the same key: {}", did.text());
    assert_eq!(logged(&sector, "device_registered", "plc-1").len(), 1, "the existing device is not re-logged");

    let fresh =
        json!({ "device_id": "plc-2", "ecdh_pub": public_hex(&other), "kyber_pub": hex::encode(mlkem768_key(7)) });
    assert_eq!(sector.post("/v2/did/register", Some(&key), &fresh).status, 200);
    let device_leaf = logged(&sector, "device_registered", "plc-2");
    assert_eq!(device_leaf.len(), 1, "a device a DID brings is logged like any device");
    assert_eq!(device_leaf[0]["kyber_pub"], hex::encode(mlkem768_key(7)));
    assert_eq!(sector.get("/v2/pubkey/plc-2", Some(&key)).json()["ecdh_pub"], public_hex(&other));
}

#[test]
fn device_keys_are_validated_and_the_plans_device_limit_holds_for_dids() {
    let sector = Sector::start();
    let key = sector.key("free");
    let mut bad_kem = mlkem768_key(1);
    bad_kem[0] = 0xff;
    bad_kem[1] |= 0x0f; // first coefficient 4095 ≥ q
    let p256 = public_hex(&device_key());
    for (field, value) in [
        ("kyber_pub", hex::encode(&bad_kem)),
        ("kyber_pub", hex::encode(payload(1, 100))),
        ("dsa_pub", hex::encode(payload(2, 1000))),
    ] {
        for path in ["/v2/pubkey", "/v2/did/register"] {
            let mut body = json!({ "device_id": "dev", "ecdh_pub": p256 });
            body[field] = json!(value);
            let reply = sector.post(path, Some(&key), &body);
            assert_eq!((reply.status, reply.error()), (400, "bad_request".into()), "{path} {field}: {}", reply.text());
        }
    }
    let not_a_point = json!({ "device_id": "dev", "ecdh_pub": hex::encode([4u8; 65]) });
    sector.post("/v2/pubkey", Some(&key), &not_a_point).assert_error(400, "bad_request");
    let anchor = json!({ "device_id": "sdk", "ecdh_pub": hex::encode([9u8; 32]) });
    assert_eq!(sector.post("/v2/pubkey", Some(&key), &anchor).status, 200, "the SDK's identity anchor");
    for i in 1..5 {
        let body = json!({ "device_id": format!("dev-{i}"), "ecdh_pub": public_hex(&device_key()) });
        assert_eq!(sector.post("/v2/pubkey", Some(&key), &body).status, 200);
    }
    let sixth = json!({ "device_id": "dev-6", "ecdh_pub": public_hex(&device_key()) });
    sector.post("/v2/did/register", Some(&key), &sixth).assert_error(429, "rate_limited");
    sector.post("/v2/pubkey", Some(&key), &sixth).assert_error(429, "rate_limited");
    assert!(logged(&sector, "did_registered", "dev-6").is_empty());
}

#[test]
fn receiver_sessions_register_a_did_without_a_key_within_their_own_limit() {
    let sector = Sector::with_config("[limits]\nreceiver_sessions_per_ip_per_hour = 2\n");
    let session = |id: &str| json!({ "device_id": id, "ecdh_pub": public_hex(&device_key()) });
    let first = sector.post("/v2/did/register", None, &session("inv_7f3a"));
    assert_eq!(first.status, 200, "{}", first.text());
    let did = first.json()["did"].as_str().unwrap().to_owned();
    assert_eq!(sector.get(&format!("/v2/did/{did}"), None).json()["id"], did.as_str(), "resolves publicly");
    assert_eq!(logged(&sector, "did_registered", "inv_7f3a").len(), 1);
    assert!(logged(&sector, "device_registered", "inv_7f3a").is_empty(), "no key's device");

    sector.post("/v2/did/register", None, &session("plc-9")).assert_error(401, "unauthorized");
    sector.post("/v2/did/register", Some("pgp_not_a_real_key_1"), &session("inv_x")).assert_error(401, "unauthorized");
    assert_eq!(sector.post("/v2/did/register", None, &session("inv_second")).status, 200);
    sector.post("/v2/did/register", None, &session("inv_third")).assert_error(429, "rate_limited");
    // A key holder's DIDs are not limited by the sessions' allowance.
    let key = sector.key("enterprise");
    assert_eq!(sector.post("/v2/did/register", Some(&key), &session("inv_keyed")).status, 200);
}

/// `"paramant-attest-v1" ‖ challenge ‖ device`.
fn message(challenge: &[u8], device: &str) -> Vec<u8> {
    [b"paramant-attest-v1".as_slice(), challenge, device.as_bytes()].concat()
}

fn fresh_challenge(at_ms: u64) -> Vec<u8> {
    [at_ms.to_be_bytes().as_slice(), &payload(at_ms, 24)].concat()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn attest(sector: &Sector, key: &str, device: &str, method: &str, challenge: &[u8], response: &[u8]) -> Value {
    let body = json!({ "device_id": device, "attestation": { "method": method, "challenge": b64(challenge), "response": b64(response) } });
    let reply = sector.post("/v2/attest", Some(key), &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn a_one_shot_attestation_with_a_fresh_challenge_is_accepted_once() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let ecdh = device_key();
    let dsa = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let body = json!({ "device_id": "plc-1", "ecdh_pub": public_hex(&ecdh), "dsa_pub": hex::encode(dsa.verifying_key().to_bytes()) });
    assert_eq!(sector.post("/v2/did/register", Some(&key), &body).status, 200);

    let challenge = fresh_challenge(now_ms());
    let signed = dsa.sign(&message(&challenge, "plc-1"));
    let verdict = attest(&sector, &key, "plc-1", "ml-dsa-65", &challenge, &signed);
    assert_eq!(verdict["valid"], true, "{verdict}");
    let replay = attest(&sector, &key, "plc-1", "ml-dsa-65", &challenge, &signed);
    assert_eq!(
        (replay["valid"].clone(), replay["reason"].clone()),
        (json!(false), json!("this challenge was already used"))
    );

    let ecdsa = p256::ecdsa::SigningKey::from(&ecdh);
    let challenge = fresh_challenge(now_ms() + 1);
    let signature: p256::ecdsa::Signature = ecdsa.sign(&message(&challenge, "plc-1"));
    let verdict = attest(&sector, &key, "plc-1", "ecdh-challenge", &challenge, &signature.to_bytes());
    assert_eq!(verdict["valid"], true, "{verdict}");
    let challenge = fresh_challenge(now_ms() + 2);
    let der: p256::ecdsa::Signature = ecdsa.sign(&message(&challenge, "plc-1"));
    let verdict = attest(&sector, &key, "plc-1", "ecdh-challenge", &challenge, &der.to_der().to_bytes());
    assert_eq!(verdict["valid"], true, "DER signatures too: {verdict}");

    for (what, challenge) in [
        ("stale", fresh_challenge(now_ms() - 10 * 60 * 1000)),
        ("future", fresh_challenge(now_ms() + 10 * 60 * 1000)),
        ("too short", now_ms().to_be_bytes().to_vec()),
    ] {
        let signed = dsa.sign(&message(&challenge, "plc-1"));
        assert_eq!(attest(&sector, &key, "plc-1", "ml-dsa-65", &challenge, &signed)["valid"], false, "{what}");
    }
    let challenge = fresh_challenge(now_ms() + 3);
    let other = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap().sign(&message(&challenge, "plc-1"));
    assert_eq!(attest(&sector, &key, "plc-1", "ml-dsa-65", &challenge, &other)["valid"], false, "another key");
    let retry = dsa.sign(&message(&challenge, "plc-1"));
    assert_eq!(
        attest(&sector, &key, "plc-1", "ml-dsa-65", &challenge, &retry)["valid"],
        true,
        "a refusal does not burn it"
    );
}

/// A wire-format-v1 blob as the SDK builds it: header, ML-KEM ciphertext, the sender's
/// ML-DSA-65 key and its signature over `SHA-256(header ‖ u32 0 ‖ ct_kem ‖ sender_pub ‖ nonce ‖
/// ciphertext)`, nonce, ciphertext, padding.
fn signed_blob(sender: &crypto::LogSigningKey, seed: u64) -> Vec<u8> {
    let header = [b"PQHB".as_slice(), &[1], &2u16.to_be_bytes(), &2u16.to_be_bytes(), &[0]].concat();
    let (ct_kem, sender_pub, nonce, ciphertext) =
        (payload(seed, 1088), sender.verifying_key().to_bytes(), payload(seed + 1, 12), payload(seed + 2, 900));
    let digest =
        Sha256::digest([header.as_slice(), &0u32.to_be_bytes(), &ct_kem, &sender_pub, &nonce, &ciphertext].concat());
    let signature = sender.sign(&digest);
    let field = |bytes: &[u8]| [(bytes.len() as u32).to_be_bytes().as_slice(), bytes].concat();
    [header, field(&ct_kem), field(&sender_pub), field(&signature), nonce, field(&ciphertext), payload(seed + 3, 200)]
        .concat()
}

#[test]
fn sig_verified_is_true_only_for_a_valid_signature_of_a_registered_device() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let sender = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let device = json!({ "device_id": "sender-1", "ecdh_pub": hex::encode([3u8; 32]), "dsa_pub": hex::encode(sender.verifying_key().to_bytes()) });
    assert_eq!(sector.post("/v2/pubkey", Some(&key), &device).status, 200);

    let blob = signed_blob(&sender, 10);
    let upload = sector.upload(&key, &blob, json!({}));
    assert_eq!(upload.status, 200, "{}", upload.text());
    assert_eq!(
        (upload.json()["sig_verified"].clone(), upload.json()["sender_device"].clone()),
        (json!(true), json!("sender-1"))
    );
    assert_eq!(sector.status_of(&key, &sha256_hex(&blob)).json()["sig_valid"], true);

    let stranger = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let unknown = signed_blob(&stranger, 20);
    let reply = sector.upload(&key, &unknown, json!({}));
    assert_eq!(reply.json()["sig_verified"], false, "an unregistered signer cannot be vouched for");
    assert_eq!(sector.status_of(&key, &sha256_hex(&unknown)).json()["sig_valid"], false);
    let other_key = sector.key("enterprise");
    let elsewhere = signed_blob(&sender, 30);
    assert_eq!(
        sector.upload(&other_key, &elsewhere, json!({})).json()["sig_verified"],
        false,
        "registered under another key"
    );

    let mut forged = signed_blob(&sender, 40);
    let signature_byte = 10 + 4 + 1088 + 4 + 1952 + 4 + 100;
    forged[signature_byte] ^= 0x01;
    let before = sector.log_entries().len();
    sector.upload(&key, &forged, json!({})).assert_error(401, "signature_invalid");
    assert_eq!(sector.status_of(&key, &sha256_hex(&forged)).status, 404, "a forgery is not stored");
    assert_eq!(sector.log_entries().len(), before, "nor logged");

    let unsigned =
        [b"PQHB\x01\x00\x02\x00\x00\x00".as_slice(), &[0, 0, 0, 1, 7], &[0, 0, 0, 0], &[5; 12], &[0, 0, 0, 1, 9]]
            .concat();
    assert_eq!(sector.upload(&key, &unsigned, json!({})).json()["sig_verified"], false);
    assert_eq!(sector.upload(&key, b"not a v1 blob", json!({})).json()["sig_verified"], false);
}
