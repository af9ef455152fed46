//! The log's ML-DSA-65 (FIPS 204) keys: deterministic signing from a 32-byte seed, public key
//! encoding and fingerprint, and verification.
//!
//! Invariant: pure. No file IO, no clock, no randomness — a key is made from a seed the caller
//! supplies (`crypto` reads and writes key files and draws seeds from the OS), so `wire` can
//! sign and verify without being able to touch a file.
//!
//! Implementation: `libcrux-ml-dsa` (Cryspen, formally verified, AVX2 where the CPU has it),
//! chosen on measurements (`cargo bench -p logkey --bench sign`: about ten times faster than
//! `ml-dsa` on these machines). The `ml-dsa` crate is kept in the tests as an independent
//! implementation that must produce identical keys and identical deterministic signatures.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod signing;
mod verifying;

pub use signing::LogSigningKey;
pub use verifying::LogVerifyingKey;

/// Length in bytes of an encoded ML-DSA-65 signature (FIPS 204, Table 2).
pub const ML_DSA_65_SIGNATURE_LEN: usize = 3309;

/// Length in bytes of an encoded ML-DSA-65 public key (FIPS 204, Table 2).
pub const ML_DSA_65_PUBLIC_KEY_LEN: usize = 1952;

/// Length in bytes of an ML-DSA seed ξ, the stored form of a signing key.
pub const SEED_LEN: usize = 32;

/// What can go wrong with encoded keys and signatures. Messages name lengths, never key bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// An encoded public key has the wrong length.
    #[error("ML-DSA-65 public key must be {ML_DSA_65_PUBLIC_KEY_LEN} bytes, got {len}")]
    PublicKeyLength {
        /// The length received.
        len: usize,
    },

    /// An encoded signature has the wrong length.
    #[error("ML-DSA-65 signature must be {ML_DSA_65_SIGNATURE_LEN} bytes, got {len}")]
    SignatureLength {
        /// The length received.
        len: usize,
    },

    /// The signature is malformed or does not verify for this key and message.
    #[error("ML-DSA-65 signature is invalid")]
    BadSignature,
}
