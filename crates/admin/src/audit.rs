//! The audit trail. Every admin action is appended to the sector log as an admin-action leaf
//! *before* it takes effect (no log, no action), and stored in `admin.redb` with the leaf's
//! hash, so the audit view can show each event's inclusion proof. Account events of users
//! (sign-up, activation, login) are kept in `admin.redb` only. The subject is always a salted
//! hash of the account id — never an email, never a key.

use hyper::Method;
use jsonapi::{ApiError, ApiResult};
use serde_json::{Value, json};

use crate::state::AppState;
use crate::store::{AuditEvent, tx};

/// Who did an admin action (one admin identity; the panel records it as such).
pub const ADMIN_ACTOR: &str = "admin";

/// The salted hash an audit event names its subject by.
pub fn subject_hash(state: &AppState, user_id: &str) -> String {
    state.mac("audit-subject", user_id)
}

fn event(state: &AppState, action: &str, actor: &str, subject: &str, detail: &str) -> AuditEvent {
    AuditEvent {
        seq: 0,
        action: action.to_owned(),
        actor: actor.to_owned(),
        subject: subject.to_owned(),
        detail: detail.to_owned(),
        at_ms: state.now_ms(),
        leaf_hash: None,
        leaf_index: None,
    }
}

/// Records a user's own account event (admin.redb only).
pub fn note(state: &AppState, action: &str, user_id: &str, detail: &str) -> ApiResult<()> {
    let event = event(state, action, "user", &subject_hash(state, user_id), detail);
    state.db.write(|txn| Ok::<_, ApiError>(tx::append_audit(txn, event)?))?;
    Ok(())
}

/// Records an admin action: first a leaf in the sector log (503 `audit_log_unavailable` when
/// there is no log or it does not answer — the action must then not happen), then the event in
/// admin.redb with the leaf's hash and index. `subject` is an account id or another non-secret
/// name (a key hash prefix); it is hashed with the salt either way. `detail` must not contain
/// an email or a key.
pub async fn admin_action(state: &AppState, action: &str, subject: &str, detail: &str) -> ApiResult<AuditEvent> {
    let mut record = event(state, action, ADMIN_ACTOR, &subject_hash(state, subject), detail);
    let log = state.log.as_ref().ok_or_else(|| {
        ApiError::unavailable("audit_log_unavailable", "no sector log is configured for the audit trail", 300)
    })?;
    let leaf = json!({
        "type": "admin_action",
        "action": record.action,
        "actor": record.actor,
        "subject": record.subject,
        "detail": record.detail,
    });
    let appended = log.call(Method::POST, "/internal/append", Some(&json!({ "event": leaf }))).await.map_err(|e| {
        crate::DAEMON.log(format_args!("audit leaf not appended: {e}"));
        ApiError::unavailable("audit_log_unavailable", "the sector log did not record the action; nothing was done", 30)
    })?;
    record.leaf_hash = appended["leaf_hash"].as_str().map(str::to_owned);
    record.leaf_index = appended["leaf_index"].as_u64();
    let seq = state.db.write(|txn| Ok::<_, ApiError>(tx::append_audit(txn, record.clone())?))?;
    record.seq = seq;
    Ok(record)
}

/// An event as the audit view shows it: with a current inclusion proof from the log when it
/// has a leaf (`"proof": null` when the log cannot be asked).
pub async fn with_proof(state: &AppState, event: &AuditEvent) -> Value {
    let proof = match (&event.leaf_hash, &state.log) {
        (Some(hash), Some(log)) => log.call(Method::GET, &format!("/internal/prove?leaf_hash={hash}"), None).await.ok(),
        _ => None,
    };
    json!({
        "seq": event.seq,
        "action": event.action,
        "actor": event.actor,
        "subject": event.subject,
        "detail": event.detail,
        "at": wire::iso8601_ms(event.at_ms),
        "leaf_hash": event.leaf_hash,
        "leaf_index": event.leaf_index,
        "proof": proof,
    })
}

/// Whether an inclusion proof (the log's `/internal/prove` answer) re-walks from its leaf to the
/// root of the signed tree head it names: RFC 9162 inner nodes `SHA3-256(0x01 ‖ left ‖ right)`.
pub fn proof_holds(answer: &Value) -> bool {
    use sha3::Digest;
    let proof = &answer["proof"];
    let Some(mut node) = proof["leaf_hash"].as_str().and_then(|h| hex::decode(h).ok()) else { return false };
    let Some(path) = proof["audit_path"].as_array() else { return false };
    for step in path {
        let Some(sibling) = step["hash"].as_str().and_then(|h| hex::decode(h).ok()) else { return false };
        let mut hasher = sha3::Sha3_256::new();
        hasher.update([1u8]);
        match step["position"].as_str() {
            Some("left") => {
                hasher.update(&sibling);
                hasher.update(&node);
            }
            Some("right") => {
                hasher.update(&node);
                hasher.update(&sibling);
            }
            _ => return false,
        }
        node = hasher.finalize().to_vec();
    }
    answer["sth"]["sha3_root"].as_str() == Some(hex::encode(node).as_str())
        && proof["root"] == answer["sth"]["sha3_root"]
}
