//! `POST /internal/append-batch {"events":[…]}`: many appends in one request, so that a busy
//! relay pays one HTTP exchange and one copy of the signed tree head per batch instead of per
//! event. Every event is handed to the sequencer at once (they share a group commit when they
//! arrive together); the answer comes once every event is durable under a signed STH, or
//! refused. Same authentication and body limit as the other internal calls.
//!
//! Answer: `{"ok":true,"sths":[STH…],"results":[…]}`, one result per event in request order:
//! `{"ok":true,"leaf_index","leaf_hash","tree_size","audit_path","root","sth":I}` (the proof
//! against `sths[I]`, the STH of the event's commit) or `{"ok":false,"detail"}` for an event
//! refused as invalid (nothing of it was appended). A storage fault fails the whole request.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tlog::Hash;
use wire::SignedSth;
use wire::{AuditStep, InclusionProof};

use crate::error::{ApiError, ApiResult};
use crate::internal_api::check_event;
use crate::sequencer::{AppendError, Submitted};
use crate::state::SharedState;
use jsonapi::json_body;

/// An event of the request: queued with the sequencer, or refused as invalid.
enum Outcome {
    Pending(Submitted),
    Refused(String),
}

/// Most events in one request.
pub const MAX_EVENTS: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    events: Vec<Value>,
}

#[derive(Serialize)]
pub struct BatchAnswer {
    ok: bool,
    sths: Vec<SignedSth>,
    results: Vec<BatchResult>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum BatchResult {
    Appended {
        ok: bool,
        leaf_index: u64,
        leaf_hash: String,
        tree_size: u64,
        audit_path: Vec<AuditStep>,
        root: String,
        sth: usize,
    },
    Refused {
        ok: bool,
        detail: String,
    },
}

pub async fn append_batch(
    State(state): State<SharedState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<BatchAnswer>> {
    let request: BatchRequest = json_body(body)?;
    if request.events.is_empty() || request.events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!("events must hold 1 to {MAX_EVENTS} events")));
    }
    let count = request.events.len();
    // Every valid event is queued with the sequencer before any is waited for, so that they
    // share a commit; one task waits for them all.
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(count);
    for event in request.events {
        outcomes.push(match check_event(event) {
            Ok(event) => Outcome::Pending(state.sequencer.submit(event).await?),
            Err(detail) => Outcome::Refused(detail),
        });
    }
    let mut done = Vec::with_capacity(count);
    for outcome in outcomes {
        done.push(match outcome {
            Outcome::Pending(submitted) => match submitted.wait().await {
                Ok(appended) => Ok(appended),
                Err(AppendError::Invalid(detail)) => Err(format!("event: {detail}")),
                Err(e) => return Err(e.into()),
            },
            Outcome::Refused(detail) => Err(detail),
        });
    }
    let snapshot = state.snapshot()?;
    let mut sths: Vec<Arc<SignedSth>> = Vec::new();
    // The root of each STH's tree, computed once per STH rather than once per event.
    let mut roots: Vec<Hash> = Vec::new();
    let mut results = Vec::with_capacity(count);
    for outcome in done {
        let result = match outcome {
            Ok((leaf_index, leaf_hash, sth)) => {
                let size = sth.body.tree_size;
                let index = match sths.iter().position(|s| s.body.tree_size == size) {
                    Some(i) => i,
                    None => {
                        roots.push(snapshot.root_at(size)?);
                        sths.push(sth);
                        sths.len() - 1
                    }
                };
                if leaf_index >= size {
                    return Err(ApiError::internal("append batch", &"a leaf beyond its STH"));
                }
                let path = snapshot.inclusion_proof(leaf_index, size)?;
                let proof = InclusionProof::new(&leaf_hash, leaf_index, size, &path, &roots[index]);
                BatchResult::Appended {
                    ok: true,
                    leaf_index,
                    leaf_hash: proof.leaf_hash,
                    tree_size: size,
                    audit_path: proof.audit_path,
                    root: proof.root,
                    sth: index,
                }
            }
            Err(detail) => BatchResult::Refused { ok: false, detail },
        };
        results.push(result);
    }
    let sths = sths.iter().map(|sth| SignedSth::clone(sth)).collect();
    Ok(Json(BatchAnswer { ok: true, sths, results }))
}
