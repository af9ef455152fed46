//! Trust roots: which keys may sign licenses. Ed25519 keys verify offline `plk_` tokens; ML-DSA-65
//! keys verify capability sets. The reference's published Ed25519 licensing key is embedded;
//! an operator adds keys of their own (running their own licensing, or the `fixtures/` test key
//! in tests) through configuration.
//!
//! Key rotation (ADR R013): a capability set may announce `next_pubkey_hash`, the fingerprint of
//! the key that will sign after the next rotation. A key can carry `not_after`: the old key is
//! honoured until then (R013: 60 days after the rotation) and refused afterwards.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::Error;

/// The reference implementation's licensing public key (Ed25519, hex), as published in
/// `relay/relay.js` and `deploy/verify-license.js`: tokens it issued verify here.
pub const REFERENCE_ED25519_KEY_HEX: &str = "ed8a6201c86f013b16718b3e6d9ded62362ca82ef7ae334308c12d71d18ae4e6";

/// An ML-DSA-65 key trusted to sign capability sets, until `not_after` (Unix ms) if set.
#[derive(Clone, Debug)]
pub struct TrustedMlDsaKey {
    /// The key.
    pub key: crypto::LogVerifyingKey,
    /// After this instant the key is no longer honoured (a rotated-out key).
    pub not_after_ms: Option<u64>,
}

/// The keys this machine trusts.
#[derive(Clone, Debug, Default)]
pub struct TrustRoots {
    ed25519: Vec<VerifyingKey>,
    ml_dsa: Vec<TrustedMlDsaKey>,
}

impl TrustRoots {
    /// The embedded roots: the reference's published Ed25519 licensing key. (No ML-DSA-65
    /// licensing key has been published; capability sets need an operator-configured key.)
    #[must_use]
    pub fn embedded() -> Self {
        let mut roots = Self::default();
        // The constant is a valid, strong point (a unit test checks it), so this cannot fail.
        let _ = roots.add_ed25519_hex(REFERENCE_ED25519_KEY_HEX);
        roots
    }

    /// Trusts one more Ed25519 key (64 hex characters).
    ///
    /// # Errors
    /// [`Error::Key`] when it is not 32 bytes of hex or not a valid curve point.
    pub fn add_ed25519_hex(&mut self, hex_key: &str) -> Result<(), Error> {
        let bytes: [u8; 32] = hex::decode(hex_key.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::Key("an Ed25519 key is 64 hex characters".into()))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| Error::Key("not a valid Ed25519 public key".into()))?;
        // A weak (small-order) key would accept forged signatures for some messages.
        if key.is_weak() {
            return Err(Error::Key("weak (small-order) Ed25519 key refused".into()));
        }
        self.ed25519.push(key);
        Ok(())
    }

    /// Trusts one more ML-DSA-65 key (its 1952-byte encoding), until `not_after_ms` if given.
    ///
    /// # Errors
    /// [`Error::Key`] when the encoding has the wrong length.
    pub fn add_ml_dsa(&mut self, encoded: &[u8], not_after_ms: Option<u64>) -> Result<(), Error> {
        let key = crypto::LogVerifyingKey::from_bytes(encoded).map_err(|e| Error::Key(e.to_string()))?;
        self.ml_dsa.push(TrustedMlDsaKey { key, not_after_ms });
        Ok(())
    }

    /// Verifies an Ed25519 signature strictly (`verify_strict`: no small-order components, no
    /// malleable encodings) with any trusted key.
    ///
    /// # Errors
    /// [`Error::Signature`] when no key verifies it.
    pub fn verify_ed25519(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), Error> {
        let signature = Signature::from_bytes(signature);
        let ok = self.ed25519.iter().any(|key| key.verify_strict(message, &signature).is_ok());
        if ok { Ok(()) } else { Err(Error::Signature) }
    }

    /// Verifies a pure ML-DSA-65 signature with any key honoured at `now_ms`; returns the
    /// fingerprint (SHA3-256 of the encoding) of the key that verified.
    ///
    /// # Errors
    /// [`Error::Signature`] when no honoured key verifies it.
    pub fn verify_ml_dsa(&self, message: &[u8], signature: &[u8], now_ms: u64) -> Result<[u8; 32], Error> {
        self.ml_dsa
            .iter()
            .filter(|k| k.not_after_ms.is_none_or(|t| now_ms <= t))
            .find(|k| k.key.verify(message, signature).is_ok())
            .map(|k| k.key.pk_hash())
            .ok_or(Error::Signature)
    }

    /// Whether a key with this fingerprint is among the ML-DSA-65 roots (a rotation announced
    /// by `next_pubkey_hash` is ready when it is).
    #[must_use]
    pub fn has_ml_dsa(&self, pk_hash: &[u8; 32]) -> bool {
        self.ml_dsa.iter().any(|k| &k.key.pk_hash() == pk_hash)
    }

    /// Number of trusted keys of each kind (Ed25519, ML-DSA-65), for status output.
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (self.ed25519.len(), self.ml_dsa.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_key_is_embedded() {
        assert_eq!(TrustRoots::embedded().counts(), (1, 0));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let mut roots = TrustRoots::default();
        assert!(roots.add_ed25519_hex("abcd").is_err());
        assert!(roots.add_ed25519_hex(&"zz".repeat(32)).is_err());
        // The identity point has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(roots.add_ed25519_hex(&hex::encode(identity)).is_err());
        assert!(roots.add_ml_dsa(&[0u8; 100], None).is_err());
        assert_eq!(roots.counts(), (0, 0));
    }
}
