//! The reference license server (ADR R013's server side, for someone running their own
//! licensing and for the tests): `POST /v1/license/check` over TLS, answering from a JSON file
//! of licenses that the admin command line edits (`paramant license server …`) and the server
//! re-reads on every request, so a change — revoke, 402, outage, a remote action — applies to
//! the next check-in. Capability sets are signed with ML-DSA-65.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonapi::ApiError;
use license::capability::{Capabilities, CapabilitySet};
use license::checkin::CheckInRequest;
use license::remote::Remote;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How the reference license server names itself in its log lines.
const SERVER: harden::Daemon = harden::Daemon::new("paramant-license server");

/// How long a capability set is valid as a fresh answer (R013: "hours").
const SET_VALIDITY_MS: u64 = 6 * 3600 * 1000;
/// Largest check-in body accepted.
const MAX_BODY: usize = 16 * 1024;

/// `paramant license server run` settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen, e.g. "127.0.0.1:8443".
    pub listen: SocketAddr,
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// The ML-DSA-65 signing key's 32-byte seed (generated, mode 0600, when absent).
    pub signing_key_file: PathBuf,
    /// The licenses (JSON, edited by the admin commands).
    pub db_file: PathBuf,
}

/// What a license's holder gets at check-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 200 with a signed capability set.
    Active,
    /// 402.
    PaymentRequired,
    /// 410.
    Revoked,
}

/// One license.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LicenseRecord {
    /// Its status.
    pub status: Status,
    /// Tier name.
    pub tier: String,
    /// What the tier unlocks.
    pub capabilities: Capabilities,
    /// Remote actions in force.
    #[serde(default)]
    pub remote: Remote,
    /// Rotation announcement.
    #[serde(default)]
    pub next_pubkey_hash: Option<String>,
    /// Relays that checked in with this key (key sharing shows here).
    #[serde(default)]
    pub relay_ids: Vec<String>,
    /// The last check-in's body, exactly as received.
    #[serde(default)]
    pub last_request_body: Option<String>,
    /// The key exchange of the last check-in's TLS connection.
    #[serde(default)]
    pub last_kx_group: Option<String>,
    /// Check-ins answered.
    #[serde(default)]
    pub check_ins: u64,
}

/// The server's database file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerDb {
    /// Answer every check-in with 503 (an outage on demand).
    #[serde(default)]
    pub outage: bool,
    /// Wait this long before answering (a slow server on demand).
    #[serde(default)]
    pub delay_ms: u64,
    /// Licenses by the SHA-256 (hex) of their token.
    #[serde(default)]
    pub licenses: BTreeMap<String, LicenseRecord>,
}

impl ServerDb {
    /// Reads the file (absent: empty).
    ///
    /// # Errors
    /// Unreadable or malformed file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("{} is not a license db", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Reads the file, applies `change` and writes the result back, all under an exclusive lock
    /// of `path`'s lock file (`flock`), so that two writers — the server answering concurrent
    /// check-ins, the admin command line — never lose each other's update. The new file is
    /// written beside the old one, synced and renamed over it: a reader sees the old or the new
    /// db, never a part. Nothing is written when `change` leaves the db as it was.
    ///
    /// # Errors
    /// The lock, an unreadable or malformed file, `change`'s error, IO errors writing.
    pub fn update<T>(path: &Path, change: impl FnOnce(&mut ServerDb) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let lock_path = path.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
        let mut db = Self::load(path)?;
        let before = serde_json::to_vec(&db)?;
        let out = change(&mut db)?;
        if serde_json::to_vec(&db)? != before {
            db.write(path)?;
        }
        // The lock is released when `lock` is dropped (closed).
        Ok(out)
    }

    /// Writes the file atomically (call under the lock: [`ServerDb::update`]).
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The key a license is filed under: SHA-256 (hex) of its token.
#[must_use]
pub fn license_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

struct ServerState {
    db_file: PathBuf,
    key: crypto::LogSigningKey,
}

/// The negotiated TLS key exchange of a connection.
#[derive(Clone)]
struct KxGroup(String);

/// Loads keys and certificate, binds, and serves until the process is stopped.
///
/// # Errors
/// Unreadable certificate, key or seed; the port is taken.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (key, _) = <crypto::LogSigningKey as crypto::KeyFile>::load_or_generate(&config.signing_key_file)?;
    SERVER.log(format_args!(
        "signing capability sets with ML-DSA-65 key {} (public key hex for [license] ml_dsa_keys: `paramant license server public-key --config`)",
        hex::encode(key.verifying_key().pk_hash())
    ));
    let certs = CertificateDer::pem_file_iter(&config.cert_file)?.collect::<Result<Vec<_>, _>>()?;
    let tls_key = PrivateKeyDer::from_pem_file(&config.key_file)?;
    let tls = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, tls_key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let state = Arc::new(ServerState { db_file: config.db_file, key });
    let app = Router::new()
        .route("/v1/license/check", post(check))
        .fallback(jsonapi::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    SERVER.log(format_args!("listening on https://{}", listener.local_addr()?));
    loop {
        let (stream, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await else {
                return;
            };
            let group = tls.get_ref().1.negotiated_key_exchange_group().map(|g| format!("{:?}", g.name()));
            let kx = KxGroup(group.unwrap_or_default());
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(kx.clone());
                tower_service::Service::call(&mut app.clone(), request)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What a check-in found in the db.
enum Found {
    /// An outage is on.
    Outage,
    /// No such license.
    Unknown,
    /// The license (after counting this check-in).
    Record(Box<LicenseRecord>),
}

/// `POST /v1/license/check`.
async fn check(
    State(state): State<Arc<ServerState>>,
    Extension(kx): Extension<KxGroup>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = jsonapi::body_bytes(body)?;
    let request: CheckInRequest = jsonapi::parse_json(&body)?;
    let delay = ServerDb::load(&state.db_file).map_err(|e| ApiError::internal("db", &e))?.delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    // One read-modify-write under the db's lock, on the blocking pool (the lock may wait for
    // the admin command line).
    let (db_file, id, relay_id) = (state.db_file.clone(), license_id(&request.license_key), request.relay_id.clone());
    let received = String::from_utf8_lossy(&body).into_owned();
    let found = tokio::task::spawn_blocking(move || {
        ServerDb::update(&db_file, |db| {
            if db.outage {
                return Ok(Found::Outage);
            }
            let Some(record) = db.licenses.get_mut(&id) else { return Ok(Found::Unknown) };
            record.last_request_body = Some(received);
            record.last_kx_group = Some(kx.0);
            record.check_ins += 1;
            if !record.relay_ids.contains(&relay_id) {
                record.relay_ids.push(relay_id);
            }
            Ok(Found::Record(Box::new(record.clone())))
        })
    })
    .await
    .map_err(|e| ApiError::internal("db task", &e))?
    .map_err(|e| ApiError::internal("db", &e))?;
    let record = match found {
        Found::Outage => {
            return Ok(
                (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"error": "unavailable"}))).into_response()
            );
        }
        Found::Unknown => {
            return Ok((StatusCode::NOT_FOUND, Json(serde_json::json!({"error": "unknown_license"}))).into_response());
        }
        Found::Record(record) => *record,
    };
    match record.status {
        Status::PaymentRequired => {
            return Ok(
                (StatusCode::PAYMENT_REQUIRED, Json(serde_json::json!({"error": "payment_required"}))).into_response()
            );
        }
        Status::Revoked => return Ok((StatusCode::GONE, Json(serde_json::json!({"error": "revoked"}))).into_response()),
        Status::Active => {}
    }
    let now = now_ms();
    let set = CapabilitySet {
        issued_at: wire::iso8601_ms(now),
        expires_at: wire::iso8601_ms(now + SET_VALIDITY_MS),
        license_key: request.license_key,
        relay_id: request.relay_id,
        nonce: request.nonce,
        tier: record.tier,
        capabilities: record.capabilities,
        next_check_in_seconds: SET_VALIDITY_MS / 1000,
        next_pubkey_hash: record.next_pubkey_hash,
        remote: record.remote,
    };
    let signer = state.clone();
    let signed = tokio::task::spawn_blocking(move || set.sign(&signer.key))
        .await
        .map_err(|e| ApiError::internal("sign", &e))?
        .map_err(|e| ApiError::internal("sign", &e))?;
    Ok(([("content-type", "application/json")], signed).into_response())
}
