//! Account logic shared by the JSON API, the internal API and the web panel: TOTP state,
//! sessions, setup links, sign-up, login, and the sensitive actions that need a fresh code.

use std::net::IpAddr;

use jsonapi::{ApiError, ApiResult};
use redb::ReadableTable;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::state::AppState;
use crate::store::{
    self, AccountKey, AccountStatus, EMAILS, KEY_OWNERS, SESSIONS, SETUP_TOKENS, Session, SessionKind, SetupToken,
    TotpRecord, USER_SESSIONS, USERS, UserRecord, tx,
};
use crate::totp;

/// Who is calling: the client address (masked before it is stored) and its user agent.
pub struct Client {
    /// The client's address.
    pub ip: IpAddr,
    /// The client's `User-Agent` (empty when it sent none).
    pub user_agent: String,
}

impl Client {
    fn masked_ip(&self) -> String {
        match self.ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::", s[0], s[1], s[2])
            }
        }
    }
}

/// SHA-256 of a token: how session and setup tokens are stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_id(prefix: &str) -> ApiResult<String> {
    crypto::random_token(prefix).map_err(|e| ApiError::internal("rng", &e))
}

/// An email address as stored: trimmed and lowercased; `None` unless it is plausibly one
/// address (and cannot inject a mail header).
pub fn normalise_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_ascii_lowercase();
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !domain.contains('@')
        && email.bytes().all(|b| b.is_ascii_graphic())
        && !email.contains(['<', '>', ',', ';', '"', '(', ')', '[', ']', '\\']);
    plausible.then_some(email)
}

fn invalid_code() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "invalid_totp_code",
        "TOTP code incorrect or outside the allowed window",
    )
}

fn invalid_backup() -> ApiError {
    ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_backup_code", "backup code not found or already used")
}

/// 403 `totp_not_activated`: the account has not finished its TOTP setup.
pub fn not_activated() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "totp_not_activated",
        "TOTP setup was not completed for this account",
    )
}

fn invalid_token() -> ApiError {
    ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_or_expired_token", "setup link not found or expired")
}

fn already_configured() -> ApiError {
    ApiError::conflict("totp_already_configured", "TOTP is active; reset it before enrolling again")
}

// ---------------------------------------------------------------------------------------------
// TOTP state (the internal `/v2/user/*` semantics)

/// What a provisional enrollment shows: the secret and the backup codes.
#[derive(Serialize)]
pub struct Provisioned {
    /// The Base32 TOTP secret.
    pub secret: String,
    /// The one-time backup codes, in clear (shown once).
    pub backup_codes: Vec<String>,
}

/// Provisions TOTP for `subject`, or returns the existing provisional enrollment (the same
/// secret and codes). 409 `totp_already_configured` when TOTP is active.
pub async fn provision(state: &AppState, subject: &str) -> ApiResult<Provisioned> {
    if let Some(existing) = state.db.totp(subject)? {
        return provisional_view(state, subject, &existing);
    }
    let secret = totp::new_secret()?;
    let codes = totp::new_backup_codes()?;
    let to_hash = codes.clone();
    let hashes = tokio::task::spawn_blocking(move || {
        to_hash.iter().map(|c| totp::hash_backup_code(c)).collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::internal("hashing task", &e))??;
    let record = TotpRecord {
        sealed_secret: state.sealer.seal(subject, "secret", secret.as_bytes())?,
        active: false,
        last_step: 0,
        backup_hashes: hashes,
        sealed_codes: Some(state.sealer.seal(subject, "codes", codes.join(",").as_bytes())?),
    };
    // Two first calls at once: the first committed enrollment is the one in force.
    let stored = state.db.write(|txn| {
        if let Some(existing) = tx::totp(txn, subject)? {
            return Ok::<_, ApiError>(existing);
        }
        tx::put_totp(txn, subject, &record)?;
        Ok(record)
    })?;
    provisional_view(state, subject, &stored)
}

fn provisional_view(state: &AppState, subject: &str, record: &TotpRecord) -> ApiResult<Provisioned> {
    if record.active {
        return Err(already_configured());
    }
    let secret = state.sealer.open(subject, "secret", &record.sealed_secret)?;
    let codes = match &record.sealed_codes {
        Some(sealed) => {
            let plain = state.sealer.open(subject, "codes", sealed)?;
            String::from_utf8_lossy(&plain).split(',').map(str::to_owned).collect()
        }
        None => Vec::new(),
    };
    Ok(Provisioned { secret: String::from_utf8_lossy(&secret).into_owned(), backup_codes: codes })
}

/// What a code check does besides checking.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnValid {
    /// Nothing (login, step-up).
    Nothing,
    /// Activates a provisional enrollment (confirm).
    Activate,
}

/// Checks `code` for `subject`. Valid means: the code matches a step within ±1 of now, and that
/// step is later than the last accepted one; the step is then stored in the same durable
/// transaction (and, with [`OnValid::Activate`], the enrollment activated). Any storage or
/// unsealing failure is an error, never a success: the check fails closed.
pub fn check_code(state: &AppState, subject: &str, code: &str, on_valid: OnValid) -> ApiResult<bool> {
    let now = state.clock.now_secs();
    state.db.write(|txn| {
        let Some(mut record) = tx::totp(txn, subject)? else { return Ok(false) };
        let secret = state.sealer.open(subject, "secret", &record.sealed_secret)?;
        let secret = Zeroizing::new(String::from_utf8_lossy(&secret).into_owned());
        let Some(step) = totp::matching_step(&secret, code.trim(), now) else { return Ok(false) };
        if step <= record.last_step {
            return Ok(false);
        }
        record.last_step = step;
        if on_valid == OnValid::Activate {
            record.active = true;
            record.sealed_codes = None;
        }
        tx::put_totp(txn, subject, &record)?;
        Ok::<_, ApiError>(true)
    })
}

/// Consumes one backup code of `subject`: exactly one of any number of concurrent requests
/// with the same code succeeds (the hash is removed in a write transaction that first checks
/// it is still there). Only an active enrollment's codes count.
pub async fn consume_backup(state: &AppState, subject: &str, typed: &str) -> ApiResult<bool> {
    let Some(code) = totp::normalise_backup_code(typed) else { return Ok(false) };
    let Some(record) = state.db.totp(subject)? else { return Ok(false) };
    if !record.active {
        return Ok(false);
    }
    let hashes = record.backup_hashes.clone();
    let found = tokio::task::spawn_blocking(move || totp::find_backup_code(&hashes, &code).map(|i| hashes[i].clone()))
        .await
        .map_err(|e| ApiError::internal("hashing task", &e))?;
    let Some(hash) = found else { return Ok(false) };
    state.db.write(|txn| {
        let Some(mut current) = tx::totp(txn, subject)? else { return Ok(false) };
        let Some(position) = current.backup_hashes.iter().position(|h| *h == hash) else { return Ok(false) };
        current.backup_hashes.remove(position);
        tx::put_totp(txn, subject, &current)?;
        Ok::<_, ApiError>(true)
    })
}

/// A new set of backup codes for an active enrollment; the previous set stops working.
pub async fn regenerate_backup(state: &AppState, subject: &str) -> ApiResult<Vec<String>> {
    match state.db.totp(subject)? {
        Some(record) if record.active => {}
        _ => return Err(not_activated()),
    }
    let codes = totp::new_backup_codes()?;
    let to_hash = codes.clone();
    let hashes = tokio::task::spawn_blocking(move || {
        to_hash.iter().map(|c| totp::hash_backup_code(c)).collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::internal("hashing task", &e))??;
    state.db.write(|txn| {
        let Some(mut record) = tx::totp(txn, subject)?.filter(|r| r.active) else { return Err(not_activated()) };
        record.backup_hashes = hashes;
        tx::put_totp(txn, subject, &record)?;
        Ok(())
    })?;
    Ok(codes)
}

/// Removes all TOTP state of `subject`.
pub fn delete_totp(state: &AppState, subject: &str) -> ApiResult<()> {
    state.db.write(|txn| Ok::<_, ApiError>(tx::delete_totp(txn, subject)?))
}

/// Whether `subject` has an active enrollment.
pub fn totp_active(state: &AppState, subject: &str) -> ApiResult<bool> {
    Ok(state.db.totp(subject)?.is_some_and(|r| r.active))
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// Creates a session; returns its token (stored only as its hash).
pub fn create_session(
    state: &AppState,
    kind: SessionKind,
    user_id: &str,
    client: &Client,
    via: &str,
) -> ApiResult<String> {
    let token = random_id(match kind {
        SessionKind::User => "pus_",
        SessionKind::Admin => "pas_",
    })?;
    let hash = token_hash(&token);
    let now = state.now_ms();
    let agent: String = client.user_agent.chars().take(120).collect();
    let session = Session {
        kind,
        user_id: user_id.to_owned(),
        created_ms: now,
        last_seen_ms: now,
        ip: client.masked_ip(),
        user_agent: agent,
        via: via.to_owned(),
    };
    state.db.write(|txn| {
        txn.open_table(SESSIONS)
            .map_err(store::DbError::from)?
            .insert(hash, serde_json::to_vec(&session).map_err(store::DbError::from)?.as_slice())
            .map_err(store::DbError::from)?;
        txn.open_table(USER_SESSIONS)
            .map_err(store::DbError::from)?
            .insert((user_id, hash), ())
            .map_err(store::DbError::from)?;
        Ok::<_, ApiError>(())
    })?;
    Ok(token)
}

/// The live session of `kind` behind `token`, with its hash. A session past its idle or
/// absolute lifetime is removed and is `None`; a live one is touched (at most once a minute).
pub fn session(state: &AppState, token: &str, kind: SessionKind) -> ApiResult<Option<(Session, [u8; 32])>> {
    let hash = token_hash(token);
    let found: Option<Session> = {
        let txn = state.db.read()?;
        let table = txn.open_table(SESSIONS).map_err(store::DbError::from)?;
        let value = table.get(hash).map_err(store::DbError::from)?;
        value.map(|v| serde_json::from_slice(v.value())).transpose().map_err(store::DbError::from)?
    };
    let Some(mut session) = found.filter(|s| s.kind == kind) else { return Ok(None) };
    let now = state.now_ms();
    let lifetimes = &state.config.sessions;
    let idle = now.saturating_sub(session.last_seen_ms) > lifetimes.idle_secs * 1000;
    let old = now.saturating_sub(session.created_ms) > lifetimes.absolute_secs * 1000;
    if idle || old || now < session.created_ms {
        end_session(state, token)?;
        return Ok(None);
    }
    if now.saturating_sub(session.last_seen_ms) > 60_000 {
        session.last_seen_ms = now;
        let json = serde_json::to_vec(&session).map_err(store::DbError::from)?;
        state.db.write(|txn| {
            let mut table = txn.open_table(SESSIONS).map_err(store::DbError::from)?;
            // Only if it still exists: a concurrent logout must not be undone.
            if table.get(hash).map_err(store::DbError::from)?.is_some() {
                table.insert(hash, json.as_slice()).map_err(store::DbError::from)?;
            }
            Ok::<_, ApiError>(())
        })?;
    }
    Ok(Some((session, hash)))
}

/// Ends the session behind `token`, if any.
pub fn end_session(state: &AppState, token: &str) -> ApiResult<()> {
    let hash = token_hash(token);
    state.db.write(|txn| {
        let mut table = txn.open_table(SESSIONS).map_err(store::DbError::from)?;
        let removed = table.remove(hash).map_err(store::DbError::from)?.map(|v| v.value().to_vec());
        if let Some(raw) = removed {
            let session: Session = serde_json::from_slice(&raw).map_err(store::DbError::from)?;
            txn.open_table(USER_SESSIONS)
                .map_err(store::DbError::from)?
                .remove((session.user_id.as_str(), hash))
                .map_err(store::DbError::from)?;
        }
        Ok::<_, ApiError>(())
    })
}

/// The sessions of `user_id`: `(hash, session)`.
pub fn sessions_of(state: &AppState, user_id: &str) -> ApiResult<Vec<([u8; 32], Session)>> {
    let txn = state.db.read()?;
    let index = txn.open_table(USER_SESSIONS).map_err(store::DbError::from)?;
    let table = txn.open_table(SESSIONS).map_err(store::DbError::from)?;
    let mut out = Vec::new();
    for row in index.range((user_id, [0u8; 32])..=(user_id, [0xffu8; 32])).map_err(store::DbError::from)? {
        let hash = row.map_err(store::DbError::from)?.0.value().1;
        if let Some(v) = table.get(hash).map_err(store::DbError::from)? {
            out.push((hash, serde_json::from_slice(v.value()).map_err(store::DbError::from)?));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Setup links

/// Mints a setup token for `user_id` (older ones die) inside `txn`; returns the token.
fn mint_setup_token(state: &AppState, txn: &redb::WriteTransaction, user_id: &str) -> ApiResult<String> {
    tx::revoke_setup_tokens(txn, user_id)?;
    let token = random_id("pst_")?;
    let record = SetupToken {
        user_id: user_id.to_owned(),
        expires_ms: state.now_ms() + state.config.sessions.setup_token_secs * 1000,
    };
    txn.open_table(SETUP_TOKENS)
        .map_err(store::DbError::from)?
        .insert(token_hash(&token), serde_json::to_vec(&record).map_err(store::DbError::from)?.as_slice())
        .map_err(store::DbError::from)?;
    Ok(token)
}

/// The account a live setup token was minted for; 401 `invalid_or_expired_token` otherwise.
pub fn setup_user(state: &AppState, token: &str) -> ApiResult<UserRecord> {
    let record: Option<SetupToken> = {
        let txn = state.db.read()?;
        let table = txn.open_table(SETUP_TOKENS).map_err(store::DbError::from)?;
        let value = table.get(token_hash(token)).map_err(store::DbError::from)?;
        value.map(|v| serde_json::from_slice(v.value())).transpose().map_err(store::DbError::from)?
    };
    let record = record.filter(|r| r.expires_ms > state.now_ms()).ok_or_else(invalid_token)?;
    state.db.user(&record.user_id)?.filter(|u| u.status != AccountStatus::Deactivated).ok_or_else(invalid_token)
}

/// The link a setup mail carries.
pub fn setup_url(state: &AppState, token: &str) -> String {
    format!("{}/auth/setup/{token}", state.config.public_url())
}

async fn send_setup_mail(state: &AppState, email: &str, token: &str, why: &str) -> ApiResult<()> {
    let body = format!(
        "Hello,\n\n{why}\n\nSet up your authenticator (TOTP) here:\n\n    {}\n\nThe link works once and expires in {} hours. If you did not ask for this, ignore this mail.\n",
        setup_url(state, token),
        state.config.sessions.setup_token_secs / 3600
    );
    crate::mailer::send(state, email, "Set up your paramant account", &body).await
}

// ---------------------------------------------------------------------------------------------
// Sign-up, setup, login

/// `POST /api/user/signup`: a provisional account and a mailed setup link. An email with a
/// provisional account gets a fresh link; one with an active account 409.
pub async fn signup(state: &AppState, raw_email: &str, client: &Client) -> ApiResult<()> {
    state.limit(&state.limits.signup_per_ip, &AppState::network(client.ip))?;
    let email = normalise_email(raw_email).ok_or_else(|| ApiError::bad_request("a valid email address is required"))?;
    let email_key = hex::encode(Sha256::digest(email.as_bytes()));
    if let Some(existing) = state.db.user_by_email(&email)?
        && existing.status != AccountStatus::Provisional
    {
        return Err(ApiError::conflict("email_already_registered", "an account with this email exists"));
    }
    state.limit(&state.limits.signup_per_email, &email_key)?;
    let now = state.now_ms();
    let new_id = random_id("usr_")?;
    let (user_id, token, created) = state.db.write(|txn| {
        let existing = txn
            .open_table(EMAILS)
            .map_err(store::DbError::from)?
            .get(email.as_str())
            .map_err(store::DbError::from)?
            .map(|v| v.value().to_owned());
        let (user_id, created) = match existing {
            Some(id) => {
                let user = tx::user(txn, &id)?.ok_or_else(|| ApiError::internal("email index", &"dangling"))?;
                if user.status != AccountStatus::Provisional {
                    return Err(ApiError::conflict("email_already_registered", "an account with this email exists"));
                }
                (id, false)
            }
            None => {
                let user = UserRecord {
                    user_id: new_id.clone(),
                    email: email.clone(),
                    created_ms: now,
                    status: AccountStatus::Provisional,
                    plan: "community".into(),
                    totp_required: false,
                    key: None,
                    subscription: "none".into(),
                    billing_history: Vec::new(),
                };
                tx::put_user(txn, &user)?;
                txn.open_table(EMAILS)
                    .map_err(store::DbError::from)?
                    .insert(email.as_str(), new_id.as_str())
                    .map_err(store::DbError::from)?;
                (new_id.clone(), true)
            }
        };
        let token = mint_setup_token(state, txn, &user_id)?;
        Ok((user_id, token, created))
    })?;
    if let Err(e) = send_setup_mail(
        state,
        &email,
        &token,
        "someone (hopefully you) signed up for a paramant account with this address.",
    )
    .await
    {
        // Undo what this request created: a link nobody received must not stay valid.
        state.db.write(|txn| {
            tx::revoke_setup_tokens(txn, &user_id)?;
            if created {
                txn.open_table(USERS)
                    .map_err(store::DbError::from)?
                    .remove(user_id.as_str())
                    .map_err(store::DbError::from)?;
                txn.open_table(EMAILS)
                    .map_err(store::DbError::from)?
                    .remove(email.as_str())
                    .map_err(store::DbError::from)?;
            }
            Ok::<_, ApiError>(())
        })?;
        return Err(e);
    }
    crate::audit::note(state, "user_signup", &user_id, "")?;
    Ok(())
}

/// What the setup page shows.
#[derive(Serialize)]
pub struct SetupView {
    /// The account's email address.
    pub email: String,
    /// The Base32 TOTP secret.
    pub secret: String,
    /// The `otpauth://` URI the authenticator app scans.
    pub otpauth: String,
    /// The one-time backup codes, in clear.
    pub backup_codes: Vec<String>,
}

/// `POST /api/user/auth/setup/:token`.
pub async fn setup(state: &AppState, token: &str, client: &Client) -> ApiResult<SetupView> {
    state.limit(&state.limits.setup_per_ip, &AppState::network(client.ip))?;
    let user = setup_user(state, token)?;
    let provisioned = provision(state, &user.user_id).await?;
    Ok(SetupView {
        otpauth: totp::otpauth_uri(&provisioned.secret, &user.email),
        email: user.email,
        secret: provisioned.secret,
        backup_codes: provisioned.backup_codes,
    })
}

/// What confirming shows once: the session and, the first time, the API key.
pub struct Confirmed {
    /// The new session's token (set as the session cookie).
    pub session_token: String,
    /// The account's email address.
    pub email: String,
    /// The account's API key, shown this once (`None` after the first confirmation).
    pub api_key: Option<String>,
}

/// `POST /api/user/auth/setup/:token/confirm`: the first valid code activates TOTP, consumes
/// the setup link, creates the account's API key on every relay (first activation) and logs in.
///
/// A first activation adds a user: the license's cap is checked before the code (402
/// `tier_limit_users`, nothing changed), and the key is created on the relays before the
/// account is activated, so a relay's own refusal also leaves the account as it was (the code
/// is used up; the link stays valid).
pub async fn confirm(state: &AppState, token: &str, code: &str, client: &Client) -> ApiResult<Confirmed> {
    state.limit(&state.limits.setup_per_ip, &AppState::network(client.ip))?;
    let user = setup_user(state, token)?;
    let new_user = user.key.is_none();
    let _creating = if new_user { Some(state.user_creation.lock().await) } else { None };
    if totp_active(state, &user.user_id)? {
        return Err(already_configured());
    }
    if new_user {
        crate::license_hook::admit_new_user(state).await?;
    }
    if !check_code(state, &user.user_id, code, OnValid::Nothing)? {
        return Err(invalid_code());
    }
    let api_key = if new_user { Some(new_account_key(state, &user.user_id).await?) } else { None };
    let user_id = user.user_id.clone();
    state.db.write(|txn| {
        let mut record = tx::totp(txn, &user_id)?.ok_or_else(invalid_token)?;
        record.active = true;
        record.sealed_codes = None;
        tx::put_totp(txn, &user_id, &record)?;
        tx::revoke_setup_tokens(txn, &user_id)?;
        let mut user = tx::user(txn, &user_id)?.ok_or_else(invalid_token)?;
        user.status = AccountStatus::Active;
        tx::put_user(txn, &user)?;
        Ok::<_, ApiError>(())
    })?;
    let session_token = create_session(state, SessionKind::User, &user.user_id, client, "totp")?;
    crate::audit::note(state, "user_totp_activated", &user.user_id, "")?;
    Ok(Confirmed { session_token, email: user.email, api_key })
}

/// Mints the account's `pgp_` key, stores it on every relay (only its hash leaves this
/// process), records it, and deactivates the previous key on every relay. Returns the key,
/// shown once.
///
/// A rotation is not a new user: the previous key is switched off on the relays first (with
/// [`AppState::user_creation`] held), so a relay at its user cap takes the new one; if the new
/// one is refused, the previous one is switched on again.
pub async fn new_account_key(state: &AppState, user_id: &str) -> ApiResult<String> {
    let user = state.db.user(user_id)?.ok_or_else(|| ApiError::not_found("no such account"))?;
    let key = random_id("pgp_")?;
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    let _rotating = match &user.key {
        Some(old) => {
            let guard = state.user_creation.lock().await;
            state.relays.update_key(&old.key_hash, None, Some(false)).await?;
            Some(guard)
        }
        None => None,
    };
    if let Err(e) = state.relays.create_key(&hash, &user.plan, user_id).await {
        if let Some(old) = &user.key {
            let _ = state.relays.update_key(&old.key_hash, None, Some(true)).await;
        }
        return Err(e.into());
    }
    let masked = format!("{}…{}", &key[..8], &key[key.len() - 4..]);
    state.db.write(|txn| {
        let mut user = tx::user(txn, user_id)?.ok_or_else(|| ApiError::not_found("no such account"))?;
        let previous = user.key.replace(AccountKey { key_hash: hash.clone(), masked, created_ms: state.now_ms() });
        tx::put_user(txn, &user)?;
        let mut owners = txn.open_table(KEY_OWNERS).map_err(store::DbError::from)?;
        if let Some(old) = &previous {
            owners.remove(key_hash_bytes(&old.key_hash)?).map_err(store::DbError::from)?;
        }
        owners.insert(key_hash_bytes(&hash)?, user_id).map_err(store::DbError::from)?;
        Ok::<_, ApiError>(())
    })?;
    Ok(key)
}

fn key_hash_bytes(hex_hash: &str) -> ApiResult<[u8; 32]> {
    hex::decode(hex_hash)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("key hash must be 64 hex"))
}

/// The account that owns the API key `key` (a presented `pgp_…` key), if any.
pub fn owner_of_key(state: &AppState, key: &str) -> ApiResult<Option<UserRecord>> {
    let hash: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
    let id = {
        let txn = state.db.read()?;
        let table = txn.open_table(KEY_OWNERS).map_err(store::DbError::from)?;
        table.get(hash).map_err(store::DbError::from)?.map(|v| v.value().to_owned())
    };
    match id {
        Some(id) => Ok(state.db.user(&id)?),
        None => Ok(None),
    }
}

/// Limits a login attempt per network and per network+account, before any work.
fn limit_login(state: &AppState, client: &Client, email: &str) -> ApiResult<String> {
    let network = AppState::network(client.ip);
    state.limit(&state.limits.login_per_ip, &network)?;
    let account_key = format!("{network}|{}", hex::encode(Sha256::digest(email.as_bytes())));
    state.limit(&state.limits.login_per_ip_account, &account_key)?;
    Ok(account_key)
}

/// A login-able account for `email`: exists and is not deactivated.
fn login_account(state: &AppState, email: &str) -> ApiResult<Option<UserRecord>> {
    let Some(email) = normalise_email(email) else { return Ok(None) };
    Ok(state.db.user_by_email(&email)?.filter(|u| u.status != AccountStatus::Deactivated))
}

/// `POST /api/user/auth/login`: email and a TOTP code → a session token.
pub fn login(state: &AppState, email: &str, code: &str, client: &Client) -> ApiResult<String> {
    let account_key = limit_login(state, client, &email.trim().to_ascii_lowercase())?;
    let user = login_account(state, email)?.ok_or_else(invalid_code)?;
    if !totp_active(state, &user.user_id)? {
        return Err(not_activated());
    }
    if !check_code(state, &user.user_id, code, OnValid::Nothing)? {
        return Err(invalid_code());
    }
    state.limits.login_per_ip_account.clear(&account_key);
    let token = create_session(state, SessionKind::User, &user.user_id, client, "totp")?;
    crate::audit::note(state, "user_login", &user.user_id, "totp")?;
    Ok(token)
}

/// What a backup-code login gives: a session, and the link to enroll TOTP again (the account
/// is re-locked: its TOTP and remaining codes are gone).
pub struct BackupLogin {
    /// The new session's token.
    pub session_token: String,
    /// The token of the setup link that enrolls TOTP again.
    pub setup_token: String,
}

/// `POST /api/user/auth/login-with-backup`: consumes the code (single use), re-locks the
/// account (TOTP and the remaining codes removed, every other session ended, a setup link
/// mailed and returned), and logs in. Refused while TOTP is not active — so it cannot bypass an
/// admin's TOTP requirement.
pub async fn login_with_backup(state: &AppState, email: &str, code: &str, client: &Client) -> ApiResult<BackupLogin> {
    let account_key = limit_login(state, client, &email.trim().to_ascii_lowercase())?;
    let user = login_account(state, email)?.ok_or_else(invalid_backup)?;
    if !totp_active(state, &user.user_id)? {
        return Err(not_activated());
    }
    if !consume_backup(state, &user.user_id, code).await? {
        return Err(invalid_backup());
    }
    state.limits.login_per_ip_account.clear(&account_key);
    let setup_token = state.db.write(|txn| {
        tx::delete_totp(txn, &user.user_id)?;
        tx::revoke_sessions(txn, &user.user_id, None)?;
        mint_setup_token(state, txn, &user.user_id)
    })?;
    // The link is also returned to the caller, who just proved possession of a backup code.
    if let Err(e) = send_setup_mail(
        state,
        &user.email,
        &setup_token,
        "you logged in with a backup code, so your authenticator must be set up again.",
    )
    .await
    {
        crate::DAEMON.log(format_args!("setup mail after a backup-code login failed: {e:?}"));
    }
    let session_token = create_session(state, SessionKind::User, &user.user_id, client, "backup_code")?;
    crate::audit::note(state, "user_login", &user.user_id, "backup_code; account re-locked")?;
    Ok(BackupLogin { session_token, setup_token })
}

/// Step-up for sensitive actions: a fresh TOTP code of the session's account.
pub fn require_fresh_code(state: &AppState, user_id: &str, code: Option<&str>) -> ApiResult<()> {
    let code = code.ok_or_else(|| ApiError::bad_request("totp_code is required for this action"))?;
    if !totp_active(state, user_id)? {
        return Err(not_activated());
    }
    if !check_code(state, user_id, code, OnValid::Nothing)? {
        return Err(invalid_code());
    }
    Ok(())
}

/// Resets TOTP: mails a new setup link first (nothing changes if that fails), then removes
/// the TOTP state and every session. Returns the number of sessions ended.
pub async fn reset_totp(state: &AppState, user: &UserRecord, why: &str) -> ApiResult<usize> {
    let token = state.db.write(|txn| mint_setup_token(state, txn, &user.user_id))?;
    if let Err(e) = send_setup_mail(state, &user.email, &token, why).await {
        state.db.write(|txn| Ok::<_, ApiError>(tx::revoke_setup_tokens(txn, &user.user_id)?))?;
        return Err(e);
    }
    state.db.write(|txn| {
        tx::delete_totp(txn, &user.user_id)?;
        Ok::<_, ApiError>(tx::revoke_sessions(txn, &user.user_id, None)?)
    })
}

/// Deletes every trace of an account: its key revoked on every relay, then the account, its
/// email, TOTP state, backup codes, sessions and setup links.
pub async fn delete_account(state: &AppState, user: &UserRecord) -> ApiResult<()> {
    if let Some(key) = &user.key {
        state.relays.update_key(&key.key_hash, None, Some(false)).await?;
    }
    state.db.write(|txn| {
        tx::revoke_sessions(txn, &user.user_id, None)?;
        tx::revoke_setup_tokens(txn, &user.user_id)?;
        tx::delete_totp(txn, &user.user_id)?;
        if let Some(key) = &user.key {
            txn.open_table(KEY_OWNERS)
                .map_err(store::DbError::from)?
                .remove(key_hash_bytes(&key.key_hash)?)
                .map_err(store::DbError::from)?;
        }
        txn.open_table(EMAILS)
            .map_err(store::DbError::from)?
            .remove(user.email.as_str())
            .map_err(store::DbError::from)?;
        txn.open_table(USERS)
            .map_err(store::DbError::from)?
            .remove(user.user_id.as_str())
            .map_err(store::DbError::from)?;
        Ok::<_, ApiError>(())
    })
}
