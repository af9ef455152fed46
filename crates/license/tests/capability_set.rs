//! Capability sets and check-in answers: signature, echoes, expiry, grace, key rotation, the
//! 200/402/404/410/503 state machine, and remote actions as log events.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use license::capability::{Capabilities, CapabilitySet, Expectation, SignedCapabilitySet};
use license::checkin::{self, CheckInOutcome, CheckInRequest, Nonce};
use license::keys::TrustRoots;
use license::remote::{DrainMode, DrainOrder, Remote, Role, SupportKey, UpdateOffer};
use license::state::{self, Edition, LicenseState, Next, Online, Source, UserLimit};
use license::telemetry::{Aggregates, OptIn, Telemetry};
use license::token::{self, Payload};
use license::{GRACE_MS, MAX_CLOCK_SKEW_MS};
use proptest::prelude::*;

const NOW: u64 = 1_796_000_000_000;

fn fixture_seed(name: &str) -> [u8; 32] {
    let text = std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture");
    hex::decode(text.trim()).expect("hex").try_into().expect("32 bytes")
}

fn server_key() -> crypto::LogSigningKey {
    crypto::LogSigningKey::from_seed(&fixture_seed("test-mldsa65-capability-signing.seed.hex"))
}

fn next_key() -> crypto::LogSigningKey {
    crypto::LogSigningKey::from_seed(&fixture_seed("test-mldsa65-capability-signing-next.seed.hex"))
}

fn token() -> String {
    let payload = Payload {
        max_keys: UserLimit::Limited(10),
        expires_at: "2099-01-01".into(),
        issued_to: "Example BV".into(),
        issued_at: None,
    };
    token::issue(&fixture_seed("test-ed25519-license-signing.seed.hex"), &payload).unwrap()
}

fn roots() -> TrustRoots {
    let mut roots = TrustRoots::embedded();
    roots.add_ed25519_hex(&token::public_key_hex(&fixture_seed("test-ed25519-license-signing.seed.hex"))).unwrap();
    roots.add_ml_dsa(&server_key().verifying_key().to_bytes(), None).unwrap();
    roots
}

fn request() -> CheckInRequest {
    CheckInRequest {
        license_key: token(),
        relay_id: "ab".repeat(32),
        version: "0.1.0".into(),
        telemetry: Telemetry::default(),
        nonce: Nonce::from_random([7; 16]).hex(),
    }
}

fn set_for(request: &CheckInRequest, issued_ms: u64) -> CapabilitySet {
    CapabilitySet {
        issued_at: wire::iso8601_ms(issued_ms),
        expires_at: wire::iso8601_ms(issued_ms + 6 * 3600 * 1000),
        license_key: request.license_key.clone(),
        relay_id: request.relay_id.clone(),
        nonce: request.nonce.clone(),
        tier: "pro".into(),
        capabilities: Capabilities {
            max_users: UserLimit::Limited(50),
            max_blob_size_mb: 25,
            retention_max_seconds: 86400,
            addons_allowed: vec!["storage-mirror".into()],
            ml_dsa_required: false,
            support_level: "email".into(),
            custom_branding: false,
        },
        next_check_in_seconds: 21600,
        next_pubkey_hash: None,
        remote: Remote::default(),
    }
}

fn answer(set: &CapabilitySet) -> String {
    set.sign(&server_key()).unwrap()
}

fn active_state(raw: String) -> LicenseState {
    LicenseState { online: Online::Active { set: raw }, ..LicenseState::default() }
}

#[test]
fn a_signed_answer_that_echoes_the_request_is_active() {
    let request = request();
    let raw = answer(&set_for(&request, NOW));
    let outcome = checkin::classify(200, raw.as_bytes(), &request.expectation(), &roots(), NOW);
    let CheckInOutcome::Active(signed) = outcome else { panic!("{outcome:?}") };
    assert_eq!(signed.signer, server_key().verifying_key().pk_hash());
    assert_eq!(signed.set.capabilities.max_users, UserLimit::Limited(50));
}

#[test]
fn unknown_fields_are_signed_and_then_ignored() {
    let request = request();
    let mut value = serde_json::to_value(set_for(&request, NOW)).unwrap();
    value["capabilities"]["future_capability"] = serde_json::json!(true);
    value["future_field"] = serde_json::json!("x");
    let message = wire::canonical_json(&value).unwrap();
    value["signature"] = wire::b64(server_key().sign(&message)).into();
    let raw = serde_json::to_vec(&value).unwrap();
    assert!(matches!(checkin::classify(200, &raw, &request.expectation(), &roots(), NOW), CheckInOutcome::Active(_)));
    // Removing the unknown field breaks the signature: it was covered.
    value.as_object_mut().unwrap().remove("future_field");
    let raw = serde_json::to_vec(&value).unwrap();
    assert!(matches!(
        checkin::classify(200, &raw, &request.expectation(), &roots(), NOW),
        CheckInOutcome::Unavailable(_)
    ));
}

#[test]
fn forged_replayed_foreign_and_stale_answers_count_as_unreachable() {
    let request = request();
    let expect = request.expectation();
    let good = set_for(&request, NOW);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Forged: a field changed after signing.
    let mut forged: serde_json::Value = serde_json::from_str(&answer(&good)).unwrap();
    forged["capabilities"]["max_users"] = "unlimited".into();
    cases.push(("forged", serde_json::to_vec(&forged).unwrap()));
    // Signed by a key nobody trusts.
    cases.push(("wrong key", good.sign(&next_key()).unwrap().into_bytes()));
    // Unsigned.
    cases.push(("unsigned", serde_json::to_vec(&good).unwrap()));
    // Replayed: an old answer carries an old nonce.
    cases.push(("replayed", answer(&CapabilitySet { nonce: "00".repeat(16), ..good.clone() }).into_bytes()));
    cases.push(("other relay", answer(&CapabilitySet { relay_id: "cd".repeat(32), ..good.clone() }).into_bytes()));
    cases.push(("other key", answer(&CapabilitySet { license_key: "plk_other".into(), ..good.clone() }).into_bytes()));
    // Expired, and issued in the future beyond the clock skew.
    cases.push(("expired", answer(&set_for(&request, NOW - 7 * 3600 * 1000)).into_bytes()));
    cases.push(("future", answer(&set_for(&request, NOW + MAX_CLOCK_SKEW_MS + 60_000)).into_bytes()));
    // Truncated and garbage.
    let full = answer(&good);
    cases.push(("truncated", full.as_bytes()[..full.len() / 2].to_vec()));
    cases.push(("garbage", vec![0xff; 100]));
    cases.push(("huge", vec![b' '; 100_000]));
    for (name, body) in cases {
        let outcome = checkin::classify(200, &body, &expect, &roots(), NOW);
        assert!(matches!(outcome, CheckInOutcome::Unavailable(_)), "{name}: {outcome:?}");
        // And the state machine keeps what it had (here: nothing), so nothing is granted.
        let (state, _) = LicenseState::default().after(&outcome, &[0; 32], NOW);
        assert_eq!(state.online, Online::NotChecked, "{name}");
    }
}

#[test]
fn a_small_clock_skew_is_tolerated() {
    let request = request();
    let raw = answer(&set_for(&request, NOW + MAX_CLOCK_SKEW_MS - 1000));
    assert!(matches!(
        checkin::classify(200, raw.as_bytes(), &request.expectation(), &roots(), NOW),
        CheckInOutcome::Active(_)
    ));
}

#[test]
fn the_status_codes_drive_the_state_machine() {
    let request = request();
    let expect = request.expectation();
    let sha = token::LicenseToken::parse(&request.license_key).unwrap().sha256();
    let raw = answer(&set_for(&request, NOW));
    let active = checkin::classify(200, raw.as_bytes(), &expect, &roots(), NOW);
    let (s, next) = LicenseState::default().after(&active, &sha, NOW);
    assert_eq!(next, Next::CheckInAfter(21_600_000));
    let grant = state::evaluate(Some(&request.license_key), Some(&s), &roots(), Some(&request.relay_id), NOW);
    assert_eq!(
        (grant.edition, grant.source, grant.max_users),
        (Edition::Licensed, Source::CapabilitySet, UserLimit::Limited(50))
    );

    // 503 and unreachable keep the cache.
    for outcome in [checkin::classify(503, b"", &expect, &roots(), NOW), CheckInOutcome::Unavailable("timeout".into())]
    {
        let (kept, next) = s.clone().after(&outcome, &sha, NOW + 1000);
        assert_eq!(kept.online, s.online);
        assert_eq!(next, Next::CheckInAfter(license::CHECK_IN_INTERVAL_MS));
    }
    // 402 and 404: Community now, with a notice for the admin panel.
    for (status, words) in [(402, "payment"), (404, "does not know")] {
        let (degraded, _) = s.clone().after(&checkin::classify(status, b"", &expect, &roots(), NOW), &sha, NOW);
        let e = state::evaluate(Some(&request.license_key), Some(&degraded), &roots(), None, NOW);
        assert_eq!(e.edition, Edition::Community);
        assert!(e.notice.unwrap().contains(words));
    }
    // 410: revoked, terminal for this key, and the offline token no longer grants either.
    let (revoked, next) = s.clone().after(&checkin::classify(410, b"", &expect, &roots(), NOW), &sha, NOW);
    assert_eq!(next, Next::StopRetrying);
    assert!(revoked.revoked(&sha));
    let e = state::evaluate(Some(&request.license_key), Some(&revoked), &roots(), None, NOW);
    assert_eq!(e.edition, Edition::Community);
    // A new key is not affected by the old key's revocation.
    let other = token::issue(
        &fixture_seed("test-ed25519-license-signing.seed.hex"),
        &Payload {
            max_keys: UserLimit::Limited(8),
            expires_at: "2099-01-01".into(),
            issued_to: "New".into(),
            issued_at: None,
        },
    )
    .unwrap();
    let e = state::evaluate(Some(&other), Some(&revoked), &roots(), None, NOW);
    assert_eq!((e.edition, e.max_users), (Edition::Licensed, UserLimit::Limited(8)));
}

#[test]
fn the_cache_grants_for_seven_days_after_the_last_good_check_in_then_community() {
    let request = request();
    let s = active_state(answer(&set_for(&request, NOW)));
    let at = |t| state::evaluate(Some(&request.license_key), Some(&s), &roots(), None, t);
    // Past the set's own 6-hour expiry: still granted (an outage never disables at once).
    assert_eq!(at(NOW + 3 * 24 * 3600 * 1000).edition, Edition::Licensed);
    assert_eq!(at(NOW + GRACE_MS - 1).edition, Edition::Licensed);
    assert_eq!(at(NOW + GRACE_MS - 1).valid_until_ms, Some(NOW + GRACE_MS));
    let after = at(NOW + GRACE_MS);
    assert_eq!((after.edition, after.max_users), (Edition::Community, UserLimit::Limited(5)));
}

#[test]
fn a_tampered_cache_is_community_not_the_offline_token() {
    let request = request();
    let raw = answer(&set_for(&request, NOW));
    let tampered = raw.replacen("\"max_users\":50", "\"max_users\":5000", 1);
    assert_ne!(raw, tampered);
    for cache in [tampered, String::new(), "{}".into(), raw.replace("pro", "enterprise")] {
        let e = state::evaluate(Some(&request.license_key), Some(&active_state(cache)), &roots(), None, NOW);
        assert_eq!((e.edition, e.max_users), (Edition::Community, UserLimit::Limited(5)));
    }
    // A valid set copied beside another license key does not grant it.
    let other = active_state(raw);
    let e = state::evaluate(Some("plk_someone_else"), Some(&other), &roots(), None, NOW);
    assert_eq!(e.edition, Edition::Community);
}

#[test]
fn key_rotation_the_old_key_is_honoured_until_its_date_and_the_next_key_is_announced() {
    let request = request();
    let next_hash = hex::encode(next_key().verifying_key().pk_hash());
    let mut roots = TrustRoots::embedded();
    let retire = NOW + 60 * 24 * 3600 * 1000;
    roots.add_ml_dsa(&server_key().verifying_key().to_bytes(), Some(retire)).unwrap();
    let announcing = CapabilitySet { next_pubkey_hash: Some(next_hash.clone()), ..set_for(&request, NOW) };
    let outcome = checkin::classify(200, answer(&announcing).as_bytes(), &request.expectation(), &roots, NOW);
    let (s, _) = LicenseState::default().after(&outcome, &[0; 32], NOW);
    assert_eq!(s.next_pubkey_hash.as_deref(), Some(next_hash.as_str()));
    let hash: [u8; 32] = hex::decode(&next_hash).unwrap().try_into().unwrap();
    assert!(!roots.has_ml_dsa(&hash), "not installed yet");
    // The image upgrade brings the next key.
    roots.add_ml_dsa(&next_key().verifying_key().to_bytes(), None).unwrap();
    assert!(roots.has_ml_dsa(&hash));
    let by_next = set_for(&request, retire + 1).sign(&next_key()).unwrap();
    assert!(matches!(
        checkin::classify(200, by_next.as_bytes(), &request.expectation(), &roots, retire + 1),
        CheckInOutcome::Active(_)
    ));
    // After its date, the old key's signatures are refused.
    let by_old = answer(&set_for(&request, retire + 1));
    assert!(matches!(
        checkin::classify(200, by_old.as_bytes(), &request.expectation(), &roots, retire + 1),
        CheckInOutcome::Unavailable(_)
    ));
}

#[test]
fn remote_actions_become_license_events_with_their_role() {
    let remote = Remote {
        drain: Some(DrainOrder { id: "d1".into(), role: Role::Support, mode: DrainMode::Drain }),
        update_offer: Some(UpdateOffer {
            id: "u1".into(),
            role: Role::Owner,
            version: "3.2.0".into(),
            notes_url: String::new(),
        }),
        support_keys: vec![SupportKey {
            id: "k1".into(),
            role: Role::Support,
            key_sha256: "ab".repeat(32),
            expires_at: wire::iso8601_ms(NOW + 3_600_000),
        }],
        capability_change: Some(license::remote::CapabilityChange {
            id: "c1".into(),
            role: Role::Owner,
            reason: "upgrade".into(),
        }),
    };
    let actions = remote.actions("pro", "50");
    let names: Vec<(&str, &str)> =
        actions.iter().map(|a| (a.event["action"].as_str().unwrap(), a.event["role"].as_str().unwrap())).collect();
    assert_eq!(
        names,
        [
            ("capabilities_adjusted", "Owner"),
            ("drain_mode_requested", "Support"),
            ("update_offered", "Owner"),
            ("support_key_issued", "Support")
        ]
    );
    for a in &actions {
        // Every event is a valid license-event leaf once the log stamps it.
        let mut event = a.event.clone();
        event["timestamp"] = wire::iso8601_ms(NOW).into();
        let parsed: wire::LogEvent = serde_json::from_value(event).unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.type_byte(), 0x07);
    }
    assert!(remote.draining());
}

#[test]
fn support_keys_work_until_expiry_or_revocation() {
    let request = request();
    let key_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"pgp_support_secret"));
    let set = CapabilitySet {
        remote: Remote {
            support_keys: vec![SupportKey {
                id: "k1".into(),
                role: Role::Support,
                key_sha256: key_sha.clone(),
                expires_at: wire::iso8601_ms(NOW + 60_000),
            }],
            ..Remote::default()
        },
        ..set_for(&request, NOW)
    };
    let e = state::evaluate(Some(&request.license_key), Some(&active_state(answer(&set))), &roots(), None, NOW);
    assert!(e.support_key_valid(&key_sha, &[], NOW));
    assert!(!e.support_key_valid(&key_sha, &[], NOW + 60_000));
    assert!(!e.support_key_valid(&key_sha, &["k1".into()], NOW));
    assert!(!e.support_key_valid(&"cd".repeat(32), &[], NOW));
}

#[test]
fn the_check_in_body_is_canonical_and_telemetry_is_off_by_default() {
    let request = request();
    let body = String::from_utf8(request.body()).unwrap();
    assert!(body.starts_with("{\"license_key\":\"plk_"));
    assert!(body.contains("\"telemetry\":{\"auth_failure_rate_permille\":null,\"error_rate_5xx_permille\":null,\"opted_in\":false,\"transfer_count_24h\":null,\"uptime_seconds\":null,\"user_count\":null}"));
    assert!(!format!("{request:?}").contains("plk_"), "Debug hides the key");
    let back: CheckInRequest = serde_json::from_str(&body).unwrap();
    assert_eq!(back, request);
}

/// The trust model's "never" list: hashes, emails, names, addresses, log content.
fn never_list_absent(json: &str) {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let map = value.as_object().unwrap();
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "auth_failure_rate_permille",
            "error_rate_5xx_permille",
            "opted_in",
            "transfer_count_24h",
            "uptime_seconds",
            "user_count"
        ]
    );
    for (k, v) in map {
        assert!(v.is_null() || v.is_u64() || v.is_boolean(), "{k} = {v}: only numbers");
    }
    for banned in ['@', '/', '.'] {
        assert!(!json.contains(banned), "{banned} in {json}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn telemetry_holds_only_the_allowed_aggregates(
        users in any::<u64>(), transfers in any::<u64>(), requests in any::<u64>(),
        errors in any::<u64>(), auth in any::<u64>(), uptime in any::<u64>(), on in any::<bool>()
    ) {
        let aggregates = Aggregates { user_count: Some(users), transfer_count_24h: Some(transfers), requests: Some(requests), errors_5xx: Some(errors), auth_failures: Some(auth), uptime_seconds: Some(uptime) };
        let t = Telemetry::new(if on { OptIn::On } else { OptIn::Off }, &aggregates);
        let json = String::from_utf8(wire::canonical_json_of(&t).unwrap()).unwrap();
        never_list_absent(&json);
        prop_assert!(t.error_rate_5xx_permille.unwrap_or(0) <= 1000);
        if !on { prop_assert_eq!(t, Telemetry::default()); }
    }
}

/// One signed answer for the mutation property (ML-DSA in a debug build is slow).
fn signed_once() -> &'static (CheckInRequest, String) {
    static ONCE: std::sync::OnceLock<(CheckInRequest, String)> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let request = request();
        let raw = answer(&set_for(&request, NOW));
        (request, raw)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever a capability set says, changing any byte of it (other than whitespace) never
    /// yields a grant.
    #[test]
    fn a_cache_changed_anywhere_grants_nothing(index in 0usize..100_000, byte in any::<u8>()) {
        let (request, raw) = signed_once();
        let mut bytes = raw.clone().into_bytes();
        let i = index % bytes.len();
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let before: Option<serde_json::Value> = serde_json::from_str(raw).ok();
        let after: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        prop_assume!(before != after);
        let e = state::evaluate(Some(&request.license_key), Some(&active_state(text)), &roots(), None, NOW);
        prop_assert_eq!(e.edition, Edition::Community);
    }
}

#[test]
fn expectation_compares_all_three_echoes() {
    let e = Expectation { license_key: "a".into(), relay_id: "b".into(), nonce: "c".into() };
    let set =
        CapabilitySet { license_key: "a".into(), relay_id: "b".into(), nonce: "c".into(), ..set_for(&request(), NOW) };
    assert!(set.check_answer(&e, NOW).is_ok());
    let _ = SignedCapabilitySet::verify(b"{}", &roots(), NOW).unwrap_err();
}

#[test]
fn a_capability_set_lowers_blob_size_and_retention_and_community_keeps_the_relays_own() {
    let request = request();
    let mut set = set_for(&request, NOW);
    set.capabilities.max_blob_size_mb = 2;
    set.capabilities.retention_max_seconds = 600;
    set.capabilities.ml_dsa_required = true;
    let e = state::evaluate(Some(&request.license_key), Some(&active_state(answer(&set))), &roots(), None, NOW);
    assert_eq!(e.source, Source::CapabilitySet);
    assert_eq!(e.max_blob_bytes(5 << 20), 2 << 20);
    assert_eq!(e.max_blob_bytes(1 << 20), 1 << 20, "a set never raises the relay's own limit");
    assert_eq!(e.retention_cap_ms(3_600_000), 600_000);
    assert_eq!(e.retention_cap_ms(60_000), 60_000);
    assert!(e.ml_dsa_required());
    assert!(e.addon_allowed("storage-mirror") && !e.addon_allowed("notification-bridge"));
    // Community Edition and an offline token: the relay's own limits, no add-ons, no
    // signature requirement.
    for e in [
        state::evaluate(None, None, &roots(), None, NOW),
        state::evaluate(Some(&request.license_key), None, &roots(), None, NOW),
    ] {
        assert_eq!((e.max_blob_bytes(5 << 20), e.retention_cap_ms(3_600_000)), (5 << 20, 3_600_000));
        assert!(!e.ml_dsa_required() && !e.addon_allowed("storage-mirror"));
    }
}
