//! The check-in, client and reference server over real HTTPS on loopback (a test CA): a signed
//! capability set cached and re-verified, the digest of each exact body in the log, the
//! telemetry preview byte for byte, 402/404/410/503, a slow or unreachable server, and remote
//! actions logged (with inclusion proofs) before they take effect.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::Env;
use license::state::{Edition, Next, Source, UserLimit};
use license_service::log::{Appended, EventLog};
use serde_json::Value;
use sha3::{Digest, Sha3_256};

#[test]
fn a_check_in_over_post_quantum_tls_caches_a_signed_set_and_logs_the_bodys_digest() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    let report = env.check_in(&config);
    assert_eq!((report.outcome.as_str(), report.sent), ("active", true));
    assert_eq!(report.next, Next::CheckInAfter(21_600_000));
    let e = env.entitlement(&config);
    assert_eq!((e.edition, e.source, e.max_users), (Edition::Licensed, Source::CapabilitySet, UserLimit::Limited(20)));
    let record = env.record();
    assert_eq!(record.last_kx_group.as_deref(), Some("X25519MLKEM768"));
    assert_eq!(record.relay_ids, [env.relay_id()]);
    // The body the server received: the R013 fields, telemetry off.
    let body = record.last_request_body.unwrap();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["telemetry"]["opted_in"], false);
    assert_eq!(sent["relay_id"], env.relay_id());
    assert_eq!(sent["nonce"].as_str().unwrap().len(), 32);
    // Its digest is in the log, provably.
    let events = env.license_events();
    assert_eq!(events.len(), 1);
    let digest = hex::encode(Sha3_256::digest(body.as_bytes()));
    assert_eq!(events[0]["action"], "check_in");
    assert!(events[0]["detail"].as_str().unwrap().contains(&digest));
    env.assert_included(events[0]["leaf_hash"].as_str().unwrap());
}

#[test]
fn the_telemetry_preview_is_byte_for_byte_what_the_server_receives() {
    let env = Env::start();
    for telemetry in ["telemetry = false", "telemetry = true"] {
        let (_, path) = env.client_config(telemetry);
        let preview = std::process::Command::new(env!("CARGO_BIN_EXE_paramant-license"))
            .args(["telemetry-preview", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(preview.status.success(), "{}", String::from_utf8_lossy(&preview.stderr));
        let shown = String::from_utf8(preview.stdout).unwrap();
        let (config, _) = env.client_config(telemetry);
        assert_eq!(env.check_in(&config).outcome, "active");
        assert_eq!(shown.trim_end(), env.record().last_request_body.unwrap(), "{telemetry}");
        let sent: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(sent["telemetry"]["opted_in"], telemetry.ends_with("true"));
    }
}

/// Opted-in telemetry from a real relay: the aggregates are its own counts (users, transfers
/// and the 5xx and auth-failure rates over 24 hours, uptime), the preview is byte for byte the
/// body the server receives, and nothing of the trust model's "never" list is in it.
#[test]
fn opted_in_telemetry_carries_the_relays_real_aggregates_and_nothing_on_the_never_list() {
    use sha2::Digest as _;
    let env = Env::start();
    let relay = env.start_relay();
    // Two users (one with an email and a name), one transfer, three failed authentications.
    let (status, alice) = env.relay_call(
        &relay,
        "POST",
        "/internal/keys",
        Some(serde_json::json!({ "plan": "professional", "label": "Alice Example", "email": "alice@example.org" })),
    );
    assert_eq!(status, 200, "{alice}");
    let (status, bob) =
        env.relay_call(&relay, "POST", "/internal/keys", Some(serde_json::json!({ "plan": "free", "label": "Bob" })));
    assert_eq!(status, 200, "{bob}");
    let key = alice["key"].as_str().unwrap();
    let payload = b"a file whose hash must never leave the relay";
    let hash = hex::encode(sha2::Sha256::digest(payload));
    let upload = serde_json::json!({ "hash": hash, "payload": wire::b64(payload) });
    let (status, stored) = relay.public("POST", "/v2/inbound", key, &serde_json::to_vec(&upload).unwrap());
    assert_eq!(status, 200, "{stored}");
    for _ in 0..3 {
        assert_eq!(relay.public("GET", "/v2/audit", "pgp_not_a_key", b"").0, 401);
    }
    let extra = format!(
        "telemetry = true\n[relay]\ninternal_url = \"{}\"\ntoken_file = {:?}\n",
        relay.internal, relay.token_file
    );
    let (config, path) = env.client_config(&extra);
    let preview = std::process::Command::new(env!("CARGO_BIN_EXE_paramant-license"))
        .args(["telemetry-preview", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(preview.status.success(), "{}", String::from_utf8_lossy(&preview.stderr));
    let shown = String::from_utf8(preview.stdout).unwrap();
    assert_eq!(env.check_in(&config).outcome, "active");
    let received = env.record().last_request_body.unwrap();
    assert_eq!(shown.trim_end(), received, "the preview is what the server received");

    let sent: Value = serde_json::from_str(&received).unwrap();
    let t = &sent["telemetry"];
    let requests = 4; // the upload and the three refusals (the internal API is not counted)
    assert_eq!(t["opted_in"], true);
    assert_eq!(t["user_count"], 2, "{t}");
    assert_eq!(t["transfer_count_24h"], 1, "{t}");
    assert_eq!(t["error_rate_5xx_permille"], 0, "{t}");
    assert_eq!(t["auth_failure_rate_permille"], 3 * 1000 / requests, "{t}");
    assert_eq!(t["uptime_seconds"], 0, "{t}: whole hours, and the relay just started");
    // Only the R013 fields, and telemetry holds numbers only.
    let fields: Vec<&String> = sent.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["license_key", "nonce", "relay_id", "telemetry", "version"]);
    assert!(t.as_object().unwrap().values().all(|v| v.is_u64() || v.is_boolean()), "{t}");
    // The "never" list: file hashes, user identities (emails, names), keys and key hashes,
    // addresses, log content (the transfer's leaf).
    let leaf = stored["merkle_proof"]["leaf_hash"].as_str().unwrap();
    let never = [
        hash.as_str(),
        "alice",
        "Alice Example",
        "Bob",
        key,
        alice["key_hash"].as_str().unwrap(),
        bob["key_hash"].as_str().unwrap(),
        "127.0.0.1",
        &relay.public.port().to_string(),
        leaf,
        "/v2/",
    ];
    for item in never {
        assert!(!received.contains(item), "{item:?} in the check-in body {received}");
    }
}

#[test]
fn every_check_in_uses_a_fresh_nonce() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    let mut nonces = Vec::new();
    for _ in 0..3 {
        assert_eq!(env.check_in(&config).outcome, "active");
        let body: Value = serde_json::from_str(&env.record().last_request_body.unwrap()).unwrap();
        nonces.push(body["nonce"].as_str().unwrap().to_owned());
    }
    nonces.dedup();
    assert_eq!(nonces.len(), 3);
}

#[test]
fn payment_required_unknown_and_revoked_keys_degrade_and_outages_keep_the_cache() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    assert_eq!(env.check_in(&config).outcome, "active");
    // 503: the cache stays and grants.
    env.admin(&["outage", "on"]);
    assert_eq!(env.check_in(&config).outcome, "unavailable");
    assert_eq!(env.entitlement(&config).max_users, UserLimit::Limited(20));
    env.admin(&["outage", "off"]);
    // 402: Community at once, with a notice for the admin panel.
    env.admin(&["set", "--token", &env.token, "payment_required"]);
    assert_eq!(env.check_in(&config).outcome, "payment_required");
    let e = env.entitlement(&config);
    assert_eq!((e.edition, e.max_users), (Edition::Community, UserLimit::Limited(5)));
    assert!(e.notice.unwrap().contains("payment"));
    // Paid: back.
    env.admin(&["set", "--token", &env.token, "active"]);
    assert_eq!(env.check_in(&config).outcome, "active");
    assert_eq!(env.entitlement(&config).edition, Edition::Licensed);
    // 404: unknown key.
    env.admin(&["remove", "--token", &env.token]);
    assert_eq!(env.check_in(&config).outcome, "unknown_key");
    assert_eq!(env.entitlement(&config).edition, Edition::Community);
    // 410: revoked, and never retried with this key.
    env.admin(&["add", "--token", &env.token, "--tier", "pro", "--max-users", "20"]);
    env.admin(&["set", "--token", &env.token, "revoked"]);
    let report = env.check_in(&config);
    assert_eq!((report.outcome.as_str(), report.next), ("revoked", Next::StopRetrying));
    let check_ins = env.record().check_ins;
    let again = env.check_in(&config);
    assert_eq!((again.outcome.as_str(), again.sent), ("revoked_key", false));
    assert_eq!(env.record().check_ins, check_ins, "nothing was sent");
    assert_eq!(env.entitlement(&config).edition, Edition::Community);
}

#[test]
fn a_slow_an_unreachable_or_an_untrusted_server_counts_as_unavailable() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    assert_eq!(env.check_in(&config).outcome, "active");
    let granted = env.entitlement(&config);
    // Slower than the client's 5 s deadline.
    env.admin(&["delay", "7000"]);
    assert_eq!(env.check_in(&config).outcome, "unavailable");
    env.admin(&["delay", "0"]);
    // Nobody listening.
    let mut unreachable = config.clone();
    unreachable.server_url = format!("https://localhost:{}/v1/license/check", common::free_port());
    assert_eq!(env.check_in(&unreachable).outcome, "unavailable");
    // A certificate from a CA the client does not trust.
    let mut untrusted = config.clone();
    untrusted.ca_file = None;
    assert_eq!(env.check_in(&untrusted).outcome, "unavailable");
    // Through all of it the cache kept granting.
    assert_eq!(env.entitlement(&config), granted);
}

#[test]
fn a_check_in_the_log_cannot_record_is_not_sent() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    let wrong = license_service::log::LogClient::new(
        &env.log_internal,
        &env.log_public,
        crypto::Secret::new("pit_wrong".into()),
    );
    let report = env.check_in_with(&config, &wrong);
    assert_eq!((report.outcome.as_str(), report.sent), ("log_unavailable", false));
    assert_eq!(env.record().check_ins, 0);
}

#[test]
fn remote_actions_are_logged_with_their_role_before_they_take_effect() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    env.admin(&["drain", "--token", &env.token, "--role", "support"]);
    env.admin(&["offer-update", "--token", &env.token, "--version", "3.2.0", "--role", "owner"]);
    let support_key = env.admin(&["support-key", "--token", &env.token, "--hours", "2", "--role", "support"]);
    env.admin(&[
        "adjust",
        "--token",
        &env.token,
        "--tier",
        "enterprise",
        "--max-users",
        "unlimited",
        "--role",
        "owner",
    ]);
    assert_eq!(env.check_in(&config).outcome, "active");
    let e = env.entitlement(&config);
    assert!(e.drain);
    assert_eq!(e.update_offer.as_ref().unwrap().version, "3.2.0");
    assert_eq!(e.max_users, UserLimit::Unlimited);
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(support_key.trim().as_bytes()));
    assert!(e.support_key_valid(&digest, &[], common::now_ms()));
    let events = env.license_events();
    let actions: Vec<(&str, &str)> =
        events.iter().map(|e| (e["action"].as_str().unwrap(), e["role"].as_str().unwrap())).collect();
    assert_eq!(
        actions,
        [
            ("check_in", "Relay"),
            ("capabilities_adjusted", "Owner"),
            ("drain_mode_requested", "Support"),
            ("update_offered", "Owner"),
            ("support_key_issued", "Support"),
        ]
    );
    for event in &events {
        env.assert_included(event["leaf_hash"].as_str().unwrap());
    }
    // A second check-in logs itself, not the same actions again.
    assert_eq!(env.check_in(&config).outcome, "active");
    assert_eq!(env.license_events().len(), events.len() + 1);
    // Undrain is a new action.
    env.admin(&["undrain", "--token", &env.token, "--role", "owner"]);
    assert_eq!(env.check_in(&config).outcome, "active");
    assert!(!env.entitlement(&config).drain);
    assert_eq!(env.license_events().last().unwrap()["action"], "drain_mode_lifted");
}

/// A log that records the check-in and then fails.
struct FailsAfterFirst {
    inner: license_service::log::LogClient,
    appended: std::sync::atomic::AtomicUsize,
}

impl EventLog for FailsAfterFirst {
    async fn append(&self, event: Value) -> anyhow::Result<Appended> {
        if self.appended.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1 {
            anyhow::bail!("the log is full (injected)");
        }
        self.inner.append(event).await
    }
}

#[test]
fn a_remote_action_that_cannot_be_logged_does_not_happen() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    assert_eq!(env.check_in(&config).outcome, "active");
    let before = env.entitlement(&config);
    env.admin(&["drain", "--token", &env.token, "--role", "support"]);
    let failing = FailsAfterFirst { inner: env.log_client(), appended: Default::default() };
    let report = env.check_in_with(&config, &failing);
    assert_eq!(report.outcome, "unavailable");
    let after = env.entitlement(&config);
    assert!(!after.drain, "the drain was not logged, so it did not happen");
    assert_eq!(after, before);
    assert!(env.license_events().iter().all(|e| e["action"] != "drain_mode_requested"));
    // Once the log works again, the drain is logged and applied.
    assert_eq!(env.check_in(&config).outcome, "active");
    assert!(env.entitlement(&config).drain);
}

#[test]
fn no_token_means_no_check_in() {
    let env = Env::start();
    let (config, _) = env.client_config("");
    std::fs::write(env.path("license-token"), "").unwrap();
    let report = env.check_in(&config);
    assert_eq!((report.outcome.as_str(), report.sent), ("no_token", false));
    std::fs::write(env.path("license-token"), "plk_%%%").unwrap();
    assert_eq!(env.check_in(&config).outcome, "bad_token");
    assert_eq!(env.record().check_ins, 0);
}

#[test]
fn the_binary_checks_in_once_under_its_sandbox() {
    let env = Env::start();
    let (_, path) = env.client_config("");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_paramant-license"))
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("check-in request body: {"), "{stderr}");
    assert!(!stderr.contains(&env.token), "the journal never shows the license key");
    assert!(stderr.contains("check-in: active"), "{stderr}");
    assert_eq!(env.record().check_ins, 1);
    // The state echoes the license key (the operator's plk_ data-plane key): never world-readable.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(env.path(p)).unwrap().permissions().mode() & 0o777;
    let published = std::fs::read_to_string(env.path("published/state.json")).unwrap();
    assert!(published.contains(&env.token), "the signed set echoes the license key");
    assert_eq!(mode("published/state.json"), 0o640, "published state: owner and the readers' group only");
    assert_eq!(mode("client-state/state.json"), 0o600, "private state: owner only");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_paramant-license"))
        .args(["status", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!((status["edition"].as_str(), status["max_users"].as_u64()), (Some("licensed"), Some(20)));
}

#[test]
fn the_license_server_answers_bad_input_with_a_4xx() {
    let env = Env::start();
    let ca = std::fs::read(env.path("ca.pem")).unwrap();
    let url = format!("{}/v1/license/check", env.server_url);
    let client =
        license_service::client::HttpsClient::new(&url, Some(&ca), std::time::Duration::from_secs(10)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for body in [&b"not json"[..], b"{}", b"{\"license_key\":1}", &[b'x'; 20_000][..]] {
        let answer = runtime.block_on(client.post(body.to_vec())).unwrap();
        assert!(
            (400..500).contains(&answer.status),
            "{} for {:?}",
            answer.status,
            String::from_utf8_lossy(&body[..body.len().min(20)])
        );
    }
    // Nothing was recorded for the license.
    assert_eq!(env.record().check_ins, 0);
}

/// The reference server's JSON db under concurrent writers: check-ins over HTTPS (each from its
/// own relay) while the admin command line adds licenses. Every check-in is counted, every
/// relay recorded, every added license kept.
#[test]
fn concurrent_check_ins_and_admin_edits_lose_no_update() {
    const CHECK_INS: usize = 16;
    const ADDED: usize = 4;
    let env = Env::start();
    let ca = std::fs::read(env.path("ca.pem")).unwrap();
    let url = format!("{}/v1/license/check", env.server_url);
    let client = std::sync::Arc::new(
        license_service::client::HttpsClient::new(&url, Some(&ca), std::time::Duration::from_secs(60)).unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let relay_ids: Vec<String> = (0..CHECK_INS).map(|i| format!("{i:064x}")).collect();
    let statuses = std::thread::scope(|s| {
        let admins: Vec<_> = (0..ADDED)
            .map(|i| {
                let env = &env;
                s.spawn(move || {
                    env.admin(&["add", "--token", &format!("plk_other_{i}"), "--tier", "pro", "--max-users", "5"])
                })
            })
            .collect();
        let statuses = runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for relay_id in &relay_ids {
                let request = license::CheckInRequest {
                    license_key: env.token.clone(),
                    relay_id: relay_id.clone(),
                    version: "0.1.0".into(),
                    telemetry: license::Telemetry::default(),
                    nonce: "00".repeat(16),
                };
                let client = client.clone();
                tasks.spawn(async move { client.post(request.body()).await.map(|a| a.status) });
            }
            let mut statuses = Vec::new();
            while let Some(done) = tasks.join_next().await {
                statuses.push(done.unwrap().unwrap());
            }
            statuses
        });
        for admin in admins {
            admin.join().unwrap();
        }
        statuses
    });
    assert_eq!(statuses, [200; CHECK_INS]);
    let db = env.server_db();
    let record = &db.licenses[&license_service::server::license_id(&env.token)];
    assert_eq!(record.check_ins, CHECK_INS as u64, "a check-in was lost");
    let mut recorded = record.relay_ids.clone();
    recorded.sort();
    assert_eq!(recorded, relay_ids, "a relay was lost");
    for i in 0..ADDED {
        let id = license_service::server::license_id(&format!("plk_other_{i}"));
        assert!(db.licenses.contains_key(&id), "the admin's license {i} was lost");
    }
}
