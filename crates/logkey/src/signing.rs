//! The log's ML-DSA-65 signing key: derived from its seed, deterministic signing.

use std::fmt;

use libcrux_ml_dsa::ml_dsa_65::{self, MLDSA65SigningKey};
use zeroize::Zeroize;

use crate::{LogVerifyingKey, SEED_LEN};

/// ML-DSA-65 (FIPS 204) signing key of the log. The expanded key is derived once from the
/// 32-byte seed ξ, kept for signing, and zeroized on drop; `Debug` shows the fingerprint only.
pub struct LogSigningKey {
    signing: MLDSA65SigningKey,
    verifying: LogVerifyingKey,
}

impl LogSigningKey {
    /// The key derived from `seed` (FIPS 204 `ML-DSA.KeyGen_internal(ξ)`).
    #[must_use]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let pair = ml_dsa_65::generate_key_pair(*seed);
        let verifying = LogVerifyingKey::from_encoded(*pair.verification_key.as_ref());
        Self { signing: pair.signing_key, verifying }
    }

    /// The matching public key.
    #[must_use]
    pub fn verifying_key(&self) -> LogVerifyingKey {
        self.verifying.clone()
    }

    /// Signs `message`: pure ML-DSA-65, empty context, deterministic variant (`rnd` = 32 zero
    /// bytes, FIPS 204 §3.4), so the same key and message always give the same signature.
    /// Returns the 3309-byte FIPS 204 encoding.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        // libcrux fails only for a context over 255 bytes (ours is empty) or when rejection
        // sampling needs more than 814 rounds, which for ML-DSA-65 (about 5 rounds expected)
        // has probability far below 2^-128 (FIPS 204 Appendix C).
        let signature = ml_dsa_65::sign(&self.signing, message, b"", [0; 32])
            .expect("ML-DSA-65 signing with an empty context does not fail");
        signature.as_slice().to_vec()
    }
}

impl Drop for LogSigningKey {
    fn drop(&mut self) {
        self.signing.as_ref_mut().zeroize();
    }
}

impl fmt::Debug for LogSigningKey {
    /// Shows the public key's fingerprint only, never key bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogSigningKey").field("pk_hash", &hex::encode(self.verifying.pk_hash())).finish_non_exhaustive()
    }
}
