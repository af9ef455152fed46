//! The account flow against the real binary: sign-up → setup → confirm → login → account, and
//! the sensitive actions.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{Panel, code_at};
use serde_json::json;

#[test]
fn signup_setup_confirm_login_and_account_work_end_to_end() {
    let panel = Panel::start();
    let reply = panel.json("POST", "/api/user/signup", None, &json!({ "email": "Jane@Example.com" }));
    assert_eq!((reply.status, reply.json()), (200, json!({ "ok": true })));
    let token = panel.setup_token("jane@example.com");

    // Setup is idempotent while provisional: the same secret and backup codes.
    let first = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json();
    let again = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json();
    assert_eq!(first, again);
    let secret = first["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert!(first["otpauth"].as_str().unwrap().contains("algorithm=SHA1&digits=6&period=30"));
    assert_eq!(first["backup_codes"].as_array().unwrap().len(), 10);

    let confirm = panel.json(
        "POST",
        &format!("/api/user/auth/setup/{token}/confirm"),
        None,
        &json!({ "totp_code": panel.next_code(secret) }),
    );
    assert_eq!(confirm.status, 200, "{}", confirm.text());
    let cookie = confirm.header("set-cookie").unwrap();
    assert!(cookie.starts_with("paramant_user_session=pus_"), "{cookie}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let api_key = confirm.json()["api_key"].as_str().unwrap().to_owned();
    assert!(api_key.starts_with("pgp_"));
    assert!(panel.relay_accepts(&api_key), "the relay knows the account's key");

    // The setup link is consumed; setup again says so.
    panel
        .json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({}))
        .assert_error(401, "invalid_or_expired_token");

    let login = panel.login("jane@example.com", secret);
    assert_eq!((login.status, login.json()), (200, json!({ "ok": true })));
    let session = login.session().unwrap();
    let verify = panel.get("/api/user/session/verify", Some(&session)).json();
    assert_eq!(verify["email"], "jane@example.com");
    assert!(verify["user_id"].as_str().unwrap().starts_with("usr_"));

    let account = panel.get("/api/user/account", Some(&session));
    assert_eq!(account.header("cache-control").as_deref(), Some("no-store"));
    let account = account.json();
    assert_eq!(account["email"], "jane@example.com");
    assert_eq!(account["plan"], "community");
    assert_eq!(account["totp_active"], true);
    assert_eq!(account["backup_codes_remaining"], 10);
    assert_eq!(account["sessions"].as_array().unwrap().len(), 2);
    let masked = account["api_key_masked"].as_str().unwrap();
    assert!(masked.starts_with(&api_key[..8]) && masked.ends_with(&api_key[api_key.len() - 4..]));
    assert!(!account.to_string().contains(&api_key), "the account view never shows the key");

    // Logout ends the session.
    let logout = panel.json("POST", "/api/user/auth/logout", Some(&session), &json!({}));
    assert_eq!(logout.status, 200);
    panel.get("/api/user/session/verify", Some(&session)).assert_error(401, "unauthorized");
}

#[test]
fn signing_up_twice_with_an_active_account_is_a_conflict() {
    let panel = Panel::start();
    panel.signed_up("dup@example.com");
    panel
        .json("POST", "/api/user/signup", None, &json!({ "email": "DUP@example.com" }))
        .assert_error(409, "email_already_registered");
    // A provisional account gets a fresh link; the old one dies.
    panel.json("POST", "/api/user/signup", None, &json!({ "email": "later@example.com" }));
    let old = panel.setup_token("later@example.com");
    assert_eq!(panel.json("POST", "/api/user/signup", None, &json!({ "email": "later@example.com" })).status, 200);
    let new = panel.setup_token("later@example.com");
    assert_ne!(old, new);
    panel
        .json("POST", &format!("/api/user/auth/setup/{old}"), None, &json!({}))
        .assert_error(401, "invalid_or_expired_token");
    assert_eq!(panel.json("POST", &format!("/api/user/auth/setup/{new}"), None, &json!({})).status, 200);
}

#[test]
fn sensitive_actions_need_a_fresh_code_not_only_a_session() {
    let panel = Panel::start();
    let account = panel.signed_up("step@example.com");
    let session = account.session.as_str();
    for path in
        ["/api/user/account/backup-codes/regenerate", "/api/user/account/key/rotate", "/api/user/account/totp/reset"]
    {
        panel.json("POST", path, Some(session), &json!({})).assert_error(400, "bad_request");
        panel
            .json("POST", path, Some(session), &json!({ "totp_code": "000000" }))
            .assert_error(401, "invalid_totp_code");
    }
    panel.json("DELETE", "/api/user/account", Some(session), &json!({})).assert_error(400, "bad_request");

    let regenerated = panel.json(
        "POST",
        "/api/user/account/backup-codes/regenerate",
        Some(session),
        &json!({ "totp_code": panel.next_code(&account.secret) }),
    );
    assert_eq!(regenerated.status, 200, "{}", regenerated.text());
    let new_codes = regenerated.json()["backup_codes"].as_array().unwrap().clone();
    assert_eq!(new_codes.len(), 10);
    // The old codes stopped working.
    panel
        .json(
            "POST",
            "/api/user/auth/login-with-backup",
            None,
            &json!({ "email": account.email, "backup_code": account.backup_codes[0] }),
        )
        .assert_error(401, "invalid_backup_code");

    let rotated = panel.json(
        "POST",
        "/api/user/account/key/rotate",
        Some(session),
        &json!({ "totp_code": panel.next_code(&account.secret) }),
    );
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let new_key = rotated.json()["api_key"].as_str().unwrap().to_owned();
    assert!(panel.relay_accepts(&new_key));
    assert!(!panel.relay_accepts(&account.api_key), "the old key is revoked on the relay");
}

#[test]
fn deleting_the_account_removes_every_trace_and_revokes_the_key() {
    let panel = Panel::start();
    let account = panel.signed_up("gone@example.com");
    let user_id =
        panel.get("/api/user/session/verify", Some(&account.session)).json()["user_id"].as_str().unwrap().to_owned();
    let deleted = panel.json(
        "DELETE",
        "/api/user/account",
        Some(&account.session),
        &json!({ "totp_code": panel.next_code(&account.secret) }),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert!(!panel.relay_accepts(&account.api_key));
    panel.get("/api/user/account", Some(&account.session)).assert_error(401, "unauthorized");
    panel.login(&account.email, &account.secret).assert_error(401, "invalid_totp_code");
    panel.admin("GET", &format!("/admin/api/admin/users/{user_id}"), None).assert_error(404, "not_found");
    panel.internal("/v2/user/get-totp-provisional", &json!({ "user_id": user_id })).assert_error(404, "not_found");
    // The address is free again.
    assert_eq!(panel.json("POST", "/api/user/signup", None, &json!({ "email": account.email })).status, 200);
}

#[test]
fn revoke_others_keeps_only_the_current_session() {
    let panel = Panel::start();
    let account = panel.signed_up("many@example.com");
    let second = panel.login(&account.email, &account.secret).session().unwrap();
    let third = panel.login(&account.email, &account.secret).session().unwrap();
    let reply = panel.json("POST", "/api/user/account/sessions/revoke-others", Some(&third), &json!({}));
    assert_eq!(reply.json()["revoked"], 2);
    panel.get("/api/user/account", Some(&second)).assert_error(401, "unauthorized");
    panel.get("/api/user/account", Some(&account.session)).assert_error(401, "unauthorized");
    assert_eq!(panel.get("/api/user/account", Some(&third)).status, 200);
}

#[test]
fn backup_code_login_works_once_and_relocks_the_account() {
    let panel = Panel::start();
    let account = panel.signed_up("backup@example.com");
    let typed = account.backup_codes[3].to_lowercase();
    let login = panel.json(
        "POST",
        "/api/user/auth/login-with-backup",
        None,
        &json!({ "email": account.email, "backup_code": typed }),
    );
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(login.json()["totp_reenrollment_required"], true);
    assert!(login.session().is_some());
    // Re-locked: TOTP login is refused until TOTP is enrolled again, the old secret is gone,
    // and no backup code works any more.
    panel.login(&account.email, &account.secret).assert_error(403, "totp_not_activated");
    panel
        .json(
            "POST",
            "/api/user/auth/login-with-backup",
            None,
            &json!({ "email": account.email, "backup_code": account.backup_codes[4] }),
        )
        .assert_error(403, "totp_not_activated");
    // The mailed (and returned) setup link enrolls a new secret; then login works again.
    let token = panel.setup_token(&account.email);
    let setup_url = login.json()["setup_url"].as_str().unwrap().to_owned();
    assert!(setup_url.ends_with(&token));
    let setup = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json();
    let secret = setup["secret"].as_str().unwrap();
    assert_ne!(secret, account.secret);
    let confirm = panel.json(
        "POST",
        &format!("/api/user/auth/setup/{token}/confirm"),
        None,
        &json!({ "totp_code": panel.next_code(secret) }),
    );
    assert_eq!(confirm.status, 200, "{}", confirm.text());
    assert!(confirm.json()["api_key"].is_null(), "the account keeps its key");
    assert!(panel.relay_accepts(&account.api_key));
    assert_eq!(panel.login(&account.email, secret).status, 200);
}

#[test]
fn reset_totp_mails_a_link_ends_every_session_and_blocks_login_until_reenrolled() {
    let panel = Panel::start();
    let account = panel.signed_up("reset@example.com");
    let reply = panel.json(
        "POST",
        "/api/user/account/totp/reset",
        Some(&account.session),
        &json!({ "totp_code": panel.next_code(&account.secret) }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    panel.get("/api/user/account", Some(&account.session)).assert_error(401, "unauthorized");
    panel.login(&account.email, &account.secret).assert_error(403, "totp_not_activated");
    let token = panel.setup_token(&account.email);
    let secret = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(secret, account.secret);
}

#[test]
fn billing_without_a_provider_says_so_and_cancel_works_on_our_state() {
    let panel = Panel::start();
    let account = panel.signed_up("bill@example.com");
    let s = Some(account.session.as_str());
    panel.json("POST", "/api/user/billing/checkout", s, &json!({})).assert_error(409, "billing_not_configured");
    panel.json("POST", "/api/user/billing/cancel", s, &json!({})).assert_error(409, "no_active_subscription");
    assert_eq!(panel.get("/api/user/billing/status", s).json()["billing"]["plan"], "community");

    // The admin moves the key to Professional: an active subscription, in the history.
    let users = panel.admin("GET", "/admin/api/admin/users", None).json();
    let user = &users["users"][0];
    let keys = panel.admin("GET", "/admin/api/admin/keys", None).json();
    let key_hash = keys["sectors"]["relay"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["user_id"] == user["user_id"])
        .unwrap()["key_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = panel.admin(
        "POST",
        "/admin/api/admin/keys/plan",
        Some(&json!({ "key_hash": key_hash, "plan": "professional" })),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(panel.get("/api/user/billing/status", s).json()["billing"]["subscription"], "active");
    let cancelled = panel.json("POST", "/api/user/billing/cancel", s, &json!({}));
    assert_eq!(cancelled.json()["billing"]["subscription"], "cancel_scheduled");
    let history = panel.get("/api/user/billing/history", s).json();
    let events: Vec<&str> =
        history["history"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["plan_changed", "cancellation_scheduled"]);
}

#[test]
fn a_restart_keeps_accounts_sessions_and_the_replay_guard() {
    let mut panel = Panel::start();
    let account = panel.signed_up("durable@example.com");
    let code = panel.next_code(&account.secret);
    let login = panel.json("POST", "/api/user/auth/login", None, &json!({ "email": account.email, "totp_code": code }));
    assert_eq!(login.status, 200);
    panel.restart();
    assert_eq!(panel.get("/api/user/account", Some(&account.session)).status, 200);
    // The step accepted before the crash stays used.
    panel
        .json("POST", "/api/user/auth/login", None, &json!({ "email": account.email, "totp_code": code }))
        .assert_error(401, "invalid_totp_code");
    let _ = code_at;
}
