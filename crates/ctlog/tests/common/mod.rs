//! Test harness: runs the real `paramant-ctlog` binary on loopback ports in a temp directory
//! and talks HTTP to it.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_paramant-ctlog");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running log process and how to reach it.
pub struct Log {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub public: String,
    pub internal: String,
    pub child: Option<Child>,
}

impl Log {
    /// Writes a config (ports chosen now, kept across restarts) with `extra` TOML appended.
    pub fn configure(dir: &Path, relay_id: &str, extra: &str) -> Log {
        let public_port = free_port();
        let internal_port = free_port();
        let config = dir.join("ctlog.toml");
        let text = format!(
            "relay_id = \"{relay_id}\"\nsector = \"health\"\nstate_dir = \"{}\"\npublic_listen = \"127.0.0.1:{public_port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n{extra}",
            dir.join("state").display()
        );
        std::fs::write(&config, text).unwrap();
        Log {
            dir: dir.to_path_buf(),
            config,
            public: format!("http://127.0.0.1:{public_port}"),
            internal: format!("http://127.0.0.1:{internal_port}"),
            child: None,
        }
    }

    pub fn start(mut self) -> Log {
        self.spawn();
        self
    }

    pub fn spawn(&mut self) {
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start paramant-ctlog");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = try_get(&format!("{}/health", self.public)) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("paramant-ctlog exited during start: {status}");
            }
            assert!(Instant::now() < deadline, "paramant-ctlog did not become healthy");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no drain, no flush — what a power cut or OOM kill looks like.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        child.wait().unwrap()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("state/internal-token")).unwrap().trim().to_string()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        get(&format!("{}{path}", self.public))
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        post(&format!("{}{path}", self.public), body, None)
    }

    /// An internal API call with the right secret.
    pub fn internal(&self, path: &str, body: &Value) -> (u16, Value) {
        post(&format!("{}{path}", self.internal), body, Some(&self.token()))
    }

    /// Appends a transfer event and returns the internal API's answer (asserting 200).
    pub fn append_transfer(&self, blob_hash: &str) -> Value {
        let (status, body) = self.internal(
            "/internal/append",
            &serde_json::json!({ "event": { "type": "transfer", "blob_hash": blob_hash, "sector": "health" } }),
        );
        assert_eq!(status, 200, "append failed: {body}");
        body
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn try_get(url: &str) -> Result<(u16, String), ureq::Error> {
    let mut response = agent().get(url).call()?;
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string()?))
}

/// GET returning status and parsed JSON (panics if the body is not JSON).
pub fn get(url: &str) -> (u16, Value) {
    let (status, text) = try_get(url).expect("request");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url} answered non-JSON ({status}): {text}"));
    (status, body)
}

pub fn get_text(url: &str) -> (u16, String) {
    try_get(url).expect("request")
}

pub fn post(url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    post_raw(url, serde_json::to_vec(body).unwrap(), token)
}

pub fn post_raw(url: &str, body: Vec<u8>, token: Option<&str>) -> (u16, Value) {
    let mut request = agent().post(url).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("x-internal-auth", token);
    }
    let mut response = request.send(&body[..]).expect("request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url} answered non-JSON ({status}): {text}"));
    (status, body)
}

pub fn hex32(s: &Value) -> [u8; 32] {
    let bytes = hex::decode(s.as_str().expect("hex string")).unwrap();
    bytes.try_into().unwrap()
}

/// A distinct sha256-shaped hex string for test blob `n`.
pub fn blob_hash(n: u64) -> String {
    format!("{:064x}", n + 1)
}
