//! The offline `plk_` license token, in the reference's format so that a token it issued verifies
//! here: `"plk_" + base64url(payload ‖ signature)`, where `payload` is UTF-8 JSON
//! `{"max_keys": n | "unlimited", "expires_at", "issued_to", "issued_at"}` and `signature` is the
//! last 64 bytes, a pure Ed25519 signature over exactly the payload bytes (no canonicalisation:
//! the bytes as issued are the bytes verified).
//!
//! Stricter than the reference: verification is `verify_strict`, the base64 must be clean (the
//! reference silently skips invalid characters), `max_keys` must be a non-negative integer or
//! `"unlimited"` (the reference's `parseInt` gives NaN), and dates must be one of the ISO forms.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::TrustRoots;
use crate::state::UserLimit;
use crate::{Error, MAX_CLOCK_SKEW_MS};

/// Longest token accepted (a real one is a few hundred characters).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Length of the Ed25519 signature at the end of the decoded token.
const SIGNATURE_LEN: usize = 64;

/// The signed payload, field for field as the reference writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// How many users the license allows.
    pub max_keys: UserLimit,
    /// When it ends: `YYYY-MM-DD` (UTC midnight) or an ISO-8601 UTC time.
    pub expires_at: String,
    /// Who it was issued to (shown to the operator only, never on `/health`).
    pub issued_to: String,
    /// When it was issued (informative; the reference does not require it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
}

/// A token as presented, split into its signed bytes and signature. Parsing checks the shape
/// only; [`LicenseToken::verify`] checks the signature and the dates.
#[derive(Clone)]
pub struct LicenseToken {
    text: String,
    payload: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for LicenseToken {
    /// The token is also the operator's data-plane key: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LicenseToken").field("sha256", &hex::encode(self.sha256())).finish_non_exhaustive()
    }
}

/// A token that verified and has not expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineLicense {
    /// The user cap it grants.
    pub max_users: UserLimit,
    /// When it expires (Unix ms).
    pub expires_at_ms: u64,
    /// The licensee.
    pub issued_to: String,
    /// When it was issued (Unix ms), if it says.
    pub issued_at_ms: Option<u64>,
}

impl LicenseToken {
    /// Splits a token into payload and signature.
    ///
    /// # Errors
    /// [`Error::Prefix`], [`Error::TooLong`], [`Error::Encoding`], [`Error::Truncated`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.len() > MAX_TOKEN_LEN {
            return Err(Error::TooLong(text.len()));
        }
        let body = text.strip_prefix("plk_").ok_or(Error::Prefix)?;
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')) {
            return Err(Error::Encoding);
        }
        let decoded = wire::parse_b64url_lenient(body).map_err(|_| Error::Encoding)?;
        if decoded.len() <= SIGNATURE_LEN {
            return Err(Error::Truncated(decoded.len()));
        }
        let (payload, signature) = decoded.split_at(decoded.len() - SIGNATURE_LEN);
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(signature);
        Ok(Self { text: text.to_owned(), payload: payload.to_vec(), signature: sig })
    }

    /// The token as text (it is the operator's data-plane key: handle as a secret).
    #[must_use]
    pub fn danger_as_str(&self) -> &str {
        &self.text
    }

    /// SHA-256 of the token text: how it is named in logs and state without revealing it.
    #[must_use]
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.text.as_bytes()).into()
    }

    /// The signed payload, after checking the signature (not the dates).
    ///
    /// # Errors
    /// [`Error::Signature`], [`Error::Payload`].
    pub fn verified_payload(&self, roots: &TrustRoots) -> Result<Payload, Error> {
        roots.verify_ed25519(&self.payload, &self.signature)?;
        let payload: Payload = serde_json::from_slice(&self.payload).map_err(|e| Error::Payload(e.to_string()))?;
        if payload.issued_to.trim().is_empty() {
            return Err(Error::Payload("issued_to is empty".into()));
        }
        Ok(payload)
    }

    /// Verifies the signature with the trust roots, then the dates at `now_ms`.
    ///
    /// # Errors
    /// [`Error::Signature`], [`Error::Payload`], [`Error::Date`], [`Error::Expired`],
    /// [`Error::FromTheFuture`] (issued after now, beyond the allowed clock skew).
    pub fn verify(&self, roots: &TrustRoots, now_ms: u64) -> Result<OfflineLicense, Error> {
        let payload = self.verified_payload(roots)?;
        let expires_at_ms = parse_date(&payload.expires_at)?;
        let issued_at_ms = payload.issued_at.as_deref().map(parse_date).transpose()?;
        if let (Some(issued), Some(text)) = (issued_at_ms, payload.issued_at.as_deref())
            && issued > now_ms.saturating_add(MAX_CLOCK_SKEW_MS)
        {
            return Err(Error::FromTheFuture(text.to_owned()));
        }
        if now_ms >= expires_at_ms {
            return Err(Error::Expired(payload.expires_at));
        }
        Ok(OfflineLicense { max_users: payload.max_keys, expires_at_ms, issued_to: payload.issued_to, issued_at_ms })
    }
}

/// Issues a token: signs the JSON of `payload` with the Ed25519 key whose 32-byte seed is given.
///
/// # Errors
/// [`Error::Payload`] if a date in it cannot be read.
pub fn issue(seed: &[u8; 32], payload: &Payload) -> Result<String, Error> {
    parse_date(&payload.expires_at)?;
    if let Some(issued) = &payload.issued_at {
        parse_date(issued)?;
    }
    let bytes = serde_json::to_vec(payload).map_err(|e| Error::Payload(e.to_string()))?;
    Ok(issue_raw(seed, &bytes))
}

/// Signs arbitrary payload bytes into a token (tests use it to build malformed payloads).
#[must_use]
pub fn issue_raw(seed: &[u8; 32], payload: &[u8]) -> String {
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(seed);
    let signature = key.sign(payload);
    let mut out = payload.to_vec();
    out.extend_from_slice(&signature.to_bytes());
    format!("plk_{}", wire::b64url(out))
}

/// The public key (hex) of an Ed25519 seed, for configuring it as a trust root.
#[must_use]
pub fn public_key_hex(seed: &[u8; 32]) -> String {
    hex::encode(ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

/// Reads `YYYY-MM-DD` (UTC midnight, as JavaScript's `Date` reads a date-only string),
/// `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS.mmmZ` into Unix ms.
///
/// # Errors
/// [`Error::Date`].
pub fn parse_date(text: &str) -> Result<u64, Error> {
    let full = match text.len() {
        10 => format!("{text}T00:00:00.000Z"),
        20 if text.is_ascii() && text.ends_with('Z') => format!("{}.000Z", &text[..19]),
        _ => text.to_owned(),
    };
    wire::parse_iso8601_ms(&full).map_err(|_| Error::Date(text.chars().take(64).collect()))
}
