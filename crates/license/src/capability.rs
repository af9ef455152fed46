//! The signed capability set of ADR R013: what a check-in answer grants. Signed with ML-DSA-65
//! (pure, empty context) over the canonical JSON (`wire::canonical_json`: keys sorted at every
//! level, no whitespace) of every field except `signature`, which is standard base64.
//!
//! Verification works on the JSON as received: the signature is removed and the rest is
//! canonicalised, so fields this version does not know (new capabilities, new remote actions)
//! are covered by the signature and then ignored, as R013 requires.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keys::TrustRoots;
use crate::remote::Remote;
use crate::state::UserLimit;
use crate::token::parse_date;
use crate::{Error, GRACE_MS, MAX_CLOCK_SKEW_MS};

/// Largest capability set accepted (one is about 5 KiB with its signature).
pub const MAX_SET_BYTES: usize = 64 * 1024;

/// What a tier unlocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Users (active accounts and active `pgp_` keys not owned by an account).
    pub max_users: UserLimit,
    /// Largest upload, MiB.
    pub max_blob_size_mb: u64,
    /// Longest retention, seconds.
    pub retention_max_seconds: u64,
    /// Add-ons this relay may run.
    #[serde(default)]
    pub addons_allowed: Vec<String>,
    /// Whether uploads must carry an ML-DSA-65 signature.
    #[serde(default)]
    pub ml_dsa_required: bool,
    /// Support level (informative).
    #[serde(default)]
    pub support_level: String,
    /// Whether custom branding is allowed.
    #[serde(default)]
    pub custom_branding: bool,
}

/// A capability set (everything but the signature).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySet {
    /// When the server issued it (`YYYY-MM-DDTHH:MM:SS.mmmZ`): the time of the check-in.
    pub issued_at: String,
    /// End of its validity as a fresh answer (hours after `issued_at`).
    pub expires_at: String,
    /// Echo of the request's license key.
    pub license_key: String,
    /// Echo of the request's relay identity.
    pub relay_id: String,
    /// Echo of the request's nonce.
    pub nonce: String,
    /// Tier name (informative; the capabilities are what count).
    pub tier: String,
    /// What the tier unlocks.
    pub capabilities: Capabilities,
    /// When the server wants the next check-in.
    pub next_check_in_seconds: u64,
    /// Fingerprint (SHA3-256 hex) of the key that will sign after the next rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_pubkey_hash: Option<String>,
    /// Remote actions (ADR R014, as the trust page describes them).
    #[serde(default, skip_serializing_if = "Remote::is_empty")]
    pub remote: Remote,
}

/// A capability set whose signature verified, with the exact JSON it came as.
#[derive(Clone, Debug)]
pub struct SignedCapabilitySet {
    /// The set.
    pub set: CapabilitySet,
    /// The JSON as received (signature included), what the cache keeps.
    pub raw: String,
    /// Fingerprint of the key that signed it.
    pub signer: [u8; 32],
}

/// What a check-in answer must echo.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// The license key sent.
    pub license_key: String,
    /// The relay identity sent.
    pub relay_id: String,
    /// The nonce sent.
    pub nonce: String,
}

impl CapabilitySet {
    /// Signs the set with an ML-DSA-65 key (the license server's side): the set's JSON with a
    /// `signature` field added.
    ///
    /// # Errors
    /// [`Error::Payload`] if the set cannot be serialised canonically.
    pub fn sign(&self, key: &crypto::LogSigningKey) -> Result<String, Error> {
        let mut value = serde_json::to_value(self).map_err(|e| Error::Payload(e.to_string()))?;
        let message = wire::canonical_json(&value).map_err(|e| Error::Payload(e.to_string()))?;
        if let Value::Object(map) = &mut value {
            map.insert("signature".into(), Value::String(wire::b64(key.sign(&message))));
        }
        serde_json::to_string(&value).map_err(|e| Error::Payload(e.to_string()))
    }

    /// `issued_at` in Unix ms.
    ///
    /// # Errors
    /// [`Error::Date`].
    pub fn issued_at_ms(&self) -> Result<u64, Error> {
        parse_date(&self.issued_at)
    }

    /// Checks a fresh check-in answer: the echoes, not issued in the future, not expired.
    ///
    /// # Errors
    /// [`Error::Echo`], [`Error::FromTheFuture`], [`Error::Expired`], [`Error::Date`].
    pub fn check_answer(&self, expected: &Expectation, now_ms: u64) -> Result<(), Error> {
        if !crypto::ct_eq(self.license_key.as_bytes(), expected.license_key.as_bytes()) {
            return Err(Error::Echo("license_key"));
        }
        if self.relay_id != expected.relay_id {
            return Err(Error::Echo("relay_id"));
        }
        if self.nonce != expected.nonce {
            return Err(Error::Echo("nonce"));
        }
        self.check_not_future(now_ms)?;
        if now_ms >= parse_date(&self.expires_at)? {
            return Err(Error::Expired(self.expires_at.clone()));
        }
        Ok(())
    }

    /// Whether this set (from the cache) still grants at `now_ms`: issued not in the future,
    /// and at most [`GRACE_MS`] ago. Its short `expires_at` bounds a *fresh* answer; the cache
    /// keeps granting through the 7-day grace so that an outage never disables a relay at once.
    ///
    /// # Errors
    /// [`Error::FromTheFuture`], [`Error::Expired`] (grace over), [`Error::Date`].
    pub fn check_grace(&self, now_ms: u64) -> Result<(), Error> {
        self.check_not_future(now_ms)?;
        let end = self.issued_at_ms()?.saturating_add(GRACE_MS);
        if now_ms >= end {
            return Err(Error::Expired(wire::iso8601_ms(end)));
        }
        Ok(())
    }

    fn check_not_future(&self, now_ms: u64) -> Result<(), Error> {
        if self.issued_at_ms()? > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(Error::FromTheFuture(self.issued_at.clone()));
        }
        Ok(())
    }
}

impl SignedCapabilitySet {
    /// Checks the signature of a capability set as received (JSON text) with the ML-DSA-65
    /// roots honoured at `now_ms`, then reads it. Dates and echoes are checked separately
    /// ([`CapabilitySet::check_answer`], [`CapabilitySet::check_grace`]).
    ///
    /// # Errors
    /// [`Error::TooLong`], [`Error::Payload`], [`Error::Signature`].
    pub fn verify(raw: &[u8], roots: &TrustRoots, now_ms: u64) -> Result<Self, Error> {
        if raw.len() > MAX_SET_BYTES {
            return Err(Error::TooLong(raw.len()));
        }
        let text = std::str::from_utf8(raw).map_err(|_| Error::Payload("not UTF-8".into()))?;
        let mut value: Value = serde_json::from_str(text).map_err(|e| Error::Payload(e.to_string()))?;
        let Value::Object(map) = &mut value else { return Err(Error::Payload("not a JSON object".into())) };
        let signature = match map.remove("signature") {
            Some(Value::String(s)) => {
                wire::parse_b64(&s).map_err(|_| Error::Payload("signature is not base64".into()))?
            }
            _ => return Err(Error::Payload("signature missing".into())),
        };
        let message = wire::canonical_json(&value).map_err(|e| Error::Payload(e.to_string()))?;
        let signer = roots.verify_ml_dsa(&message, &signature, now_ms)?;
        let set: CapabilitySet = serde_json::from_value(value).map_err(|e| Error::Payload(e.to_string()))?;
        Ok(Self { set, raw: text.to_owned(), signer })
    }
}
