//! Test harness: one sector — its transparency log and the real `paramant-relay` binary — on
//! free loopback ports in a temp directory, and plain HTTP helpers (no SDK) to talk to it.
//!
//! Why the log runs in-process: Cargo sets `CARGO_BIN_EXE_*` only for the binaries of the
//! package under test, so `paramant-ctlog` has no such path here, and picking a binary out of
//! the target directory would test whatever stale build lies there. `ctlog::open`, `bind`,
//! `Opened::start` and `serve` are the code `paramant-ctlog run` runs, minus the landlock
//! sandbox and the capability drop (both would bind the test's own thread). The log serves on
//! a runtime of its own that dropping the [`Sector`] shuts down. The relay — the subject of
//! these tests — always runs as the real binary, as a child process.
#![allow(dead_code, clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const RELAY_BIN: &str = env!("CARGO_BIN_EXE_paramant-relay");

/// How long any wait for the services may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running sector: the log in-process and the relay as a child process.
pub struct Sector {
    pub dir: tempfile::TempDir,
    /// The relay's public origin, `http://127.0.0.1:PORT`.
    pub url: String,
    pub addr: SocketAddr,
    /// The relay's internal (admin) API origin.
    pub internal: String,
    /// The log's public origin (the relay forwards CT endpoints there).
    pub log_public: String,
    relay: Option<Child>,
    log: Option<tokio::runtime::Runtime>,
}

impl Sector {
    /// A sector with default relay limits.
    pub fn start() -> Sector {
        Sector::with_config("")
    }

    /// A sector whose relay config gets `extra` TOML tables appended (`[limits]`, `[webhook]`,
    /// `[tls]`, …).
    pub fn with_config(extra: &str) -> Sector {
        Sector::build(extra, None, None)
    }

    /// `with_config`, the relay started under `prlimit --nofile=N:N`.
    pub fn with_config_and_fd_limit(extra: &str, fd_limit: Option<u64>) -> Sector {
        Sector::build(extra, fd_limit, None)
    }

    /// As [`Sector::with_config`], with the sector log's key made from `seed` (so a test knows
    /// the log's identity before it starts).
    pub fn with_config_and_log_seed(extra: &str, seed: Option<&[u8; 32]>) -> Sector {
        Sector::build(extra, None, seed)
    }

    fn build(extra: &str, fd_limit: Option<u64>, seed: Option<&[u8; 32]>) -> Sector {
        let mut dir = tempfile::tempdir().unwrap();
        if let Some(seed) = seed {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::create_dir_all(dir.path().join("ctlog-state")).unwrap();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.path().join("ctlog-state/log-key"))
                .unwrap();
            std::io::Write::write_all(&mut file, seed).unwrap();
        }
        let (log, log_public, log_internal) = start_log(dir.path());
        // A port picked by `free_port` may be taken before the relay binds it: retry with
        // fresh ports (the relay exits at once, saying "cannot listen").
        for _ in 0..5 {
            let (public_port, internal_port) = (free_port(), free_port());
            let config = relay_config(dir.path(), public_port, internal_port, &log_public, &log_internal, extra);
            let path = dir.path().join("relay.toml");
            std::fs::write(&path, config).unwrap();
            let mut sector = Sector {
                url: format!("http://127.0.0.1:{public_port}"),
                addr: SocketAddr::from(([127, 0, 0, 1], public_port)),
                internal: format!("http://127.0.0.1:{internal_port}"),
                log_public: log_public.clone(),
                relay: None,
                log: None,
                dir,
            };
            match sector.spawn_relay(&path, fd_limit) {
                Ok(()) => {
                    sector.log = Some(log);
                    return sector;
                }
                Err(stderr) if stderr.contains("cannot listen") => dir = sector.take_dir(),
                Err(stderr) => panic!("paramant-relay did not start:\n{stderr}"),
            }
        }
        panic!("no free ports for the relay after 5 tries");
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        self.relay = None;
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// Starts the relay and waits until its internal API answers with our token (both
    /// listeners are bound before either serves, so the public one is up then too).
    fn spawn_relay(&mut self, config: &Path, fd_limit: Option<u64>) -> Result<(), String> {
        let stderr = std::fs::File::create(self.stderr_path()).unwrap();
        let mut command = match fd_limit {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(RELAY_BIN);
                c
            }
            None => Command::new(RELAY_BIN),
        };
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start paramant-relay");
        self.relay = Some(child);
        let started = Instant::now();
        loop {
            if self.dir.path().join("relay-state/internal-token").exists() {
                let reply = call(
                    &format!("{}/internal/keys", self.internal),
                    "GET",
                    &[("x-internal-auth", &self.internal_token())],
                    None,
                );
                if reply.as_ref().is_ok_and(|r| r.status == 200) {
                    return Ok(());
                }
            }
            if let Some(status) = self.relay.as_mut().unwrap().try_wait().unwrap() {
                self.relay = None;
                return Err(format!("exited with {status}: {}", self.relay_stderr()));
            }
            assert!(started.elapsed() < DEADLINE, "paramant-relay did not become ready:\n{}", self.relay_stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("relay.stderr")
    }

    /// What the relay wrote to stderr so far.
    pub fn relay_stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    pub fn relay_state_dir(&self) -> PathBuf {
        self.dir.path().join("relay-state")
    }

    pub fn internal_token(&self) -> String {
        std::fs::read_to_string(self.relay_state_dir().join("internal-token")).unwrap().trim().to_owned()
    }

    /// The relay's process id (for signals).
    pub fn relay_pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.relay.as_ref().expect("relay running").id() as i32)
    }

    /// Sends SIGTERM to the relay (a graceful drain).
    pub fn sigterm(&self) {
        nix::sys::signal::kill(self.relay_pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    }

    /// Waits for the relay to exit (bounded by [`DEADLINE`]).
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let child = self.relay.as_mut().expect("relay running");
        let status = wait_until("the relay to exit", || child.try_wait().unwrap());
        self.relay = None;
        status
    }

    /// Mints an API key of `plan` through the internal API.
    pub fn key(&self, plan: &str) -> String {
        let body = serde_json::to_vec(&json!({ "plan": plan })).unwrap();
        let reply = call(
            &format!("{}/internal/keys", self.internal),
            "POST",
            &[("x-internal-auth", &self.internal_token())],
            Some(body),
        )
        .unwrap();
        assert_eq!(reply.status, 200, "minting a key: {}", reply.text());
        reply.json()["key"].as_str().unwrap().to_owned()
    }

    /// Any request to the relay's public origin; `headers` may include `x-api-key`.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Reply {
        call(&format!("{}{path}", self.url), method, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Reply {
        self.request("GET", path, &key_header(key), None)
    }

    pub fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.post_bytes(path, key, serde_json::to_vec(body).unwrap())
    }

    pub fn post_bytes(&self, path: &str, key: Option<&str>, body: Vec<u8>) -> Reply {
        let mut headers = key_header(key);
        headers.push(("content-type", "application/json"));
        self.request("POST", path, &headers, Some(body))
    }

    /// `POST /v2/inbound` of `payload` with its correct hash; `extra` fields (ttl_ms, meta, …)
    /// are merged into the request.
    pub fn upload(&self, key: &str, payload: &[u8], extra: Value) -> Reply {
        let mut body = json!({ "hash": sha256_hex(payload), "payload": b64(payload) });
        if let Value::Object(fields) = extra {
            body.as_object_mut().unwrap().extend(fields);
        }
        self.post("/v2/inbound", Some(key), &body)
    }

    /// Uploads and asserts 200; returns the hash.
    pub fn upload_ok(&self, key: &str, payload: &[u8], extra: Value) -> String {
        let reply = self.upload(key, payload, extra);
        assert_eq!(reply.status, 200, "upload: {}", reply.text());
        sha256_hex(payload)
    }

    pub fn download(&self, key: &str, hash: &str) -> Reply {
        self.get(&format!("/v2/outbound/{hash}"), Some(key))
    }

    pub fn status_of(&self, key: &str, hash: &str) -> Reply {
        self.get(&format!("/v2/status/{hash}"), Some(key))
    }

    /// Every entry of the log, read page by page through the relay's origin.
    pub fn log_entries(&self) -> Vec<Value> {
        let mut entries = Vec::new();
        loop {
            let reply = self.get(&format!("/v2/ct/log?from={}&limit=100", entries.len()), None);
            assert_eq!(reply.status, 200, "{}", reply.text());
            let page = reply.json();
            let batch = page["entries"].as_array().unwrap().clone();
            let size = page["tree_size"].as_u64().unwrap() as usize;
            if batch.is_empty() || entries.len() + batch.len() >= size {
                entries.extend(batch);
                return entries;
            }
            entries.extend(batch);
        }
    }

    /// A request written byte for byte on a fresh connection (no client-side URL handling);
    /// returns the status and the body.
    pub fn raw(&self, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        // The relay may answer (and close) before it read an oversized body: ignore write errors.
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        parse_response(&response)
    }

    /// `raw` for a GET of `path` with an optional API key, answering JSON.
    pub fn raw_get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let key_line = key.map(|k| format!("X-Api-Key: {k}\r\n")).unwrap_or_default();
        let (status, body) =
            self.raw(&format!("GET {path} HTTP/1.1\r\nHost: relay\r\n{key_line}Connection: close\r\n\r\n"), b"");
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("GET {path} answered non-JSON ({status}): {}", String::from_utf8_lossy(&body)));
        (status, json)
    }
}

impl Drop for Sector {
    fn drop(&mut self) {
        if let Some(mut child) = self.relay.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(runtime) = self.log.take() {
            runtime.shutdown_background();
        }
        if std::thread::panicking() {
            eprintln!("--- paramant-relay stderr ---\n{}", self.relay_stderr());
        }
    }
}

/// Starts the log in-process (see the module doc); returns its runtime and its public and
/// internal origins. Its internal token is on disk when this returns.
fn start_log(dir: &Path) -> (tokio::runtime::Runtime, String, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let log = ctlog::testkit::start_in_process(&runtime, dir);
    (runtime, log.public_url, log.internal_url)
}

fn relay_config(
    dir: &Path,
    public_port: u16,
    internal_port: u16,
    log_public: &str,
    log_internal: &str,
    extra: &str,
) -> String {
    // Top-level keys of `extra` (before its first table) must precede `[ctlog]`.
    let split = if extra.starts_with('[') { 0 } else { extra.find("\n[").map(|i| i + 1).unwrap_or(extra.len()) };
    let (top, extra) = extra.split_at(split);
    format!(
        "{top}\nsector = \"relay\"\npublic_listen = \"127.0.0.1:{public_port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n\
         state_dir = \"{state}\"\ninternal_token_file = \"{state}/internal-token\"\n\n\
         [ctlog]\ninternal_url = \"{log_internal}\"\npublic_url = \"{log_public}\"\ntoken_file = \"{log_token}\"\n\n{extra}",
        state = dir.join("relay-state").display(),
        log_token = dir.join("ctlog-state/internal-token").display(),
    )
}

/// An answer: status, headers and the whole body.
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

    /// The API error code of a JSON error answer.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.text())).to_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }

    /// Asserts the status and the API error code, with the body in the failure message.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.error()), (status, code.to_owned()), "answer: {}", self.text());
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One HTTP request with ureq; the body is read whole (up to 64 MiB).
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
    let body = response.body_mut().with_config().limit(64 << 20).read_to_vec()?;
    Ok(Reply { status, headers, body })
}

fn key_header(key: Option<&str>) -> Vec<(&'static str, &str)> {
    key.map(|k| vec![("x-api-key", k)]).unwrap_or_default()
}

/// Status and body of a raw HTTP/1.1 response (Content-Length or close-delimited).
pub fn parse_response(response: &[u8]) -> (u16, Vec<u8>) {
    let text = String::from_utf8_lossy(response);
    let end =
        response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let status =
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, response[end + 4..].to_vec())
}

/// Polls `probe` until it yields a value; fails the test after [`DEADLINE`]. For conditions the
/// relay reaches asynchronously (expiry sweeps, log appends after a burn, process exit): the
/// test waits for the condition itself, never for a fixed time.
pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

/// `len` deterministic bytes, different for every `seed` (so every test blob has its own hash).
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A 32-byte hash from 64 hex characters in a JSON string.
pub fn hex32(value: &Value) -> [u8; 32] {
    hex::decode(value.as_str().expect("hex string")).unwrap().try_into().unwrap()
}

/// A well-formed ML-KEM-768 public key (every 12-bit coefficient below q = 3329, then 32 bytes
/// of ρ), different for every `seed`; the relay checks this shape, not key possession.
pub fn mlkem768_key(seed: u64) -> Vec<u8> {
    let noise = payload(seed, 768 * 2);
    let coefficients: Vec<u16> = noise.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]]) % 3329).collect();
    let mut out = Vec::with_capacity(1184);
    for pair in coefficients.chunks(2) {
        let (a, b) = (pair[0], pair[1]);
        out.extend([a as u8, ((a >> 8) as u8) | ((b as u8 & 0x0f) << 4), (b >> 4) as u8]);
    }
    out.extend(payload(seed ^ 0xfeed, 32));
    out
}
