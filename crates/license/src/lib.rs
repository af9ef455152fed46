//! paramant licensing, the pure core: what a license says and what it allows.
//!
//! - [`token`]: the offline `plk_` license token (Ed25519, the reference's format) — issue,
//!   parse, verify strictly against trust roots.
//! - [`keys`]: the trust roots (Ed25519 for tokens, ML-DSA-65 for capability sets, with key
//!   rotation).
//! - [`capability`]: the signed capability set of ADR R013 (canonical JSON, ML-DSA-65), with the
//!   remote actions it may carry.
//! - [`checkin`]: the check-in request (telemetry included, byte for byte what is sent) and the
//!   classification of the server's answer (200/402/404/410/503, echoes, expiry).
//! - [`state`]: the license state the service keeps, the transitions a check-in causes, the
//!   7-day grace, and the [`state::Entitlement`] (edition and user cap) it all comes down to.
//! - [`telemetry`]: the aggregates the trust model allows, and nothing else.
//! - [`remote`]: remote actions as log events (role Owner or Support).
//!
//! Invariant: no IO, no clock, no randomness. Every function takes `now` (Unix milliseconds) and
//! any random bytes it needs as arguments, so every rule here is a deterministic, tested map.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod capability;
pub mod checkin;
pub mod keys;
pub mod remote;
pub mod state;
pub mod telemetry;
pub mod token;

pub use capability::{Capabilities, CapabilitySet, Expectation, SignedCapabilitySet};
pub use checkin::{CheckInOutcome, CheckInRequest, Nonce};
pub use keys::{TrustRoots, TrustedMlDsaKey};
pub use state::{Edition, Entitlement, LicenseState, UserLimit};
pub use telemetry::Telemetry;
pub use token::{LicenseToken, OfflineLicense};

/// Users Community Edition allows (no license, a bad one, an expired one, a revoked one).
pub const COMMUNITY_USERS: u64 = 5;
/// How long a capability set keeps granting after the check-in that brought it (ADR R013:
/// "keeps using its last cached capability-set for up to 7 days").
pub const GRACE_MS: u64 = 7 * 24 * 3600 * 1000;
/// How far a signed time may lie in the future before it is refused (clock skew between the
/// license server and this machine).
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// How often the service checks in (ADR R013: at start and every 6 hours).
pub const CHECK_IN_INTERVAL_MS: u64 = 6 * 3600 * 1000;

/// Everything that can be wrong with a token or an answer. Each is bad input: it grants
/// nothing beyond Community Edition and is never a fault of ours.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The token does not start with `plk_`.
    #[error("a license token starts with plk_")]
    Prefix,
    /// The token is longer than any real one.
    #[error("license token too long ({0} characters)")]
    TooLong(usize),
    /// The token's body is not base64url.
    #[error("license token is not base64url")]
    Encoding,
    /// The decoded token is too short to hold a payload and a 64-byte signature.
    #[error("license token is truncated ({0} bytes; payload and a 64-byte signature expected)")]
    Truncated(usize),
    /// No trusted key verifies the signature.
    #[error("signature does not verify with any trusted licensing key")]
    Signature,
    /// The signed payload is not the expected JSON.
    #[error("license payload: {0}")]
    Payload(String),
    /// A date that cannot be read.
    #[error("invalid date {0:?} (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.mmm]Z)")]
    Date(String),
    /// The license or answer has expired.
    #[error("expired at {0}")]
    Expired(String),
    /// A signed time in the future beyond the allowed clock skew.
    #[error("signed time {0} lies in the future (clock skew?)")]
    FromTheFuture(String),
    /// An answer echo that does not match the request (nonce, relay_id, license_key).
    #[error("answer does not echo the request's {0}")]
    Echo(&'static str),
    /// A key given in configuration that cannot be decoded.
    #[error("licensing key: {0}")]
    Key(String),
}
