//! The relay registration: a relay's entry in the relay registry (`POST /v2/relays/register`),
//! signed by its sector's log key (the sector's identity). Built once here for the log that
//! signs it and the registry that checks it.

use serde::{Deserialize, Serialize};

use crate::{Error, b64, canonical_json_of, parse_b64};

/// What the signature of a registration covers in addition to the fields: a fixed purpose,
/// so that a registration can never be mistaken for any other message the log key signs.
pub const REGISTRATION_PURPOSE: &str = "paramant relay registration v1";

/// Longest relay URL a registration may carry.
pub const MAX_REGISTRATION_URL: usize = 2048;

/// The signed fields of a relay registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayRegistration {
    /// The relay's public URL (`http://` or `https://`).
    pub url: String,
    /// The sector the relay serves (the log fixes it to its own).
    pub sector: String,
    /// The relay's software version, 1–32 characters.
    pub version: String,
    /// The relay's edition (`community`, …), 1–32 characters.
    pub edition: String,
    /// When it was signed, `YYYY-MM-DDTHH:MM:SS.mmmZ` (the log's clock).
    pub timestamp: String,
}

/// The canonical JSON the signature covers: the fields plus the purpose.
#[derive(Serialize)]
struct Signed<'a> {
    purpose: &'a str,
    #[serde(flatten)]
    body: &'a RelayRegistration,
}

impl RelayRegistration {
    /// Checks the shape of every field (not the clock window: that is the registry's).
    ///
    /// # Errors
    /// [`Error::InvalidField`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        let url_ok = (self.url.starts_with("https://") || self.url.starts_with("http://"))
            && self.url.len() <= MAX_REGISTRATION_URL
            && !self.url.chars().any(char::is_control);
        if !url_ok {
            return Err(Error::InvalidField { field: "url", reason: "must be an http(s) URL of at most 2048 bytes" });
        }
        for (field, value) in [("sector", &self.sector), ("version", &self.version), ("edition", &self.edition)] {
            if value.is_empty() || value.len() > 32 || value.chars().any(char::is_control) {
                return Err(Error::InvalidField { field, reason: "must be 1-32 printable characters" });
            }
        }
        crate::parse_iso8601_ms(&self.timestamp)?;
        Ok(())
    }

    /// The bytes that are signed: canonical JSON of the fields and [`REGISTRATION_PURPOSE`].
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        // Invariant: strings only, which canonical JSON always accepts.
        canonical_json_of(&Signed { purpose: REGISTRATION_PURPOSE, body: self }).expect("registration holds strings")
    }

    /// Signs the registration with the log key (pure ML-DSA-65, deterministic).
    #[must_use]
    pub fn sign(self, key: &logkey::LogSigningKey) -> SignedRegistration {
        let signature = b64(key.sign(&self.signed_bytes()));
        let public_key = b64(key.verifying_key().to_bytes());
        SignedRegistration { body: self, public_key, signature }
    }
}

/// A registration as the relay posts it to a registry: the fields, the signing key and the
/// signature, flat in one JSON object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRegistration {
    /// The signed fields.
    #[serde(flatten)]
    pub body: RelayRegistration,
    /// The log's ML-DSA-65 public key, standard base64 of its 1952-byte encoding.
    pub public_key: String,
    /// ML-DSA-65 signature over [`RelayRegistration::signed_bytes`], standard base64.
    pub signature: String,
}

impl SignedRegistration {
    /// Checks the fields' shape and the signature; returns the key that signed.
    ///
    /// # Errors
    /// As [`RelayRegistration::validate`]; [`Error::Base64`], [`Error::Signature`] for the
    /// key or the signature.
    pub fn verify(&self) -> Result<logkey::LogVerifyingKey, Error> {
        self.body.validate()?;
        let key = logkey::LogVerifyingKey::from_bytes(&parse_b64(&self.public_key)?)?;
        key.verify(&self.body.signed_bytes(), &parse_b64(&self.signature)?)?;
        Ok(key)
    }
}
