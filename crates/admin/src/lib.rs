//! paramant-admin: user accounts with TOTP (`/api/user/*`), the admin API
//! (`/admin/api/admin/*`), the internal `/v2/user/*` TOTP endpoints and the web panel. It holds
//! the users' TOTP secrets (sealed at rest) so that the relays, which parse untrusted uploads,
//! never do; it drives the relays' API keys over their internal API and records every admin
//! action as a leaf in the sector log.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin_api;
pub mod admin_ops;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod internal_api;
pub mod license_hook;
pub mod mailer;
pub mod ratelimit;
pub mod state;
pub mod store;
pub mod totp;
pub mod upstream;
pub mod user_api;
pub mod web;

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use config::Config;
use state::{AppState, SharedState};

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "admin.redb";
/// Largest request body on the public listener (forms and JSON are a few hundred bytes).
pub const MAX_PUBLIC_BODY: usize = 16 * 1024;
/// How this service names itself in its log lines.
pub const DAEMON: harden::Daemon = harden::Daemon::new("paramant-admin");
/// Names of the secret files (in `$CREDENTIALS_DIRECTORY`, else generated in `state_dir`).
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// `X-Internal-Auth` of the admin's internal listener.
pub const INTERNAL_TOKEN_FILE: &str = "admin-internal-token";
/// The key that seals TOTP secrets at rest.
pub const TOTP_KEY_FILE: &str = "totp-key";
/// The HMAC key for CSRF tokens and the audit subject salt.
pub const PANEL_KEY_FILE: &str = "panel-key";

/// The strict CSP of every answer: nothing inline, nothing from elsewhere.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Secrets and the database, opened (secrets generated on a first start) before the sandbox.
pub struct Opened {
    /// The configuration the service was started with.
    pub config: Config,
    db: store::AdminDb,
    license: license_gate::Gate,
    admin_token: crypto::Secret,
    internal_token: crypto::Secret,
    totp_key: crypto::Secret,
    panel_key: crypto::Secret,
    relay_tokens: Vec<crypto::Secret>,
    log_token: Option<crypto::Secret>,
}

/// Creates the state directory, loads or generates the secrets, opens `admin.redb`.
pub fn open(config: Config) -> anyhow::Result<Opened> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.state_dir)
        .with_context(|| format!("cannot create state directory {}", config.state_dir.display()))?;
    let secret = |name: &str, prefix: &str| crypto::Secret::load_or_generate(&config.secret_path(name), prefix);
    let admin_token = secret(ADMIN_TOKEN_FILE, "pat_")?;
    let internal_token = secret(INTERNAL_TOKEN_FILE, "pai_")?;
    let totp_key = secret(TOTP_KEY_FILE, "ptk_")?;
    let panel_key = secret(PANEL_KEY_FILE, "ppk_")?;
    let relay_tokens = config
        .relays
        .iter()
        .map(|r| {
            crypto::Secret::load(&r.token_file)
                .with_context(|| format!("cannot read relay {}'s internal token {}", r.sector, r.token_file.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let log_token = config
        .ctlog
        .as_ref()
        .map(|c| {
            crypto::Secret::load(&c.token_file)
                .with_context(|| format!("cannot read the log's token {}", c.token_file.display()))
        })
        .transpose()?;
    let db = store::AdminDb::open(&config.state_dir.join(DB_FILE)).context("cannot open the admin database")?;
    let license = license_gate::Gate::new(config.license.clone()).context("invalid [license]")?;
    Ok(Opened { config, db, license, admin_token, internal_token, totp_key, panel_key, relay_tokens, log_token })
}

impl Opened {
    fn start(self, hardening: harden::Hardening) -> SharedState {
        let Opened { config, db, license, admin_token, internal_token, totp_key, panel_key, relay_tokens, log_token } =
            self;
        let relays = upstream::Relays {
            relays: config
                .relays
                .iter()
                .zip(relay_tokens)
                .map(|(r, token)| upstream::Upstream::new(&r.sector, &r.internal_url, token))
                .collect(),
        };
        let log = config
            .ctlog
            .as_ref()
            .zip(log_token)
            .map(|(c, token)| upstream::Upstream::new("log", &c.internal_url, token));
        Arc::new(AppState {
            limits: state::Limits::new(&config.limits),
            license,
            user_creation: tokio::sync::Mutex::new(()),
            clock: clock::Clock::new(config.danger_clock_offset_file.clone()),
            sealer: totp::Sealer::new(&totp_key),
            db,
            admin_token,
            internal_token,
            panel_key,
            relays,
            log,
            hardening,
            config,
        })
    }
}

/// The listening sockets, bound before the sandbox.
pub struct Listeners {
    public: std::net::TcpListener,
    internal: std::net::TcpListener,
}

/// Binds the public and internal listeners.
pub fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let bind = |addr: SocketAddr| -> anyhow::Result<std::net::TcpListener> {
        httpserve::bind_tcp(addr).with_context(|| format!("cannot listen on {addr}"))
    };
    Ok(Listeners { public: bind(config.public_listen)?, internal: bind(config.internal_listen)? })
}

/// The public router: accounts API, admin API, web panel, `/health`.
pub fn public_router(state: SharedState) -> Router {
    Router::new()
        .merge(user_api::router())
        .merge(admin_api::router())
        .merge(web::router())
        .route("/health", get(health))
        .fallback(jsonapi::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), same_origin_api))
        .layer(middleware::from_fn(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_PUBLIC_BODY))
        .with_state(state)
}

async fn health(axum::extract::State(state): axum::extract::State<SharedState>) -> Json<serde_json::Value> {
    Json(json!({
        "ok": true,
        "service": "paramant-admin",
        "version": env!("CARGO_PKG_VERSION"),
        "relays": state.relays.relays.len(),
        "audit_log": state.log.is_some(),
        "sandbox": state.hardening.health(),
    }))
}

/// Headers on every answer: the strict CSP and friends.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Refuses cross-site state changes on the JSON APIs: a request whose `Origin` is not the
/// panel's, or that the browser marks `Sec-Fetch-Site: cross-site`, gets 403 (the cookie is
/// SameSite=Strict as well; the web forms carry CSRF tokens).
async fn same_origin_api(
    axum::extract::State(state): axum::extract::State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/") || path.starts_with("/admin/api/");
    if api && request.method() != Method::GET {
        let headers = request.headers();
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let cross_origin = origin
            .is_some_and(|o| o != state.config.public_url() && o != format!("http://{}", state.config.public_listen));
        let cross_site = headers.get("sec-fetch-site").is_some_and(|v| v == "cross-site");
        if cross_origin || cross_site {
            return jsonapi::ApiError::forbidden("cross-site request refused").into_response();
        }
    }
    next.run(request).await
}

/// Serves until SIGTERM or Ctrl-C. `READY=1` once both listeners serve.
pub async fn serve(opened: Opened, hardening: harden::Hardening, listeners: Listeners) -> anyhow::Result<()> {
    let state = opened.start(hardening);
    if state.config.danger_clock_offset_file.is_some() {
        DAEMON.log("danger_clock_offset_file is set: the clock follows a test file (never in production)");
    }
    let public = tokio::net::TcpListener::from_std(listeners.public)?;
    let internal = tokio::net::TcpListener::from_std(listeners.internal)?;
    let drain = harden::Drain::new();
    let limits = state.config.connections.clone();
    // The panel has no metrics endpoint: refusals are answered (503) but not counted.
    let public_server =
        httpserve::Server { app: public_router(state.clone()), limits: limits.clone(), tls: None, on_refused: || {} };
    let public_task = tokio::spawn(public_server.serve(httpserve::Listener::Tcp(public), drain.started()));
    let internal_server = httpserve::Server {
        app: internal_api::router(state.clone()),
        limits: limits.without_per_ip_cap(),
        tls: None,
        on_refused: || {},
    };
    let internal_task = tokio::spawn(internal_server.serve(httpserve::Listener::Tcp(internal), drain.started()));
    let line = status_line(&state);
    DAEMON.log(format_args!("{line} on {}", state.config.public_url()));
    DAEMON.ready(&line);
    let status_state = state.clone();
    DAEMON.spawn_status_updates(Duration::from_secs(5), move || status_line(&status_state));
    DAEMON.stop_requested("stopping").await;
    drain.start();
    public_task.await?.context("public listener")?;
    internal_task.await?.context("internal listener")?;
    Ok(())
}

fn status_line(state: &AppState) -> String {
    format!("serving accounts for {} relay(s){}", state.relays.relays.len(), state.hardening.status_suffix())
}
