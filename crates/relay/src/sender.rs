//! Who sent a blob: the ML-DSA-65 sender signature of a wire-format-v1 blob, checked against
//! the signing keys the uploading API key's devices registered.
//!
//! What `sig_verified: true` means: the blob is wire format v1, claims an ML-DSA-65 signature,
//! its `sender_pub` is the `dsa_pub` a device of the uploading key registered, and the signature
//! verifies over the message the SDK signs (see `wire_v1::sender_signature`). It cannot be true
//! for unsigned blobs (`sig` id 0), for anonymous drops and other non-v1 payloads, or when the
//! sender's key is not registered under the uploading key — the relay then cannot tell who
//! signed, and says `false` without verifying (so unsigned and unknown-sender uploads cost
//! nothing extra). A blob whose `sender_pub` is a registered key but whose signature does not
//! verify is a forgery and refused (400 `signature_invalid`).

use crate::db::{DbError, DeviceRecord, RelayDb};
use crate::ids::{decode_public_key, signer_id};
use crate::keys::KeyHash;
use crate::wire_v1;

/// The verdict on an upload's sender.
#[derive(Debug, PartialEq, Eq)]
pub enum Sender {
    /// Not signed, not v1, or signed by a key no device of the uploader registered.
    Unverified,
    /// Signed by this registered device; the signature verifies.
    Verified(DeviceRecord),
    /// Claims a registered device's key, but the signature does not verify.
    Forged,
}

/// Checks the sender of `payload` uploaded with `key`.
pub fn check(db: &RelayDb, key: &KeyHash, payload: &[u8]) -> Result<Sender, DbError> {
    let Some(signed) = wire_v1::sender_signature(payload) else { return Ok(Sender::Unverified) };
    let Some(device) = db.device_signing_with(key, &signer_id(signed.sender_pub))? else {
        return Ok(Sender::Unverified);
    };
    // The index may name a device that rotated its key since: compare the current key.
    let current = device.dsa_pub.as_deref().and_then(decode_public_key);
    if current.as_deref() != Some(signed.sender_pub) {
        return Ok(Sender::Unverified);
    }
    let verified = crypto::LogVerifyingKey::from_bytes(signed.sender_pub)
        .and_then(|k| k.verify(&signed.signed_digest, signed.signature))
        .is_ok();
    Ok(if verified { Sender::Verified(device) } else { Sender::Forged })
}
