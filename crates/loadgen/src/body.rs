//! Upload bodies that cost the generator almost nothing, so the machine's cores go to the relay.
//!
//! Every payload of one size shares a long prefix and differs only in its last bytes. The
//! prefix's base64 text is encoded once and sent zero-copy (one shared `Bytes`), and the SHA-256
//! state after the prefix is cached, so a new distinct upload costs one hash block, a 64-byte
//! base64 encode and a small JSON head — about a microsecond, for 1 KiB and 5 MiB alike. The
//! relay still receives, decodes and hashes every byte of every payload.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use sha2::{Digest, Sha256};

/// Bytes at the end of each payload that make it unique: 8 bytes of run nonce, 8 of counter,
/// the rest fixed. A multiple of 3 so the prefix's base64 text can be reused as is.
const MIN_TAIL: usize = 48;
/// Size of the v1 header fields before the ciphertext with ML-KEM-768 and no signature.
const V1_OVERHEAD: usize = 10 + 4 + 1088 + 4 + 12 + 4;

/// Makes distinct upload bodies of one payload size.
pub struct BodyFactory {
    size: usize,
    ttl_ms: u64,
    prefix_b64: Bytes,
    prefix_state: Sha256,
    tail: Vec<u8>,
    nonce: u64,
    counter: AtomicU64,
}

/// One upload: the hash the relay will check and the request body.
pub struct Upload {
    pub hash: String,
    pub body: Chunks,
}

impl BodyFactory {
    /// Payloads of `size` bytes kept `ttl_ms` by the relay. Payloads large enough to hold one
    /// are well-formed wire-format v1 blobs (ML-KEM-768, unsigned), so the relay's structural
    /// check runs its full path; smaller ones are opaque bytes, as anonymous drops are.
    pub fn new(size: usize, ttl_ms: u64) -> Self {
        let nonce = random_u64();
        let payload = sample_payload(size, nonce);
        let tail_len = if size <= MIN_TAIL { size } else { MIN_TAIL + (size - MIN_TAIL) % 3 };
        let (prefix, tail) = payload.split_at(size - tail_len);
        let mut prefix_state = Sha256::new();
        prefix_state.update(prefix);
        Self {
            size,
            ttl_ms,
            prefix_b64: Bytes::from(STANDARD.encode(prefix)),
            prefix_state,
            tail: tail.to_vec(),
            nonce,
            counter: AtomicU64::new(0),
        }
    }

    pub fn payload_size(&self) -> usize {
        self.size
    }

    /// A body whose payload no earlier call of this factory produced.
    pub fn next(&self) -> Upload {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut tail = self.tail.clone();
        let unique: Vec<u8> = self.nonce.to_be_bytes().into_iter().chain(n.to_be_bytes()).collect();
        let at = tail.len().saturating_sub(unique.len());
        let room = tail.len() - at;
        tail[at..].copy_from_slice(&unique[unique.len() - room..]);
        let mut state = self.prefix_state.clone();
        state.update(&tail);
        let hash = hex::encode(state.finalize());
        let head = format!("{{\"hash\":\"{hash}\",\"ttl_ms\":{},\"payload\":\"", self.ttl_ms);
        let end = format!("{}\"}}", STANDARD.encode(&tail));
        let body = Chunks::new([Bytes::from(head), self.prefix_b64.clone(), Bytes::from(end)]);
        Upload { hash, body }
    }
}

/// Deterministic filler bytes (xorshift64*), laid out as a v1 blob when it fits.
fn sample_payload(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect();
    if size >= V1_OVERHEAD {
        let ciphertext_len = (size - V1_OVERHEAD) as u32;
        let mut header = b"PQHB\x01\x00\x02\x00\x00\x00".to_vec();
        header.extend(1088u32.to_be_bytes());
        header.extend(&out[14..14 + 1088]);
        header.extend(0u32.to_be_bytes());
        header.extend([7u8; 12]);
        header.extend(ciphertext_len.to_be_bytes());
        out[..header.len()].copy_from_slice(&header);
    } else if out.starts_with(b"PQHB") {
        out[0] = b'X';
    }
    out
}

/// A 64-bit value that differs between runs (std's per-process random hash keys).
fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

/// A request body made of shared chunks, sent in order with an exact length.
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self { chunks, remaining }
    }

    pub fn empty() -> Self {
        Self::new([])
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn decode(upload: Upload) -> (String, Vec<u8>) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let bytes = runtime.block_on(upload.body.collect()).expect("infallible").to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("body is JSON");
        let payload = STANDARD.decode(json["payload"].as_str().expect("payload")).expect("base64");
        (json["hash"].as_str().expect("hash").to_owned(), payload)
    }

    #[test]
    fn every_body_carries_a_distinct_payload_whose_sha256_is_its_hash() {
        for size in [1, 47, 48, 1024, 2000, 5 * 1024 * 1024] {
            let factory = BodyFactory::new(size, 1000);
            let (hash_a, payload_a) = decode(factory.next());
            let (hash_b, payload_b) = decode(factory.next());
            assert_eq!(payload_a.len(), size);
            assert_eq!(hash_a, hex::encode(Sha256::digest(&payload_a)), "size {size}");
            assert_eq!(hash_b, hex::encode(Sha256::digest(&payload_b)));
            if size >= 16 {
                assert_ne!(hash_a, hash_b, "size {size}");
            }
        }
    }

    #[test]
    fn large_payloads_are_well_formed_v1_blobs() {
        let payload = sample_payload(5 * 1024 * 1024, 3);
        assert!(payload.starts_with(b"PQHB\x01\x00\x02\x00\x00"));
        let small = sample_payload(1024, 3);
        assert!(!small.starts_with(b"PQHB"));
    }
}
