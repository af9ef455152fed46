//! The relay registry (`/v2/relays`: ML-DSA-65 signed, time-windowed registrations) and trial
//! key requests (`/v2/request-trial`: a Free key by mail, rate limited per email and per IP).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use crypto::KeyFile;
use serde_json::{Value, json};

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A registration of `url` signed by `key` at `timestamp_ms`.
fn registration(key: &crypto::LogSigningKey, url: &str, sector: &str, timestamp_ms: u64) -> Value {
    registration_of(key, url, sector, "2.4.5", timestamp_ms)
}

fn registration_of(key: &crypto::LogSigningKey, url: &str, sector: &str, version: &str, timestamp_ms: u64) -> Value {
    let body = wire::RelayRegistration {
        url: url.into(),
        sector: sector.into(),
        version: version.into(),
        edition: "community".into(),
        timestamp: wire::iso8601_ms(timestamp_ms),
    };
    serde_json::to_value(body.sign(key)).unwrap()
}

fn pk_hash(key: &crypto::LogSigningKey) -> String {
    hex::encode(key.verifying_key().pk_hash())
}

/// A registry that allows exactly these relays' log keys.
fn registry_allowing(keys: &[&crypto::LogSigningKey]) -> Sector {
    let list: Vec<String> = keys.iter().map(|k| format!("\"{}\"", pk_hash(k))).collect();
    Sector::with_config(&format!("registry_keys = [{}]\n", list.join(", ")))
}

#[test]
fn a_relay_registers_with_a_signed_request_and_is_listed() {
    let key = crypto::LogSigningKey::generate().unwrap();
    let other_operator = crypto::LogSigningKey::generate().unwrap();
    let sector = registry_allowing(&[&key, &other_operator]);
    let url = "https://legal.example.org";

    let reply = sector.post("/v2/relays/register", None, &registration(&key, url, "legal", now_ms()));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["pk_hash"], hex::encode(key.verifying_key().pk_hash()));
    let listed = sector.get("/v2/relays", None).json();
    assert_eq!(listed["total"], 2, "this relay and the registered one: {listed}");
    assert_eq!(listed["relays"][0]["self"], true, "the serving relay is listed first: {listed}");
    assert_eq!(
        (listed["relays"][1]["url"].clone(), listed["relays"][1]["sector"].clone()),
        (json!(url), json!("legal"))
    );
    let logged =
        sector.log_entries().into_iter().filter(|e| e["type"] == "admin_action" && e["subject"] == url).count();
    assert_eq!(logged, 1, "the registration is in the log");
    let again = sector.post("/v2/relays/register", None, &registration(&key, url, "legal", now_ms()));
    assert_eq!(again.status, 200, "a heartbeat with the same key: {}", again.text());

    let mut forged = registration(&key, url, "legal", now_ms());
    forged["version"] = json!("9.9.9");
    sector.post("/v2/relays/register", None, &forged).assert_error(401, "signature_invalid");
    let stale = registration(&key, url, "legal", now_ms() - 10 * 60 * 1000);
    sector.post("/v2/relays/register", None, &stale).assert_error(400, "bad_request");
    let future = registration(&key, url, "legal", now_ms() + 10 * 60 * 1000);
    sector.post("/v2/relays/register", None, &future).assert_error(400, "bad_request");
    sector
        .post("/v2/relays/register", None, &registration(&other_operator, url, "legal", now_ms()))
        .assert_error(409, "key_mismatch");
    for (bad_url, bad_sector) in [
        ("https://10.1.2.3", "legal"),
        ("https://127.0.0.1:8443", "legal"),
        ("http://plain.example.org", "legal"),
        ("https://other.example.org", "space"),
    ] {
        let reply = sector.post("/v2/relays/register", None, &registration(&key, bad_url, bad_sector, now_ms()));
        assert_eq!(
            (reply.status, reply.error()),
            (400, "bad_request".into()),
            "{bad_url} {bad_sector}: {}",
            reply.text()
        );
    }
    let mut not_a_key = registration(&key, "https://x.example.org", "legal", now_ms());
    not_a_key["public_key"] = json!(b64(&[1u8; 64]));
    sector.post("/v2/relays/register", None, &not_a_key).assert_error(400, "bad_request");

    let listed = sector.get("/v2/relays", None).json();
    assert_eq!(listed["total"], 2, "refused registrations change nothing: {listed}");
    assert_eq!(listed["relays"][1]["pk_hash"], hex::encode(key.verifying_key().pk_hash()));
}

/// M4: strangers' self-made keys cannot register (nor lock a URL out, nor write to the log),
/// and an allowed relay's version bumps append to the permanent log at most once per 10 min.
#[test]
fn only_allowed_relays_register_and_changes_are_rate_limited() {
    let operator = crypto::LogSigningKey::generate().unwrap();
    let sector = registry_allowing(&[&operator]);
    let url = "https://health.example.org";
    let logged = |sector: &Sector| {
        sector
            .log_entries()
            .into_iter()
            .filter(|e| e["type"] == "admin_action" && e["action"] == "relay_registered")
            .count()
    };
    // A stranger gets there first, 40 times with 40 keys: every one is refused, nothing stored.
    for n in 0..40 {
        let stranger = crypto::LogSigningKey::generate().unwrap();
        let version = format!("1.0.{n}");
        sector
            .post("/v2/relays/register", None, &registration_of(&stranger, url, "health", &version, now_ms()))
            .assert_error(403, "forbidden");
    }
    assert_eq!(sector.get("/v2/relays", None).json()["total"], 1, "only the serving relay itself is listed");
    assert_eq!(logged(&sector), 0, "refused registrations write nothing to the log");
    // The real operator is not locked out.
    let first = sector.post("/v2/relays/register", None, &registration_of(&operator, url, "health", "1.0.0", now_ms()));
    assert_eq!(first.status, 200, "{}", first.text());
    // Renewals change nothing in the log; a version bump right after is refused (429).
    for _ in 0..3 {
        let renew = registration_of(&operator, url, "health", "1.0.0", now_ms());
        assert_eq!(sector.post("/v2/relays/register", None, &renew).status, 200);
    }
    let bump = sector.post("/v2/relays/register", None, &registration_of(&operator, url, "health", "1.0.1", now_ms()));
    assert_eq!((bump.status, bump.error()), (429, "rate_limited".into()), "{}", bump.text());
    assert_eq!(logged(&sector), 1, "one registration, one leaf");
    // relays[0] is the serving relay itself; the registered one follows.
    assert_eq!(sector.get("/v2/relays", None).json()["relays"][1]["version"], "1.0.0");
}

fn trial(sector: &Sector, email: &str) -> Reply {
    sector.post(
        "/v2/request-trial",
        None,
        &json!({ "name": "Jane Smith", "email": email, "use_case": "DICOM transfer" }),
    )
}

fn outbox(sector: &Sector) -> Vec<String> {
    let dir = sector.relay_state_dir().join("outbox");
    let mut mails: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect())
        .unwrap_or_default();
    mails.sort();
    mails
}

/// The `pgp_` key in a mail.
fn key_in(mail: &str) -> String {
    let start = mail.find("pgp_").expect("a pgp_ key in the mail");
    mail[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect()
}

#[test]
fn a_trial_request_mails_a_working_free_key_and_is_rate_limited() {
    let sector = Sector::start();
    let reply = trial(&sector, "Jane@Example.com");
    assert_eq!((reply.status, reply.json()["ok"].clone()), (200, json!(true)), "{}", reply.text());
    let mails = outbox(&sector);
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: jane@example.com\r\n"), "{}", mails[0]);
    let key = key_in(&mails[0]);
    let check = sector.get("/v2/check-key", Some(&key)).json();
    assert_eq!((check["valid"].clone(), check["plan"].clone()), (json!(true), json!("free")), "{check}");
    sector.upload_ok(&key, &payload(1, 100), json!({}));

    let same_email = trial(&sector, "jane@example.com");
    same_email.assert_error(429, "rate_limited");
    assert!(same_email.json()["detail"].as_str().unwrap().contains("email"));
    assert!(same_email.header("retry-after").is_some());
    assert_eq!(trial(&sector, "john@example.com").status, 200);
    assert_eq!(trial(&sector, "joan@example.com").status, 200);
    let fourth = trial(&sector, "jim@example.com");
    fourth.assert_error(429, "rate_limited");
    assert!(!fourth.json()["detail"].as_str().unwrap().contains("email"), "the per-address limit: {}", fourth.text());
    assert_eq!(outbox(&sector).len(), 3);

    for email in ["not-an-email", "a@b", "x@.com", "evil@example.com\r\nBcc: all@example.com", "<a@example.com>"] {
        trial(&sector, email).assert_error(400, "bad_request");
    }
    sector
        .post("/v2/request-trial", None, &json!({ "name": "", "email": "e@example.com" }))
        .assert_error(400, "bad_request");
    sector
        .post("/v2/request-trial", None, &json!({ "name": "x", "email": "e@example.com", "plan": "enterprise" }))
        .assert_error(400, "bad_request");
    assert_eq!(outbox(&sector).len(), 3);
}

#[test]
fn concurrent_trial_requests_each_get_their_own_mail() {
    let sector = Sector::start();
    let emails = ["ann@example.com", "bob@example.com", "cat@example.com"];
    let start = std::sync::Barrier::new(emails.len());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = emails
            .iter()
            .map(|email| {
                let (sector, start) = (&sector, &start);
                scope.spawn(move || {
                    start.wait();
                    trial(sector, email).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![200; 3]);
    let mails = outbox(&sector);
    assert_eq!(mails.len(), 3);
    for email in emails {
        let mail = mails
            .iter()
            .find(|m| m.contains(&format!("To: {email}\r\n")))
            .unwrap_or_else(|| panic!("no mail to {email}"));
        assert_eq!(sector.get("/v2/check-key", Some(&key_in(mail))).json()["valid"], true, "{email}'s key works");
    }
}

#[test]
fn a_relay_announces_itself_in_the_configured_registry_signed_by_its_log() {
    // The registry accepts this loopback URL only because private targets are allowed here.
    let seed = [0x5e; 32];
    let announced_key = crypto::LogSigningKey::from_seed(&seed);
    let registry = Sector::with_config(&format!(
        "registry_keys = [\"{}\"]\n[webhook]\ndanger_allow_private_targets = true\n",
        pk_hash(&announced_key)
    ));
    let announced = Sector::with_config_and_log_seed(&format!("registry_url = \"{}\"\n", registry.url), Some(&seed));
    let listed = wait_until("the relay to appear in the registry", || {
        let list = registry.get("/v2/relays", None).json();
        (list["total"] == 2).then_some(list)
    });
    let entry = &listed["relays"][1];
    assert_eq!(entry["url"], announced.url.as_str());
    assert_eq!(entry["sector"], "relay");
    let log_key = announced.get("/v2/pubkey", None).json();
    assert_eq!(entry["pk_hash"], log_key["pk_hash"], "the relay's identity is its sector log's key");
}

#[test]
fn the_serving_relay_lists_itself_with_its_logs_key_before_any_registration() {
    let sector = Sector::start();
    let listed = sector.get("/v2/relays", None).json();
    assert_eq!(listed["total"], 1, "{listed}");
    let me = &listed["relays"][0];
    assert_eq!(
        (me["self"].clone(), me["url"].clone(), me["sector"].clone()),
        (json!(true), json!(sector.url), json!("relay"))
    );
    let log_key = sector.get("/v2/pubkey", None).json();
    assert_eq!(me["pk_hash"], log_key["pk_hash"], "the relay's identity is its sector log's key");
    let paged = sector.get("/v2/relays?offset=1", None).json();
    assert_eq!((paged["total"].clone(), paged["relays"].clone()), (json!(1), json!([])));
}

#[test]
fn a_relay_proves_control_of_its_url_and_a_forged_or_unreachable_proof_is_refused() {
    // A registry that lists no key but accepts URL proofs (loopback targets allowed here).
    let registry = Sector::with_config("registry_url_proof = true\n[webhook]\ndanger_allow_private_targets = true\n");
    let seed = [0x7a; 32];
    let relay_key = crypto::LogSigningKey::from_seed(&seed);
    let relay = Sector::with_config_and_log_seed("", Some(&seed));
    let identity = relay.get("/.well-known/paramant-relay.json", None).json();
    assert_eq!((identity["url"].clone(), identity["pk_hash"].clone()), (json!(relay.url), json!(pk_hash(&relay_key))));

    // A stranger's key for the relay's URL: the URL names another key, so nothing is stored.
    let stranger = crypto::LogSigningKey::generate().unwrap();
    let forged = registry.post("/v2/relays/register", None, &registration(&stranger, &relay.url, "relay", now_ms()));
    forged.assert_error(403, "forbidden");
    assert!(forged.text().contains("names another log key"), "{}", forged.text());
    // A URL nobody answers on: no proof.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let unreachable = registry.post("/v2/relays/register", None, &registration(&stranger, &closed, "relay", now_ms()));
    unreachable.assert_error(403, "forbidden");
    assert!(unreachable.text().contains("could not be fetched"), "{}", unreachable.text());
    // The registry's own identity document names the registry's URL, not the one registered.
    let elsewhere = registry.post(
        "/v2/relays/register",
        None,
        &registration(&relay_key, &format!("{}/", registry.url), "relay", now_ms()),
    );
    elsewhere.assert_error(403, "forbidden");
    assert_eq!(registry.get("/v2/relays", None).json()["total"], 1, "nothing was registered");

    // The relay's own key for its own URL: proven, registered, listed and logged once.
    let proven = registry.post("/v2/relays/register", None, &registration(&relay_key, &relay.url, "relay", now_ms()));
    assert_eq!(proven.status, 200, "{}", proven.text());
    let listed = registry.get("/v2/relays", None).json();
    assert_eq!((listed["total"].clone(), listed["relays"][1]["url"].clone()), (json!(2), json!(relay.url)));
    // Now the URL is taken by its real operator; the stranger stays out.
    registry
        .post("/v2/relays/register", None, &registration(&stranger, &relay.url, "relay", now_ms()))
        .assert_error(409, "key_mismatch");
}
