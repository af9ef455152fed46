//! The storage error of the services that keep their state in redb (the relay's and the admin
//! service's databases): any failure of the database or of a stored record's JSON is the
//! operator's problem, never the client's, so it answers the contract's 500 `internal` and goes
//! to the service log only.

use crate::ApiError;

/// A storage failure, with the underlying error in words (for the service log).
#[derive(Debug)]
pub struct StorageError(String);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "storage: {}", self.0)
    }
}

impl std::error::Error for StorageError {}

macro_rules! storage_error_from {
    ($($t:ty),*) => { $(impl From<$t> for StorageError { fn from(e: $t) -> Self { StorageError(e.to_string()) } })* };
}
storage_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    serde_json::Error
);

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::internal("storage", &e)
    }
}

/// Runs `f` in one durable write transaction of `db` (`Durability::Immediate`) and commits only
/// if `f` returns Ok: a client is answered after its change is on disk, and a read-check-write
/// inside `f` is atomic (redb serialises write transactions).
pub fn write_durably<T, E: From<StorageError>>(
    db: &redb::Database,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<T, E>,
) -> Result<T, E> {
    let mut txn = db.begin_write().map_err(StorageError::from)?;
    txn.set_durability(redb::Durability::Immediate).map_err(StorageError::from)?;
    let out = f(&txn)?;
    txn.commit().map_err(StorageError::from)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_is_a_500_internal_that_names_no_detail() {
        let record: Result<u64, _> = serde_json::from_slice(b"{not json");
        let storage = StorageError::from(record.expect_err("not json"));
        assert!(storage.to_string().starts_with("storage: "), "{storage}");
        let api = ApiError::from(storage);
        assert_eq!(api.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.code(), "internal");
    }

    #[test]
    fn a_durable_write_commits_only_when_its_closure_succeeds() {
        use redb::{ReadableDatabase, TableDefinition};
        const T: TableDefinition<&str, u64> = TableDefinition::new("t");
        let dir = tempfile::tempdir().expect("temp dir");
        let db = redb::Database::create(dir.path().join("t.redb")).expect("database");
        let put = |value: u64, fail: bool| {
            write_durably(&db, |txn| {
                let mut table = txn.open_table(T).map_err(StorageError::from)?;
                table.insert("k", value).map_err(StorageError::from)?;
                if fail { Err(ApiError::bad_request("refused")) } else { Ok(()) }
            })
        };
        put(1, false).expect("committed");
        assert_eq!(put(2, true).expect_err("refused").code(), "bad_request");
        let txn = db.begin_read().expect("read");
        let value = txn.open_table(T).expect("table").get("k").expect("get").map(|v| v.value());
        assert_eq!(value, Some(1), "the failed write left nothing behind");
    }
}
