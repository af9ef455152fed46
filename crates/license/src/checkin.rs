//! The check-in (ADR R013): the request a relay sends, byte for byte, and what its answer means.
//!
//! The body is the canonical JSON of `{license_key, relay_id, version, telemetry, nonce}`: one
//! function makes it, and both `telemetry-preview` and the sender call it, so what the operator
//! previews is exactly what the server receives.

use serde::{Deserialize, Serialize};

use crate::capability::{Expectation, SignedCapabilitySet};
use crate::keys::TrustRoots;
use crate::telemetry::Telemetry;

/// 16 random bytes, hex; the answer must echo it (a replayed old answer carries an old nonce).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nonce([u8; 16]);

impl Nonce {
    /// A nonce from 16 random bytes (the caller draws them: this crate has no randomness).
    #[must_use]
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Lowercase hex.
    #[must_use]
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The check-in request.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    /// The license key (the `plk_` token).
    pub license_key: String,
    /// SHA3-256 (hex) of the sector log's ML-DSA-65 public key.
    pub relay_id: String,
    /// The relay's version.
    pub version: String,
    /// Telemetry (off by default).
    pub telemetry: Telemetry,
    /// The nonce, hex.
    pub nonce: String,
}

impl std::fmt::Debug for CheckInRequest {
    /// Without the license key (it is also the operator's data-plane key).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckInRequest")
            .field("relay_id", &self.relay_id)
            .field("version", &self.version)
            .field("telemetry", &self.telemetry)
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl CheckInRequest {
    /// The exact body sent: canonical JSON.
    #[must_use]
    pub fn body(&self) -> Vec<u8> {
        // Strings, booleans and integers only: canonical JSON of it cannot fail.
        wire::canonical_json_of(self).unwrap_or_default()
    }

    /// What the answer must echo.
    #[must_use]
    pub fn expectation(&self) -> Expectation {
        Expectation {
            license_key: self.license_key.clone(),
            relay_id: self.relay_id.clone(),
            nonce: self.nonce.clone(),
        }
    }
}

/// What a check-in answer means.
#[derive(Clone, Debug)]
pub enum CheckInOutcome {
    /// 200 with a set whose signature, echoes and dates check: cache it.
    Active(Box<SignedCapabilitySet>),
    /// 402: payment failed; Community at once, tell the admin panel.
    PaymentRequired,
    /// 404: the server does not know the key; Community, and an admin error.
    UnknownKey,
    /// 410: revoked; Community, and never retry with this key.
    Revoked,
    /// 503, no answer, or an answer that does not check (unsigned, forged, replayed, expired,
    /// another relay's): keep the cache, the grace clock runs.
    Unavailable(String),
}

impl CheckInOutcome {
    /// A short name for logs and status.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            CheckInOutcome::Active(_) => "active",
            CheckInOutcome::PaymentRequired => "payment_required",
            CheckInOutcome::UnknownKey => "unknown_key",
            CheckInOutcome::Revoked => "revoked",
            CheckInOutcome::Unavailable(_) => "unavailable",
        }
    }
}

/// Classifies an HTTP answer to a check-in.
#[must_use]
pub fn classify(status: u16, body: &[u8], expected: &Expectation, roots: &TrustRoots, now_ms: u64) -> CheckInOutcome {
    match status {
        200 => match SignedCapabilitySet::verify(body, roots, now_ms)
            .and_then(|signed| signed.set.check_answer(expected, now_ms).map(|()| signed))
        {
            Ok(signed) => CheckInOutcome::Active(Box::new(signed)),
            Err(e) => CheckInOutcome::Unavailable(format!("answer rejected: {e}")),
        },
        402 => CheckInOutcome::PaymentRequired,
        404 => CheckInOutcome::UnknownKey,
        410 => CheckInOutcome::Revoked,
        other => CheckInOutcome::Unavailable(format!("HTTP {other}")),
    }
}
