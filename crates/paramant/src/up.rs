//! `paramant up`: runs the appliance's services as child processes on loopback with embedded
//! defaults, generates missing keys and secrets into the data directory on first start, writes
//! `DIR/dev.json` for other tools, and stops the children on Ctrl-C or SIGTERM. Running it
//! again reuses the directory, its ports and the log.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use tokio::process::{Child, Command};

/// How long a service may take to answer its health check after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long children get to drain after SIGTERM before they are killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Options of `paramant up`.
pub struct UpOptions {
    pub data_dir: PathBuf,
}

pub fn parse_args(args: &[String]) -> anyhow::Result<UpOptions> {
    match args {
        [] => Ok(UpOptions { data_dir: PathBuf::from("paramant-data") }),
        [flag, dir] if flag == "--data" => Ok(UpOptions { data_dir: PathBuf::from(dir) }),
        _ => bail!("usage: paramant up [--data DIR]"),
    }
}

/// One child service: how to start it and where it answers.
struct Service {
    name: &'static str,
    args: Vec<String>,
    health: SocketAddr,
}

pub fn run(options: UpOptions) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create {}", options.data_dir.display()))?;
    let dir = options.data_dir.canonicalize()?;
    let mut ports = FreePorts::default();
    let ctlog = CtlogLayout::ensure(&dir, &mut ports)?;
    let admin_public = AdminLayout::public_listen(&dir, &mut ports)?;
    let relay = RelayLayout::ensure(&dir, &mut ports, &ctlog.config, &format!("http://{admin_public}"))?;
    let admin = AdminLayout::ensure(&dir, &mut ports, admin_public, &ctlog.config, &relay.config)?;
    // Every port is written to its config: release them for the services to bind.
    drop(ports);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut children = Vec::new();
        // In dependency order: the relay reads the log's internal token at start.
        start(ctlog.service(), &mut children).await?;
        start(relay.service(), &mut children).await?;
        // The admin reads the relay's and the log's internal tokens at start.
        start(admin.service(), &mut children).await?;
        // The license client: checks in at start and every 6 hours once DIR/license/license-token
        // holds a token (none: Community Edition, nothing is sent). No port, so no health check.
        let license = LicenseLayout::ensure(&dir, &ctlog.config, &relay.config)?;
        children.push(("paramant-license", license.spawn()?));
        let mut info = ctlog.dev_json();
        let previous =
            std::fs::read(dir.join("dev.json")).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let api_key = relay.api_key(previous.as_ref().and_then(|p| p["api_key"].as_str()))?;
        merge(&mut info, relay.dev_json(api_key));
        let first_admin_start = previous.as_ref().is_none_or(|p| p["admin_token"].is_null());
        merge(&mut info, admin.dev_json()?);
        write_atomically(&dir.join("dev.json"), &serde_json::to_vec_pretty(&info)?)?;
        // The banner may go to a closed pipe (`paramant up | head -1`): the services keep running.
        let mut banner = String::from("paramant up: services running (Ctrl-C stops them)\n");
        if let Some(map) = info.as_object() {
            for (k, v) in map.iter().filter(|(k, _)| k.ends_with("_url")) {
                let _ = writeln!(banner, "  {k:<16} {}", v.as_str().unwrap_or_default());
            }
        }
        let _ = writeln!(banner, "  {:<16} {}", "dev.json", dir.join("dev.json").display());
        if first_admin_start {
            // Shown once, here and in dev.json (mode 0600); never handed out over HTTP.
            let _ = writeln!(banner, "  {:<16} {}", "admin_token", info["admin_token"].as_str().unwrap_or_default());
        }
        let _ = std::io::stdout().write_all(banner.as_bytes()).and_then(|()| std::io::stdout().flush());
        let code = wait_for_stop(&mut children).await;
        // Reverse order: the relay drains before its log goes away.
        children.reverse();
        stop_all(&mut children).await;
        Ok(code)
    })
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// Starts one service as a child of this process and waits until it answers `/health`.
async fn start(service: Service, children: &mut Vec<(&'static str, Child)>) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let child = Command::new(&exe)
        .args(&service.args)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", service.name))?;
    children.push((service.name, child));
    wait_healthy(&service, children).await
}

/// Polls a service's /health until it answers 200; fails early if the child died.
async fn wait_healthy(service: &Service, children: &mut [(&'static str, Child)]) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if health_ok(service.health) {
            return Ok(());
        }
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited during start-up ({status}); see its messages above");
            }
        }
        if Instant::now() > deadline {
            bail!("{} did not become healthy at http://{}/health", service.name, service.health);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for SIGINT/SIGTERM (exit 0) or for any child to exit on its own (exit 1).
async fn wait_for_stop(children: &mut [(&'static str, Child)]) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else { return ExitCode::FAILURE };
    // Polling is enough here: a dead child is noticed within a fraction of a second.
    let any_exit = async {
        loop {
            for (name, child) in children.iter_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return (*name, status);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        _ = term.recv() => ExitCode::SUCCESS,
        (name, status) = any_exit => {
            eprintln!("paramant up: {name} exited unexpectedly ({status}); stopping the rest");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM to every child, then SIGKILL to those still running after the drain timeout.
async fn stop_all(children: &mut [(&'static str, Child)]) {
    for (_, child) in children.iter() {
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for (name, child) in children.iter_mut() {
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("paramant up: {name} did not stop in time; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

/// True when `GET /health` on `addr` answers 200.
fn health_ok(addr: SocketAddr) -> bool {
    matches!(http_call(addr, "GET", "/health", &[], b""), Ok((200, _)))
}

/// A minimal HTTP/1.0 call on loopback: (status, body). Enough for health checks and the
/// internal APIs; `up` needs no HTTP client beyond this.
fn http_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body_at = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(response.len());
    Ok((status, response[body_at..].to_vec()))
}

/// Writes through a temporary file renamed over `path`, readable by the owner only: `dev.json`
/// holds an API key. The temporary file is created with mode 0600, so a file that existed with
/// a wider mode is replaced by a private one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    // A leftover from an interrupted run would keep its mode: start afresh.
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Free loopback ports for a first start. Each stays bound until all are chosen, so the kernel
/// cannot hand out the same port twice; the config files keep them from then on.
#[derive(Default)]
struct FreePorts(Vec<TcpListener>);

impl FreePorts {
    fn take(&mut self) -> anyhow::Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        self.0.push(listener);
        Ok(port)
    }
}

/// Where the log lives inside the data directory, and its generated configuration.
struct CtlogLayout {
    config_path: PathBuf,
    config: ctlog::config::Config,
}

impl CtlogLayout {
    /// Loads `DIR/ctlog.toml`, writing embedded defaults with fresh ports on first start.
    fn ensure(dir: &Path, ports: &mut FreePorts) -> anyhow::Result<Self> {
        let config_path = dir.join("ctlog.toml");
        if !config_path.exists() {
            let text = format!(
                "# Written by `paramant up` on first start; edit freely.\n\
                 relay_id = \"relay.localhost\"\n\
                 sector = \"relay\"\n\
                 state_dir = {state:?}\n\
                 public_listen = \"127.0.0.1:{public}\"\n\
                 internal_listen = \"127.0.0.1:{internal}\"\n\
                 # The relay proxies the public CT endpoints: believe its X-Real-IP.\n\
                 [gossip]\n\
                 trusted_proxies = [\"127.0.0.1\"]\n",
                state = dir.join("ctlog").display().to_string(),
                public = ports.take()?,
                internal = ports.take()?,
            );
            write_atomically(&config_path, text.as_bytes())?;
        }
        let config = ctlog::config::Config::load(&config_path)?;
        Ok(Self { config_path, config })
    }

    fn service(&self) -> Service {
        Service {
            name: "paramant-ctlog",
            args: vec!["ctlog".into(), "run".into(), "--config".into(), self.config_path.display().to_string()],
            health: self.config.public_listen,
        }
    }

    fn dev_json(&self) -> serde_json::Value {
        json!({
            "ct_url": self.config.public_url(),
            "ct_internal_url": format!("http://{}", self.config.internal_listen),
            "ct_internal_token_file": self.config.internal_token_path(),
            "ct_config": self.config_path,
        })
    }
}

/// The relay inside the data directory, wired to the log.
struct RelayLayout {
    config_path: PathBuf,
    config: relay::config::Config,
}

impl RelayLayout {
    /// Loads `DIR/relay.toml`, writing embedded defaults with fresh ports on first start.
    fn ensure(
        dir: &Path,
        ports: &mut FreePorts,
        ctlog: &ctlog::config::Config,
        accounts_url: &str,
    ) -> anyhow::Result<Self> {
        let config_path = dir.join("relay.toml");
        if !config_path.exists() {
            let text = format!(
                "# Written by `paramant up` on first start; edit freely.\n\
                 sector = \"relay\"\n\
                 public_listen = \"127.0.0.1:{public}\"\n\
                 internal_listen = \"127.0.0.1:{internal}\"\n\
                 state_dir = {state:?}\n\
                 user_accounts_url = {accounts_url:?}\n\
                 [ctlog]\n\
                 internal_url = \"http://{ct_internal}\"\n\
                 public_url = \"{ct_public}\"\n\
                 token_file = {token:?}\n\
                 [license]\n\
                 token_file = {license_token:?}\n\
                 state_file = {license_state:?}\n",
                license_token = dir.join("license/license-token").display().to_string(),
                license_state = dir.join("license/state.json").display().to_string(),
                public = ports.take()?,
                internal = ports.take()?,
                state = dir.join("relay").display().to_string(),
                ct_internal = ctlog.internal_listen,
                ct_public = ctlog.public_url(),
                token = ctlog.internal_token_path().display().to_string(),
            );
            write_atomically(&config_path, text.as_bytes())?;
        }
        // The license directory exists before the relay starts: its sandbox can only grant a
        // directory that exists.
        std::fs::create_dir_all(dir.join("license"))?;
        let config = relay::config::Config::load(&config_path)?;
        Ok(Self { config_path, config })
    }

    fn service(&self) -> Service {
        Service {
            name: "paramant-relay",
            args: vec!["relay".into(), "run".into(), "--config".into(), self.config_path.display().to_string()],
            health: self.config.public_listen,
        }
    }

    /// The previous `api_key` while the relay still accepts it, else a new Enterprise `pgp_`
    /// key (the SDK accepts only `pgp_`; Enterprise so tests and benchmarks are not throttled).
    fn api_key(&self, previous: Option<&str>) -> anyhow::Result<String> {
        if let Some(key) = previous {
            let (status, body) =
                http_call(self.config.public_listen, "GET", "/v2/check-key", &[("X-Api-Key", key)], b"")?;
            let valid =
                status == 200 && serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v["valid"] == true);
            if valid {
                return Ok(key.to_owned());
            }
        }
        let token = crypto::Secret::load(&self.config.internal_token_path())?;
        let request = br#"{"plan":"enterprise","label":"paramant up (dev)"}"#;
        let headers = [("X-Internal-Auth", token.danger_expose()), ("Content-Type", "application/json")];
        let (status, body) = http_call(self.config.internal_listen, "POST", "/internal/keys", &headers, request)?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match answer["key"].as_str() {
            Some(key) if status == 200 => Ok(key.to_owned()),
            _ => bail!("the relay did not mint an API key ({status}): {answer}"),
        }
    }

    fn dev_json(&self, api_key: String) -> serde_json::Value {
        json!({
            "relay_url": self.config.public_url(),
            "relay_internal_url": format!("http://{}", self.config.internal_listen),
            "relay_internal_token_file": self.config.internal_token_path(),
            "relay_config": self.config_path,
            "api_key": api_key,
        })
    }
}

/// The admin panel inside the data directory, wired to the relay and the log.
struct AdminLayout {
    config_path: PathBuf,
    config: admin::config::Config,
}

impl AdminLayout {
    /// The admin's public address: from `DIR/admin.toml` when it exists, else a free port.
    fn public_listen(dir: &Path, ports: &mut FreePorts) -> anyhow::Result<SocketAddr> {
        let path = dir.join("admin.toml");
        if path.exists() {
            return Ok(admin::config::Config::load(&path)?.public_listen);
        }
        Ok(SocketAddr::from(([127, 0, 0, 1], ports.take()?)))
    }

    /// Loads `DIR/admin.toml`, writing embedded defaults on first start.
    fn ensure(
        dir: &Path,
        ports: &mut FreePorts,
        public: SocketAddr,
        ctlog: &ctlog::config::Config,
        relay: &relay::config::Config,
    ) -> anyhow::Result<Self> {
        let config_path = dir.join("admin.toml");
        if !config_path.exists() {
            let text = format!(
                "# Written by `paramant up` on first start; edit freely.\n\
                 public_listen = \"{public}\"\n\
                 internal_listen = \"127.0.0.1:{internal}\"\n\
                 state_dir = {state:?}\n\
                 [ctlog]\n\
                 internal_url = \"http://{ct_internal}\"\n\
                 token_file = {ct_token:?}\n\
                 [license]\n\
                 token_file = {license_token:?}\n\
                 state_file = {license_state:?}\n\
                 [[relays]]\n\
                 sector = {sector:?}\n\
                 internal_url = \"http://{relay_internal}\"\n\
                 token_file = {relay_token:?}\n",
                license_token = dir.join("license/license-token").display().to_string(),
                license_state = dir.join("license/state.json").display().to_string(),
                internal = ports.take()?,
                state = dir.join("admin").display().to_string(),
                ct_internal = ctlog.internal_listen,
                ct_token = ctlog.internal_token_path().display().to_string(),
                sector = relay.sector,
                relay_internal = relay.internal_listen,
                relay_token = relay.internal_token_path().display().to_string(),
            );
            write_atomically(&config_path, text.as_bytes())?;
        }
        let config = admin::config::Config::load(&config_path)?;
        Ok(Self { config_path, config })
    }

    fn service(&self) -> Service {
        Service {
            name: "paramant-admin",
            args: vec!["admin".into(), "run".into(), "--config".into(), self.config_path.display().to_string()],
            health: self.config.public_listen,
        }
    }

    fn dev_json(&self) -> anyhow::Result<serde_json::Value> {
        let token = crypto::Secret::load(&self.config.secret_path(admin::ADMIN_TOKEN_FILE))?;
        Ok(json!({
            "admin_url": self.config.public_url(),
            "admin_internal_url": format!("http://{}", self.config.internal_listen),
            "admin_internal_token_file": self.config.secret_path(admin::INTERNAL_TOKEN_FILE),
            "admin_token": token.danger_expose(),
            "admin_config": self.config_path,
            "admin_outbox": self.config.state_dir.join("outbox"),
        }))
    }
}

/// The license client inside the data directory: `DIR/license.toml`, state and token in
/// `DIR/license/` (the directory the relay reads, re-verifying what it finds).
struct LicenseLayout {
    config_path: PathBuf,
}

impl LicenseLayout {
    /// Writes `DIR/license.toml` on first start (the public license server; the log and the
    /// relay of this directory).
    fn ensure(dir: &Path, ctlog: &ctlog::config::Config, relay: &relay::config::Config) -> anyhow::Result<Self> {
        let config_path = dir.join("license.toml");
        if !config_path.exists() {
            let text = format!(
                "# Written by `paramant up` on first start; edit freely.\n\
                 server_url = \"https://license.paramant.app/v1/license/check\"\n\
                 state_dir = {state:?}\n\
                 [license]\n\
                 token_file = {token:?}\n\
                 [ctlog]\n\
                 internal_url = \"http://{ct_internal}\"\n\
                 public_url = \"{ct_public}\"\n\
                 token_file = {ct_token:?}\n\
                 [relay]\n\
                 internal_url = \"http://{relay_internal}\"\n\
                 token_file = {relay_token:?}\n",
                state = dir.join("license").display().to_string(),
                token = dir.join("license/license-token").display().to_string(),
                ct_internal = ctlog.internal_listen,
                ct_public = ctlog.public_url(),
                ct_token = ctlog.internal_token_path().display().to_string(),
                relay_internal = relay.internal_listen,
                relay_token = relay.internal_token_path().display().to_string(),
            );
            write_atomically(&config_path, text.as_bytes())?;
        }
        Ok(Self { config_path })
    }

    fn spawn(&self) -> anyhow::Result<Child> {
        let exe = std::env::current_exe()?;
        Command::new(&exe)
            .args(["license", "run", "--loop", "--config"])
            .arg(&self.config_path)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start paramant-license")
    }
}

#[cfg(test)]
mod private_files {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn dev_json_is_written_owner_only_even_over_a_readable_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dev.json");
        std::fs::write(&path, b"{}").expect("old file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        super::write_atomically(&path, b"{\"api_key\":\"pgp_x\"}").expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).expect("read"), b"{\"api_key\":\"pgp_x\"}");
    }
}
