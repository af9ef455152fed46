//! `admin.redb`: accounts, TOTP state, sessions, setup tokens and the audit trail.
//!
//! Every write is one durable transaction (`Durability::Immediate`) committed before the client
//! is answered. redb serialises write transactions, so a read-check-write inside one
//! [`AdminDb::write`] is atomic: that is what makes a TOTP step or a backup code usable once.
//! Secrets are never stored in the clear: session and setup tokens as SHA-256, TOTP secrets
//! sealed (see `totp`), backup codes as argon2id hashes.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// `user_id -> UserRecord JSON`.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// `lowercase email -> user_id`.
pub const EMAILS: TableDefinition<&str, &str> = TableDefinition::new("emails");
/// `sha256(api key) -> user_id`: which account owns a key.
pub const KEY_OWNERS: TableDefinition<[u8; 32], &str> = TableDefinition::new("key_owners");
/// `user_id -> TotpRecord JSON`.
pub const TOTP: TableDefinition<&str, &[u8]> = TableDefinition::new("totp");
/// `sha256(session token) -> Session JSON` (users and the admin).
pub const SESSIONS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("sessions");
/// `(user_id, sha256(session token)) -> ()`: a user's sessions.
pub const USER_SESSIONS: TableDefinition<(&str, [u8; 32]), ()> = TableDefinition::new("user_sessions");
/// `sha256(setup token) -> SetupToken JSON`.
pub const SETUP_TOKENS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("setup_tokens");
/// `sequence number -> AuditEvent JSON`, in order.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// The user id the admin's own TOTP enrollment is stored under (never a valid account id).
pub const ADMIN_SUBJECT: &str = "admin";

/// Storage failure: always the operator's problem, never the client's (a 500 `internal`).
pub use jsonapi::StorageError as DbError;

/// Where an account is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Signed up, TOTP never confirmed.
    Provisional,
    /// TOTP confirmed at least once.
    Active,
    /// Deactivated by the admin: no login, key revoked.
    Deactivated,
}

/// The account's API key (the same `pgp_` key on every relay); only its hash and a masked form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccountKey {
    /// SHA-256 of the key, hex.
    pub key_hash: String,
    /// `pgp_1234…abcd`.
    pub masked: String,
    /// When the key was issued, ms since the epoch.
    pub created_ms: u64,
}

/// One billing history entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BillingEvent {
    /// What happened (`plan_changed`, `cancellation_scheduled`, …).
    pub event: String,
    /// The plan it concerns.
    pub plan: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
}

/// An account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    /// The account's id.
    pub user_id: String,
    /// The account's email address (unique).
    pub email: String,
    /// When the account was created, ms since the epoch.
    pub created_ms: u64,
    /// Provisional, active or deactivated.
    pub status: AccountStatus,
    /// Plan of the account's key: free, community, professional, enterprise.
    pub plan: String,
    /// Set by the admin: TOTP must be (re-)enrolled before any login.
    pub totp_required: bool,
    /// The account's API key (hash and masked form), once issued.
    #[serde(default)]
    pub key: Option<AccountKey>,
    /// Subscription state: "none", "active", "cancel_scheduled".
    pub subscription: String,
    /// Subscription changes, oldest first.
    #[serde(default)]
    pub billing_history: Vec<BillingEvent>,
}

/// TOTP state of a user (or of the admin, under [`ADMIN_SUBJECT`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TotpRecord {
    /// The Base32 secret, sealed with the TOTP key (the user id is the associated data).
    pub sealed_secret: String,
    /// Confirmed with a first valid code.
    pub active: bool,
    /// Highest time step accepted; a step ≤ this one is never accepted again.
    pub last_step: u64,
    /// argon2id hashes (PHC strings) of the unused backup codes.
    pub backup_hashes: Vec<String>,
    /// While provisional only: the backup codes, sealed, so setup can show them again.
    #[serde(default)]
    pub sealed_codes: Option<String>,
}

/// Who a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A user's session (the user panel and `/api/user/*`).
    User,
    /// The admin's session (the admin panel).
    Admin,
}

/// A session, stored under the SHA-256 of its token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    /// Whose session it is.
    pub kind: SessionKind,
    /// The user's id (the admin's subject for admin sessions).
    pub user_id: String,
    /// When it was created, ms since the epoch.
    pub created_ms: u64,
    /// When it was last used, ms since the epoch (idle expiry counts from here).
    pub last_seen_ms: u64,
    /// Masked client address (`a.b.c.0`).
    pub ip: String,
    /// The client's `User-Agent` at sign-in.
    pub user_agent: String,
    /// "totp" or "backup_code".
    pub via: String,
}

/// What a setup link was minted for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupToken {
    /// The account the link enrolls.
    pub user_id: String,
    /// When the link expires, ms since the epoch.
    pub expires_ms: u64,
}

/// One audit event, also a leaf in the sector log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the audit trail (1, 2, …).
    pub seq: u64,
    /// What was done (`user_deactivated`, …).
    pub action: String,
    /// Who did it.
    pub actor: String,
    /// Salted hash of the subject (what the log leaf commits to); never an email.
    pub subject: String,
    /// Free text for the operator.
    pub detail: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The log leaf's hash, once appended.
    #[serde(default)]
    pub leaf_hash: Option<String>,
    /// The log leaf's index, once appended.
    #[serde(default)]
    pub leaf_index: Option<u64>,
}

/// The admin database.
pub struct AdminDb {
    db: Database,
}

impl AdminDb {
    /// Opens (or creates) the file and every table.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(USERS)?;
            txn.open_table(EMAILS)?;
            txn.open_table(KEY_OWNERS)?;
            txn.open_table(TOTP)?;
            txn.open_table(SESSIONS)?;
            txn.open_table(USER_SESSIONS)?;
            txn.open_table(SETUP_TOKENS)?;
            txn.open_table(AUDIT)?;
        }
        txn.commit()?;
        Ok(Self { db })
    }

    /// A read snapshot.
    pub fn read(&self) -> Result<redb::ReadTransaction, DbError> {
        Ok(self.db.begin_read()?)
    }

    /// Runs `f` in one durable write transaction; commits only if `f` returns Ok.
    pub fn write<T, E: From<DbError>>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T, E>) -> Result<T, E> {
        jsonapi::write_durably(&self.db, f)
    }

    /// The account `user_id`, if any.
    pub fn user(&self, user_id: &str) -> Result<Option<UserRecord>, DbError> {
        let txn = self.read()?;
        let table = txn.open_table(USERS)?;
        Ok(table.get(user_id)?.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    /// The account registered with `email` (lowercase), if any.
    pub fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, DbError> {
        let id = {
            let txn = self.read()?;
            let table = txn.open_table(EMAILS)?;
            table.get(email)?.map(|v| v.value().to_owned())
        };
        match id {
            Some(id) => self.user(&id),
            None => Ok(None),
        }
    }

    /// Every account, in user id order.
    pub fn users(&self) -> Result<Vec<UserRecord>, DbError> {
        let txn = self.read()?;
        let table = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            out.push(serde_json::from_slice(row?.1.value())?);
        }
        Ok(out)
    }

    /// TOTP state of `subject`.
    pub fn totp(&self, subject: &str) -> Result<Option<TotpRecord>, DbError> {
        let txn = self.read()?;
        let table = txn.open_table(TOTP)?;
        Ok(table.get(subject)?.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    /// Audit events, newest first, at most `limit`.
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, DbError> {
        let txn = self.read()?;
        let table = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        for row in table.iter()?.rev().take(limit) {
            out.push(serde_json::from_slice(row?.1.value())?);
        }
        Ok(out)
    }
}

/// Typed helpers inside a write transaction.
pub mod tx {
    use super::*;

    /// The account `user_id`, if any.
    pub fn user(txn: &WriteTransaction, user_id: &str) -> Result<Option<UserRecord>, DbError> {
        let table = txn.open_table(USERS)?;
        Ok(table.get(user_id)?.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    /// Stores (creates or replaces) an account.
    pub fn put_user(txn: &WriteTransaction, user: &UserRecord) -> Result<(), DbError> {
        txn.open_table(USERS)?.insert(user.user_id.as_str(), serde_json::to_vec(user)?.as_slice())?;
        Ok(())
    }

    /// The TOTP state of `subject`, if any.
    pub fn totp(txn: &WriteTransaction, subject: &str) -> Result<Option<TotpRecord>, DbError> {
        let table = txn.open_table(TOTP)?;
        Ok(table.get(subject)?.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    /// Stores the TOTP state of `subject`.
    pub fn put_totp(txn: &WriteTransaction, subject: &str, record: &TotpRecord) -> Result<(), DbError> {
        txn.open_table(TOTP)?.insert(subject, serde_json::to_vec(record)?.as_slice())?;
        Ok(())
    }

    /// Forgets the TOTP state of `subject`.
    pub fn delete_totp(txn: &WriteTransaction, subject: &str) -> Result<(), DbError> {
        txn.open_table(TOTP)?.remove(subject)?;
        Ok(())
    }

    /// Removes every session of `user_id` except `keep`; returns how many.
    pub fn revoke_sessions(txn: &WriteTransaction, user_id: &str, keep: Option<[u8; 32]>) -> Result<usize, DbError> {
        let mut index = txn.open_table(USER_SESSIONS)?;
        let mut sessions = txn.open_table(SESSIONS)?;
        let hashes: Vec<[u8; 32]> = index
            .range((user_id, [0u8; 32])..=(user_id, [0xffu8; 32]))?
            .map(|row| row.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        let mut revoked = 0;
        for hash in hashes.into_iter().filter(|h| Some(*h) != keep) {
            index.remove((user_id, hash))?;
            sessions.remove(hash)?;
            revoked += 1;
        }
        Ok(revoked)
    }

    /// Removes every setup token of `user_id` (older links die when a new one is minted).
    pub fn revoke_setup_tokens(txn: &WriteTransaction, user_id: &str) -> Result<(), DbError> {
        let mut table = txn.open_table(SETUP_TOKENS)?;
        let mut doomed = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let token: SetupToken = serde_json::from_slice(v.value())?;
            if token.user_id == user_id {
                doomed.push(k.value());
            }
        }
        for hash in doomed {
            table.remove(hash)?;
        }
        Ok(())
    }

    /// Appends an audit event, numbering it; returns its sequence number.
    pub fn append_audit(txn: &WriteTransaction, mut event: AuditEvent) -> Result<u64, DbError> {
        let mut table = txn.open_table(AUDIT)?;
        let seq = table.last()?.map(|(k, _)| k.value() + 1).unwrap_or(0);
        event.seq = seq;
        table.insert(seq, serde_json::to_vec(&event)?.as_slice())?;
        Ok(seq)
    }
}
