//! A response body that reports whether it was completely sent: the blob is burned only then.
//! Completion is the moment hyper has taken every byte: it either polls past the last frame or,
//! knowing the exact length, drops the body after writing it. A connection that dies earlier
//! drops the body with bytes left, which reports an incomplete delivery and makes the view
//! available again.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Bytes handed to hyper per frame, so completion is observed only after most data was written.
const CHUNK: usize = 256 * 1024;

type OnDone = Box<dyn FnOnce(bool) + Send + Sync>;

/// The payload of a delivery and what to do when it ends (`true`: completely sent).
pub struct DeliveryBody {
    payload: Bytes,
    offset: usize,
    on_done: Option<OnDone>,
}

impl DeliveryBody {
    pub fn new(payload: Bytes, on_done: impl FnOnce(bool) + Send + Sync + 'static) -> Self {
        Self { payload, offset: 0, on_done: Some(Box::new(on_done)) }
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
        if let Some(done) = self.on_done.take() {
            done(true);
        }
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
        if let Some(done) = self.on_done.take() {
            done(self.offset >= self.payload.len());
        }
    }
}
