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
}
