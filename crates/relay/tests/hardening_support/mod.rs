//! Support for `tests/hardening.rs`: the sector's log in-process (as `tests/common` runs it, and
//! for the same reason: Cargo gives no path to the `paramant-ctlog` binary here), and the real
//! `paramant-relay` binary started with the environment a test needs (a `NOTIFY_SOCKET`, a
//! watchdog, a seccomp filter inherited from the starting thread).
#![allow(dead_code, clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const RELAY_BIN: &str = env!("CARGO_BIN_EXE_paramant-relay");

/// How long any wait for a service may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Landlock here can enforce the relay's whole policy (filesystem and TCP rules).
pub fn full_landlock_here() -> bool {
    harden::landlock_abi() >= harden::NET_RULES_ABI
}

/// The log of the sector, serving in this process until dropped.
pub struct Log {
    pub public: String,
    pub internal: String,
    pub token_file: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Starts the log in-process on free loopback ports, state in `dir/ctlog-state`.
pub fn start_log(dir: &Path) -> Log {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let log = ctlog::testkit::start_in_process(&runtime, dir);
    Log {
        public: log.public_url,
        internal: log.internal_url,
        token_file: dir.join("ctlog-state/internal-token"),
        runtime: Some(runtime),
    }
}

/// A relay configuration in a temp directory: where it is and where the relay will answer.
pub struct RelaySetup {
    pub config: PathBuf,
    pub state_dir: PathBuf,
    pub public: String,
    pub internal: String,
    pub public_port: u16,
    pub internal_port: u16,
    stderr: PathBuf,
}

impl RelaySetup {
    /// Writes `dir/relay.toml` for fresh ports, wired to `log`, with `extra` TOML appended.
    pub fn configure(dir: &Path, log: &Log, extra: &str) -> RelaySetup {
        let (public_port, internal_port) = (free_port(), free_port());
        let state_dir = dir.join("relay-state");
        let config = dir.join("relay.toml");
        let text = format!(
            "sector = \"relay\"\npublic_listen = \"127.0.0.1:{public_port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n\
             state_dir = \"{state}\"\n\n[ctlog]\ninternal_url = \"{}\"\npublic_url = \"{}\"\ntoken_file = \"{}\"\n\n{extra}",
            log.internal,
            log.public,
            log.token_file.display(),
            state = state_dir.display(),
        );
        std::fs::write(&config, text).unwrap();
        RelaySetup {
            config,
            state_dir,
            public: format!("http://127.0.0.1:{public_port}"),
            internal: format!("http://127.0.0.1:{internal_port}"),
            public_port,
            internal_port,
            stderr: dir.join("relay.stderr"),
        }
    }

    /// `paramant-relay <subcommand> --config …` with no service manager in its environment.
    pub fn command(&self, subcommand: &str) -> Command {
        relay_command(&self.config, subcommand)
    }

    /// Spawns `command` (from [`RelaySetup::command`]) with stderr kept in a file.
    pub fn spawn(&self, mut command: Command) -> Relay {
        let stderr = std::fs::File::create(&self.stderr).unwrap();
        let child = command.stdout(Stdio::null()).stderr(stderr).spawn().expect("start paramant-relay");
        Relay {
            child: Some(child),
            public: self.public.clone(),
            internal: self.internal.clone(),
            stderr: self.stderr.clone(),
        }
    }

    /// `run`, waiting until `/health` answers.
    pub fn start(&self) -> Relay {
        let mut relay = self.spawn(self.command("run"));
        relay.wait_healthy();
        relay
    }

    pub fn internal_token(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("internal-token")).unwrap().trim().to_owned()
    }
}

/// `paramant-relay <subcommand> --config <config>` with no service manager in its environment.
pub fn relay_command(config: &Path, subcommand: &str) -> Command {
    let mut command = Command::new(RELAY_BIN);
    command.args([subcommand, "--config"]).arg(config).stdin(Stdio::null());
    for name in ["CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        command.env_remove(name);
    }
    command
}

/// A running `paramant-relay`; killed when dropped.
pub struct Relay {
    pub child: Option<Child>,
    pub public: String,
    pub internal: String,
    stderr: PathBuf,
}

impl Relay {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("relay running").id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Polls `/health` until it answers 200; fails if the relay exits first.
    pub fn wait_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if try_get(&format!("{}/health", self.public)).is_ok_and(|(status, _)| status == 200) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("paramant-relay exited during start ({status}):\n{}", self.stderr());
            }
            assert!(started.elapsed() < DEADLINE, "paramant-relay did not become healthy:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Waits for the relay to exit (bounded by [`DEADLINE`]).
    pub fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(started.elapsed() < DEADLINE, "paramant-relay did not exit:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- paramant-relay stderr ---\n{}", self.stderr());
        }
    }
}

/// A field of `/proc/<pid>/status`, read from outside the process.
pub fn proc_status(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    line[field.len() + 1..].trim().to_owned()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(DEADLINE)).build().into()
}

pub fn try_get(url: &str) -> Result<(u16, String), ureq::Error> {
    let mut response = agent().get(url).call()?;
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string()?))
}

fn json(url: &str, status: u16, text: &str) -> (u16, Value) {
    let body = serde_json::from_str(text).unwrap_or_else(|_| panic!("{url} answered non-JSON ({status}): {text}"));
    (status, body)
}

/// GET with optional headers: the status and the whole body.
pub fn get_bytes(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (response.status().as_u16(), response.body_mut().read_to_vec().unwrap())
}

/// GET with optional headers, answering JSON.
pub fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let (status, body) = get_bytes(url, headers);
    json(url, status, &String::from_utf8_lossy(&body))
}

/// POST of a JSON body with optional headers, answering JSON.
pub fn post(url: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = agent().post(url).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send(serde_json::to_vec(body).unwrap()).unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status().as_u16();
    json(url, status, &response.body_mut().read_to_string().unwrap())
}

pub use harden::testkit::with_landlock_blocked;
