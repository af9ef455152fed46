//! How the log's own failures map onto the shared JSON error contract (`jsonapi`): storage
//! and sequencer errors are ours (500, logged, no detail to the client); an invalid event is
//! the caller's (400).

pub use jsonapi::{ApiError, ApiResult};

use crate::sequencer::AppendError;
use crate::store::StoreError;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal("storage", &e)
    }
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Invalid(detail) => ApiError::bad_request(detail),
            AppendError::Storage(_) | AppendError::Stopped => ApiError::internal("append", &e),
        }
    }
}
