//! The JSON error contract shared by paramant's HTTP services: one `ApiError` type that carries
//! an HTTP status and an API error code (the API reference's `bad_request`, `unauthorized`, …),
//! and parsers for bodies and query parameters that turn bad input into a 4xx, never a 5xx.
//! Clients see the code and a short detail; internals go to the service log only.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[cfg(feature = "storage")]
mod storage;
#[cfg(feature = "storage")]
pub use storage::{StorageError, write_durably};

/// An error answer: status, API error code, client-safe detail, optional `Retry-After`.
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after_secs: Option<u64>,
    /// More fields of the body (e.g. `current_users`, `max_users` of a 402 `tier_limit_users`).
    fields: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), retry_after_secs: None, fields: None }
    }
    /// 400 `bad_request`: malformed body or missing/invalid field.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }
    /// 401 `unauthorized`: missing or invalid credential.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    /// 403 `forbidden`: valid credential, not allowed for this resource.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    /// 409 with a specific code.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    /// 413 `payload_too_large`.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", detail)
    }
    /// 429 `rate_limited` with `Retry-After`.
    pub fn rate_limited(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail).retry_after(retry_after_secs)
    }
    /// 503 `unavailable` with `Retry-After` (full, draining).
    pub fn unavailable(code: &'static str, detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail).retry_after(retry_after_secs)
    }
    /// Adds the fields of `body` (a JSON object) to the answer's body, except `ok`, `error` and
    /// `detail`, which stay this error's.
    pub fn with_fields(mut self, body: &serde_json::Value) -> Self {
        if let Some(object) = body.as_object() {
            let extra = object
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "ok" | "error" | "detail"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            self.fields = Some(extra);
        }
        self
    }
    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
    /// A failure that is ours, not the client's: logged in full, answered without detail.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!("internal error: {context}: {error}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The API error code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "ok": false, "error": self.code, "detail": self.detail });
        if let (Some(fields), Some(object)) = (self.fields, body.as_object_mut()) {
            object.extend(fields);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}

/// 404 for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// 405 for known paths with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here")
}

/// Parses a JSON body, mapping an oversized body to 413 and everything else to 400.
pub fn json_body<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = body_bytes(body)?;
    parse_json(&bytes)
}

/// The raw body, with an oversized body mapped to 413.
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
            ApiError::too_large("request body too large")
        }
        // A broken chunked encoding or a body cut short is malformed input, not a large one.
        BytesRejection::FailedToBufferBody(_) => ApiError::bad_request("malformed or truncated request body"),
        other => ApiError::bad_request(other.body_text()),
    })
}

/// Parses JSON from bytes (borrowing from them where the type allows), 400 on failure.
pub fn parse_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// An optional unsigned integer query parameter; anything else is a 400 naming it.
pub fn query_u64(params: &HashMap<String, String>, name: &str) -> ApiResult<Option<u64>> {
    params
        .get(name)
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::bad_request(format!("{name} must be a non-negative integer"))))
        .transpose()
}

/// One path parameter, percent-decoded. axum's own `Path` answers a malformed one (bad
/// percent-encoding, invalid UTF-8) with a plain-text 400; this answers with the API's JSON
/// error, like every other refusal.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status().is_client_error() => Err(ApiError::bad_request(rejection.body_text())),
            Err(rejection) => Err(ApiError::internal("path parameter", &rejection.body_text())),
        }
    }
}
