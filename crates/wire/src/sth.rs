//! Signed tree heads (STH): the body the log signs, and the signed form `GET /v2/sth` serves.

use serde::{Deserialize, Serialize};

use crate::encoding::parse_hash_hex_named;
use crate::{Error, b64, canonical_json_of, hash_hex, parse_b64};

/// The only STH format version.
pub const STH_VERSION: u32 = 1;

/// The signed fields of a tree head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SthBody {
    /// Which relay's log this is (its host name, e.g. `health.paramant.app`).
    pub relay_id: String,
    /// Root hash of the tree, 64 lowercase hex (SHA3-256; the empty tree's root is SHA3-256 of
    /// the empty string).
    pub sha3_root: String,
    /// When the head was signed, Unix milliseconds.
    pub timestamp: u64,
    /// Number of leaves in the tree.
    pub tree_size: u64,
    /// Format version, always [`STH_VERSION`].
    pub version: u32,
}

impl SthBody {
    /// The body of a tree head of format [`STH_VERSION`]: the one way the log makes one.
    #[must_use]
    pub fn new(relay_id: &str, root: &tlog::Hash, tree_size: u64, timestamp_ms: u64) -> Self {
        SthBody {
            relay_id: relay_id.to_owned(),
            sha3_root: hash_hex(root),
            timestamp: timestamp_ms,
            tree_size,
            version: STH_VERSION,
        }
    }

    /// The bytes that are signed: canonical JSON
    /// `{"relay_id":…,"sha3_root":…,"timestamp":…,"tree_size":…,"version":1}`.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        // Invariant: the body is strings and integers only, which canonical JSON always accepts.
        canonical_json_of(self).expect("STH body holds no floats")
    }

    /// The root as a hash.
    ///
    /// # Errors
    /// [`Error::HashHex`] if `sha3_root` is not 64 hex characters.
    pub fn root(&self) -> Result<tlog::Hash, Error> {
        parse_hash_hex_named(&self.sha3_root, "sha3_root")
    }

    /// Signs the body with the log key (pure ML-DSA-65, empty context, deterministic).
    #[must_use]
    pub fn sign(self, key: &logkey::LogSigningKey) -> SignedSth {
        let signature = b64(key.sign(&self.signed_bytes()));
        let pk_hash = hash_hex(&key.verifying_key().pk_hash());
        SignedSth { body: self, signature, pk_hash }
    }
}

/// A tree head with its signature and the fingerprint of the signing key, as served by
/// `GET /v2/sth`. Unknown JSON fields are ignored when parsing (peers may add some); they are
/// not signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedSth {
    /// The signed fields.
    #[serde(flatten)]
    pub body: SthBody,
    /// ML-DSA-65 signature over [`SthBody::signed_bytes`], standard base64.
    pub signature: String,
    /// SHA3-256 of the signing key's 1952-byte encoding, hex.
    pub pk_hash: String,
}

impl SignedSth {
    /// Checks the version, that `pk_hash` is `key`'s fingerprint, and the signature.
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`], [`Error::HashHex`] / [`Error::PkHashMismatch`] for the
    /// fingerprint, [`Error::Base64`] / [`Error::Signature`] for the signature.
    pub fn verify(&self, key: &logkey::LogVerifyingKey) -> Result<(), Error> {
        if self.body.version != STH_VERSION {
            return Err(Error::UnsupportedVersion(self.body.version));
        }
        let actual = key.pk_hash();
        if parse_hash_hex_named(&self.pk_hash, "pk_hash")? != actual {
            return Err(Error::PkHashMismatch { claimed: self.pk_hash.clone(), actual: hash_hex(&actual) });
        }
        let signature = parse_b64(&self.signature)?;
        key.verify(&self.body.signed_bytes(), &signature)?;
        Ok(())
    }
}
