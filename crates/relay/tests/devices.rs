//! Device keys (`/v2/pubkey`), DIDs (`/v2/did/*`) and attestation (`/v2/attest`): registrations
//! land in the log once, lookups stay within one API key, DIDs resolve publicly, and a device
//! proves possession of its P-256 key by answering a challenge.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use p256::elliptic_curve::sec1::ToSec1Point;
use serde_json::{Value, json};
use sha2::Sha256;

/// A device's P-256 key pair; the secret comes from OS randomness (rejection sampling: nearly
/// every 32-byte string is a valid scalar).
fn device_key() -> p256::SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

/// The 65-byte uncompressed SEC1 public key.
fn public_bytes(secret: &p256::SecretKey) -> Vec<u8> {
    secret.public_key().to_sec1_point(false).as_bytes().to_vec()
}

fn entries_of(sector: &Sector, kind: &str, field: &str, value: &str) -> Vec<Value> {
    sector.log_entries().into_iter().filter(|e| e["type"] == kind && e[field] == value).collect()
}

#[test]
fn identical_keys_register_once_and_changed_keys_rotate() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let other = sector.key("enterprise");
    let ecdh = hex::encode(public_bytes(&device_key()));
    let kyber = b64(&mlkem768_key(1));
    let request = json!({ "device_id": "phone-001", "ecdh_pub": ecdh, "kyber_pub": kyber });

    let first = sector.post("/v2/pubkey", Some(&key), &request);
    assert_eq!((first.status, first.json()["registered"].clone()), (200, json!("new")), "{}", first.text());
    let again = sector.post("/v2/pubkey", Some(&key), &request);
    assert_eq!((again.status, again.json()["registered"].clone()), (200, json!("unchanged")), "{}", again.text());
    assert_eq!(again.json()["ct_index"], first.json()["ct_index"]);
    assert_eq!(
        entries_of(&sector, "device_registered", "device_id", "phone-001").len(),
        1,
        "identical keys are logged once"
    );

    let new_kyber = b64(&mlkem768_key(2));
    let rotated = sector.post(
        "/v2/pubkey",
        Some(&key),
        &json!({ "device_id": "phone-001", "ecdh_pub": ecdh, "kyber_pub": new_kyber }),
    );
    assert_eq!((rotated.status, rotated.json()["registered"].clone()), (200, json!("rotated")), "{}", rotated.text());
    assert_ne!(rotated.json()["ct_index"], first.json()["ct_index"]);
    let logged = entries_of(&sector, "device_registered", "device_id", "phone-001");
    assert_eq!(logged.len(), 2);
    assert_eq!(logged[1]["kyber_pub"], new_kyber.as_str());

    let lookup = sector.get("/v2/pubkey/phone-001", Some(&key));
    assert_eq!(lookup.status, 200, "{}", lookup.text());
    assert_eq!(
        (lookup.json()["ecdh_pub"].clone(), lookup.json()["kyber_pub"].clone()),
        (json!(ecdh), json!(new_kyber))
    );
    sector.get("/v2/pubkey/phone-001", Some(&other)).assert_error(404, "not_found");
    sector.get("/v2/pubkey/phone-001", None).assert_error(401, "unauthorized");
    sector.get("/v2/pubkey/phone-404", Some(&key)).assert_error(404, "not_found");
}

#[test]
fn bad_device_ids_and_keys_are_refused_and_nothing_is_logged() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let ecdh = b64(&public_bytes(&device_key()));
    let long = "a".repeat(257);
    for id in ["", "has space", "a/b", "../etc", "ü", "<script>", "semi;colon", long.as_str()] {
        let reply = sector.post("/v2/pubkey", Some(&key), &json!({ "device_id": id, "ecdh_pub": ecdh }));
        assert_eq!((reply.status, reply.error()), (400, "bad_request".into()), "device id {id:?}: {}", reply.text());
    }
    for bad_key in ["", "not base64 !", &b64(&[7u8; 200]), "abc"] {
        let reply = sector.post("/v2/pubkey", Some(&key), &json!({ "device_id": "d1", "ecdh_pub": bad_key }));
        assert_eq!(
            (reply.status, reply.error()),
            (400, "bad_request".into()),
            "ecdh_pub {bad_key:?}: {}",
            reply.text()
        );
    }
    let bad_kyber = sector.post(
        "/v2/pubkey",
        Some(&key),
        &json!({ "device_id": "d1", "ecdh_pub": ecdh, "kyber_pub": b64(&[1u8; 2000]) }),
    );
    bad_kyber.assert_error(400, "bad_request");
    let wrong_type = sector.post("/v2/pubkey", Some(&key), &json!({ "device_id": 7, "ecdh_pub": ecdh }));
    wrong_type.assert_error(400, "bad_request");
    let unknown_field =
        sector.post("/v2/pubkey", Some(&key), &json!({ "device_id": "d1", "ecdh_pub": ecdh, "admin": true }));
    unknown_field.assert_error(400, "bad_request");
    for path in ["/v2/pubkey/bad%20id", "/v2/pubkey/%3Cscript%3E", &format!("/v2/pubkey/{long}")] {
        sector.get(path, Some(&key)).assert_error(400, "bad_request");
    }
    assert!(
        sector.log_entries().iter().all(|e| e["type"] != "device_registered"),
        "a refused registration is not logged"
    );
}

/// Registers a DID for `device` with `secret`'s public key; returns the answer.
fn register_did(sector: &Sector, key: &str, device: &str, secret: &p256::SecretKey) -> Reply {
    sector.post("/v2/did/register", Some(key), &json!({ "device_id": device, "ecdh_pub": b64(&public_bytes(secret)) }))
}

#[test]
fn a_registered_did_resolves_publicly_and_is_a_did_registered_leaf_of_the_log() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let other = sector.key("enterprise");
    let secret = device_key();

    let reply = register_did(&sector, &key, "plc-factory-01", &secret);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    let did = answer["did"].as_str().unwrap().to_owned();
    let id = did.strip_prefix("did:paramant:").expect("did:paramant: method");
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{did}");
    assert_eq!(answer["document"]["id"], did.as_str());
    let ct_index = answer["ct_index"].as_u64().unwrap();

    let resolved = sector.get(&format!("/v2/did/{did}"), None);
    assert_eq!(resolved.status, 200, "{}", resolved.text());
    assert_eq!(resolved.header("content-type").as_deref(), Some("application/did+json"));
    let document = resolved.json();
    assert_eq!(document["id"], did.as_str());
    assert_eq!(document["verificationMethod"][0]["publicKeyHex"], hex::encode(public_bytes(&secret)));
    assert_eq!(document["verificationMethod"][0]["publicKeyJwk"]["crv"], "P-256");

    let leaf = &sector.log_entries()[ct_index as usize];
    assert_eq!(
        (leaf["type"].clone(), leaf["did"].clone(), leaf["device_id"].clone()),
        (json!("did_registered"), json!(did), json!("plc-factory-01"))
    );

    let list = sector.get("/v2/did", Some(&key)).json();
    assert_eq!(list["count"], 1);
    assert_eq!(
        (list["dids"][0]["did"].clone(), list["dids"][0]["device"].clone()),
        (json!(did), json!("plc-factory-01"))
    );
    assert_eq!(sector.get("/v2/did", Some(&other)).json()["count"], 0);
    sector.get("/v2/did", None).assert_error(401, "unauthorized");

    let again = register_did(&sector, &key, "plc-factory-01", &secret);
    assert_eq!(
        (again.status, again.json()["ct_index"].clone()),
        (200, json!(ct_index)),
        "re-registering is idempotent"
    );
    assert_eq!(entries_of(&sector, "did_registered", "did", &did).len(), 1);
    register_did(&sector, &other, "plc-factory-01", &secret).assert_error(409, "did_taken");
}

#[test]
fn dids_need_a_p256_key_and_a_well_formed_identifier() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let mut off_curve = vec![4u8];
    off_curve.extend([0x11u8; 64]);
    let compressed_garbage = [[2u8].as_slice(), &[0xffu8; 32]].concat();
    for bad in [b64(&off_curve), b64(&[9u8; 32]), b64(&compressed_garbage), "not base64!".into(), String::new()] {
        let reply = sector.post("/v2/did/register", Some(&key), &json!({ "device_id": "d1", "ecdh_pub": bad }));
        assert_eq!((reply.status, reply.error()), (400, "bad_request".into()), "ecdh_pub {bad:?}: {}", reply.text());
    }
    let secret = device_key();
    let bad_dsa = json!({ "device_id": "d1", "ecdh_pub": b64(&public_bytes(&secret)), "dsa_pub": b64(&[1u8; 100]) });
    sector.post("/v2/did/register", Some(&key), &bad_dsa).assert_error(400, "bad_request");
    sector
        .post("/v2/did/register", None, &json!({ "device_id": "d1", "ecdh_pub": b64(&public_bytes(&secret)) }))
        .assert_error(401, "unauthorized");
    for did in ["did:paramant:xyz", "did:web:example.com", "did:paramant:", &format!("did:paramant:{}", "g".repeat(32))]
    {
        sector.get(&format!("/v2/did/{did}"), None).assert_error(400, "bad_request");
    }
    sector.get(&format!("/v2/did/did:paramant:{}", "0".repeat(32)), None).assert_error(404, "not_found");
    assert!(sector.log_entries().iter().all(|e| e["type"] != "did_registered"));
}

/// A fresh challenge for `device`: (challenge bytes, relay's ephemeral public key).
fn challenge(sector: &Sector, key: &str, device: &str) -> (Vec<u8>, p256::PublicKey) {
    let reply = sector.post("/v2/attest/challenge", Some(key), &json!({ "device_id": device }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    let relay_pub = p256::PublicKey::from_sec1_bytes(&unb64(body["relay_ecdh_pub"].as_str().unwrap())).unwrap();
    (unb64(body["challenge"].as_str().unwrap()), relay_pub)
}

/// HMAC-SHA256(ECDH(device secret, relay key).x, "paramant-attest-v1" ‖ challenge ‖ device id).
fn respond(secret: &p256::SecretKey, relay_pub: &p256::PublicKey, challenge: &[u8], device: &str) -> Vec<u8> {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), relay_pub.as_affine());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(shared.raw_secret_bytes().as_slice()).unwrap();
    mac.update(b"paramant-attest-v1");
    mac.update(challenge);
    mac.update(device.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn attest(sector: &Sector, key: &str, device: &str, challenge: &[u8], response: &[u8]) -> Value {
    let request = json!({
        "device_id": device,
        "attestation": { "method": "ecdh-challenge", "challenge": b64(challenge), "response": b64(response) },
    });
    let reply = sector.post("/v2/attest", Some(key), &request);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn attestation_proves_possession_of_the_registered_p256_key_once_per_challenge() {
    let sector = Sector::start();
    let key = sector.key("enterprise");
    let device = "plc-factory-02";
    let secret = device_key();
    assert_eq!(register_did(&sector, &key, device, &secret).status, 200);

    let (bytes, relay_pub) = challenge(&sector, &key, device);
    let good = respond(&secret, &relay_pub, &bytes, device);
    let verdict = attest(&sector, &key, device, &bytes, &good);
    assert_eq!((verdict["valid"].clone(), verdict["device"].clone()), (json!(true), json!(device)), "{verdict}");
    let replayed = attest(&sector, &key, device, &bytes, &good);
    assert_eq!(replayed["valid"], false, "a challenge is single-use: {replayed}");

    let (bytes, relay_pub) = challenge(&sector, &key, device);
    let impostor = respond(&device_key(), &relay_pub, &bytes, device);
    assert_eq!(attest(&sector, &key, device, &bytes, &impostor)["valid"], false, "another key's answer");
    let (bytes, relay_pub) = challenge(&sector, &key, device);
    let other_device = respond(&secret, &relay_pub, &bytes, "plc-factory-03");
    assert_eq!(
        attest(&sector, &key, device, &bytes, &other_device)["valid"],
        false,
        "an answer bound to another device id"
    );
    let no_challenge = attest(&sector, &key, device, &[0u8; 32], &good);
    assert_eq!(no_challenge["valid"], false, "{no_challenge}");
    assert!(no_challenge["reason"].is_string());

    let other = sector.key("enterprise");
    let reply = sector.post("/v2/attest/challenge", Some(&other), &json!({ "device_id": device }));
    reply.assert_error(404, "not_found");
    sector.post("/v2/attest/challenge", Some(&key), &json!({ "device_id": "bad id" })).assert_error(400, "bad_request");
    let bad_b64 = json!({ "device_id": device, "attestation": { "method": "ecdh-challenge", "challenge": "!!", "response": "!!" } });
    sector.post("/v2/attest", Some(&key), &bad_b64).assert_error(400, "bad_request");
    let bad_method = json!({ "device_id": device, "attestation": { "method": "trust-me", "challenge": "AA==", "response": "AA==" } });
    sector.post("/v2/attest", Some(&key), &bad_method).assert_error(400, "bad_request");
}
