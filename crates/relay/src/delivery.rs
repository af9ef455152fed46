//! A response body that reports how its delivery ended: the blob's view is consumed only when
//! the client's TCP stack acknowledged every byte of it.
//!
//! The body ends in one of two ways. Incomplete: the connection died before hyper took every
//! byte (the body is dropped with bytes left) — the view is released at once. Complete: hyper
//! took the last byte (it polled past the last frame or, knowing the exact length, dropped the
//! body after it) — the bytes may still be in hyper's buffer or the kernel's send queue, so
//! the caller gets an [`httpserve::DeliveryWatch`] and consumes the view only if the client
//! acknowledges everything before the deadline (see `httpserve::Connection::watch_delivery`).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Bytes handed to hyper per frame.
const CHUNK: usize = 256 * 1024;

/// How a delivery body ended.
pub enum Ending {
    /// hyper took every byte; whether the client has them is for the watch to tell (None: no
    /// connection to watch, which `httpserve` always provides).
    Sent(Option<httpserve::DeliveryWatch>),
    /// The connection ended first.
    Incomplete,
}

type OnEnd = Box<dyn FnOnce(Ending) + Send + Sync>;

/// The payload of a delivery and what to do when it ends.
pub struct DeliveryBody {
    payload: Bytes,
    offset: usize,
    connection: Option<httpserve::Connection>,
    on_end: Option<OnEnd>,
}

impl DeliveryBody {
    pub fn new(
        payload: Bytes,
        connection: Option<httpserve::Connection>,
        on_end: impl FnOnce(Ending) + Send + Sync + 'static,
    ) -> Self {
        Self { payload, offset: 0, connection, on_end: Some(Box::new(on_end)) }
    }

    fn end(&mut self) {
        let Some(on_end) = self.on_end.take() else { return };
        if self.offset < self.payload.len() {
            return on_end(Ending::Incomplete);
        }
        on_end(Ending::Sent(self.connection.as_ref().map(httpserve::Connection::watch_delivery)));
    }
}

impl Body for DeliveryBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let len = self.payload.len();
        if self.offset < len {
            let end = (self.offset + CHUNK).min(len);
            let chunk = self.payload.slice(self.offset..end);
            self.offset = end;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        self.end();
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.offset >= self.payload.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.payload.len() - self.offset) as u64)
    }
}

impl Drop for DeliveryBody {
    fn drop(&mut self) {
        self.end();
    }
}
