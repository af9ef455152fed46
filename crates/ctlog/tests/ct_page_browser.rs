//! The /ct/ page in a real browser (headless Chromium driven over the W3C WebDriver protocol by
//! chromedriver): an honest log shows valid; a tampered inclusion proof, a tampered root, a bad
//! signature and a changed key each show invalid. The tampering happens in a small proxy in
//! this test between the browser and the real `paramant-ctlog` binary, never in the product.
//! The page is served with its strict CSP, so a valid verdict also proves the page works under
//! it. Needs `chromium` and `chromium-driver` (`.ci/run` installs them).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// What the proxy does to the log's answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Honest,
    /// Flips a bit of the first audit-path hash of every inclusion proof.
    TamperProof,
    /// Replaces the newest STH's root in the feed.
    TamperRoot,
    /// Flips a bit of the newest STH's signature in the feed.
    BadSignature,
    /// Serves a different log (another key) under the same origin.
    OtherLog,
}

struct Proxy {
    url: String,
    mode: Arc<Mutex<Mode>>,
}

impl Proxy {
    fn start(honest: String, other: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(Mode::Honest));
        let shared = mode.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mode = *shared.lock().unwrap();
                let upstream = if mode == Mode::OtherLog { other.clone() } else { honest.clone() };
                std::thread::spawn(move || serve(stream, &upstream, mode));
            }
        });
        Proxy { url, mode }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// One request per connection (`Connection: close`): forward a GET, maybe tamper, answer.
fn serve(stream: TcpStream, upstream: &str, mode: Mode) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut response = agent().get(&format!("{upstream}{path}")).call().unwrap();
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, csp) = (header("content-type").unwrap_or_default(), header("content-security-policy"));
    let mut body = response.body_mut().read_to_vec().unwrap();
    if let Some(tampered) = tamper(mode, &path, &body) {
        body = tampered;
    }
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n", body.len());
    if let Some(csp) = csp {
        head += &format!("Content-Security-Policy: {csp}\r\n");
    }
    head += "Connection: close\r\n\r\n";
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
}

fn flip_hex(s: &str) -> String {
    let first = if s.starts_with('0') { "1" } else { "0" };
    format!("{first}{}", &s[1..])
}

fn tamper(mode: Mode, path: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    match mode {
        Mode::TamperProof if path.starts_with("/v2/ct/proof") => {
            // A self-consistent forgery: the changed path, and the root it leads to stated as
            // the proof's root and its STH's root. Only a check against the signed root fails.
            let hash = json["audit_path"][0]["hash"].as_str()?.to_owned();
            json["audit_path"][0]["hash"] = flip_hex(&hash).into();
            let path: Vec<[u8; 32]> = json["audit_path"].as_array()?.iter().map(|p| hex32(&p["hash"])).collect();
            let (index, size) = (json["leaf_index"].as_u64()?, json["tree_size"].as_u64()?);
            let forged =
                tlog::root_from_inclusion::<tlog::Sha3_256>(index, size, &hex32(&json["leaf_hash"]), &path).ok()?;
            json["root"] = hex::encode(forged).into();
            json["sth"]["sha3_root"] = hex::encode(forged).into();
        }
        Mode::TamperRoot if path.starts_with("/ct/feed") => {
            let root = flip_hex(json["sth"]["sha3_root"].as_str()?);
            json["sth"]["sha3_root"] = root.clone().into();
            json["root"] = root.into();
        }
        Mode::BadSignature if path.starts_with("/ct/feed") => {
            let sig = json["sth"]["signature"].as_str()?;
            let flipped = if sig.starts_with('A') { "B" } else { "A" };
            json["sth"]["signature"] = format!("{flipped}{}", &sig[1..]).into();
        }
        _ => return None,
    }
    Some(serde_json::to_vec(&json).unwrap())
}

/// chromedriver and one headless Chromium session.
struct Browser {
    driver: Child,
    base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver; .ci/run does)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(try_get(&format!("{base}/status")), Ok((200, ref body)) if body.contains("\"ready\":true")) {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args },
        }}});
        let (status, session) = post(&format!("{base}/session"), &capabilities, None);
        assert_eq!(status, 200, "new session: {session}");
        let id = session["value"]["sessionId"].as_str().unwrap();
        let browser = Browser { driver, base: format!("{base}/session/{id}"), _profile: profile };
        browser.call("/timeouts", json!({ "script": 60_000, "pageLoad": 60_000 }));
        browser
    }

    fn call(&self, path: &str, body: Value) -> Value {
        let (status, answer) = post(&format!("{}{path}", self.base), &body, None);
        assert_eq!(status, 200, "{path}: {answer}");
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("/url", json!({ "url": url }));
    }

    /// Runs `script` (which calls `done(result)` when finished) and returns the result.
    fn run(&self, script: &str) -> Value {
        let wrapped = format!("const done = arguments[arguments.length - 1];\n{WAIT_FOR}\n{script}");
        self.call("/execute/async", json!({ "script": wrapped, "args": [] }))
    }

    /// The page's verdicts once its current check has finished.
    fn verdict(&self) -> Value {
        self.run("waitFor(document.getElementById('status'), () => done(summary()));")
    }

    /// Clicks "refresh now" and returns the verdicts once that check has finished.
    fn refresh(&self) -> Value {
        self.run("document.getElementById('refresh').click(); waitFor(document.getElementById('status'), () => done(summary()));")
    }

    /// Clicks the first entry's verify button and returns that entry's verdict.
    fn verify_first_entry(&self) -> String {
        let verdict = self.run(
            "const button = document.querySelector('button[data-index]'); const out = button.parentElement.querySelector('.proof');
             button.click(); waitFor(out, () => done(out.dataset.state + ': ' + out.textContent));",
        );
        verdict.as_str().unwrap().to_owned()
    }
}

/// Page helpers for the scripts: wait until an element's check is no longer pending (driven by
/// DOM mutations, not timers), and the verdicts the page shows.
const WAIT_FOR: &str = r##"
function waitFor(el, then) {
  const finished = () => el.dataset.state && el.dataset.state !== "pending";
  if (finished()) return then();
  const observer = new MutationObserver(() => { if (finished()) { observer.disconnect(); then(); } });
  observer.observe(el, { attributes: true, childList: true, characterData: true, subtree: true });
}
function summary() {
  const $ = (id) => document.getElementById(id);
  return { status: $("status").dataset.state, text: $("status").textContent, sth: $("sth-state").dataset.state,
           consistency: $("consistency").dataset.state, key_warning: !$("keywarn").hidden,
           entries: document.querySelectorAll("#entries tr").length, history: document.querySelectorAll("#sths tr").length,
           chart: document.querySelectorAll("#chart polyline").length };
}
"##;

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = agent().delete(&self.base).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_ct_page_shows_an_honest_log_valid_and_every_tampering_invalid() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let log = Log::configure(dir_a.path(), "health.example", "").start();
    let other = Log::configure(dir_b.path(), "health.example", "").start();
    for n in 0..5 {
        log.append_transfer(&blob_hash(n));
        other.append_transfer(&blob_hash(n));
    }
    let proxy = Proxy::start(log.public.clone(), other.public.clone());
    let browser = Browser::start();
    let page = format!("{}/ct/", proxy.url);

    // Honest: the signature verifies against the key pinned now; entries verify.
    browser.open(&page);
    let honest = browser.verdict();
    assert_eq!(honest["status"], "valid", "{honest}");
    assert_eq!(honest["sth"], "valid");
    assert_eq!(honest["key_warning"], false);
    assert_eq!(honest["entries"], 5);
    assert_eq!(honest["chart"], 1, "the tree-size chart is drawn");
    assert!(browser.verify_first_entry().starts_with("valid"));

    // The log grows: the refresh checks a consistency proof from the head verified before.
    for n in 5..9 {
        log.append_transfer(&blob_hash(n));
    }
    let grown = browser.refresh();
    assert_eq!(grown["status"], "valid", "{grown}");
    assert_eq!(grown["consistency"], "valid", "{grown}");
    assert_eq!(grown["entries"], 9);

    proxy.set(Mode::TamperProof);
    let proof = browser.verify_first_entry();
    assert!(proof.starts_with("invalid"), "a tampered proof: {proof}");

    proxy.set(Mode::TamperRoot);
    browser.open(&page);
    let root = browser.verdict();
    assert_eq!((root["status"].as_str(), root["sth"].as_str()), (Some("invalid"), Some("invalid")), "{root}");

    proxy.set(Mode::BadSignature);
    browser.open(&page);
    let signature = browser.verdict();
    assert_eq!(
        (signature["status"].as_str(), signature["sth"].as_str()),
        (Some("invalid"), Some("invalid")),
        "{signature}"
    );

    proxy.set(Mode::Honest);
    browser.open(&page);
    let again = browser.verdict();
    assert_eq!(again["status"], "valid", "honest again after tampering: {again}");
    assert_eq!(again["consistency"], "valid", "{again}");

    proxy.set(Mode::OtherLog);
    browser.open(&page);
    let changed = browser.verdict();
    assert_eq!(changed["status"], "invalid", "a changed key: {changed}");
    assert_eq!(changed["key_warning"], true, "the key-change alarm is shown: {changed}");
}

#[test]
fn the_page_and_its_assets_are_small_and_served_under_a_strict_csp() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    let mut total = 0;
    for path in ["/ct/", "/ct/ui.js", "/ct/ui.css", "/ct/noble.js"] {
        let mut response = agent().get(&format!("{}{path}", log.public)).call().unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let csp = response.headers().get("content-security-policy").unwrap().to_str().unwrap().to_owned();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let mut body = Vec::new();
        response.body_mut().as_reader().read_to_end(&mut body).unwrap();
        total += body.len();
        let text = String::from_utf8(body).unwrap();
        for outside in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "fetch(\"http"] {
            assert!(!text.contains(outside), "{path} loads nothing from elsewhere");
        }
    }
    assert!(total < 200 * 1024, "page + scripts + styles are {total} bytes");
}
