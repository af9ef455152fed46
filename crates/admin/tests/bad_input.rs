//! Bad and hostile input against the real binary: wrong, replayed and expired codes, expired
//! and reused setup links, forged and expired cookies, oversized bodies, concurrent backup-code
//! redemption, sign-up floods, and lockout attempts by strangers. Each gets the documented 4xx,
//! changes nothing, and never a 5xx.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::sync::Barrier;

use common::{Panel, code_at, post_from};
use serde_json::json;

#[test]
fn wrong_replayed_and_expired_codes_are_refused() {
    let panel = Panel::start();
    let account = panel.signed_up("codes@example.com");
    let login = |code: &str| {
        panel.json("POST", "/api/user/auth/login", None, &json!({ "email": account.email, "totp_code": code }))
    };
    login("123456").assert_error(401, "invalid_totp_code");
    login("12345").assert_error(401, "invalid_totp_code");
    login("abcdef").assert_error(401, "invalid_totp_code");

    let code = panel.next_code(&account.secret);
    assert_eq!(login(&code).status, 200);
    login(&code).assert_error(401, "invalid_totp_code"); // replayed within its window
    // An older step than the last accepted one is refused even inside the window.
    login(&panel.code(&account.secret, -1)).assert_error(401, "invalid_totp_code");

    // A code two steps old is outside the window.
    panel.advance(90);
    login(&code_at(&account.secret, panel.now_secs() - 60)).assert_error(401, "invalid_totp_code");
    // Unknown accounts answer like a wrong code.
    panel
        .json("POST", "/api/user/auth/login", None, &json!({ "email": "nobody@example.com", "totp_code": "123456" }))
        .assert_error(401, "invalid_totp_code");
}

#[test]
fn a_provisional_account_cannot_log_in() {
    let panel = Panel::start();
    panel.json("POST", "/api/user/signup", None, &json!({ "email": "half@example.com" }));
    let token = panel.setup_token("half@example.com");
    let secret = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    panel.login("half@example.com", &secret).assert_error(403, "totp_not_activated");
}

#[test]
fn setup_links_expire_and_work_once() {
    let panel = Panel::start();
    panel.json("POST", "/api/user/signup", None, &json!({ "email": "late@example.com" }));
    let token = panel.setup_token("late@example.com");
    let secret = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // A wrong first code does not activate.
    panel
        .json("POST", &format!("/api/user/auth/setup/{token}/confirm"), None, &json!({ "totp_code": "000000" }))
        .assert_error(401, "invalid_totp_code");
    panel.advance(24 * 3600 + 60);
    let code = panel.code(&secret, 0);
    panel
        .json("POST", &format!("/api/user/auth/setup/{token}/confirm"), None, &json!({ "totp_code": code }))
        .assert_error(401, "invalid_or_expired_token");
    panel
        .json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({}))
        .assert_error(401, "invalid_or_expired_token");
    panel
        .json("POST", "/api/user/auth/setup/pst_forged", None, &json!({}))
        .assert_error(401, "invalid_or_expired_token");

    // A fresh link works once.
    panel.json("POST", "/api/user/signup", None, &json!({ "email": "late@example.com" }));
    let token = panel.setup_token("late@example.com");
    let secret = panel.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({})).json()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let confirm = |code: String| {
        panel.json("POST", &format!("/api/user/auth/setup/{token}/confirm"), None, &json!({ "totp_code": code }))
    };
    assert_eq!(confirm(panel.next_code(&secret)).status, 200);
    confirm(panel.next_code(&secret)).assert_error(401, "invalid_or_expired_token");
}

#[test]
fn forged_and_expired_cookies_are_refused() {
    let panel = Panel::with_config("[sessions]\nidle_secs = 600\nabsolute_secs = 3600\n");
    let account = panel.signed_up("cookie@example.com");
    for forged in ["pus_0000000000000000000000000000000000000000000000000000000000000000", "", "x;y", "pas_admin"] {
        panel.get("/api/user/account", Some(forged)).assert_error(401, "unauthorized");
    }
    panel.get("/api/user/account", None).assert_error(401, "unauthorized");
    // Idle: unused for longer than idle_secs.
    panel.advance(601);
    panel.get("/api/user/account", Some(&account.session)).assert_error(401, "unauthorized");
    // Absolute: used every 9 minutes, still over after an hour.
    let session = panel.login(&account.email, &account.secret).session().unwrap();
    for _ in 0..6 {
        panel.advance(540);
        assert_eq!(panel.get("/api/user/account", Some(&session)).status, 200);
    }
    panel.advance(400);
    panel.get("/api/user/account", Some(&session)).assert_error(401, "unauthorized");
}

#[test]
fn malformed_and_oversized_bodies_are_4xx() {
    let panel = Panel::start();
    let big = vec![b'a'; 64 * 1024];
    let reply = panel.request("POST", "/api/user/signup", &[("content-type", "application/json")], Some(big));
    assert_eq!(reply.status, 413, "{}", reply.text());
    panel.request("POST", "/api/user/signup", &[], Some(b"{".to_vec())).assert_error(400, "bad_request");
    panel
        .json("POST", "/api/user/signup", None, &json!({ "email": "a@b.c", "extra": 1 }))
        .assert_error(400, "bad_request");
    panel.json("POST", "/api/user/signup", None, &json!({ "email": "not-an-email" })).assert_error(400, "bad_request");
    panel
        .json("POST", "/api/user/signup", None, &json!({ "email": "a@b.c\r\nBcc: x@y.z" }))
        .assert_error(400, "bad_request");
    panel.json("POST", "/api/user/auth/login", None, &json!({ "email": "a@b.c" })).assert_error(400, "bad_request");
    // A cross-site POST to the JSON API is refused before anything happens.
    let reply = panel.request(
        "POST",
        "/api/user/signup",
        &[("content-type", "application/json"), ("origin", "https://evil.example")],
        Some(br#"{"email":"x@example.com"}"#.to_vec()),
    );
    reply.assert_error(403, "forbidden");
    assert!(panel.mails().is_empty(), "nothing was mailed");
}

#[test]
fn one_backup_code_redeemed_concurrently_wins_once() {
    let panel = Panel::start();
    let account = panel.signed_up("race@example.com");
    let code = account.backup_codes[0].clone();
    let barrier = Barrier::new(5); // 5: the per-network-and-account login limit
    let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..5)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let reply = panel.json(
                        "POST",
                        "/api/user/auth/login-with-backup",
                        None,
                        &json!({ "email": account.email, "backup_code": code }),
                    );
                    let error = if reply.status == 200 { String::new() } else { reply.error() };
                    (reply.status, error)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wins = statuses.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(wins, 1, "{statuses:?}");
    for (status, error) in statuses.iter().filter(|(s, _)| *s != 200) {
        // The losers were refused: the code was gone, or the account already re-locked.
        assert!(
            (*status == 401 && error == "invalid_backup_code") || (*status == 403 && error == "totp_not_activated"),
            "{statuses:?}"
        );
    }
}

#[test]
fn a_signup_flood_is_limited_per_network_and_per_address() {
    let panel = Panel::with_config("[limits]\nsignups_per_ip_per_hour = 4\n");
    for i in 0..4 {
        assert_eq!(
            panel.json("POST", "/api/user/signup", None, &json!({ "email": format!("f{i}@example.com") })).status,
            200
        );
    }
    let reply = panel.json("POST", "/api/user/signup", None, &json!({ "email": "f9@example.com" }));
    reply.assert_error(429, "rate_limited");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(panel.mails().len(), 4);
    // Another network is not affected; one address gets at most 3 mails a day.
    for _ in 0..3 {
        assert_eq!(post_from(&panel, [127, 0, 1, 1], "/api/user/signup", &json!({ "email": "x@example.com" })).0, 200);
    }
    assert_eq!(
        post_from(&panel, [127, 0, 2, 1], "/api/user/signup", &json!({ "email": "x@example.com" })),
        (429, "rate_limited".into())
    );
}

#[test]
fn a_stranger_guessing_codes_cannot_lock_the_owner_out() {
    let panel = Panel::start();
    let account = panel.signed_up("victim@example.com");
    // The stranger, on another network, is limited after 5 guesses for this account …
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(post_from(
            &panel,
            [127, 0, 9, 9],
            "/api/user/auth/login",
            &json!({ "email": account.email, "totp_code": "000000" }),
        ));
    }
    assert_eq!(statuses[..5], vec![(401, "invalid_totp_code".to_owned()); 5]);
    assert_eq!(statuses[5], (429, "rate_limited".to_owned()));
    // … while the owner logs in as usual.
    assert_eq!(panel.login(&account.email, &account.secret).status, 200);
}

/// A TCP connection to the panel from the loopback address `source`.
fn connect_from(panel: &Panel, source: [u8; 4]) -> std::net::TcpStream {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    use std::os::fd::AsRawFd;
    let port: u16 = panel.url.rsplit(':').next().unwrap().parse().unwrap();
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    let [a, b, c, d] = source;
    bind(fd.as_raw_fd(), &SockaddrIn::new(a, b, c, d, 0)).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    let stream = std::net::TcpStream::from(fd);
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream
}

#[test]
fn connections_beyond_the_per_address_cap_get_503_and_other_clients_are_served() {
    use std::io::{Read, Write};
    let panel = Panel::with_config("[connections]\nmax_connections_per_ip = 2\n");
    // Two idle connections from one address take its slots (accepted in order) …
    let held = [connect_from(&panel, [127, 0, 3, 3]), connect_from(&panel, [127, 0, 3, 3])];
    // … the third is answered with the canned refusal and closed, before any request.
    let mut third = connect_from(&panel, [127, 0, 3, 3]);
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"error\":\"too_many_connections\""), "{answer}");
    // Another client address is served as usual meanwhile.
    let mut other = connect_from(&panel, [127, 0, 4, 4]);
    other.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    other.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
}
