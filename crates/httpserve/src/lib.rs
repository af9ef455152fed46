//! httpserve: the one server loop every paramant listener runs (relay public — plain or TLS —,
//! relay internal, log public, log internal, and whatever service comes next).
//!
//! HTTP/1.1 only (HTTP/2 is not offered, not even over TLS: one request per connection at a
//! time keeps every per-request limit a per-connection limit). What it enforces before any
//! handler runs:
//! - a cap on open connections in all and per client address; the excess is answered with a
//!   canned `503` written without blocking and closed, without spawning anything;
//! - a header-read timeout, which hyper also runs while a keep-alive connection waits for its
//!   next request (so it is the idle keep-alive timeout too), and the TLS handshake timeout;
//! - an idle timeout: a connection on which no byte moved either way for that long is closed
//!   (a client that stops reading a response, or stops sending a body);
//! - the soft descriptor limit is raised to the hard one, and the connection cap kept below it
//!   with room for the service's own files and outgoing connections.
//!
//! Handlers find [`axum::extract::ConnectInfo`] and a [`Connection`] in the request extensions;
//! the latter tells whether the client acknowledged a response ([`Connection::watch_delivery`]).
#![deny(missing_docs)]

mod conn;
mod slots;
mod socket;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde::Deserialize;

pub use conn::{Connection, Delivered, DeliveryWatch};

/// Descriptors kept free for the service itself (database, log client, webhooks, mail).
const RESERVED_FDS: u64 = 256;
/// Pause after `accept` failed for lack of descriptors or memory, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Refused connections that may linger at once (each holds a descriptor for up to [`LINGER`]).
const MAX_LINGERING: usize = 64;
/// Longest a refused connection lingers, reading what its client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read from a refused connection before it is closed anyway.
const LINGER_DRAIN: usize = 256 * 1024;
/// The whole answer to a connection beyond a cap.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 5\r\nconnection: close\r\ncontent-length: 82\r\n\r\n\
{\"error\":\"too_many_connections\",\"detail\":\"too many open connections; retry later\"}";

/// Connection limits of one listener (the `[connections]` table of a service's config).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Seconds a client may take to send a request's headers (and the TLS handshake), and the
    /// longest a keep-alive connection may wait for its next request.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds without a byte moving either way after which a connection is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Open connections at most (lowered to fit the descriptor limit).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections per client address at most (IPv6: per /64).
    #[serde(default = "default_max_per_ip")]
    pub max_connections_per_ip: usize,
}

fn default_header_timeout() -> u64 {
    10
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_max_connections() -> usize {
    16_384
}
fn default_max_per_ip() -> usize {
    256
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: default_header_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_per_ip(),
        }
    }
}

impl Limits {
    /// These limits without the per-address cap: for internal listeners, whose few callers
    /// (the sector's relay, the admin service) are authenticated and share one address.
    pub fn without_per_ip_cap(&self) -> Self {
        Self { max_connections_per_ip: self.max_connections, ..self.clone() }
    }

    /// What is wrong with these limits, in words for the config file's owner.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.header_read_timeout_secs == 0 || self.idle_timeout_secs == 0 {
            return Err("timeouts must be at least 1 second");
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err("connection caps must be at least 1");
        }
        Ok(())
    }
}

/// A bound listening socket.
pub enum Listener {
    /// A TCP socket (public or internal listener).
    Tcp(tokio::net::TcpListener),
    /// A Unix socket (a co-located service's internal listener).
    Unix(tokio::net::UnixListener),
}

/// What one listener serves and how.
pub struct Server {
    /// The routes it serves.
    pub app: Router,
    /// Its connection limits and timeouts.
    pub limits: Limits,
    /// TLS for a TCP listener.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Called once for every connection a cap refused (the service counts it in its metrics;
    /// this crate stays free of them).
    pub on_refused: fn(),
}

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`): a burst of
/// connects is queued, not dropped into SYN retransmits.
const BACKLOG: i32 = 4096;

/// Binds a TCP listener (non-blocking, `SO_REUSEADDR`, a long accept queue), before the
/// sandbox and the capability drop.
pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Raises the soft descriptor limit to the hard one (best effort); returns the soft limit now.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 1024 };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

impl Server {
    /// Accepts and serves until `stop` resolves, then lets open connections finish their
    /// current request (keep-alive ends) and returns when all are closed.
    pub async fn serve(self, listener: Listener, stop: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        self.limits.check().map_err(std::io::Error::other)?;
        let fds = raise_fd_limit();
        let spare = fds.saturating_sub(RESERVED_FDS + MAX_LINGERING as u64).max(1);
        let max_total = self.limits.max_connections.min(spare as usize);
        let slots = slots::Slots::new(max_total, self.limits.max_connections_per_ip);
        let lingering = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(self);
        let graceful = GracefulShutdown::new();
        let mut stop = std::pin::pin!(stop);
        loop {
            let accepted = tokio::select! {
                accepted = accept(&listener) => accepted,
                () = &mut stop => break,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    if is_resource_exhaustion(&e) {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            };
            let state = match &stream {
                Accepted::Tcp(tcp) => conn::ConnState::new(Some(conn::tcp_fd(tcp))),
                Accepted::Unix(_) => conn::ConnState::new(None),
            };
            let Ok(slot) = slots.admit(peer.map(|p| p.ip()), Some(state.clone())) else {
                (shared.on_refused)();
                refuse(stream, &lingering);
                continue;
            };
            let server = shared.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                server.connection(stream, state, peer, watcher).await;
                drop(slot);
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }

    async fn connection(
        self: Arc<Self>,
        stream: Accepted,
        state: Arc<conn::ConnState>,
        peer: Option<SocketAddr>,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let header_timeout = Duration::from_secs(self.limits.header_read_timeout_secs);
        match stream {
            Accepted::Tcp(tcp) => {
                let _ = tcp.set_nodelay(true);
                let io = conn::TrackedIo::new(tcp, state.clone());
                match &self.tls {
                    Some(acceptor) => {
                        let Ok(Ok(tls)) = tokio::time::timeout(header_timeout, acceptor.accept(io)).await else {
                            return;
                        };
                        self.run(tls, state, peer, watcher).await;
                    }
                    None => self.run(io, state, peer, watcher).await,
                }
            }
            Accepted::Unix(unix) => {
                let io = conn::TrackedIo::new(unix, state.clone());
                self.run(io, state, peer, watcher).await;
            }
        }
    }

    /// Serves HTTP/1.1 on one connection until it closes, times out or goes idle.
    async fn run<I>(
        &self,
        io: I,
        state: Arc<conn::ConnState>,
        peer: Option<SocketAddr>,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let app = self.app.clone();
        let handle = Connection(state.clone());
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            if let Some(peer) = peer {
                request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            }
            request.extensions_mut().insert(handle.clone());
            // In progress (not evictable) until hyper drops the response body.
            let request_guard = handle.0.request_started();
            let response = tower_service::Service::call(&mut app.clone(), request);
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| conn::GuardedBody::new(body, request_guard)))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(self.limits.header_read_timeout_secs))
            .keep_alive(true);
        let connection = builder.serve_connection(TokioIo::new(io), service);
        let served = watcher.watch(connection);
        let idle = Duration::from_secs(self.limits.idle_timeout_secs);
        tokio::select! {
            _ = served => {}
            // Reset, not closed: bytes still queued must not reach a client that stalled.
            () = idle_watchdog(&state, idle) => state.abort(),
        }
    }
}

/// Resolves once no byte moved on the connection for `idle`.
async fn idle_watchdog(state: &conn::ConnState, idle: Duration) {
    loop {
        let due = state.last_progress() + idle;
        if tokio::time::Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<(Accepted, Option<SocketAddr>)> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, peer)| (Accepted::Tcp(s), Some(peer))),
        Listener::Unix(l) => l.accept().await.map(|(s, _)| (Accepted::Unix(s), None)),
    }
}

/// Out of descriptors or kernel memory: retrying at once would spin.
fn is_resource_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Answers a connection beyond a cap with the canned 503 (if the socket takes it at once) and
/// closes it with a lingering close: our side is shut for writing, then whatever the client
/// sends is read and dropped for up to [`LINGER`], so that the request the client already sent
/// does not make our close a reset that could destroy the 503 before the client read it. At
/// most [`MAX_LINGERING`] refusals linger at once; beyond, the socket is closed at once.
fn refuse(stream: Accepted, lingering: &Arc<AtomicUsize>) {
    let written = match &stream {
        Accepted::Tcp(tcp) => tcp.try_write(REFUSAL),
        Accepted::Unix(unix) => unix.try_write(REFUSAL),
    };
    if !matches!(written, Ok(n) if n == REFUSAL.len()) {
        return;
    }
    if lingering.fetch_add(1, Ordering::AcqRel) >= MAX_LINGERING {
        lingering.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let lingering = lingering.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(LINGER, linger(stream)).await;
        lingering.fetch_sub(1, Ordering::AcqRel);
    });
}

/// Shuts our side for writing, then reads and drops up to [`LINGER_DRAIN`] bytes until the
/// client closes.
async fn linger(stream: Accepted) {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
    async fn drain(stream: &mut (impl AsyncRead + Unpin)) {
        let mut buf = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_DRAIN {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    }
    match stream {
        Accepted::Tcp(mut tcp) => {
            let _ = tcp.shutdown().await;
            drain(&mut tcp).await;
        }
        Accepted::Unix(mut unix) => {
            let _ = unix.shutdown().await;
            drain(&mut unix).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canned_refusal_has_the_length_it_declares() {
        let text = std::str::from_utf8(REFUSAL).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
    }
}
