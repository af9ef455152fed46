//! One accepted connection: its IO, counted and watched, and the handle a handler gets to learn
//! whether the client's TCP stack acknowledged everything the response wrote.
//!
//! How "acknowledged" is established: hyper calls the IO's `poll_flush` only once its own
//! write buffer is empty (and TLS only once its records are written). So a flush *after* a
//! response body ended means every byte of that body is in the kernel; the kernel's send queue
//! (`SIOCOUTQ`) is then empty exactly when the client's TCP stack acknowledged all of it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::socket;

/// First and longest pause between two looks at the send queue.
const PROBE_FIRST: Duration = Duration::from_millis(1);
const PROBE_MAX: Duration = Duration::from_millis(25);

/// What a connection shares with its handlers and its watchdog.
pub(crate) struct ConnState {
    /// The socket's descriptor while it is open (None for Unix sockets, and once closed).
    fd: Mutex<Option<RawFd>>,
    /// The socket, kept open after hyper let go of it while a delivery still waits for its
    /// acknowledgement (so the descriptor cannot be reused by another connection meanwhile).
    parked: Mutex<Option<Box<dyn Send>>>,
    /// Deliveries waiting for their acknowledgement.
    waiters: AtomicUsize,
    /// Requests in progress: from their head being parsed until their response body is
    /// dropped (written whole, or abandoned).
    busy: AtomicUsize,
    /// Times hyper flushed with an empty write buffer.
    flushes: AtomicU64,
    /// Milliseconds since `epoch` of the last byte read or written.
    last_progress_ms: AtomicU64,
    epoch: Instant,
}

impl ConnState {
    pub(crate) fn new(fd: Option<RawFd>) -> Arc<Self> {
        Arc::new(Self {
            fd: Mutex::new(fd),
            parked: Mutex::new(None),
            waiters: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            flushes: AtomicU64::new(0),
            last_progress_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn progressed(&self) {
        self.last_progress_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// When bytes last moved on this connection.
    pub(crate) fn last_progress(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed))
    }

    /// The kernel's view of the send queue, if the socket is a TCP socket still open.
    fn send_queue(&self) -> Option<socket::SendQueue> {
        let fd = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        // The descriptor stays open while the lock is held: it is closed only after `fd` was
        // cleared under this lock (`TrackedIo::drop`, `abort`, `DeliveryWatch::drop`).
        let raw = (*fd)?;
        socket::send_queue(borrow_fd(raw))
    }

    /// Marks a request in progress until the guard is dropped.
    pub(crate) fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.busy.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    /// Closes the connection (FIN both ways, so hyper's next read ends it) if it is idle: no
    /// request in progress and no delivery waiting for its acknowledgement. Whether it did.
    ///
    /// A request whose head arrives at this very moment can be cut off before its answer, as
    /// when a keep-alive timeout fires; HTTP clients retry such requests on a new connection.
    pub(crate) fn try_evict(&self) -> bool {
        let fd = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        let idle = self.busy.load(Ordering::Acquire) == 0 && self.waiters.load(Ordering::Acquire) == 0;
        match *fd {
            Some(raw) if idle => {
                let borrowed = borrow_fd(raw);
                let _ = socket2::SockRef::from(&borrowed).shutdown(std::net::Shutdown::Both);
                true
            }
            _ => false,
        }
    }

    /// Resets the connection (RST, unsent bytes discarded) and stops its IO.
    pub(crate) fn abort(&self) {
        let mut fd = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(raw) = *fd {
            let borrowed = borrow_fd(raw);
            let socket = socket2::SockRef::from(&borrowed);
            let _ = socket.set_linger(Some(Duration::ZERO));
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        let parked = self.parked.lock().unwrap_or_else(|p| p.into_inner()).take();
        if parked.is_some() {
            *fd = None;
        }
        drop(fd);
        // The parked socket (if hyper had let go of it) closes here, its slot already cleared.
        drop(parked);
    }
}

/// A descriptor known to be open (the caller holds the `fd` lock of its connection).
fn borrow_fd(raw: RawFd) -> BorrowedFd<'static> {
    #[allow(unsafe_code)]
    // SAFETY: only called with the `ConnState::fd` lock held, and that slot is cleared before the
    // socket is closed; the borrow is used only while the lock is held.
    unsafe {
        BorrowedFd::borrow_raw(raw)
    }
}

/// The IO hyper reads and writes: the socket, with progress and flushes recorded.
pub(crate) struct TrackedIo<S: Send + 'static> {
    inner: Option<S>,
    state: Arc<ConnState>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TrackedIo<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>) -> Self {
        Self { inner: Some(inner), state }
    }

    fn io(&mut self) -> &mut S {
        // Invariant: `inner` is taken only in `drop`.
        self.inner.as_mut().expect("io present until drop")
    }
}

impl<S: Send + 'static> Drop for TrackedIo<S> {
    fn drop(&mut self) {
        let mut fd = self.state.fd.lock().unwrap_or_else(|p| p.into_inner());
        if self.state.waiters.load(Ordering::Acquire) > 0 && fd.is_some() {
            // A delivery still waits for the client's acknowledgement: keep the socket open.
            if let Some(inner) = self.inner.take() {
                *self.state.parked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(inner));
            }
            return;
        }
        *fd = None;
        drop(fd);
        // `inner` (the socket) is closed after this, with `fd` already cleared.
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for TrackedIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(self.io()).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.progressed();
        }
        result
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for TrackedIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(self.io()).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.progressed();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(self.io()).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.state.progressed();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(self.io()).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.state.flushes.fetch_add(1, Ordering::AcqRel);
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.waiters.load(Ordering::Acquire) > 0 {
            // A delivery waits for its acknowledgement: no FIN yet, so the only way the socket
            // reaches TCP_CLOSE meanwhile is a reset. The FIN goes out when the socket closes.
            return Poll::Ready(Ok(()));
        }
        Pin::new(self.io()).poll_shutdown(cx)
    }
}

/// A request in progress on its connection (see [`ConnState::request_started`]).
pub(crate) struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until hyper drops it.
pub(crate) struct GuardedBody {
    inner: axum::body::Body,
    _request: RequestGuard,
}

impl GuardedBody {
    pub(crate) fn new(inner: axum::body::Body, request: RequestGuard) -> Self {
        Self { inner, _request: request }
    }
}

impl hyper::body::Body for GuardedBody {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The raw descriptor of a TCP stream, for the connection state.
pub(crate) fn tcp_fd(stream: &tokio::net::TcpStream) -> RawFd {
    stream.as_fd().as_raw_fd()
}

/// What a handler learns about its connection (in the request's extensions).
#[derive(Clone)]
pub struct Connection(pub(crate) Arc<ConnState>);

impl Connection {
    /// To be called when a response body has handed its last byte to hyper: starts watching
    /// for the client's acknowledgement of everything written until then.
    pub fn watch_delivery(&self) -> DeliveryWatch {
        self.0.waiters.fetch_add(1, Ordering::AcqRel);
        DeliveryWatch { state: self.0.clone(), flushes_at_start: self.0.flushes.load(Ordering::Acquire) }
    }
}

/// Waits for a delivery's acknowledgement; see [`Connection::watch_delivery`].
pub struct DeliveryWatch {
    state: Arc<ConnState>,
    flushes_at_start: u64,
}

/// How a watched delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The client's TCP stack acknowledged every byte.
    Acknowledged,
    /// The connection was reset or closed with bytes unacknowledged, or is not TCP.
    Lost,
    /// Not acknowledged before the deadline: the connection was reset.
    TimedOut,
}

impl DeliveryWatch {
    /// Resolves once every byte written before the watch started (and flushed after it) was
    /// acknowledged by the client, or when that can no longer happen, or at `deadline` (then
    /// the connection is reset so the client cannot complete the body later).
    pub async fn acknowledged(self, deadline: Duration) -> Delivered {
        let until = Instant::now() + deadline;
        let mut pause = PROBE_FIRST;
        loop {
            let flushed = self.state.flushes.load(Ordering::Acquire) > self.flushes_at_start;
            match self.state.send_queue() {
                None => return Delivered::Lost,
                Some(q) if !q.open => return Delivered::Lost,
                Some(q) if flushed && q.unacknowledged == 0 => return Delivered::Acknowledged,
                Some(_) => {}
            }
            if Instant::now() >= until {
                self.state.abort();
                return Delivered::TimedOut;
            }
            tokio::time::sleep(pause.min(until.saturating_duration_since(Instant::now()))).await;
            pause = (pause * 2).min(PROBE_MAX);
        }
    }
}

impl Drop for DeliveryWatch {
    fn drop(&mut self) {
        // Under the `fd` lock, like `TrackedIo::drop`, so parking and unparking cannot interleave.
        let mut fd = self.state.fd.lock().unwrap_or_else(|p| p.into_inner());
        if self.state.waiters.fetch_sub(1, Ordering::AcqRel) == 1 {
            let parked = self.state.parked.lock().unwrap_or_else(|p| p.into_inner()).take();
            if parked.is_some() {
                // hyper already let go: the last waiter closes the socket, slot cleared first.
                *fd = None;
            }
            drop(fd);
            drop(parked);
        }
    }
}
