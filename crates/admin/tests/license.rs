//! The license in the admin panel, against the real `paramant-admin` binary: the verified status
//! on `/admin/api/admin/license` and the license page, and the user cap (Community Edition: 5)
//! on every path of the panel that creates a user — account activation and admin key creation —
//! with 402 `tier_limit_users` and nothing changed; a key rotation is not a new user; a license
//! allowing more lets the 6th in; a relay's own refusal is the same 402, never a 5xx.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::Panel;
use license::state::UserLimit;
use license::token::{self, Payload};
use serde_json::{Value, json};

fn fixture_seed() -> [u8; 32] {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../license/fixtures/test-ed25519-license-signing.seed.hex");
    hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap().try_into().unwrap()
}

/// A `[license]` table trusting the fixture key, with a token for `max_keys` users written into
/// `dir`.
fn license_table(dir: &std::path::Path, max_keys: u64) -> String {
    license_table_until(dir, max_keys, "2099-01-01")
}

/// The same, for a token that expires at `expires_at`.
fn license_table_until(dir: &std::path::Path, max_keys: u64, expires_at: &str) -> String {
    let payload = Payload {
        max_keys: UserLimit::Limited(max_keys),
        expires_at: expires_at.into(),
        issued_to: "Example BV".into(),
        issued_at: None,
    };
    let path = dir.join(format!("license-token-{max_keys}"));
    std::fs::write(&path, token::issue(&fixture_seed(), &payload).unwrap()).unwrap();
    format!(
        "[license]\ntoken_file = {:?}\ntrusted_ed25519_keys = [{:?}]\n",
        path.display().to_string(),
        token::public_key_hex(&fixture_seed())
    )
}

fn relay_key_count(panel: &Panel) -> usize {
    let keys = panel.admin("GET", "/admin/api/admin/keys", None).json();
    keys["sectors"]["relay"].as_array().unwrap().iter().filter(|k| k["active"] == true).count()
}

fn audit_count(panel: &Panel) -> u64 {
    panel.admin("GET", "/admin/api/admin/audit", None).json()["count"].as_u64().unwrap()
}

fn admin_key(panel: &Panel, label: &str) -> common::Reply {
    panel.admin("POST", "/admin/api/admin/keys", Some(&json!({ "label": label, "plan": "community" })))
}

fn status(panel: &Panel) -> Value {
    let reply = panel.admin("GET", "/admin/api/admin/license", None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["license"].clone()
}

/// Signs `email` up and sets up TOTP; returns (setup token, secret) before the confirming code.
fn pending(panel: &Panel, email: &str) -> (String, String) {
    assert_eq!(panel.json("POST", "/api/user/signup", None, &json!({ "email": email })).status, 200);
    let token = panel.setup_token(email);
    let setup = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({}));
    assert_eq!(setup.status, 200, "{}", setup.text());
    (token, setup.json()["secret"].as_str().unwrap().to_owned())
}

fn confirm(panel: &Panel, token: &str, secret: &str) -> common::Reply {
    let code = panel.next_code(secret);
    panel.json("POST", &format!("/api/user/auth/setup/{token}/confirm"), None, &json!({ "totp_code": code }))
}

fn assert_tier_limit(reply: &common::Reply, current: u64, max: u64) {
    reply.assert_error(402, "tier_limit_users");
    let body = reply.json();
    assert_eq!((body["current_users"].as_u64(), body["max_users"].as_u64()), (Some(current), Some(max)), "{body}");
}

#[test]
fn community_edition_refuses_the_sixth_user_on_every_path_and_changes_nothing() {
    let panel = Panel::start();
    let s = status(&panel);
    assert_eq!(
        (s["edition"].as_str(), s["max_users"].as_u64(), s["users"].as_u64()),
        (Some("community"), Some(5), Some(0))
    );
    assert_eq!((s["source"].as_str(), &s["issued_to"]), (Some("none"), &Value::Null));

    // Five users: three accounts (each with its key on the relay, counted once) and two keys
    // the admin created (no account owns them).
    let accounts: Vec<_> = (0..3).map(|i| panel.signed_up(&format!("user{i}@example.com"))).collect();
    let free_keys: Vec<Value> = (0..2)
        .map(|i| {
            let reply = admin_key(&panel, &format!("key {i}"));
            assert_eq!(reply.status, 200, "{}", reply.text());
            reply.json()
        })
        .collect();
    assert_eq!(status(&panel)["users"].as_u64(), Some(5));
    // A sign-up is no user yet (an account counts once activated).
    let (token, secret) = pending(&panel, "sixth@example.com");
    let (keys_before, audit_before) = (relay_key_count(&panel), audit_count(&panel));

    // Admin key creation: 402, no key on the relay, nothing logged.
    assert_tier_limit(&admin_key(&panel, "sixth"), 5, 5);
    // Account activation: 402 before the code is even looked at; the account stays pending.
    assert_tier_limit(&confirm(&panel, &token, &secret), 5, 5);
    assert_eq!(relay_key_count(&panel), keys_before);
    assert_eq!(audit_count(&panel), audit_before);
    assert_eq!(panel.login("sixth@example.com", &secret).status, 403, "the account was not activated");

    // A key rotation is not a new user: it works at the cap, and the old key stops working.
    let rotated = panel.json(
        "POST",
        "/api/user/account/key/rotate",
        Some(&accounts[0].session),
        &json!({ "totp_code": panel.next_code(&accounts[0].secret) }),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let new_key = rotated.json()["api_key"].as_str().unwrap().to_owned();
    assert!(panel.relay_accepts(&new_key) && !panel.relay_accepts(&accounts[0].api_key));
    assert_eq!(status(&panel)["users"].as_u64(), Some(5));

    // A place frees up: the same setup link now activates the account.
    let revoked =
        panel.admin("POST", "/admin/api/admin/keys/revoke", Some(&json!({ "key_hash": free_keys[0]["key_hash"] })));
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let confirmed = confirm(&panel, &token, &secret);
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert!(panel.relay_accepts(confirmed.json()["api_key"].as_str().unwrap()));
    assert_eq!(status(&panel)["users"].as_u64(), Some(5));
    assert_tier_limit(&admin_key(&panel, "still full"), 5, 5);
}

#[test]
fn a_license_allowing_more_lets_the_sixth_user_in_and_shows_its_status() {
    let licenses = tempfile::tempdir().unwrap();
    let table = license_table(licenses.path(), 7);
    let panel = Panel::with_configs(&table, &table);
    let s = status(&panel);
    assert_eq!((s["edition"].as_str(), s["max_users"].as_u64()), (Some("licensed"), Some(7)), "{s}");
    assert_eq!((s["source"].as_str(), s["issued_to"].as_str()), (Some("offline_token"), Some("Example BV")));
    assert!(s["expires_at"].as_str().unwrap().starts_with("2099-01-01"), "{s}");
    for i in 0..5 {
        assert_eq!(admin_key(&panel, &format!("key {i}")).status, 200);
    }
    // The sixth by admin key creation, the seventh by account activation.
    assert_eq!(admin_key(&panel, "sixth").status, 200);
    let seventh = panel.signed_up("seventh@example.com");
    assert!(panel.relay_accepts(&seventh.api_key));
    assert_eq!(status(&panel)["users"].as_u64(), Some(7));
    // The eighth is over the license's cap.
    assert_tier_limit(&admin_key(&panel, "eighth"), 7, 7);
    let (token, secret) = pending(&panel, "eighth@example.com");
    assert_tier_limit(&confirm(&panel, &token, &secret), 7, 7);
}

#[test]
fn a_license_that_expires_while_the_panel_runs_is_community_at_once() {
    let licenses = tempfile::tempdir().unwrap();
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let expires = wire::iso8601_ms(now_ms + 2 * 86_400_000);
    let licensed = license_table(licenses.path(), 50);
    let panel = Panel::with_configs(&license_table_until(licenses.path(), 50, &expires), &licensed);
    for i in 0..6 {
        assert_eq!(admin_key(&panel, &format!("key {i}")).status, 200);
    }
    assert_eq!(status(&panel)["edition"], "licensed");
    // Three days later (the panel's clock; no restart): Community Edition, the 7th is refused.
    panel.advance(3 * 86_400);
    let s = status(&panel);
    assert_eq!(
        (s["edition"].as_str(), s["max_users"].as_u64(), s["users"].as_u64()),
        (Some("community"), Some(5), Some(6))
    );
    assert!(s["notice"].is_string(), "{s}");
    assert_tier_limit(&admin_key(&panel, "seventh"), 6, 5);
}

#[test]
fn a_relays_own_refusal_is_the_same_402_and_changes_nothing() {
    // The panel holds a license for more users than its relay does (Community): the relay, the
    // final choke point, refuses the sixth in its own transaction.
    let licenses = tempfile::tempdir().unwrap();
    let panel = Panel::with_configs(&license_table(licenses.path(), 50), "");
    for i in 0..5 {
        assert_eq!(admin_key(&panel, &format!("key {i}")).status, 200);
    }
    let keys_before = relay_key_count(&panel);
    // The relay's answer (its count and its cap) reaches the client as it is.
    assert_tier_limit(&admin_key(&panel, "sixth"), 5, 5);
    assert_eq!(relay_key_count(&panel), keys_before);
    let (token, secret) = pending(&panel, "sixth@example.com");
    assert_tier_limit(&confirm(&panel, &token, &secret), 5, 5);
    assert_eq!(relay_key_count(&panel), keys_before);
    assert_eq!(panel.login("sixth@example.com", &secret).status, 403, "the account was not activated");
}

/// A request that does not follow redirects (the admin's sign-in answers 303 with its cookie).
fn raw(panel: &Panel, method: &str, path: &str, cookie: &str, form: Option<String>) -> common::Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(common::DEADLINE))
        .build()
        .into();
    let builder = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", panel.url))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded");
    let mut response = agent.run(builder.body(form.unwrap_or_default().into_bytes()).unwrap()).unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_vec().unwrap();
    common::Reply { status, headers, body }
}

/// The value of the `name=…` cookie an answer sets.
fn set_cookie(reply: &common::Reply, name: &str) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// The hidden CSRF field of a page.
fn csrf_field(page: &common::Reply) -> String {
    let html = page.text();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..at + 64].to_owned()
}

/// Enrolls the admin's authenticator and signs in on the panel: the cookie header to send.
fn admin_web_session(panel: &Panel) -> String {
    let first = panel.get("/admin", None);
    let csrf_cookie = set_cookie(&first, "paramant_csrf");
    let csrf = csrf_field(&first);
    let token = panel.admin_token();
    let enroll = raw(panel, "POST", "/admin/enroll", &csrf_cookie, Some(format!("csrf={csrf}&token={token}")));
    assert_eq!(enroll.status, 200, "{}", enroll.text());
    let html = enroll.text();
    let at = html.find("id=\"secret\">").unwrap() + "id=\"secret\">".len();
    let secret: String = html[at..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let code = panel.next_code(&secret);
    let csrf = csrf_field(&enroll);
    let signed_in = raw(
        panel,
        "POST",
        "/admin/enroll/confirm",
        &csrf_cookie,
        Some(format!("csrf={csrf}&token={token}&code={code}")),
    );
    assert_eq!(signed_in.status, 303, "{}", signed_in.text());
    format!("{csrf_cookie}; {}", set_cookie(&signed_in, "paramant_admin_session"))
}

#[test]
fn the_license_page_shows_the_status_and_the_panels_key_form_gets_the_same_402() {
    let panel = Panel::start();
    let cookies = admin_web_session(&panel);
    for i in 0..5 {
        assert_eq!(admin_key(&panel, &format!("key {i}")).status, 200);
    }
    let page = raw(&panel, "GET", "/admin/license", &cookies, None);
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    for expected in ["Community Edition", "<th>Users now</th><td>5</td>", "<th>User limit</th><td>5</td>"] {
        assert!(html.contains(expected), "{expected} not in {html}");
    }
    let keys_page = raw(&panel, "GET", "/admin/keys", &cookies, None);
    assert_eq!(keys_page.status, 200);
    let csrf = csrf_field(&keys_page);
    let before = relay_key_count(&panel);
    let refused =
        raw(&panel, "POST", "/admin/keys/create", &cookies, Some(format!("csrf={csrf}&label=sixth&plan=community")));
    assert_eq!(refused.status, 402, "{}", refused.text());
    assert!(refused.text().contains("user limit is reached"), "{}", refused.text());
    assert_eq!(relay_key_count(&panel), before);
}
