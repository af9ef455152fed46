//! Appends to the log in batches: every append of this relay (a transfer before its upload is
//! answered, a delivery after its body was acknowledged, a device registration) joins a queue,
//! and up to [`MAX_IN_FLIGHT`] tasks send whatever is queued as one `POST
//! /internal/append-batch`. Under load many appends share one HTTP exchange and one copy of
//! the signed tree head; alone, an append goes at once, as before. A caller's append resolves
//! only when the log answered for its event — durable under a signed STH, or refused — so
//! nothing is acknowledged before it is in the log.
//!
//! The requests are sent from spawned tasks, so a caller that goes away (its client hung up)
//! does not cancel a batch that carries other callers' events.

use std::sync::{Arc, Mutex};

use axum::http::{Request, StatusCode, Uri};
use bytes::Bytes;
use http_body_util::Full;
use jsonapi::ApiError;
use serde::Deserialize;
use tokio::sync::oneshot;

use crate::log_client::{Appended, Link, ProofJson};

/// Batch requests on their way to the log at once.
const MAX_IN_FLIGHT: usize = 4;
/// Most events in one request (the log takes up to 1024).
const MAX_EVENTS: usize = 512;
/// Most bytes of events in one request (the log's internal body limit is 256 KiB).
const MAX_BYTES: usize = 192 * 1024;

type Reply = oneshot::Sender<Result<Appended, ApiError>>;

/// The queue and the tasks that empty it.
pub struct Batcher {
    link: Arc<Link>,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    events: Vec<(Vec<u8>, Reply)>,
    in_flight: usize,
}

/// The log's answer; see `ctlog::internal_batch`.
#[derive(Deserialize)]
struct BatchAnswer {
    sths: Vec<wire::SignedSth>,
    results: Vec<BatchResult>,
}

#[derive(Deserialize)]
struct BatchResult {
    ok: bool,
    #[serde(default)]
    leaf_index: u64,
    #[serde(default)]
    leaf_hash: String,
    #[serde(default)]
    tree_size: u64,
    #[serde(default)]
    audit_path: Vec<wire::AuditStep>,
    #[serde(default)]
    root: String,
    #[serde(default)]
    sth: usize,
    #[serde(default)]
    detail: String,
}

impl Batcher {
    pub fn new(link: Arc<Link>) -> Arc<Self> {
        Arc::new(Self { link, queue: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue is only pushed to and drained; a panic cannot leave it half-updated.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `event` (its JSON) with the next batch; resolves with its proof.
    pub async fn append(self: &Arc<Self>, event: Vec<u8>) -> Result<Appended, ApiError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.events.push((event, reply));
            let start = queue.in_flight < MAX_IN_FLIGHT;
            if start {
                queue.in_flight += 1;
            }
            start
        };
        if start {
            tokio::spawn(self.clone().send_queued());
        }
        answer.await.map_err(|_| unavailable(&"the batch was dropped"))?
    }

    /// Sends what is queued, batch after batch, until the queue is empty.
    async fn send_queued(self: Arc<Self>) {
        loop {
            let batch = {
                let mut queue = self.lock();
                if queue.events.is_empty() {
                    queue.in_flight -= 1;
                    return;
                }
                let (mut count, mut bytes) = (0, 0);
                for (event, _) in &queue.events {
                    if count == MAX_EVENTS || (count > 0 && bytes + event.len() > MAX_BYTES) {
                        break;
                    }
                    count += 1;
                    bytes += event.len() + 1;
                }
                queue.events.drain(..count).collect::<Vec<_>>()
            };
            let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match self.send(&events).await {
                Ok(results) => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// One request; per event its proof or refusal.
    async fn send(&self, events: &[Vec<u8>]) -> Result<Vec<Result<Appended, ApiError>>, ApiError> {
        let mut body = Vec::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + 16);
        body.extend_from_slice(b"{\"events\":[");
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(event);
        }
        body.extend_from_slice(b"]}");
        let link = &self.link;
        let uri: Uri = format!("{}/internal/append-batch", link.internal_url)
            .parse()
            .map_err(|e| ApiError::internal("log url", &e))?;
        let request = Request::post(uri)
            .header("content-type", "application/json")
            .header("x-internal-auth", link.token.danger_expose())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ApiError::internal("log request", &e))?;
        let sent = link.send(request).await;
        // Appended or not known: cached reads may be older than the log now.
        link.cache.invalidate();
        let (status, bytes) = sent?;
        if !status.is_success() {
            return Err(link.refusal(status, &bytes));
        }
        let answer: BatchAnswer = serde_json::from_slice(&bytes).map_err(|e| ApiError::internal("log answer", &e))?;
        if answer.results.len() != events.len() {
            return Err(ApiError::internal("log answer", &"one result per event expected"));
        }
        // Each STH (with its 4.4 KB signature) is rendered once per batch and shared.
        let sths = answer.sths.iter().map(ProofJson::render_sth).collect::<Result<Vec<_>, _>>()?;
        Ok(answer.results.into_iter().map(|r| r.into_appended(&sths)).collect())
    }
}

impl BatchResult {
    /// The API's `merkle_proof` of an appended event (the log's single-append answer without
    /// its `ok`), or the log's refusal of it.
    fn into_appended(self, sths: &[Arc<str>]) -> Result<Appended, ApiError> {
        if !self.ok {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "log_refused", self.detail));
        }
        let sth = sths.get(self.sth).ok_or_else(|| ApiError::internal("log answer", &"no such STH"))?;
        let merkle_proof = ProofJson::new(
            &self.audit_path,
            &self.leaf_hash,
            self.leaf_index,
            &self.root,
            sth.clone(),
            self.tree_size,
        )?;
        Ok(Appended { leaf_hash: self.leaf_hash, leaf_index: self.leaf_index, merkle_proof })
    }
}

fn unavailable(e: &dyn std::fmt::Display) -> ApiError {
    crate::DAEMON.log(format_args!("log call failed: {e}"));
    ApiError::unavailable("log_unavailable", "the transparency log is not answering", 5)
}
