//! Test harness: one sector — its log and its relay, in-process — and the real
//! `paramant-admin` binary as a child process, on free loopback ports in a temp directory.
//!
//! Why the log and the relay run in-process: Cargo sets `CARGO_BIN_EXE_*` only for the binaries
//! of the package under test. `ctlog::open/bind/serve` and `relay::open/bind/serve` are the code
//! their binaries run, minus the sandbox (which would bind the test's own thread). The admin
//! service — the subject of these tests — always runs as the real binary.
//!
//! Time: the admin reads a clock offset from a file (`danger_clock_offset_file`); [`Panel::advance`]
//! moves it, so TOTP steps, session ages and setup-link expiry are tested without sleeping.
#![allow(dead_code, clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub const ADMIN_BIN: &str = env!("CARGO_BIN_EXE_paramant-admin");
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running sector plus the admin panel.
pub struct Panel {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub internal: String,
    pub relay_internal: String,
    pub relay_url: String,
    admin: Option<Child>,
    offset: AtomicI64,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Panel {
    fn drop(&mut self) {
        if let Some(mut child) = self.admin.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Panel {
    pub fn start() -> Panel {
        Panel::with_config("")
    }

    /// A panel whose config gets `extra` TOML appended (`[limits]`, `[sessions]`, …).
    pub fn with_config(extra: &str) -> Panel {
        Panel::build(extra, true, "")
    }

    /// A panel without a sector log (admin actions must be refused).
    pub fn without_log() -> Panel {
        Panel::build("", false, "")
    }

    /// A panel whose config gets `admin_extra` and whose relay's config gets `relay_extra`
    /// (each a `[license]` table, say).
    pub fn with_configs(admin_extra: &str, relay_extra: &str) -> Panel {
        Panel::build(admin_extra, true, relay_extra)
    }

    fn build(extra: &str, with_log: bool, relay_extra: &str) -> Panel {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let log = ctlog::testkit::start_in_process(&runtime, dir.path());
        let (log_internal, log_public) = (log.internal_url, log.public_url);
        let (relay_url, relay_internal) = start_relay(&runtime, dir.path(), &log_internal, &log_public, relay_extra);
        std::fs::write(dir.path().join("clock-offset"), "0").unwrap();
        let mut panel = Panel {
            url: String::new(),
            internal: String::new(),
            relay_internal,
            relay_url,
            admin: None,
            offset: AtomicI64::new(0),
            runtime: Some(runtime),
            dir,
        };
        for _ in 0..5 {
            let (public, internal) = (free_port(), free_port());
            let log = if with_log {
                format!(
                    "[ctlog]\ninternal_url = \"{log_internal}\"\ntoken_file = \"{}\"\n",
                    panel.dir.path().join("ctlog-state/internal-token").display()
                )
            } else {
                String::new()
            };
            let config = format!(
                "public_listen = \"127.0.0.1:{public}\"\ninternal_listen = \"127.0.0.1:{internal}\"\n\
                 state_dir = \"{state}\"\ndanger_clock_offset_file = \"{clock}\"\n{extra}\n\
                 [sandbox]\nlandlock = \"best-effort\"\n\
                 [[relays]]\nsector = \"relay\"\ninternal_url = \"{relay}\"\ntoken_file = \"{relay_token}\"\n{log}",
                state = panel.state_dir().display(),
                clock = panel.dir.path().join("clock-offset").display(),
                relay = panel.relay_internal,
                relay_token = panel.dir.path().join("relay-state/internal-token").display(),
            );
            let path = panel.dir.path().join("admin.toml");
            std::fs::write(&path, config).unwrap();
            panel.url = format!("http://127.0.0.1:{public}");
            panel.internal = format!("http://127.0.0.1:{internal}");
            match panel.spawn(&path) {
                Ok(()) => return panel,
                Err(stderr) if stderr.contains("cannot listen") => continue,
                Err(stderr) => panic!("paramant-admin did not start:\n{stderr}"),
            }
        }
        panic!("no free ports for the admin after 5 tries");
    }

    fn spawn(&mut self, config: &Path) -> Result<(), String> {
        let stderr = std::fs::File::create(self.dir.path().join("admin.stderr")).unwrap();
        let child = Command::new(ADMIN_BIN)
            .args(["run", "--config"])
            .arg(config)
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.admin = Some(child);
        let started = Instant::now();
        loop {
            if call(&format!("{}/health", self.url), "GET", &[], None).is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if let Some(status) = self.admin.as_mut().unwrap().try_wait().unwrap() {
                self.admin = None;
                return Err(format!("exited with {status}: {}", self.stderr()));
            }
            assert!(started.elapsed() < DEADLINE, "paramant-admin did not become ready:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the admin (SIGKILL: a crash) and starts it again with the same state.
    pub fn restart(&mut self) {
        let mut child = self.admin.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let path = self.dir.path().join("admin.toml");
        self.spawn(&path).unwrap();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin.stderr")).unwrap_or_default()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("admin-state")
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("admin-token")).unwrap().trim().to_owned()
    }

    pub fn internal_token(&self) -> String {
        std::fs::read_to_string(self.state_dir().join("admin-internal-token")).unwrap().trim().to_owned()
    }

    pub fn relay_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("relay-state/internal-token")).unwrap().trim().to_owned()
    }

    /// Moves the service's clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        let offset = self.offset.fetch_add(secs, Ordering::SeqCst) + secs;
        std::fs::write(self.dir.path().join("clock-offset"), offset.to_string()).unwrap();
    }

    /// The service's current time, seconds.
    pub fn now_secs(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        wall.saturating_add_signed(self.offset.load(Ordering::SeqCst))
    }

    /// The TOTP code of `secret` at the service's current time plus `step_offset` steps.
    pub fn code(&self, secret: &str, step_offset: i64) -> String {
        code_at(secret, self.now_secs().saturating_add_signed(step_offset * 30))
    }

    /// Moves to the next 30 s step and gives its code (each step is accepted once).
    pub fn next_code(&self, secret: &str) -> String {
        self.advance(30);
        self.code(secret, 0)
    }

    /// Mails in the outbox, oldest first.
    pub fn mails(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.state_dir().join("outbox")) else { return Vec::new() };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }

    /// The setup token of the newest mail to `email`.
    pub fn setup_token(&self, email: &str) -> String {
        let mail = self
            .mails()
            .into_iter()
            .rev()
            .find(|m| m.contains(&format!("To: {email}")))
            .expect("a mail to the address");
        let at = mail.find("/auth/setup/").expect("a setup link") + "/auth/setup/".len();
        mail[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        call(&format!("{}{path}", self.url), method, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// JSON request, with the session cookie when given.
    pub fn json(&self, method: &str, path: &str, session: Option<&str>, body: &Value) -> Reply {
        let cookie = session.map(|s| format!("paramant_user_session={s}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(cookie) = &cookie {
            headers.push(("cookie", cookie));
        }
        self.request(method, path, &headers, Some(serde_json::to_vec(body).unwrap()))
    }

    pub fn get(&self, path: &str, session: Option<&str>) -> Reply {
        let cookie = session.map(|s| format!("paramant_user_session={s}"));
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        self.request("GET", path, &headers, None)
    }

    /// An admin API call with the right token.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let token = self.admin_token();
        let mut headers = vec![("x-admin-token", token.as_str()), ("content-type", "application/json")];
        if body.is_none() {
            headers.pop();
        }
        self.request(method, path, &headers, body.map(|b| serde_json::to_vec(b).unwrap()))
    }

    /// An internal API call with the right token.
    pub fn internal(&self, path: &str, body: &Value) -> Reply {
        let token = self.internal_token();
        call(
            &format!("{}{path}", self.internal),
            "POST",
            &[("x-internal-auth", &token), ("content-type", "application/json")],
            Some(serde_json::to_vec(body).unwrap()),
        )
        .unwrap()
    }

    /// Whether the relay accepts `key` (its public `/v2/check-key`).
    pub fn relay_accepts(&self, key: &str) -> bool {
        let reply = call(&format!("{}/v2/check-key", self.relay_url), "GET", &[("x-api-key", key)], None).unwrap();
        reply.json()["valid"] == true
    }

    /// Sign-up → setup → confirm: an active account. Returns (session, secret, api key,
    /// backup codes).
    pub fn signed_up(&self, email: &str) -> Account {
        let reply = self.json("POST", "/api/user/signup", None, &json!({ "email": email }));
        assert_eq!(reply.status, 200, "signup: {}", reply.text());
        let token = self.setup_token(email);
        let setup = self.json("POST", &format!("/api/user/auth/setup/{token}"), None, &json!({}));
        assert_eq!(setup.status, 200, "setup: {}", setup.text());
        let setup = setup.json();
        let secret = setup["secret"].as_str().unwrap().to_owned();
        let codes: Vec<String> =
            setup["backup_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        let confirm = self.json(
            "POST",
            &format!("/api/user/auth/setup/{token}/confirm"),
            None,
            &json!({ "totp_code": self.next_code(&secret) }),
        );
        assert_eq!(confirm.status, 200, "confirm: {}", confirm.text());
        let session = confirm.session().expect("a session cookie");
        let api_key = confirm.json()["api_key"].as_str().unwrap().to_owned();
        Account { email: email.to_owned(), session, secret, api_key, backup_codes: codes }
    }

    /// Logs in with TOTP (next step); the session.
    pub fn login(&self, email: &str, secret: &str) -> Reply {
        self.json("POST", "/api/user/auth/login", None, &json!({ "email": email, "totp_code": self.next_code(secret) }))
    }
}

/// An active account as a test holds it.
pub struct Account {
    pub email: String,
    pub session: String,
    pub secret: String,
    pub api_key: String,
    pub backup_codes: Vec<String>,
}

/// The code of `secret` (Base32) at `time`.
pub fn code_at(secret: &str, time: u64) -> String {
    let bytes = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(bytes)
        .build()
        .unwrap();
    totp.generate(time).to_string()
}

fn start_relay(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    log_internal: &str,
    log_public: &str,
    extra: &str,
) -> (String, String) {
    for _ in 0..5 {
        let (public_port, internal_port) = (free_port(), free_port());
        let text = format!(
            "sector = \"relay\"\npublic_listen = \"127.0.0.1:{public_port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n\
             state_dir = \"{state}\"\nuser_accounts_url = \"http://127.0.0.1:1\"\n\
             [ctlog]\ninternal_url = \"{log_internal}\"\npublic_url = \"{log_public}\"\ntoken_file = \"{token}\"\n{extra}\n",
            state = dir.join("relay-state").display(),
            token = dir.join("ctlog-state/internal-token").display(),
        );
        let path = dir.join("relay.toml");
        std::fs::write(&path, text).unwrap();
        let config = relay::config::Config::load(&path).unwrap();
        let opened = relay::open(config).unwrap();
        let Ok(listeners) = relay::bind(&opened.config) else { continue };
        runtime.spawn(async move {
            if let Err(e) = relay::serve(opened, harden::testkit::unsandboxed(), listeners).await {
                eprintln!("in-process relay stopped: {e:#}");
            }
        });
        return (format!("http://127.0.0.1:{public_port}"), format!("http://127.0.0.1:{internal_port}"));
    }
    panic!("no free ports for the relay after 5 tries");
}

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("non-JSON answer ({}): {}", self.status, self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.text())).to_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }

    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.error()), (status, code.to_owned()), "answer: {}", self.text());
    }

    /// The `paramant_user_session` token this answer sets, if any.
    pub fn session(&self) -> Option<String> {
        self.headers.get_all("set-cookie").iter().find_map(|v| {
            let v = v.to_str().unwrap();
            let value = v.strip_prefix("paramant_user_session=")?.split(';').next()?;
            (!value.is_empty()).then(|| value.to_owned())
        })
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(DEADLINE)).build().into()
}

pub fn call(url: &str, method: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Result<Reply, ureq::Error> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let agent = agent();
    let mut response = match body {
        Some(body) => agent.run(builder.body(body).unwrap())?,
        None => agent.run(builder.body(()).unwrap())?,
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().with_config().limit(16 << 20).read_to_vec()?;
    Ok(Reply { status, headers, body })
}

/// A JSON POST from the loopback address `source` (e.g. `[127, 0, 1, 1]`: another client
/// network than the tests' 127.0.0.1): (status, error code or "").
pub fn post_from(panel: &Panel, source: [u8; 4], path: &str, body: &Value) -> (u16, String) {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let port: u16 = panel.url.rsplit(':').next().unwrap().parse().unwrap();
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    let [a, b, c, d] = source;
    bind(fd.as_raw_fd(), &SockaddrIn::new(a, b, c, d, 0)).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    let mut stream = std::net::TcpStream::from(fd);
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = serde_json::to_vec(body).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let json = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    let code = serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}
