//! The log's ML-DSA-65 public key: encoding, fingerprint (`pk_hash`) and verification.

use std::fmt;

use libcrux_ml_dsa::ml_dsa_65::{self, MLDSA65Signature, MLDSA65VerificationKey};
use sha3::{Digest, Sha3_256};

use crate::{Error, ML_DSA_65_PUBLIC_KEY_LEN, ML_DSA_65_SIGNATURE_LEN};

/// ML-DSA-65 public key of a log, with its fingerprint precomputed. `Debug` prints the
/// fingerprint (`pk_hash`) only.
#[derive(Clone)]
pub struct LogVerifyingKey {
    key: MLDSA65VerificationKey,
    pk_hash: [u8; 32],
}

impl LogVerifyingKey {
    pub(crate) fn from_encoded(encoded: [u8; ML_DSA_65_PUBLIC_KEY_LEN]) -> Self {
        let pk_hash = Sha3_256::digest(encoded).into();
        Self { key: MLDSA65VerificationKey::new(encoded), pk_hash }
    }

    /// Decodes the 1952-byte FIPS 204 `pkEncode` form.
    ///
    /// # Errors
    /// [`Error::PublicKeyLength`] when `encoded` is not exactly 1952 bytes. (Every 1952-byte
    /// string decodes to some key: `pkDecode` has no invalid inputs.)
    pub fn from_bytes(encoded: &[u8]) -> Result<Self, Error> {
        let array: [u8; ML_DSA_65_PUBLIC_KEY_LEN] =
            encoded.try_into().map_err(|_| Error::PublicKeyLength { len: encoded.len() })?;
        Ok(Self::from_encoded(array))
    }

    /// The 1952-byte FIPS 204 encoding (what `GET /v2/pubkey` serves, base64-encoded).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.key.as_slice().to_vec()
    }

    /// The key's fingerprint: SHA3-256 of its 1952-byte encoding.
    #[must_use]
    pub fn pk_hash(&self) -> [u8; 32] {
        self.pk_hash
    }

    /// Verifies a pure ML-DSA-65 signature with empty context over `message`.
    ///
    /// # Errors
    /// [`Error::SignatureLength`] when `signature` is not 3309 bytes, [`Error::BadSignature`]
    /// when it is malformed or does not verify. Never panics.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        let array: [u8; ML_DSA_65_SIGNATURE_LEN] =
            signature.try_into().map_err(|_| Error::SignatureLength { len: signature.len() })?;
        ml_dsa_65::verify(&self.key, message, b"", &MLDSA65Signature::new(array)).map_err(|_| Error::BadSignature)
    }
}

impl PartialEq for LogVerifyingKey {
    /// Keys are equal when their encodings are (the encoding determines the key).
    fn eq(&self, other: &Self) -> bool {
        self.key.as_slice() == other.key.as_slice()
    }
}

impl Eq for LogVerifyingKey {}

impl fmt::Debug for LogVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogVerifyingKey").field("pk_hash", &hex::encode(self.pk_hash)).finish()
    }
}
