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
use wire::AuditStep;
use wire::SignedSth;

use crate::error::{ApiError, ApiResult};
use crate::internal_api::check_event;
use crate::sequencer::{AppendError, Appended};
use crate::state::{SharedState, inclusion_proof};
use jsonapi::json_body;

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
    // Every valid event goes to the sequencer at once, so that they can share a commit.
    let mut outcomes: Vec<Option<Result<Appended, String>>> = (0..count).map(|_| None).collect();
    let mut pending = tokio::task::JoinSet::new();
    for (index, event) in request.events.into_iter().enumerate() {
        match check_event(event) {
            Ok(event) => {
                let sequencer = state.sequencer.clone();
                pending.spawn(async move { (index, sequencer.append(event).await) });
            }
            Err(detail) => outcomes[index] = Some(Err(detail)),
        }
    }
    while let Some(joined) = pending.join_next().await {
        let (index, appended) = joined.map_err(|e| ApiError::internal("append task", &e))?;
        outcomes[index] = Some(match appended {
            Ok(appended) => Ok(appended),
            Err(AppendError::Invalid(detail)) => Err(format!("event: {detail}")),
            Err(e) => return Err(e.into()),
        });
    }
    let snapshot = state.snapshot()?;
    let mut sths: Vec<SignedSth> = Vec::new();
    let mut results = Vec::with_capacity(count);
    for outcome in outcomes {
        let result = match outcome {
            Some(Ok(appended)) => {
                let size = appended.sth.body.tree_size;
                let sth = match sths.iter().position(|s| s.body.tree_size == size) {
                    Some(i) => i,
                    None => {
                        sths.push(appended.sth);
                        sths.len() - 1
                    }
                };
                let proof = inclusion_proof(&snapshot, appended.leaf_index, size)?;
                BatchResult::Appended {
                    ok: true,
                    leaf_index: appended.leaf_index,
                    leaf_hash: proof.leaf_hash,
                    tree_size: size,
                    audit_path: proof.audit_path,
                    root: proof.root,
                    sth,
                }
            }
            Some(Err(detail)) => BatchResult::Refused { ok: false, detail },
            None => return Err(ApiError::internal("append batch", &"an event was neither appended nor refused")),
        };
        results.push(result);
    }
    Ok(Json(BatchAnswer { ok: true, sths, results }))
}
