//! Signed releases: a manifest naming every artifact by SHA-256 (with the version, the source
//! commit, the `Cargo.lock` and `flake.lock` hashes and the toolchain), signed twice — ECDSA
//! P-256 over SHA-256 in cosign's blob format (`cosign verify-blob --key` accepts it) and
//! ML-DSA-65 — and verified offline, requiring both signatures, before any artifact is trusted.
//!
//! Files (names are constants below): a key directory from [`keygen`] holds the two private keys
//! (mode 0600; they never enter the repository) and the public keys; a release directory holds
//! `manifest.json`, `manifest.json.sig` (cosign: base64 of the DER signature) and
//! `manifest.json.ml-dsa-65.sig` (base64 of the FIPS 204 signature, pure, empty context).
#![deny(missing_docs)]

pub mod cli;
mod keys;
mod manifest;
mod pem;

use std::path::PathBuf;

pub use keys::{PublicKeys, SigningKeys, keygen};
pub use manifest::{Artifact, FORMAT, Manifest, ReleaseInputs, sign_release, verify_manifest, verify_release};

/// The ECDSA P-256 private key (PKCS#8 PEM), in a key directory.
pub const ECDSA_KEY_FILE: &str = "release-ecdsa-p256.key";
/// The ECDSA P-256 public key (SubjectPublicKeyInfo PEM): cosign's `--key` file.
pub const ECDSA_PUB_FILE: &str = "release-ecdsa-p256.pub";
/// The ML-DSA-65 private key: its 32-byte seed.
pub const ML_DSA_KEY_FILE: &str = "release-ml-dsa-65.key";
/// The ML-DSA-65 public key (SubjectPublicKeyInfo PEM, id-ml-dsa-65).
pub const ML_DSA_PUB_FILE: &str = "release-ml-dsa-65.pub";
/// Both public keys in one file: what the relay serves at `/.well-known/paramant-release.pub`
/// and what `paramant release verify --public-keys` reads.
pub const PUBLIC_KEYS_FILE: &str = "paramant-release.pub";
/// The manifest in a release directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The cosign-format ECDSA signature of the manifest.
pub const ECDSA_SIG_FILE: &str = "manifest.json.sig";
/// The ML-DSA-65 signature of the manifest.
pub const ML_DSA_SIG_FILE: &str = "manifest.json.ml-dsa-65.sig";

/// Why a release could not be made or trusted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// A file exists that keygen would overwrite.
    #[error("{0} already exists; a release key is never overwritten (move it away first)")]
    Exists(PathBuf),
    /// A file's content is not what it must be.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The ECDSA P-256 signature does not verify with the public key.
    #[error("{0}: the ECDSA P-256 signature does not verify with the release public key")]
    EcdsaSignature(PathBuf),
    /// The ML-DSA-65 signature does not verify with the public key.
    #[error("{0}: the ML-DSA-65 signature does not verify with the release public key")]
    MlDsaSignature(PathBuf),
    /// An artifact is missing or differs from the manifest.
    #[error("artifact {name}: {reason}")]
    Artifact {
        /// The artifact's file name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("the random number generator failed")]
    Rng,
}

impl Error {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |error| Error::Io { path, error }
    }

    fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Format { path: path.into(), reason: reason.into() }
    }
}
