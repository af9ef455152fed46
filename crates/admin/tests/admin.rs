//! The admin API and the internal `/v2/user/*` API against the real binary: authentication,
//! users, keys on the relay, the TOTP requirement with every documented effect, the audit
//! trail in the sector log with inclusion proofs, and the relay's capabilities.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{Panel, call};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn user_id(panel: &Panel, session: &str) -> String {
    panel.get("/api/user/session/verify", Some(session)).json()["user_id"].as_str().unwrap().to_owned()
}

#[test]
fn the_admin_api_needs_the_generated_token() {
    let panel = Panel::start();
    let token = panel.admin_token();
    assert!(token.starts_with("pat_") && token.len() == 68);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(panel.state_dir().join("admin-token")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    for headers in [vec![], vec![("x-admin-token", "pat_wrong")], vec![("x-admin-token", "")]] {
        panel.request("GET", "/admin/api/admin/users", &headers, None).assert_error(401, "unauthorized");
    }
    // No endpoint hands the token out, and no setup endpoint exists for a first caller.
    for path in ["/admin/api/admin/setup", "/v2/setup/apply", "/admin/api/setup"] {
        let reply = panel.request("POST", path, &[("content-type", "application/json")], Some(b"{}".to_vec()));
        assert_eq!(reply.status, 404, "{path}");
        assert!(!reply.text().contains(&token));
    }
    assert_eq!(panel.admin("GET", "/admin/api/admin/users", None).status, 200);
}

#[test]
fn users_are_listed_without_keys_or_secrets_and_can_be_deactivated() {
    let panel = Panel::start();
    let account = panel.signed_up("listed@example.com");
    let list = panel.admin("GET", "/admin/api/admin/users", None);
    let text = list.text();
    assert!(!text.contains(&account.api_key) && !text.contains(&account.secret));
    let user = &list.json()["users"][0];
    assert_eq!(user["email"], "listed@example.com");
    assert_eq!(user["totp_status"], "active");
    let id = user["user_id"].as_str().unwrap();
    let detail = panel.admin("GET", &format!("/admin/api/admin/users/{id}"), None).json();
    assert!(detail["audit"].as_array().unwrap().iter().any(|e| e["action"] == "user_totp_activated"));

    let reply = panel.admin("POST", &format!("/admin/api/admin/users/{id}/deactivate"), Some(&json!({})));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(!panel.relay_accepts(&account.api_key));
    panel.get("/api/user/account", Some(&account.session)).assert_error(401, "unauthorized");
    panel.login(&account.email, &account.secret).assert_error(401, "invalid_totp_code");

    let reply = panel.admin("DELETE", &format!("/admin/api/admin/users/{id}"), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(panel.admin("GET", "/admin/api/admin/users", None).json()["count"], 0);
    panel.admin("GET", "/admin/api/admin/users/usr_nobody", None).assert_error(404, "not_found");
}

#[test]
fn keys_are_created_listed_masked_replanned_and_revoked_on_the_relay() {
    let panel = Panel::start();
    let created = panel.admin("POST", "/admin/api/admin/keys", Some(&json!({ "label": "ops", "plan": "enterprise" })));
    assert_eq!(created.status, 200, "{}", created.text());
    let key = created.json()["key"].as_str().unwrap().to_owned();
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    assert!(panel.relay_accepts(&key));

    let list = panel.admin("GET", "/admin/api/admin/keys", None);
    assert!(!list.text().contains(&key), "the list never shows a key");
    let entry = list.json()["sectors"]["relay"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_hash"] == hash.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        (entry["plan"].as_str(), entry["label"].as_str(), entry["active"].as_bool()),
        (Some("enterprise"), Some("ops"), Some(true))
    );

    let reply = panel.admin("POST", "/admin/api/admin/keys/plan", Some(&json!({ "key_hash": hash, "plan": "free" })));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let check = call(&format!("{}/v2/check-key", panel.relay_url), "GET", &[("x-api-key", &key)], None).unwrap().json();
    assert_eq!(check["plan"], "free");

    assert_eq!(panel.admin("POST", "/admin/api/admin/keys/revoke", Some(&json!({ "key_hash": hash }))).status, 200);
    assert!(!panel.relay_accepts(&key));

    panel.admin("POST", "/admin/api/admin/keys", Some(&json!({ "plan": "gold" }))).assert_error(400, "bad_request");
    panel
        .admin("POST", "/admin/api/admin/keys/revoke", Some(&json!({ "key_hash": "zz" })))
        .assert_error(400, "bad_request");
    panel
        .admin("POST", "/admin/api/admin/keys/revoke", Some(&json!({ "key_hash": "0".repeat(64) })))
        .assert_error(404, "not_found");
}

#[test]
fn requiring_totp_revokes_sessions_mails_a_link_and_blocks_login_until_reenrolled() {
    let panel = Panel::start();
    let account = panel.signed_up("forced@example.com");
    let second = panel.login(&account.email, &account.secret).session().unwrap();
    let mails_before = panel.mails().len();
    let reply = panel.admin(
        "POST",
        "/admin/api/admin/force-totp",
        Some(&json!({ "key": account.api_key, "required": true, "reason": "compliance policy" })),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    assert_eq!((answer["totp_required"].as_bool(), answer["sessions_revoked"].as_u64()), (Some(true), Some(2)));
    assert_eq!(answer["setup_email_sent"], true);
    for session in [&account.session, &second] {
        panel.get("/api/user/account", Some(session)).assert_error(401, "unauthorized");
    }
    assert_eq!(panel.mails().len(), mails_before + 1);
    // Login is blocked — by TOTP and by backup code — until TOTP is active again.
    panel.login(&account.email, &account.secret).assert_error(403, "totp_not_activated");
    panel
        .json(
            "POST",
            "/api/user/auth/login-with-backup",
            None,
            &json!({ "email": account.email, "backup_code": account.backup_codes[0] }),
        )
        .assert_error(403, "totp_not_activated");
    let token = panel.setup_token(&account.email);
    let secret = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirm = panel.json(
        "POST",
        &format!("/api/user/auth/setup/{token}/confirm"),
        None,
        &json!({ "totp_code": panel.next_code(&secret) }),
    );
    assert_eq!(confirm.status, 200, "{}", confirm.text());
    assert_eq!(panel.login(&account.email, &secret).status, 200);
    let users = panel.admin("GET", "/admin/api/admin/users", None).json();
    assert_eq!(users["users"][0]["totp_required"], true);

    // Removing the requirement clears the flag only.
    let id = user_id(&panel, &confirm.session().unwrap());
    let reply = panel.admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "user_id": id, "required": false })));
    assert_eq!(
        (reply.json()["totp_required"].as_bool(), reply.json()["sessions_revoked"].as_u64()),
        (Some(false), Some(0))
    );
    panel
        .admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "key": "plk_x", "required": true })))
        .assert_error(400, "bad_request");
    panel
        .admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "key": "pgp_unknown", "required": true })))
        .assert_error(404, "not_found");
    panel
        .admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "user_id": id, "required": "yes" })))
        .assert_error(400, "bad_request");
}

#[test]
fn the_totp_requirement_toggle_is_limited_to_20_per_day() {
    let panel = Panel::start();
    let account = panel.signed_up("toggle@example.com");
    let id = user_id(&panel, &account.session);
    for i in 0..20 {
        let reply =
            panel.admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "user_id": id, "required": false })));
        assert_eq!(reply.status, 200, "toggle {i}: {}", reply.text());
    }
    panel
        .admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "user_id": id, "required": true })))
        .assert_error(429, "rate_limited");
    assert_eq!(panel.admin("GET", "/admin/api/admin/users", None).json()["users"][0]["totp_required"], false);
}

/// Re-walks an RFC 9162 inclusion proof (`audit_path` of `{hash, position}`) with SHA3-256.
fn root_from(leaf_hash: &str, path: &[Value]) -> String {
    use sha3::Digest as _;
    let mut node = hex::decode(leaf_hash).unwrap();
    for step in path {
        let sibling = hex::decode(step["hash"].as_str().unwrap()).unwrap();
        let mut hasher = sha3::Sha3_256::new();
        hasher.update([1u8]);
        if step["position"] == "left" {
            hasher.update(&sibling);
            hasher.update(&node);
        } else {
            hasher.update(&node);
            hasher.update(&sibling);
        }
        node = hasher.finalize().to_vec();
    }
    hex::encode(node)
}

#[test]
fn every_admin_action_is_a_log_leaf_with_an_inclusion_proof_and_no_email() {
    let panel = Panel::start();
    let account = panel.signed_up("audited@example.com");
    panel.admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "key": account.api_key, "required": true })));
    panel.admin("POST", "/admin/api/admin/keys", Some(&json!({ "plan": "community" })));
    let audit = panel.admin("GET", "/admin/api/admin/audit", None);
    let text = audit.text();
    assert!(!text.contains("audited@example.com"), "no email in the audit view");
    let events = audit.json()["events"].as_array().unwrap().clone();
    let admin_events: Vec<&Value> = events.iter().filter(|e| e["actor"] == "admin").collect();
    let actions: Vec<&str> = admin_events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["admin_key_created", "admin_totp_required_toggled"]);
    for event in admin_events {
        let leaf_hash = event["leaf_hash"].as_str().unwrap();
        let proof = &event["proof"];
        assert_eq!(proof["proof"]["leaf_hash"], leaf_hash);
        let root = root_from(leaf_hash, proof["proof"]["audit_path"].as_array().unwrap());
        assert_eq!(root, proof["sth"]["sha3_root"].as_str().unwrap(), "the proof leads to the signed root");
        assert_eq!(event["subject"].as_str().unwrap().len(), 64);
    }
    // The log's public entries hold the same leaves, with a salted subject, never the email.
    let log = panel.admin("GET", "/admin/api/admin/audit", None);
    assert!(!log.text().contains(&account.api_key));
}

#[test]
fn without_a_sector_log_admin_actions_are_refused_and_nothing_changes() {
    let panel = Panel::without_log();
    let account = panel.signed_up("nolog@example.com");
    panel
        .admin("POST", "/admin/api/admin/force-totp", Some(&json!({ "key": account.api_key, "required": true })))
        .assert_error(503, "audit_log_unavailable");
    assert_eq!(panel.get("/api/user/account", Some(&account.session)).status, 200);
    panel
        .admin("POST", "/admin/api/admin/keys", Some(&json!({ "plan": "community" })))
        .assert_error(503, "audit_log_unavailable");
}

#[test]
fn the_internal_totp_api_keeps_its_documented_behaviour() {
    let panel = Panel::start();
    panel.json("POST", "/api/user/signup", None, &json!({ "email": "internal@example.com" }));
    let id =
        panel.admin("GET", "/admin/api/admin/users", None).json()["users"][0]["user_id"].as_str().unwrap().to_owned();
    let wrong = call(
        &format!("{}/v2/user/setup-totp", panel.internal),
        "POST",
        &[("x-internal-auth", "pai_wrong")],
        Some(b"{}".to_vec()),
    )
    .unwrap();
    wrong.assert_error(401, "unauthorized");

    let first = panel.internal("/v2/user/setup-totp", &json!({ "user_id": id, "provisional": true })).json();
    let again = panel.internal("/v2/user/setup-totp", &json!({ "user_id": id })).json();
    assert_eq!(first["secret"], again["secret"], "idempotent while provisional");
    let provisional = panel.internal("/v2/user/get-totp-provisional", &json!({ "user_id": id })).json();
    assert_eq!((provisional["exists"].as_bool(), &provisional["secret"]), (Some(true), &first["secret"]));
    let codes = panel.internal("/v2/user/get-backup-codes-plaintext", &json!({ "user_id": id })).json();
    assert_eq!(codes["backup_codes"], first["backup_codes"]);

    let secret = first["secret"].as_str().unwrap();
    // Activation needs a valid code (the reference activated without one).
    panel.internal("/v2/user/activate-totp", &json!({ "user_id": id })).assert_error(400, "bad_request");
    panel
        .internal("/v2/user/activate-totp", &json!({ "user_id": id, "totp_code": "000000" }))
        .assert_error(401, "invalid_totp_code");
    let reply =
        panel.internal("/v2/user/activate-totp", &json!({ "user_id": id, "totp_code": panel.next_code(secret) }));
    assert_eq!(reply.status, 200, "{}", reply.text());
    panel.internal("/v2/user/setup-totp", &json!({ "user_id": id })).assert_error(409, "totp_already_configured");
    assert_eq!(panel.internal("/v2/user/get-totp-provisional", &json!({ "user_id": id })).json()["exists"], false);
    panel.internal("/v2/user/get-backup-codes-plaintext", &json!({ "user_id": id })).assert_error(404, "not_found");

    let code = panel.next_code(secret);
    assert_eq!(
        panel.internal("/v2/user/verify-totp", &json!({ "user_id": id, "totp_code": code })).json()["valid"],
        true
    );
    assert_eq!(
        panel.internal("/v2/user/verify-totp", &json!({ "user_id": id, "totp_code": code })).json()["valid"],
        false
    );

    let regenerated = panel.internal("/v2/user/regenerate-backup", &json!({ "user_id": id })).json();
    let code = regenerated["backup_codes"][0].as_str().unwrap();
    assert_eq!(
        panel.internal("/v2/user/consume-backup", &json!({ "user_id": id, "code": code })).json()["valid"],
        true
    );
    assert_eq!(
        panel.internal("/v2/user/consume-backup", &json!({ "user_id": id, "code": code })).json()["valid"],
        false
    );
    assert_eq!(panel.internal("/v2/user/delete-totp", &json!({ "user_id": id })).status, 200);
    panel
        .internal("/v2/user/verify-totp", &json!({ "user_id": id, "totp_code": "123456" }))
        .assert_error(404, "not_found");
    panel.internal("/v2/user/setup-totp", &json!({ "user_id": "usr_nobody" })).assert_error(404, "not_found");
}

#[test]
fn the_relay_reports_user_totp_available_when_it_has_an_accounts_panel() {
    let panel = Panel::start();
    let caps = call(&format!("{}/v2/auth/capabilities", panel.relay_url), "GET", &[], None).unwrap().json();
    assert_eq!(caps["user_totp_available"], true);
    assert!(caps["user_accounts_url"].is_string());
}

#[test]
fn the_license_section_is_the_verified_status() {
    // No [license] table: Community Edition (tests/license.rs covers licenses and the cap).
    let panel = Panel::start();
    let license = panel.admin("GET", "/admin/api/admin/license", None).json();
    assert_eq!(license["available"], true);
    let status = &license["license"];
    assert_eq!((status["edition"].as_str(), status["max_users"].as_u64()), (Some("community"), Some(5)), "{status}");
    assert_eq!(status["users"].as_u64(), Some(0));
    assert_eq!(panel.request("GET", "/admin/api/admin/license", &[], None).status, 401);
}
