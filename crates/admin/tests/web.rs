//! The web panel's protections against the real binary: the strict CSP on every answer, and
//! CSRF tokens on every form (a POST without a matching token changes nothing).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::Panel;

/// (csrf cookie, form token) from a page.
fn csrf(panel: &Panel, path: &str) -> (String, String) {
    let page = panel.get(path, None);
    assert_eq!(page.status, 200);
    let cookie = page.header("set-cookie").unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = page.text();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    (cookie, html[at..at + 64].to_owned())
}

#[test]
fn every_page_has_a_strict_csp_and_no_inline_code() {
    let panel = Panel::start();
    for path in ["/", "/signup", "/login", "/login/backup", "/admin", "/static/panel.css", "/api/user/account"] {
        let reply = panel.get(path, None);
        let csp = reply.header("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(reply.header("x-frame-options").as_deref(), Some("DENY"));
        let text = reply.text();
        assert!(!text.contains("<script") && !text.contains(" style=") && !text.contains("://cdn"), "{path}");
    }
}

#[test]
fn a_form_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let panel = Panel::start();
    let (cookie, token) = csrf(&panel, "/signup");
    let form = |cookie: Option<&str>, body: String| {
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if let Some(cookie) = cookie {
            headers.push(("cookie", cookie));
        }
        panel.request("POST", "/signup", &headers, Some(body.into_bytes()))
    };
    assert_eq!(form(Some(&cookie), "email=a%40example.com".into()).status, 403);
    assert_eq!(form(None, format!("email=a%40example.com&csrf={token}")).status, 403);
    let (other_cookie, _) = csrf(&panel, "/signup");
    assert_eq!(form(Some(&other_cookie), format!("email=a%40example.com&csrf={token}")).status, 403);
    assert!(panel.mails().is_empty(), "no refused form sent a mail");
    let ok = form(Some(&cookie), format!("email=a%40example.com&csrf={token}"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(panel.mails().len(), 1);
    // The admin's forms too: a sign-in without the token is refused before the token is checked.
    let reply = panel.request(
        "POST",
        "/admin/enroll",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(format!("token={}", panel.admin_token()).into_bytes()),
    );
    assert_eq!(reply.status, 403);
}
