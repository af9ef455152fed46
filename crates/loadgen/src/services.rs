//! A throwaway log and relay for one measurement: configs in a temp dir, free loopback ports,
//! `paramant ctlog run` and `paramant relay run` as child processes, and an Enterprise key
//! minted through the relay's internal API (Enterprise keys are not rate limited).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::Method;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::client::call;

/// How long a service may take to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// A running log + relay pair; stopped (and its temp dir removed) by `stop` or on drop.
pub struct Services {
    _dir: tempfile::TempDir,
    ctlog: Child,
    relay: Child,
    pub relay_url: String,
    pub api_key: String,
    pub relay_pid: u32,
    pub ctlog_pid: u32,
}

/// Ports of one pair.
struct Ports {
    ct_public: u16,
    ct_internal: u16,
    relay_public: u16,
    relay_internal: u16,
}

impl Services {
    /// Starts a fresh pair whose relay holds up to `budget_bytes` of payload.
    pub async fn start(paramant: &Path, budget_bytes: u64) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("paramant-loadgen-").tempdir()?;
        let ports = Ports::free()?;
        let (ctlog_toml, relay_toml) = write_configs(dir.path(), &ports, budget_bytes)?;
        let mut ctlog = spawn(paramant, "ctlog", &ctlog_toml)?;
        wait_healthy(&format!("http://127.0.0.1:{}/health", ports.ct_public), &mut ctlog).await?;
        // The relay reads the log's internal token at start, so it starts second.
        let mut relay = spawn(paramant, "relay", &relay_toml)?;
        let relay_url = format!("http://127.0.0.1:{}", ports.relay_public);
        wait_healthy(&format!("{relay_url}/health"), &mut relay).await?;
        let api_key = mint_key(ports.relay_internal, &dir.path().join("relay/internal-token")).await?;
        Ok(Self {
            relay_pid: relay.id().context("relay pid")?,
            ctlog_pid: ctlog.id().context("ctlog pid")?,
            _dir: dir,
            ctlog,
            relay,
            relay_url,
            api_key,
        })
    }

    /// SIGTERM to the relay, then to the log (the relay drains first); SIGKILL after a timeout.
    pub async fn stop(mut self) {
        for child in [&mut self.relay, &mut self.ctlog] {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            if tokio::time::timeout(STOP_TIMEOUT, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
        }
    }
}

fn write_configs(dir: &Path, ports: &Ports, budget_bytes: u64) -> anyhow::Result<(PathBuf, PathBuf)> {
    let ctlog_state = dir.join("ctlog");
    let ctlog = format!(
        "# Written by paramant-loadgen.\n\
         relay_id = \"loadgen.localhost\"\n\
         sector = \"relay\"\n\
         state_dir = {state:?}\n\
         public_listen = \"127.0.0.1:{public}\"\n\
         internal_listen = \"127.0.0.1:{internal}\"\n\
         # The relay's forwarded CT reads all come from one address.\n\
         [connections]\n\
         max_connections_per_ip = 16384\n\
         [sandbox]\n\
         landlock = \"best-effort\"\n",
        state = ctlog_state.display().to_string(),
        public = ports.ct_public,
        internal = ports.ct_internal,
    );
    let relay = format!(
        "# Written by paramant-loadgen.\n\
         sector = \"relay\"\n\
         public_listen = \"127.0.0.1:{public}\"\n\
         internal_listen = \"127.0.0.1:{internal}\"\n\
         state_dir = {state:?}\n\
         [ctlog]\n\
         internal_url = \"http://127.0.0.1:{ct_internal}\"\n\
         public_url = \"http://127.0.0.1:{ct_public}\"\n\
         token_file = {token:?}\n\
         [limits]\n\
         blob_budget_bytes = {budget_bytes}\n\
         # One key and one address drive every client: no per-key or per-address caps here.\n\
         [transfers]\n\
         max_key_share_percent = 100\n\
         concurrent_uploads = 4096\n\
         concurrent_uploads_per_key = 4096\n\
         concurrent_uploads_per_ip = 4096\n\
         [connections]\n\
         max_connections_per_ip = 16384\n\
         [sandbox]\n\
         landlock = \"best-effort\"\n",
        public = ports.relay_public,
        internal = ports.relay_internal,
        state = dir.join("relay").display().to_string(),
        ct_internal = ports.ct_internal,
        ct_public = ports.ct_public,
        token = ctlog_state.join("internal-token").display().to_string(),
    );
    let (ctlog_path, relay_path) = (dir.join("ctlog.toml"), dir.join("relay.toml"));
    std::fs::write(&ctlog_path, ctlog)?;
    std::fs::write(&relay_path, relay)?;
    Ok((ctlog_path, relay_path))
}

/// `paramant <service> run --config FILE`, its output passed through, without a systemd
/// credentials directory that would redirect its secrets.
fn spawn(paramant: &Path, service: &str, config: &Path) -> anyhow::Result<Child> {
    Command::new(paramant)
        .args([service, "run", "--config"])
        .arg(config)
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} {service} run", paramant.display()))
}

async fn wait_healthy(url: &str, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if matches!(call(Method::GET, url, &[], b"").await, Ok((status, _)) if status.is_success()) {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the service behind {url} exited during start-up ({status})");
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /internal/keys {"plan":"enterprise"}` with the relay's internal token.
async fn mint_key(internal_port: u16, token_file: &Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(token_file).with_context(|| format!("cannot read {}", token_file.display()))?;
    let url = format!("http://127.0.0.1:{internal_port}/internal/keys");
    let headers = [("x-internal-auth", token.trim()), ("content-type", "application/json")];
    let (status, body) =
        call(Method::POST, &url, &headers, br#"{"plan":"enterprise","label":"paramant-loadgen"}"#).await?;
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match answer["key"].as_str() {
        Some(key) if status.is_success() => Ok(key.to_owned()),
        _ => bail!("the relay did not mint a key ({status}): {answer}"),
    }
}

impl Ports {
    /// Four distinct free loopback ports: all are bound at once (so the kernel cannot hand out
    /// one twice), then released for the services to take.
    fn free() -> anyhow::Result<Self> {
        let listeners = (0..4).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<Vec<_>, _>>()?;
        let ports = listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect::<anyhow::Result<Vec<u16>>>()?;
        Ok(Self { ct_public: ports[0], ct_internal: ports[1], relay_public: ports[2], relay_internal: ports[3] })
    }
}
