//! The relay's redb file: API keys, devices, DIDs, webhooks, the relay registry and trial
//! request limits. Payloads never come here (they live in RAM only, see `blobs`).
//!
//! Every write is its own durable transaction (`Durability::Immediate`), committed before the
//! client is answered.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, TableDefinition, WriteTransaction};

/// `sha256(api key) -> KeyRecord JSON`.
pub const KEYS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("keys");
/// `(sha256(api key), device_id) -> DeviceRecord JSON`.
pub const DEVICES: TableDefinition<([u8; 32], &str), &[u8]> = TableDefinition::new("devices");
/// `did -> DidRecord JSON`.
pub const DIDS: TableDefinition<&str, &[u8]> = TableDefinition::new("dids");
/// `(sha256(api key), did) -> ()`: which key registered which DID (listing and the 500 cap).
pub const DIDS_BY_KEY: TableDefinition<([u8; 32], &str), ()> = TableDefinition::new("dids_by_key");
/// `(sha256(api key), device_id) -> WebhookRecord JSON list`.
pub const WEBHOOKS: TableDefinition<([u8; 32], &str), &[u8]> = TableDefinition::new("webhooks");
/// `relay url -> RelayRecord JSON` (the `/v2/relays` registry).
pub const RELAYS: TableDefinition<&str, &[u8]> = TableDefinition::new("relays");
/// `"ip:<addr>" | "email:<sha256>" -> JSON list of request times (ms)` for trial limits.
pub const TRIAL_LIMITS: TableDefinition<&str, &[u8]> = TableDefinition::new("trial_limits");

/// Storage failure: always the operator's problem, never the client's.
#[derive(Debug, thiserror::Error)]
#[error("relay storage: {0}")]
pub struct DbError(String);

macro_rules! db_error_from {
    ($($t:ty),*) => { $(impl From<$t> for DbError { fn from(e: $t) -> Self { DbError(e.to_string()) } })* };
}
db_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    serde_json::Error
);

impl From<DbError> for jsonapi::ApiError {
    fn from(e: DbError) -> Self {
        jsonapi::ApiError::internal("storage", &e)
    }
}

/// The relay database.
pub struct RelayDb {
    db: Database,
}

impl RelayDb {
    /// Opens (or creates) the file and every table.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(KEYS)?;
            txn.open_table(DEVICES)?;
            txn.open_table(DIDS)?;
            txn.open_table(DIDS_BY_KEY)?;
            txn.open_table(WEBHOOKS)?;
            txn.open_table(RELAYS)?;
            txn.open_table(TRIAL_LIMITS)?;
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
        let mut txn = self.db.begin_write().map_err(DbError::from)?;
        txn.set_durability(Durability::Immediate).map_err(DbError::from)?;
        let out = f(&txn)?;
        txn.commit().map_err(DbError::from)?;
        Ok(out)
    }
}
