//! Test harness: a sector's log (in-process, as the relay's tests run it), the reference
//! license server over TLS with a certificate from a test CA (rcgen), and the license client's
//! configuration pointing at both — all on loopback in a temp directory.
#![allow(dead_code, clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use license::state::UserLimit;
use license::token::{self, Payload};
use license_service::config::Config;
use license_service::log::LogClient;
use license_service::server::{ServerConfig, ServerDb};
use license_service::service::{self, Context, Report};
use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../license/fixtures")
}

pub fn seed(name: &str) -> [u8; 32] {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    hex::decode(text.trim()).unwrap().try_into().unwrap()
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Everything a check-in talks to.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub log_public: String,
    pub log_internal: String,
    pub server_url: String,
    pub token: String,
    log: tokio::runtime::Runtime,
    server: tokio::runtime::Runtime,
}

impl Env {
    /// A log, a license server that knows `token` (max 20 users, tier "pro"), and a token file.
    pub fn start() -> Env {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let (log, log_public, log_internal) = start_log(dir.path());
        let (server, server_url) = start_server(dir.path());
        let payload = Payload {
            max_keys: UserLimit::Limited(10),
            expires_at: "2099-01-01".into(),
            issued_to: "Test Licensee".into(),
            issued_at: None,
        };
        let token = token::issue(&seed("test-ed25519-license-signing.seed.hex"), &payload).unwrap();
        std::fs::write(dir.path().join("license-token"), &token).unwrap();
        let env = Env { dir, log_public, log_internal, server_url, token, log, server };
        env.admin(&["add", "--token", &env.token.clone(), "--tier", "pro", "--max-users", "20"]);
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `paramant license server …` (the admin command line) on the server's db.
    pub fn admin(&self, args: &[&str]) -> String {
        let (command, rest) = args.split_first().unwrap();
        let mut full = vec![
            "server".to_owned(),
            (*command).to_owned(),
            "--db".into(),
            self.path("server-db.json").display().to_string(),
        ];
        full.extend(rest.iter().map(|s| (*s).to_owned()));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paramant-license")).args(&full).output().unwrap();
        assert!(out.status.success(), "{full:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn server_db(&self) -> ServerDb {
        ServerDb::load(&self.path("server-db.json")).unwrap()
    }

    /// The record of our token on the server.
    pub fn record(&self) -> license_service::server::LicenseRecord {
        self.server_db().licenses[&license_service::server::license_id(&self.token)].clone()
    }

    /// The client's config file (written with `extra` TOML appended) and its path.
    pub fn client_config(&self, extra: &str) -> (Config, PathBuf) {
        let ml =
            <crypto::LogSigningKey as crypto::KeyFile>::load_or_generate(&self.path("server-signing-key")).unwrap().0;
        let text = format!(
            "server_url = \"{server}/v1/license/check\"\nca_file = {ca:?}\nstate_dir = {state:?}\n\
             publish_file = {publish:?}\ntimeout_secs = 5\n{top}\n\
             [license]\ntoken_file = {token:?}\ntrusted_ed25519_keys = [{ed:?}]\nml_dsa_keys = [{{ key = {ml:?} }}]\n\n\
             [ctlog]\ninternal_url = \"{li}\"\npublic_url = \"{lp}\"\ntoken_file = {lt:?}\n\n[sandbox]\nlandlock = \"best-effort\"\n",
            server = self.server_url,
            ca = self.path("ca.pem"),
            state = self.path("client-state"),
            publish = self.path("published/state.json"),
            top = extra,
            token = self.path("license-token"),
            ed = token::public_key_hex(&seed("test-ed25519-license-signing.seed.hex")),
            ml = hex::encode(ml.verifying_key().to_bytes()),
            li = self.log_internal,
            lp = self.log_public,
            lt = self.path("ctlog-state/internal-token"),
        );
        std::fs::create_dir_all(self.path("client-state")).unwrap();
        std::fs::create_dir_all(self.path("published")).unwrap();
        let path = self.path("license.toml");
        std::fs::write(&path, text).unwrap();
        (Config::load(&path).unwrap(), path)
    }

    pub fn log_client(&self) -> LogClient {
        let token = crypto::Secret::load(&self.path("ctlog-state/internal-token")).unwrap();
        LogClient::new(&self.log_internal, &self.log_public, token)
    }

    /// One check-in through the library (the code `paramant-license run` runs).
    pub fn check_in(&self, config: &Config) -> Report {
        self.check_in_with(config, &self.log_client())
    }

    pub fn check_in_with(&self, config: &Config, log: &impl license_service::log::EventLog) -> Report {
        let ctx = Context::new(config.clone()).unwrap();
        let relay_id = self.log.block_on(self.log_client().relay_id()).unwrap();
        self.log.block_on(service::check_in(&ctx, log, &relay_id, now_ms())).unwrap()
    }

    pub fn relay_id(&self) -> String {
        self.log.block_on(self.log_client().relay_id()).unwrap()
    }

    /// The published state, evaluated as the relay evaluates it.
    pub fn entitlement(&self, config: &Config) -> license::Entitlement {
        let text = std::fs::read_to_string(self.path("published/state.json")).ok();
        let state = text.map(|t| serde_json::from_str(&t).unwrap());
        license::state::evaluate(
            Some(&self.token),
            state.as_ref(),
            &config.license.trust_roots().unwrap(),
            None,
            now_ms(),
        )
    }

    /// Every entry of the log.
    pub fn log_entries(&self) -> Vec<Value> {
        let url = format!("{}/v2/ct/log?from=0&limit=1000", self.log_public);
        let (status, body) = self.log.block_on(license_service::log::call(&url, "GET", None, None)).unwrap();
        assert_eq!(status, 200);
        serde_json::from_slice::<Value>(&body).unwrap()["entries"].as_array().unwrap().clone()
    }

    /// Checks an inclusion proof of the leaf against a signed tree head of the log.
    pub fn assert_included(&self, leaf_hash: &str) {
        let token = std::fs::read_to_string(self.path("ctlog-state/internal-token")).unwrap();
        let url = format!("{}/internal/prove?leaf_hash={leaf_hash}", self.log_internal);
        let (status, body) =
            self.log.block_on(license_service::log::call(&url, "GET", Some(token.trim()), None)).unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).unwrap();
        let proof: wire::InclusionProof = serde_json::from_value(answer["proof"].clone()).unwrap();
        assert_eq!(proof.leaf_hash, leaf_hash);
        proof.verify().unwrap();
        let sth: wire::SignedSth = serde_json::from_value(answer["sth"].clone()).unwrap();
        let key = <crypto::LogSigningKey as crypto::KeyFile>::load(&self.path("ctlog-state/log-key"))
            .unwrap()
            .verifying_key();
        sth.verify(&key).unwrap();
        assert_eq!((sth.body.sha3_root.as_str(), sth.body.tree_size), (proof.root.as_str(), proof.tree_size));
    }

    /// License events in the log, with their leaf hashes.
    pub fn license_events(&self) -> Vec<Value> {
        self.log_entries().into_iter().filter(|e| e["type"] == "license_event").collect()
    }
}

fn start_log(dir: &Path) -> (tokio::runtime::Runtime, String, String) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let log = ctlog::testkit::start_in_process(&runtime, dir);
    (runtime, log.public_url, log.internal_url)
}

/// A test CA and a certificate for "localhost" it signed; the server with it.
fn start_server(dir: &Path) -> (tokio::runtime::Runtime, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "paramant test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server-cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), leaf_key.serialize_pem()).unwrap();
    let port = free_port();
    let config = ServerConfig {
        listen: ([127, 0, 0, 1], port).into(),
        cert_file: dir.join("server-cert.pem"),
        key_file: dir.join("server-key.pem"),
        signing_key_file: dir.join("server-signing-key"),
        db_file: dir.join("server-db.json"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.spawn(async move {
        if let Err(e) = license_service::server::run(config).await {
            eprintln!("license server stopped: {e:#}");
        }
    });
    // Ready when it accepts a TCP connection.
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the license server did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    (runtime, format!("https://localhost:{port}"))
}

/// A real relay (the `paramant-relay` binary cargo built beside `paramant-license`) on the
/// environment's log, killed on drop.
pub struct Relay {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` of its internal API.
    pub internal: String,
    /// Its public address.
    pub public: std::net::SocketAddr,
    /// File with its internal token.
    pub token_file: PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Env {
    /// Starts the relay binary (`cargo test --workspace` builds it; alone: `cargo build -p relay`).
    pub fn start_relay(&self) -> Relay {
        let bin = Path::new(env!("CARGO_BIN_EXE_paramant-license")).with_file_name("paramant-relay");
        assert!(bin.exists(), "{} is not built: run `cargo build -p relay` first", bin.display());
        let state = self.path("relay-state");
        let (public_port, internal_port) = (free_port(), free_port());
        let config = format!(
            "sector = \"relay\"\npublic_listen = \"127.0.0.1:{public_port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n\
             state_dir = {state:?}\ninternal_token_file = {token:?}\n\n\
             [ctlog]\ninternal_url = \"{li}\"\npublic_url = \"{lp}\"\ntoken_file = {lt:?}\n",
            token = state.join("internal-token"),
            li = self.log_internal,
            lp = self.log_public,
            lt = self.path("ctlog-state/internal-token"),
        );
        std::fs::write(self.path("relay.toml"), config).unwrap();
        let stderr = std::fs::File::create(self.path("relay.stderr")).unwrap();
        let child = std::process::Command::new(bin)
            .args(["run", "--config"])
            .arg(self.path("relay.toml"))
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut relay = Relay {
            child,
            internal: format!("http://127.0.0.1:{internal_port}"),
            public: ([127, 0, 0, 1], public_port).into(),
            token_file: state.join("internal-token"),
        };
        let started = std::time::Instant::now();
        loop {
            if relay.token_file.exists() && self.relay_call(&relay, "GET", "/internal/stats", None).0 == 200 {
                return relay;
            }
            let exited = relay.child.try_wait().unwrap();
            assert!(
                exited.is_none() && started.elapsed() < std::time::Duration::from_secs(60),
                "paramant-relay did not start: {}",
                std::fs::read_to_string(self.path("relay.stderr")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// A call to the relay's internal API.
    pub fn relay_call(&self, relay: &Relay, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = std::fs::read_to_string(&relay.token_file).unwrap_or_default();
        let url = format!("{}{path}", relay.internal);
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        match self.log.block_on(license_service::log::call(&url, method, Some(token.trim()), body)) {
            Ok((status, bytes)) => (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }
}

impl Relay {
    /// A request to the public API written byte for byte; returns the status and the body.
    pub fn public(&self, method: &str, path: &str, api_key: &str, body: &[u8]) -> (u16, Value) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.public).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: relay\r\nX-Api-Key: {api_key}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}
