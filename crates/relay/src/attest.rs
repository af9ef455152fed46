//! Attestation challenges: the ones the relay issued (`/v2/attest/challenge`), open until
//! answered or expired, one per (key, device); and the one-shot challenges devices made
//! themselves, remembered until they are too old to be accepted anyway, so none is accepted
//! twice.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

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

/// How long a one-shot challenge is remembered after its timestamp: it is accepted up to 5
/// minutes either side, so after `timestamp + 5 min` its time check refuses it anyway.
const ONE_SHOT_MEMORY_MS: u64 = 5 * 60 * 1000;
/// Most one-shot challenges remembered at once; beyond, one-shot attestation is refused
/// (devices can still use issued challenges) rather than forgetting one too early.
const MAX_ONE_SHOT: usize = 100_000;

/// Open attestation challenges and accepted one-shot challenges.
#[derive(Default)]
pub struct Challenges {
    open: Mutex<HashMap<(KeyHash, DeviceId), Issued>>,
    /// SHA-256 of accepted one-shot challenges → when they may be forgotten (Unix ms).
    accepted: Mutex<HashMap<[u8; 32], u64>>,
}

impl Challenges {
    /// Stores a new challenge for a device (replacing an open one), dropping expired ones.
    pub fn issue(&self, key: KeyHash, device: DeviceId, issued: Issued, now_ms: u64) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, i| i.expires_ms > now_ms);
        open.insert((key, device), issued);
    }

    /// Takes out the open challenge of a device if it is `challenge` (single use, whatever the
    /// verdict); another challenge leaves it open.
    pub fn take_matching(&self, key: KeyHash, device: &DeviceId, challenge: &[u8]) -> Option<Issued> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let id = (key, device.clone());
        let matches = open.get(&id).is_some_and(|issued| crypto::ct_eq(&issued.challenge, challenge));
        if matches { open.remove(&id) } else { None }
    }

    /// Accepts a one-shot challenge (whose time the caller checked) unless it was accepted
    /// before; atomic, so of two concurrent identical requests only one is accepted.
    pub fn accept_once(&self, challenge: &[u8], now_ms: u64) -> Result<(), &'static str> {
        let digest: [u8; 32] = Sha256::digest(challenge).into();
        let stamped = challenge.first_chunk::<8>().map(|t| u64::from_be_bytes(*t)).unwrap_or(now_ms);
        let mut accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        if accepted.len() >= MAX_ONE_SHOT {
            accepted.retain(|_, forget_at| *forget_at > now_ms);
            if accepted.len() >= MAX_ONE_SHOT {
                return Err("too many one-shot attestations right now; request a challenge instead");
            }
        }
        if accepted.contains_key(&digest) {
            return Err("this challenge was already used");
        }
        accepted.insert(digest, stamped.max(now_ms) + ONE_SHOT_MEMORY_MS);
        Ok(())
    }
}
