//! What the admin can do, shared by the admin API and the admin pages. Every function takes an
//! [`Admin`], which only authentication (`admin_api::authenticate`, the panel's admin session)
//! can make, and every action is an audit event — appended to the sector log before it takes
//! effect. No answer carries a raw API key (except a new key, once) or a secret.

use jsonapi::{ApiError, ApiResult};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::accounts;
use crate::audit;
use crate::state::AppState;
use crate::store::{AccountStatus, BillingEvent, UserRecord, tx};

/// Proof that the caller is the admin. Only the auth layer constructs it.
pub struct Admin {
    _private: (),
}

impl Admin {
    /// Made by `admin_api::authenticate` (X-Admin-Token) and the panel's admin session only.
    pub(crate) fn authenticated() -> Self {
        Self { _private: () }
    }
}

/// Plans a key may have (the relay's names).
const PLANS: [&str; 4] = ["free", "community", "professional", "enterprise"];

fn parse_plan(plan: &str) -> ApiResult<&'static str> {
    let plan = if plan == "pro" { "professional" } else { plan };
    PLANS
        .iter()
        .find(|p| **p == plan)
        .copied()
        .ok_or_else(|| ApiError::bad_request("plan must be free, community, professional or enterprise"))
}

fn parse_key_hash(hash: &str) -> ApiResult<String> {
    let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| hash.to_ascii_lowercase()).ok_or_else(|| ApiError::bad_request("key_hash must be 64 hex characters"))
}

/// A user as the admin sees it (no key, no secret).
pub fn user_summary(state: &AppState, user: &UserRecord) -> ApiResult<Value> {
    let totp = state.db.totp(&user.user_id)?;
    let totp_status = match &totp {
        Some(t) if t.active => "active",
        Some(_) => "pending",
        None => "none",
    };
    Ok(json!({
        "user_id": user.user_id,
        "email": user.email,
        "status": user.status,
        "plan": user.plan,
        "created_at": wire::iso8601_ms(user.created_ms),
        "totp_status": totp_status,
        "totp_required": user.totp_required,
        "key_masked": user.key.as_ref().map(|k| k.masked.clone()),
        "key_hash_prefix": user.key.as_ref().map(|k| k.key_hash[..16].to_owned()),
        "sessions": accounts::sessions_of(state, &user.user_id)?.len(),
    }))
}

/// Every account, summarised for the admin.
pub fn users(_: &Admin, state: &AppState) -> ApiResult<Vec<Value>> {
    state.db.users()?.iter().map(|u| user_summary(state, u)).collect()
}

fn user(state: &AppState, user_id: &str) -> ApiResult<UserRecord> {
    state.db.user(user_id)?.ok_or_else(|| ApiError::not_found("no such user"))
}

/// A user's details and the audit events about them.
pub fn user_detail(_: &Admin, state: &AppState, user_id: &str) -> ApiResult<Value> {
    let user = user(state, user_id)?;
    let subject = audit::subject_hash(state, user_id);
    let events: Vec<Value> = state
        .db
        .audit(10_000)?
        .into_iter()
        .filter(|e| e.subject == subject)
        .take(50)
        .map(|e| json!({ "action": e.action, "actor": e.actor, "detail": e.detail, "at": wire::iso8601_ms(e.at_ms) }))
        .collect();
    let mut summary = user_summary(state, &user)?;
    summary["audit"] = events.into();
    summary["billing_history"] = user
        .billing_history
        .iter()
        .map(|e| json!({ "event": e.event, "plan": e.plan, "at": wire::iso8601_ms(e.at_ms) }))
        .collect();
    Ok(summary)
}

/// Deactivates an account: logged, then its key revoked on every relay, every session ended,
/// no more logins.
pub async fn deactivate_user(_: &Admin, state: &AppState, user_id: &str) -> ApiResult<Value> {
    let user = user(state, user_id)?;
    audit::admin_action(state, "admin_user_deactivated", user_id, "").await?;
    if let Some(key) = &user.key {
        state.relays.update_key(&key.key_hash, None, Some(false)).await?;
    }
    let revoked = state.db.write(|txn| {
        let mut user = tx::user(txn, user_id)?.ok_or_else(|| ApiError::not_found("no such user"))?;
        user.status = AccountStatus::Deactivated;
        tx::put_user(txn, &user)?;
        tx::revoke_setup_tokens(txn, user_id)?;
        Ok::<_, ApiError>(tx::revoke_sessions(txn, user_id, None)?)
    })?;
    Ok(json!({ "ok": true, "user_id": user_id, "status": "deactivated", "sessions_revoked": revoked }))
}

/// Deletes every trace of an account (logged first).
pub async fn delete_user(_: &Admin, state: &AppState, user_id: &str) -> ApiResult<Value> {
    let user = user(state, user_id)?;
    audit::admin_action(state, "admin_user_deleted", user_id, "").await?;
    accounts::delete_account(state, &user).await?;
    Ok(json!({ "ok": true, "user_id": user_id, "deleted": true }))
}

/// The keys of every relay, masked: hash prefix, plan, label, state, and the owning account.
pub async fn keys(_: &Admin, state: &AppState) -> ApiResult<Value> {
    let owners: Vec<(String, String)> =
        state.db.users()?.into_iter().filter_map(|u| u.key.map(|k| (k.key_hash, u.user_id))).collect();
    let mut sectors = serde_json::Map::new();
    for (sector, keys) in state.relays.list_keys().await {
        let value = match keys {
            Ok(keys) => Value::Array(
                keys.iter()
                    .map(|k| {
                        let hash = k["key_hash"].as_str().unwrap_or_default();
                        let owner = owners.iter().find(|(h, _)| h == hash).map(|(_, id)| id.clone());
                        json!({
                            "key_hash": hash,
                            "masked": format!("{}…", &hash[..hash.len().min(16)]),
                            "plan": k["plan"],
                            "label": k["label"],
                            "active": k["active"],
                            "created_at": k["created_ms"].as_u64().map(wire::iso8601_ms),
                            "user_id": owner,
                        })
                    })
                    .collect(),
            ),
            Err(e) => json!({ "error": e.to_string() }),
        };
        sectors.insert(sector, value);
    }
    Ok(json!({ "ok": true, "sectors": sectors }))
}

/// Creates one `pgp_` key with `plan` on every relay; the key is in this answer only.
pub async fn create_key(_: &Admin, state: &AppState, label: &str, plan: &str) -> ApiResult<Value> {
    let plan = parse_plan(plan)?;
    if label.len() > 200 || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request("label must be at most 200 printable characters"));
    }
    // A new key no account owns is a new user: the cap is checked before anything is logged.
    let _creating = state.user_creation.lock().await;
    crate::license_hook::admit_new_user(state).await?;
    let key = crypto::random_token("pgp_").map_err(|e| ApiError::internal("rng", &e))?;
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    audit::admin_action(state, "admin_key_created", &hash, &format!("plan={plan}")).await?;
    state.relays.create_key(&hash, plan, label).await?;
    Ok(json!({ "ok": true, "key": key, "key_hash": hash, "plan": plan, "sectors": state.relays.relays.len() }))
}

/// Revokes a key (by hash) on every relay.
pub async fn revoke_key(_: &Admin, state: &AppState, key_hash: &str) -> ApiResult<Value> {
    let hash = parse_key_hash(key_hash)?;
    audit::admin_action(state, "admin_key_revoked", &hash, "").await?;
    let updated = state.relays.update_key(&hash, None, Some(false)).await?;
    if updated == 0 {
        return Err(ApiError::not_found("no relay knows this key"));
    }
    Ok(json!({ "ok": true, "key_hash": hash, "revoked_on": updated }))
}

/// Changes a key's plan on every relay (and the owning account's plan and billing history).
pub async fn change_plan(_: &Admin, state: &AppState, key_hash: &str, plan: &str) -> ApiResult<Value> {
    let hash = parse_key_hash(key_hash)?;
    let plan = parse_plan(plan)?;
    audit::admin_action(state, "admin_plan_changed", &hash, &format!("plan={plan}")).await?;
    let updated = state.relays.update_key(&hash, Some(plan), None).await?;
    if updated == 0 {
        return Err(ApiError::not_found("no relay knows this key"));
    }
    let owner = state.db.users()?.into_iter().find(|u| u.key.as_ref().is_some_and(|k| k.key_hash == hash));
    if let Some(owner) = owner {
        let now = state.now_ms();
        state.db.write(|txn| {
            let Some(mut user) = tx::user(txn, &owner.user_id)? else { return Ok::<_, ApiError>(()) };
            user.plan = plan.to_owned();
            user.subscription = if matches!(plan, "professional" | "enterprise") { "active" } else { "none" }.into();
            user.billing_history.push(BillingEvent { event: "plan_changed".into(), plan: plan.to_owned(), at_ms: now });
            Ok(tx::put_user(txn, &user)?)
        })?;
    }
    Ok(json!({ "ok": true, "key_hash": hash, "plan": plan, "updated_on": updated }))
}

/// Requires (or stops requiring) TOTP for a user. Requiring it — logged first — sets the flag,
/// removes the current enrollment so TOTP must be set up again, ends every session and mails a
/// setup link; until the user completes it, every login (TOTP or backup code) is refused with
/// 403 `totp_not_activated`. At most 20 toggles per admin per 24 h, counted before the work.
pub async fn force_totp(_: &Admin, state: &AppState, user_id: &str, required: bool) -> ApiResult<Value> {
    state.limit(&state.limits.force_totp, audit::ADMIN_ACTOR)?;
    let user = user(state, user_id)?;
    if user.status == AccountStatus::Deactivated {
        return Err(ApiError::conflict("account_deactivated", "the account is deactivated"));
    }
    let detail = format!("before={};after={required}", user.totp_required);
    audit::admin_action(state, "admin_totp_required_toggled", user_id, &detail).await?;
    let sessions_revoked = if required {
        accounts::reset_totp(
            state,
            &user,
            "the administrator requires you to set up your authenticator (TOTP) again before you can log in.",
        )
        .await?
    } else {
        0
    };
    state.db.write(|txn| {
        let mut user = tx::user(txn, user_id)?.ok_or_else(|| ApiError::not_found("no such user"))?;
        user.totp_required = required;
        Ok::<_, ApiError>(tx::put_user(txn, &user)?)
    })?;
    Ok(json!({
        "ok": true,
        "user_id": user_id,
        "totp_required": required,
        "sessions_revoked": sessions_revoked,
        "setup_email_sent": required,
    }))
}

/// The account a force-totp request names: `user_id`, or the account's `pgp_` key.
pub fn resolve_user(state: &AppState, user_id: Option<&str>, key: Option<&str>) -> ApiResult<String> {
    match (user_id, key) {
        (Some(id), _) => Ok(id.to_owned()),
        (None, Some(key)) => {
            if !key.starts_with("pgp_") {
                return Err(ApiError::bad_request("key must be a pgp_ key"));
            }
            accounts::owner_of_key(state, key)?
                .map(|u| u.user_id)
                .ok_or_else(|| ApiError::not_found("no account owns this key"))
        }
        (None, None) => Err(ApiError::bad_request("give user_id or key")),
    }
}

/// Audit events, newest first, each with its inclusion proof from the sector log.
pub async fn audit_view(_: &Admin, state: &AppState, limit: usize) -> ApiResult<Value> {
    let mut events = Vec::new();
    for event in state.db.audit(limit)? {
        events.push(audit::with_proof(state, &event).await);
    }
    Ok(json!({ "ok": true, "count": events.len(), "events": events }))
}

/// The license section: the verified status ([`crate::license_hook::status`]).
pub async fn license(_: &Admin, state: &AppState) -> Value {
    json!({ "ok": true, "available": true, "license": crate::license_hook::status(state).await })
}
