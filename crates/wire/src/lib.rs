//! Wire formats of paramant: canonical JSON, ISO-8601 timestamps, hex/base64, signed tree heads,
//! audit paths and inclusion proofs, delivery receipts, and the log's event (leaf) types.
//!
//! Invariant: pure. No IO, no clock, no async; every function is a deterministic map from bytes
//! to bytes, so clients, the log and auditors compute exactly the same signed bytes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod encoding;
mod event;
mod json;
pub mod log_api;
mod proof;
mod receipt;
mod registration;
mod sth;
mod time;

pub use encoding::{b64, b64url, hash_hex, parse_b64, parse_b64url_lenient, parse_hash_hex};
pub use event::{LogEvent, MAX_FIELD_LEN};
pub use json::{canonical_json, canonical_json_of};
pub use proof::{AuditStep, InclusionProof, Side, audit_path, proof_from_audit_path};
pub use receipt::{Receipt, ReceiptBody};
pub use registration::{MAX_REGISTRATION_URL, REGISTRATION_PURPOSE, RelayRegistration, SignedRegistration};
pub use sth::{STH_VERSION, SignedSth, SthBody};
pub use time::{iso8601_ms, parse_iso8601_ms, rfc2822_date};

/// Everything that can go wrong in this crate. Every variant is a malformed or unverifiable
/// input (a 4xx or `valid: false` at the API), never an internal fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A number that is not an integer (or does not fit in `u64`/`i64`) in JSON to be signed.
    #[error("non-integer number {0} in signed JSON (signed formats carry integers only)")]
    NonIntegerNumber(String),

    /// Input that is not valid JSON for the expected type.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// A timestamp that is not exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` or names no real instant
    /// at or after 1970-01-01.
    #[error("invalid timestamp {input:?}: {reason} (expected YYYY-MM-DDTHH:MM:SS.mmmZ)")]
    Timestamp {
        /// The offending input (cut to 64 characters).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A hash that is not exactly 64 hex characters.
    #[error("invalid {what}: expected 64 hex characters, got {len} characters")]
    HashHex {
        /// Which field was being parsed.
        what: &'static str,
        /// The length of the input.
        len: usize,
    },

    /// Base64 or base64url that does not decode.
    #[error("invalid base64: {0}")]
    Base64(#[from] base64::DecodeError),

    /// An audit path with the wrong number of steps for its leaf index and tree size.
    #[error("audit path has {got} steps, leaf index and tree size call for {expected}")]
    AuditPathLength {
        /// The number of steps the RFC 9162 walk calls for.
        expected: usize,
        /// The number of steps received.
        got: usize,
    },

    /// An audit path step whose `position` disagrees with what the index and size imply.
    #[error("audit path step {step} says the sibling is on the {got:?} side, but it is on the {expected:?} side")]
    AuditPosition {
        /// Index of the step, from the leaf up.
        step: usize,
        /// The side the RFC 9162 walk puts the sibling on.
        expected: Side,
        /// The side the step claims.
        got: Side,
    },

    /// An inclusion proof that recomputes to a different root than it claims.
    #[error("recomputed root {computed} \u{2260} claimed root {claimed}")]
    RootMismatch {
        /// The root the audit path leads to (lowercase hex).
        computed: String,
        /// The root the proof claims (as given).
        claimed: String,
    },

    /// An index/size combination the Merkle tree math rejects (e.g. index beyond size).
    #[error("invalid proof: {0}")]
    Proof(#[from] tlog::Error),

    /// A signed tree head whose `pk_hash` is not the fingerprint of the key it is checked with.
    #[error("pk_hash {claimed} is not the fingerprint {actual} of the verifying key")]
    PkHashMismatch {
        /// The STH's `pk_hash`.
        claimed: String,
        /// The verifying key's fingerprint (lowercase hex).
        actual: String,
    },

    /// A signature that does not verify (or is not a well-formed ML-DSA-65 signature).
    #[error("signature invalid: {0}")]
    Signature(#[from] logkey::Error),

    /// A signed tree head of a format version this code does not know.
    #[error("unsupported STH version {0} (only version 1 is defined)")]
    UnsupportedVersion(u32),

    /// A log event field that is longer than [`MAX_FIELD_LEN`] bytes.
    #[error("field {field} is {len} bytes long, at most {MAX_FIELD_LEN} allowed")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },

    /// A log event field that is malformed.
    #[error("field {field} is invalid: {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}
