//! Attestation challenges: the ones the relay issued (`/v2/attest/challenge`), open until
//! answered or expired, one per (key, device).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::ids::DeviceId;
use crate::keys::KeyHash;

/// An issued challenge: its bytes, the relay's ephemeral ECDH secret, and its expiry (ms).
pub struct Issued {
    /// The challenge bytes.
    pub challenge: Vec<u8>,
    /// The relay's ephemeral P-256 secret of the `ecdh-challenge` method.
    pub secret: p256::SecretKey,
    /// When it stops being accepted (Unix ms).
    pub expires_ms: u64,
}

/// Open attestation challenges.
#[derive(Default)]
pub struct Challenges {
    open: Mutex<HashMap<(KeyHash, DeviceId), Issued>>,
}

impl Challenges {
    /// Stores a new challenge for a device (replacing an open one), dropping expired ones.
    pub fn issue(&self, key: KeyHash, device: DeviceId, issued: Issued, now_ms: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, i| i.expires_ms > now_ms);
        open.insert((key, device), issued);
    }

    /// Takes the open challenge of a device out (single use, whatever the verdict).
    pub fn take(&self, key: KeyHash, device: &DeviceId) -> Option<Issued> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(&(key, device.clone()))
    }
}
