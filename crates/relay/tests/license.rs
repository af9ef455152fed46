//! Licensing on the real relay: the Community cap (5 users) and a licensed `max_keys` on every
//! path that creates a user (internal API, re-activation, trial keys) with 402
//! `tier_limit_users`; a `plk_` license token as the operator's data-plane key; expiry while
//! running; the signed capability set `paramant-license` publishes (re-verified, tampering is
//! Community, drain); `/health` shows the edition, never the licensee.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};

use common::{Sector, call, wait_until};
use license::capability::{Capabilities, CapabilitySet};
use license::remote::{DrainMode, DrainOrder, Remote, Role};
use license::state::{LicenseState, Online, UserLimit};
use license::token::{self, Payload};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../license/fixtures")
}

fn seed(name: &str) -> [u8; 32] {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    hex::decode(text.trim()).unwrap().try_into().unwrap()
}

fn ed_seed() -> [u8; 32] {
    seed("test-ed25519-license-signing.seed.hex")
}

fn ml_key() -> crypto::LogSigningKey {
    crypto::LogSigningKey::from_seed(&seed("test-mldsa65-capability-signing.seed.hex"))
}

fn issue(max_keys: UserLimit, expires_at: &str, issued_to: &str) -> String {
    let payload = Payload { max_keys, expires_at: expires_at.into(), issued_to: issued_to.into(), issued_at: None };
    token::issue(&ed_seed(), &payload).unwrap()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A sector whose relay trusts the fixture keys and reads `token` (if any) and the state file
/// (both in the returned directory).
struct Licensed {
    sector: Sector,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Licensed {
    type Target = Sector;
    fn deref(&self) -> &Sector {
        &self.sector
    }
}

fn licensed_sector(token: Option<&str>) -> Licensed {
    licensed_sector_with(token, "", None)
}

/// [`licensed_sector`] with top-level relay settings `top` and the log key made from `seed`.
fn licensed_sector_with(token: Option<&str>, top: &str, seed: Option<&[u8; 32]>) -> Licensed {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let token_file = dir.join("license-token");
    std::fs::write(&token_file, token.unwrap_or("")).unwrap();
    let state_dir = dir.join("license-state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let config = format!(
        "{top}[license]\ntoken_file = {:?}\nstate_file = {:?}\ntrusted_ed25519_keys = [{:?}]\n\
         ml_dsa_keys = [{{ key = {:?} }}]\nrevoked_support_keys_file = {:?}\n",
        token_file,
        state_dir.join("state.json"),
        token::public_key_hex(&ed_seed()),
        hex::encode(ml_key().verifying_key().to_bytes()),
        state_dir.join("revoked-support-keys.json"),
    );
    Licensed { sector: Sector::with_config_and_log_seed(&config, seed), dir: tmp }
}

fn license_dir(sector: &Licensed) -> PathBuf {
    sector.dir.path().to_path_buf()
}

fn create_key(sector: &Sector, body: Value) -> common::Reply {
    call(
        &format!("{}/internal/keys", sector.internal),
        "POST",
        &[("x-internal-auth", &sector.internal_token())],
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .unwrap()
}

fn set_active(sector: &Sector, key: &str, active: bool) -> common::Reply {
    let body = json!({ "key_hash": common::sha256_hex(key.as_bytes()), "active": active });
    call(
        &format!("{}/internal/keys/update", sector.internal),
        "POST",
        &[("x-internal-auth", &sector.internal_token())],
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .unwrap()
}

fn health(sector: &Sector) -> Value {
    sector.get("/health", None).json()
}

#[test]
fn community_edition_allows_five_users_on_every_path_that_creates_one() {
    let sector = Sector::start();
    assert_eq!(health(&sector)["edition"], "community");
    assert_eq!(health(&sector)["license"]["max_users"], 5);
    let keys: Vec<String> = (0..5).map(|_| sector.key("professional")).collect();
    // The internal API.
    create_key(&sector, json!({ "plan": "free" })).assert_error(402, "tier_limit_users");
    // A trial key request.
    let trial = json!({ "name": "Sixth", "email": "sixth@example.org", "use_case": "testing" });
    sector.post("/v2/request-trial", None, &trial).assert_error(402, "tier_limit_users");
    // Re-activation: free a place, take it, then try to re-activate the freed key.
    assert_eq!(set_active(&sector, &keys[0], false).status, 200);
    let replacement = sector.key("free");
    set_active(&sector, &keys[0], true).assert_error(402, "tier_limit_users");
    // The refused paths changed nothing: the old key is still inactive, five keys work.
    assert_eq!(sector.get("/v2/check-key", Some(&keys[0])).json()["valid"], false);
    for key in keys[1..].iter().chain([&replacement]) {
        assert_eq!(sector.get("/v2/check-key", Some(key)).json()["valid"], true);
    }
}

#[test]
fn concurrent_creations_never_exceed_the_cap() {
    let sector = Sector::start();
    let created: usize = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..12).map(|_| s.spawn(|| create_key(&sector, json!({ "plan": "free" })).status)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|&status| status == 200).count()
    });
    assert_eq!(created, 5);
}

#[test]
fn the_relay_mints_no_plk_keys() {
    let sector = Sector::start();
    create_key(&sector, json!({ "plan": "enterprise", "prefix": "plk_" })).assert_error(400, "bad_request");
}

#[test]
fn a_licensed_max_keys_is_enforced_and_health_hides_the_licensee() {
    let token = issue(UserLimit::Limited(7), "2099-01-01", "Secret Customer Name BV");
    let sector = licensed_sector(Some(&token));
    let h = health(&sector);
    assert_eq!((h["edition"].as_str(), h["license"]["max_users"].as_u64()), (Some("licensed"), Some(7)));
    assert!(!h.to_string().contains("Secret Customer"), "{h}");
    for _ in 0..7 {
        sector.key("free");
    }
    create_key(&sector, json!({ "plan": "free" })).assert_error(402, "tier_limit_users");
}

#[test]
fn a_plk_license_token_is_the_operators_data_plane_key() {
    let token = issue(UserLimit::Unlimited, "2099-01-01", "Operator");
    let sector = licensed_sector(Some(&token));
    assert_eq!(sector.get("/v2/check-key", Some(&token)).json()["plan"], "community");
    let hash = sector.upload_ok(&token, b"operator upload", json!({}));
    assert_eq!(sector.download(&token, &hash).status, 200);
    // A forged token (one character of the signature changed), an expired one, and one signed
    // by a key the relay does not trust are refused.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let expired = issue(UserLimit::Unlimited, "2020-01-01", "Operator");
    let untrusted = token::issue(
        &[9; 32],
        &Payload {
            max_keys: UserLimit::Unlimited,
            expires_at: "2099-01-01".into(),
            issued_to: "x".into(),
            issued_at: None,
        },
    )
    .unwrap();
    for bad in [&forged, &expired, &untrusted] {
        sector.upload(bad, b"x", json!({})).assert_error(401, "unauthorized");
        assert_eq!(sector.get("/v2/check-key", Some(bad)).json()["valid"], false);
    }
    // None of them counts as a user or grants more than the token says.
    assert_eq!(health(&sector)["license"]["max_users"], "unlimited");
}

#[test]
fn a_bad_or_expired_token_is_community() {
    for token in [issue(UserLimit::Unlimited, "2020-01-01", "Expired"), "plk_garbage".into(), "not a token".into()] {
        let sector = licensed_sector(Some(&token));
        assert_eq!(health(&sector)["edition"], "community");
        for _ in 0..5 {
            sector.key("free");
        }
        create_key(&sector, json!({ "plan": "free" })).assert_error(402, "tier_limit_users");
    }
}

#[test]
fn a_license_that_expires_while_running_takes_effect_without_a_restart() {
    let expires = now_ms() + 4_000;
    let token = issue(UserLimit::Limited(9), &wire::iso8601_ms(expires), "Short");
    let sector = licensed_sector(Some(&token));
    for _ in 0..6 {
        sector.key("free");
    }
    assert_eq!(health(&sector)["edition"], "licensed");
    // Observed, not slept: the relay's own clock passes the expiry.
    wait_until("the license to expire", || (health(&sector)["edition"] == "community").then_some(()));
    assert!(now_ms() >= expires);
    create_key(&sector, json!({ "plan": "free" })).assert_error(402, "tier_limit_users");
    sector.upload(&token, b"x", json!({})).assert_error(401, "unauthorized");
}

fn signed_set(token: &str, max_users: UserLimit, remote: Remote) -> String {
    signed_set_with(token, Capabilities { max_users, ..pro_capabilities() }, remote)
}

fn pro_capabilities() -> Capabilities {
    Capabilities {
        max_users: UserLimit::Limited(6),
        max_blob_size_mb: 5,
        retention_max_seconds: 3600,
        addons_allowed: vec![],
        ml_dsa_required: false,
        support_level: "email".into(),
        custom_branding: false,
    }
}

fn signed_set_with(token: &str, capabilities: Capabilities, remote: Remote) -> String {
    let now = now_ms();
    let set = CapabilitySet {
        issued_at: wire::iso8601_ms(now),
        expires_at: wire::iso8601_ms(now + 6 * 3600 * 1000),
        license_key: token.into(),
        relay_id: "ab".repeat(32),
        nonce: "00".repeat(16),
        tier: "pro".into(),
        capabilities,
        next_check_in_seconds: 21600,
        next_pubkey_hash: None,
        remote,
    };
    set.sign(&ml_key()).unwrap()
}

fn publish(sector: &Licensed, state: &LicenseState) {
    let path = license_dir(sector).join("license-state/state.json");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(state).unwrap()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[test]
fn the_relay_re_verifies_the_published_capability_set() {
    let token = issue(UserLimit::Limited(6), "2099-01-01", "Online Customer");
    let sector = licensed_sector(Some(&token));
    let set = signed_set(&token, UserLimit::Limited(8), Remote::default());
    publish(&sector, &LicenseState { online: Online::Active { set: set.clone() }, ..LicenseState::default() });
    wait_until("the set to be read", || (health(&sector)["license"]["max_users"] == 8).then_some(()));
    assert_eq!(health(&sector)["license"]["license_source"], "capability_set");
    // Tampered (a higher cap without a new signature): Community, not the token's 6.
    let tampered = set.replacen("\"max_users\":8", "\"max_users\":800", 1);
    assert_ne!(tampered, set);
    publish(&sector, &LicenseState { online: Online::Active { set: tampered }, ..LicenseState::default() });
    wait_until("the tampered set to be refused", || (health(&sector)["edition"] == "community").then_some(()));
    assert_eq!(health(&sector)["license"]["max_users"], 5);
    // A degrade marker (402) is a plain file that can only take away: Community.
    publish(
        &sector,
        &LicenseState { online: Online::PaymentRequired { since_ms: now_ms() }, ..LicenseState::default() },
    );
    wait_until("the degrade", || (health(&sector)["license"]["license_source"] == "none").then_some(()));
}

#[test]
fn a_signed_drain_order_refuses_uploads_and_undrain_serves_again() {
    let token = issue(UserLimit::Limited(6), "2099-01-01", "Drained");
    let sector = licensed_sector(Some(&token));
    let key = sector.key("professional");
    let before = sector.upload_ok(&key, b"in flight before the drain", json!({}));
    let drain = Remote {
        drain: Some(DrainOrder { id: "d1".into(), role: Role::Support, mode: DrainMode::Drain }),
        ..Remote::default()
    };
    let set = signed_set(&token, UserLimit::Limited(6), drain);
    publish(&sector, &LicenseState { online: Online::Active { set }, ..LicenseState::default() });
    wait_until("the drain", || (health(&sector)["draining"] == true).then_some(()));
    sector.upload(&key, b"new upload", json!({})).assert_error(503, "draining");
    // Transfers in flight finish.
    assert_eq!(sector.download(&key, &before).status, 200);
    let undrain = Remote {
        drain: Some(DrainOrder { id: "d2".into(), role: Role::Owner, mode: DrainMode::Undrain }),
        ..Remote::default()
    };
    let set = signed_set(&token, UserLimit::Limited(6), undrain);
    publish(&sector, &LicenseState { online: Online::Active { set }, ..LicenseState::default() });
    wait_until("the undrain", || (health(&sector)["draining"] == false).then_some(()));
    sector.upload_ok(&key, b"serving again", json!({}));
}

#[test]
fn a_support_key_works_until_revoked() {
    let token = issue(UserLimit::Limited(6), "2099-01-01", "Supported");
    let sector = licensed_sector(Some(&token));
    let support = "pgp_support_0123456789abcdef0123456789abcdef";
    let remote = Remote {
        support_keys: vec![license::remote::SupportKey {
            id: "sk1".into(),
            role: Role::Support,
            key_sha256: common::sha256_hex(support.as_bytes()),
            expires_at: wire::iso8601_ms(now_ms() + 3_600_000),
        }],
        ..Remote::default()
    };
    let set = signed_set(&token, UserLimit::Limited(6), remote);
    publish(&sector, &LicenseState { online: Online::Active { set }, ..LicenseState::default() });
    wait_until("the support key", || {
        (sector.get("/v2/check-key", Some(support)).json()["valid"] == true).then_some(())
    });
    license_gate::revoke_support_key(&license_dir(&sector).join("license-state/revoked-support-keys.json"), "sk1")
        .unwrap();
    wait_until("the revocation", || {
        (sector.get("/v2/check-key", Some(support)).json()["valid"] == false).then_some(())
    });
}

/// A wire-format-v1 blob signed by `sender` (as `identity.rs` builds it).
fn signed_blob(sender: &crypto::LogSigningKey, seed: u64) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let header = [b"PQHB".as_slice(), &[1], &2u16.to_be_bytes(), &2u16.to_be_bytes(), &[0]].concat();
    let (ct_kem, sender_pub, nonce, ciphertext) = (
        common::payload(seed, 1088),
        sender.verifying_key().to_bytes(),
        common::payload(seed + 1, 12),
        common::payload(seed + 2, 900),
    );
    let digest =
        Sha256::digest([header.as_slice(), &0u32.to_be_bytes(), &ct_kem, &sender_pub, &nonce, &ciphertext].concat());
    let signature = sender.sign(&digest);
    let field = |bytes: &[u8]| [(bytes.len() as u32).to_be_bytes().as_slice(), bytes].concat();
    [header, field(&ct_kem), field(&sender_pub), field(&signature), nonce, field(&ciphertext)].concat()
}

#[test]
fn a_capability_sets_blob_size_retention_and_signature_requirement_apply_per_request() {
    const MIB: usize = 1024 * 1024;
    let token = issue(UserLimit::Limited(6), "2099-01-01", "Capabilities");
    let sector = licensed_sector(Some(&token));
    let key = sector.key("professional");
    // The offline token alone: the relay's own limits (5 MiB, the plan's 24 h retention).
    let big = common::payload(1, MIB + 1);
    sector.upload_ok(&key, &big, json!({}));
    assert_eq!(sector.upload(&key, b"long ttl", json!({ "ttl_ms": 7_200_000 })).json()["ttl_ms"], 7_200_000);

    let caps = Capabilities { max_blob_size_mb: 1, retention_max_seconds: 600, ..pro_capabilities() };
    let set = signed_set_with(&token, caps.clone(), Remote::default());
    publish(&sector, &LicenseState { online: Online::Active { set }, ..LicenseState::default() });
    wait_until("the set", || (health(&sector)["license"]["license_source"] == "capability_set").then_some(()));
    // A body declared too big for 1 MiB (but fine for the relay's own 5 MiB): 413 from the
    // headers alone. The body is never sent: had the relay waited for it, the answer would be
    // 408 `body_timeout`, not 413.
    let declared = 2 * MIB;
    let head = format!(
        "POST /v2/inbound HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = sector.raw(&head, b"");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["error"].clone()), (413, json!("payload_too_large")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains(&MIB.to_string()), "{body}");
    // A whole body over the cap (the payload decoded as it arrives) is refused too; at the cap
    // it is taken.
    sector.upload(&key, &common::payload(2, MIB + 1), json!({})).assert_error(413, "payload_too_large");
    sector.upload_ok(&key, &common::payload(3, MIB), json!({}));
    // The TTL is clamped to retention_max_seconds, and the answer says so.
    assert_eq!(sector.upload(&key, b"clamped", json!({ "ttl_ms": 7_200_000 })).json()["ttl_ms"], 600_000);
    assert_eq!(sector.upload(&key, b"short", json!({ "ttl_ms": 60_000 })).json()["ttl_ms"], 60_000);
    assert_eq!(sector.upload(&key, b"default", json!({})).json()["ttl_ms"], 600_000);

    // ml_dsa_required: an unsigned blob is refused (and not logged); a registered device's
    // signed blob is taken.
    let set = signed_set_with(&token, Capabilities { ml_dsa_required: true, ..caps }, Remote::default());
    publish(&sector, &LicenseState { online: Online::Active { set }, ..LicenseState::default() });
    let before = sector.log_entries().len();
    wait_until("the signature requirement", || {
        (sector.upload(&key, b"unsigned", json!({})).status == 401).then_some(())
    });
    sector.upload(&key, b"unsigned", json!({})).assert_error(401, "signature_required");
    assert_eq!(sector.log_entries().len(), before, "a refused upload is not logged");
    let sender = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
    let device = json!({ "device_id": "signer-1", "ecdh_pub": hex::encode([3u8; 32]), "dsa_pub": hex::encode(sender.verifying_key().to_bytes()) });
    assert_eq!(sector.post("/v2/pubkey", Some(&key), &device).status, 200);
    let signed = sector.upload(&key, &signed_blob(&sender, 10), json!({}));
    assert_eq!((signed.status, signed.json()["sig_verified"].clone()), (200, json!(true)), "{}", signed.text());

    // A tampered set (a bigger blob size without a new signature) is Community: the relay's
    // own 5 MiB, no signature requirement.
    let set = signed_set_with(&token, Capabilities { max_blob_size_mb: 1, ..pro_capabilities() }, Remote::default());
    let tampered = set.replacen("\"max_blob_size_mb\":1", "\"max_blob_size_mb\":100", 1);
    assert_ne!(tampered, set);
    publish(&sector, &LicenseState { online: Online::Active { set: tampered }, ..LicenseState::default() });
    wait_until("the tampered set to be refused", || (health(&sector)["edition"] == "community").then_some(()));
    sector.upload_ok(&key, &common::payload(4, MIB + 1), json!({}));
    sector.upload_ok(&key, b"unsigned again", json!({}));
}

#[test]
fn the_registry_shows_the_edition_in_force() {
    let seed = [0x6c; 32];
    let pk_hash = crypto::LogSigningKey::from_seed(&seed).verifying_key().pk_hash();
    let registry = Sector::with_config(&format!(
        "registry_keys = [\"{}\"]\n[webhook]\ndanger_allow_private_targets = true\n",
        hex::encode(pk_hash)
    ));
    let token = issue(UserLimit::Limited(6), "2099-01-01", "Registered Customer");
    let licensed = licensed_sector_with(Some(&token), &format!("registry_url = \"{}\"\n", registry.url), Some(&seed));
    let listed = wait_until("the licensed relay to register", || {
        let list = registry.get("/v2/relays", None).json();
        (list["total"] == 2).then_some(list)
    });
    let (me, other) = (&listed["relays"][0], &listed["relays"][1]);
    assert_eq!((me["self"].clone(), me["edition"].clone()), (json!(true), json!("community")), "{listed}");
    assert_eq!((other["url"].clone(), other["edition"].clone()), (json!(licensed.url), json!("licensed")), "{listed}");
    let own = licensed.get("/v2/relays", None).json();
    assert_eq!(own["relays"][0]["edition"], "licensed", "{own}");
}
