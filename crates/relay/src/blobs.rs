//! The blob store: payloads in RAM only, within a byte budget, zeroized when burned or expired.
//!
//! Life of a blob: `claim` (the hash is taken, its bytes are counted against the budget) →
//! `publish` (after the log acknowledged the transfer) → `begin_delivery` / `finish_delivery`
//! (a view is consumed only when a body was completely sent; the last view burns the blob) →
//! gone. The TTL sweeper removes expired blobs that are not being delivered.
//!
//! Uploads in flight are counted too: an upload reserves its largest possible payload before
//! its body is read (`reserve`), and `claim` turns the reservation into the blob's real size.
//! Every API key may hold at most `key_share` bytes, stored and in flight, so one tenant cannot
//! fill the budget alone.
//!
//! Lock discipline: one mutex over the map, held only for bookkeeping, never across IO.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::keys::KeyHash;
use crate::payload_pool::PayloadPool;

/// Payload bytes that are overwritten with zeros when the last reference goes away; the
/// buffer then goes to the payload pool (which keeps or unmaps it).
struct ZeroizedPayload {
    bytes: Vec<u8>,
    pool: Arc<PayloadPool>,
}

impl AsRef<[u8]> for ZeroizedPayload {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for ZeroizedPayload {
    fn drop(&mut self) {
        // The whole capacity, so the pool's buffers are zero throughout (the spare capacity is
        // a few bytes). One `memset` behind an optimisation barrier (`Vec::zeroize` writes byte
        // by byte: 8 % of the relay's CPU on 5 MiB uploads).
        self.bytes.resize(self.bytes.capacity(), 0);
        zeroize::zeroize_bytes(&mut self.bytes);
        self.pool.give_back(std::mem::take(&mut self.bytes));
    }
}

/// Who may download a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only holders of the uploading key.
    Owner(KeyHash),
    /// Anyone who knows the lookup id (anonymous drop).
    LookupId,
}

/// What a stored blob carries besides its bytes.
#[derive(Clone, Debug)]
pub struct BlobMeta {
    pub access: Access,
    pub size: u64,
    pub expires_ms: u64,
    pub max_views: u32,
    /// The transfer leaf in the log (for receipts).
    pub transfer_leaf_hash: String,
    /// Device queue this blob was announced on, if any.
    pub device_id: Option<String>,
    pub sig_verified: bool,
}

enum State {
    /// Hash claimed, upload still being logged.
    Pending,
    /// Downloadable.
    /// `payload_sha256` was computed when the upload was checked, so a download never rehashes.
    Ready { payload: Bytes, payload_sha256: [u8; 32], views_left: u32, in_flight: u32 },
}

struct Entry {
    meta: BlobMeta,
    state: State,
    /// The key whose share the bytes count against.
    uploader: KeyHash,
}

struct Inner {
    blobs: HashMap<String, Entry>,
    /// `(expires_ms, hash)` for the sweeper.
    expiry: BTreeSet<(u64, String)>,
    used_bytes: u64,
    /// Bytes reserved by uploads whose bodies are arriving.
    in_flight: u64,
    /// Bytes stored and in flight per uploading key (absent: zero).
    per_key: HashMap<KeyHash, u64>,
}

impl Inner {
    /// The budget's bytes neither stored nor reserved by uploads in flight.
    fn spare(&self, budget: u64) -> u64 {
        budget.saturating_sub(self.used_bytes + self.in_flight)
    }

    fn key_bytes(&self, key: &KeyHash) -> u64 {
        self.per_key.get(key).copied().unwrap_or(0)
    }

    fn add_key(&mut self, key: KeyHash, bytes: u64) {
        *self.per_key.entry(key).or_insert(0) += bytes;
    }

    fn sub_key(&mut self, key: &KeyHash, bytes: u64) {
        if let Some(held) = self.per_key.get_mut(key) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                self.per_key.remove(key);
            }
        }
    }
}

/// Why a blob operation was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BlobError {
    /// The hash is already stored or being uploaded.
    Duplicate,
    /// Not enough budget left for this payload.
    Full,
    /// The uploading key holds its whole share of the budget.
    KeyShareFull,
    /// No such blob (never stored, expired, or burned).
    NotFound,
    /// Someone else's blob.
    Forbidden,
    /// Every remaining view is being delivered right now.
    Busy,
}

/// A delivery in progress: the bytes to send.
pub struct Delivery {
    pub payload: Bytes,
    pub payload_sha256: [u8; 32],
    pub meta: BlobMeta,
    /// Views left before this one; 1 means this delivery burns the blob.
    pub views_left: u32,
}

/// What `finish_delivery` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished {
    /// A view was consumed; `burned` when it was the last.
    Consumed { burned: bool },
    /// The body was not completely sent; the view is available again.
    Released,
}

/// Availability as `/v2/status` reports it.
pub struct Status {
    pub size: u64,
    pub expires_ms: u64,
    pub sig_verified: bool,
    pub views_left: u32,
}

/// The in-RAM store with its byte budget.
pub struct BlobStore {
    inner: Mutex<Inner>,
    budget: u64,
    key_share: u64,
    /// Buffers of gone payloads, kept within the budget's unused part.
    pool: Arc<PayloadPool>,
}

impl BlobStore {
    /// A store of `budget_bytes`, of which one key may hold `key_share_bytes`.
    pub fn new(budget_bytes: u64, key_share_bytes: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                blobs: HashMap::new(),
                expiry: BTreeSet::new(),
                used_bytes: 0,
                in_flight: 0,
                per_key: HashMap::new(),
            }),
            budget: budget_bytes,
            key_share: key_share_bytes,
            pool: Arc::new(PayloadPool::new(budget_bytes)),
        }
    }

    /// A zero-filled buffer for an upload's payload of `len` bytes (a kept one if it fits).
    pub fn payload_buffer(&self, len: usize) -> Vec<u8> {
        self.pool.zeroed(len)
    }

    /// Wraps decoded payload bytes so every copy handed out shares one zeroize-on-drop buffer.
    pub fn payload_bytes(&self, decoded: Vec<u8>) -> Bytes {
        Bytes::from_owner(ZeroizedPayload { bytes: decoded, pool: self.pool.clone() })
    }

    /// Lets go of the lock after the counters changed, then tells the pool how much of the
    /// budget is now unused (outside the lock: the pool may unmap buffers).
    fn unlock(&self, inner: std::sync::MutexGuard<'_, Inner>) {
        let spare = inner.spare(self.budget);
        drop(inner);
        self.pool.set_spare(spare);
    }

    /// Once per sweep: kept buffers nobody took go back to the kernel.
    pub fn release_idle_buffers(&self) -> u64 {
        self.pool.release_idle()
    }

    /// Counts `bytes` of an upload whose body is about to be read against the budget and the
    /// key's share. Must be followed by `claim` (which takes the reservation over) or `release`.
    pub fn reserve(&self, key: &KeyHash, bytes: u64) -> Result<(), BlobError> {
        let mut inner = self.lock();
        if inner.used_bytes + inner.in_flight + bytes > self.budget {
            return Err(BlobError::Full);
        }
        if inner.key_bytes(key) + bytes > self.key_share {
            return Err(BlobError::KeyShareFull);
        }
        inner.in_flight += bytes;
        inner.add_key(*key, bytes);
        self.unlock(inner);
        Ok(())
    }

    /// Gives back a reservation whose upload ended without a claim.
    pub fn release(&self, key: &KeyHash, bytes: u64) {
        let mut inner = self.lock();
        inner.in_flight = inner.in_flight.saturating_sub(bytes);
        inner.sub_key(key, bytes);
        self.unlock(inner);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves only counters possibly off; keep serving.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the hash and counts `meta.size` bytes against the budget and `uploader`'s share,
    /// before the upload is logged; `reserved` bytes of `uploader`'s reservation are given back
    /// in the same step (also when the claim is refused). Must be followed by `publish` or
    /// `abandon`.
    pub fn claim(&self, hash: &str, meta: BlobMeta, uploader: KeyHash, reserved: u64) -> Result<(), BlobError> {
        let mut inner = self.lock();
        inner.in_flight = inner.in_flight.saturating_sub(reserved);
        inner.sub_key(&uploader, reserved);
        if inner.blobs.contains_key(hash) {
            return Err(BlobError::Duplicate);
        }
        if inner.used_bytes + inner.in_flight + meta.size > self.budget {
            return Err(BlobError::Full);
        }
        if inner.key_bytes(&uploader) + meta.size > self.key_share {
            return Err(BlobError::KeyShareFull);
        }
        inner.used_bytes += meta.size;
        inner.add_key(uploader, meta.size);
        inner.blobs.insert(hash.to_owned(), Entry { meta, state: State::Pending, uploader });
        self.unlock(inner);
        Ok(())
    }

    /// Makes a claimed blob downloadable; `payload_sha256` is the SHA-256 of `payload`;
    /// `sig_verified` whether its sender signature was verified (see `sender`).
    pub fn publish(
        &self,
        hash: &str,
        payload: Bytes,
        payload_sha256: [u8; 32],
        transfer_leaf_hash: String,
        sig_verified: bool,
    ) {
        let mut inner = self.lock();
        let Some(entry) = inner.blobs.get_mut(hash) else { return };
        entry.meta.transfer_leaf_hash = transfer_leaf_hash;
        entry.meta.sig_verified = sig_verified;
        entry.state = State::Ready { payload, payload_sha256, views_left: entry.meta.max_views, in_flight: 0 };
        let key = (entry.meta.expires_ms, hash.to_owned());
        inner.expiry.insert(key);
    }

    /// Releases a claim whose upload failed.
    pub fn abandon(&self, hash: &str) {
        let mut inner = self.lock();
        let removed = remove(&mut inner, hash);
        self.unlock(inner);
        drop(removed);
    }

    /// Starts sending a blob to `caller` (None: no API key presented). Reserves one view.
    pub fn begin_delivery(&self, hash: &str, caller: Option<&KeyHash>, now_ms: u64) -> Result<Delivery, BlobError> {
        let mut inner = self.lock();
        let entry = inner.blobs.get_mut(hash).ok_or(BlobError::NotFound)?;
        if entry.meta.expires_ms <= now_ms {
            return Err(BlobError::NotFound);
        }
        if let Access::Owner(owner) = &entry.meta.access
            && caller.is_none_or(|c| !crypto::ct_eq(c, owner))
        {
            return Err(BlobError::Forbidden);
        }
        let State::Ready { payload, payload_sha256, views_left, in_flight } = &mut entry.state else {
            return Err(BlobError::NotFound);
        };
        if *in_flight >= *views_left {
            return Err(BlobError::Busy);
        }
        *in_flight += 1;
        Ok(Delivery {
            payload: payload.clone(),
            payload_sha256: *payload_sha256,
            meta: entry.meta.clone(),
            views_left: *views_left,
        })
    }

    /// Ends a delivery. A completely sent body consumes the view; the last view burns the blob
    /// (its bytes are zeroized when the last in-flight copy is dropped).
    pub fn finish_delivery(&self, hash: &str, completed: bool) -> Finished {
        let mut inner = self.lock();
        let Some(entry) = inner.blobs.get_mut(hash) else { return Finished::Released };
        let State::Ready { views_left, in_flight, .. } = &mut entry.state else { return Finished::Released };
        *in_flight = in_flight.saturating_sub(1);
        if !completed {
            return Finished::Released;
        }
        *views_left = views_left.saturating_sub(1);
        let burned = *views_left == 0;
        if burned {
            let removed = remove(&mut inner, hash);
            self.unlock(inner);
            // Zeroized (if this was the last copy) and given to the pool outside the lock.
            drop(removed);
        }
        Finished::Consumed { burned }
    }

    /// Status for `caller`, or why not.
    pub fn status(&self, hash: &str, caller: &KeyHash, now_ms: u64) -> Result<Status, BlobError> {
        let inner = self.lock();
        let entry = inner.blobs.get(hash).ok_or(BlobError::NotFound)?;
        if let Access::Owner(owner) = &entry.meta.access
            && !crypto::ct_eq(caller, owner)
        {
            return Err(BlobError::Forbidden);
        }
        match &entry.state {
            State::Ready { views_left, .. } if entry.meta.expires_ms > now_ms => Ok(Status {
                size: entry.meta.size,
                expires_ms: entry.meta.expires_ms,
                sig_verified: entry.meta.sig_verified,
                views_left: *views_left,
            }),
            _ => Err(BlobError::NotFound),
        }
    }

    /// Who may download `hash`, if it exists.
    pub fn access(&self, hash: &str) -> Option<Access> {
        self.lock().blobs.get(hash).map(|e| e.meta.access)
    }

    /// Whether a published blob is still downloadable (for device queues).
    pub fn is_available(&self, hash: &str, now_ms: u64) -> bool {
        let inner = self.lock();
        inner.blobs.get(hash).is_some_and(|e| matches!(e.state, State::Ready { .. }) && e.meta.expires_ms > now_ms)
    }

    /// Removes every expired blob not being delivered; returns how many.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let mut inner = self.lock();
        let due: Vec<(u64, String)> = inner.expiry.range(..(now_ms + 1, String::new())).cloned().collect();
        let mut removed = Vec::new();
        for (_, hash) in due {
            let busy = matches!(inner.blobs.get(&hash).map(|e| &e.state), Some(State::Ready { in_flight, .. }) if *in_flight > 0);
            if !busy {
                removed.extend(remove(&mut inner, &hash));
            }
        }
        self.unlock(inner);
        // Zeroizing a second's worth of expired payloads takes a while: not under the lock
        // uploads and downloads wait for.
        let count = removed.len();
        drop(removed);
        count
    }

    /// (blobs stored, payload bytes held, budget).
    pub fn usage(&self) -> (usize, u64, u64) {
        let inner = self.lock();
        (inner.blobs.len(), inner.used_bytes, self.budget)
    }
}

/// Takes `hash` out of the store and its counters; the caller drops the entry (its payload is
/// zeroized then) after letting go of the lock.
#[must_use = "drop the removed entry after the lock is released"]
fn remove(inner: &mut Inner, hash: &str) -> Option<Entry> {
    let entry = inner.blobs.remove(hash)?;
    inner.used_bytes -= entry.meta.size;
    inner.sub_key(&entry.uploader, entry.meta.size);
    inner.expiry.remove(&(entry.meta.expires_ms, hash.to_owned()));
    Some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size: u64, access: Access) -> BlobMeta {
        BlobMeta {
            access,
            size,
            expires_ms: 1_000,
            max_views: 1,
            transfer_leaf_hash: String::new(),
            device_id: None,
            sig_verified: false,
        }
    }

    fn stored(store: &BlobStore, hash: &str, owner: KeyHash) {
        store.claim(hash, meta(3, Access::Owner(owner)), owner, 0).unwrap();
        store.publish(hash, store.payload_bytes(b"abc".to_vec()), [0; 32], "leaf".into(), false);
    }

    #[test]
    fn exactly_one_of_two_concurrent_downloads_gets_a_single_view_blob() {
        let store = BlobStore::new(100, 100);
        stored(&store, "h", [1; 32]);
        let first = store.begin_delivery("h", Some(&[1; 32]), 0);
        let second = store.begin_delivery("h", Some(&[1; 32]), 0);
        assert!(first.is_ok());
        assert_eq!(second.err(), Some(BlobError::Busy));
        assert_eq!(store.finish_delivery("h", true), Finished::Consumed { burned: true });
        assert_eq!(store.begin_delivery("h", Some(&[1; 32]), 0).err(), Some(BlobError::NotFound));
        assert_eq!(store.usage().1, 0, "burned bytes leave the budget");
    }

    #[test]
    fn an_aborted_download_leaves_the_blob_downloadable() {
        let store = BlobStore::new(100, 100);
        stored(&store, "h", [1; 32]);
        store.begin_delivery("h", Some(&[1; 32]), 0).unwrap();
        assert_eq!(store.finish_delivery("h", false), Finished::Released);
        assert!(store.begin_delivery("h", Some(&[1; 32]), 0).is_ok());
    }

    #[test]
    fn other_keys_are_forbidden_and_drops_need_no_key() {
        let store = BlobStore::new(100, 100);
        stored(&store, "h", [1; 32]);
        assert_eq!(store.begin_delivery("h", Some(&[2; 32]), 0).err(), Some(BlobError::Forbidden));
        assert_eq!(store.begin_delivery("h", None, 0).err(), Some(BlobError::Forbidden));
        store.claim("d", meta(3, Access::LookupId), [9; 32], 0).unwrap();
        store.publish("d", store.payload_bytes(b"abc".to_vec()), [0; 32], "leaf".into(), false);
        assert!(store.begin_delivery("d", None, 0).is_ok());
    }

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_duplicates_are_refused() {
        let store = BlobStore::new(5, 5);
        store.claim("a", meta(3, Access::LookupId), [1; 32], 0).unwrap();
        assert_eq!(store.claim("a", meta(1, Access::LookupId), [1; 32], 0).err(), Some(BlobError::Duplicate));
        assert_eq!(store.claim("b", meta(3, Access::LookupId), [1; 32], 0).err(), Some(BlobError::Full));
        store.abandon("a");
        assert!(store.claim("b", meta(3, Access::LookupId), [1; 32], 0).is_ok());
    }

    #[test]
    fn reservations_count_against_the_budget_and_each_key_holds_at_most_its_share() {
        let store = BlobStore::new(10, 6);
        store.reserve(&[1; 32], 5).unwrap();
        assert_eq!(store.reserve(&[1; 32], 2).err(), Some(BlobError::KeyShareFull));
        assert_eq!(store.reserve(&[2; 32], 6).err(), Some(BlobError::Full), "5 in flight + 6 > 10");
        store.reserve(&[2; 32], 5).unwrap();
        // The claim takes the reservation over at the real size.
        store.claim("a", meta(4, Access::LookupId), [1; 32], 5).unwrap();
        store.release(&[2; 32], 5);
        assert_eq!(store.claim("b", meta(3, Access::LookupId), [1; 32], 0).err(), Some(BlobError::KeyShareFull));
        store.reserve(&[2; 32], 6).unwrap();
        assert_eq!(store.usage().1, 4);
        assert_eq!(store.finish_delivery("a", true), Finished::Released, "not published: nothing to consume");
        store.abandon("a");
        store.reserve(&[1; 32], 4).unwrap();
    }

    #[test]
    fn expired_blobs_are_swept_unless_in_flight() {
        let store = BlobStore::new(100, 100);
        stored(&store, "a", [1; 32]);
        stored(&store, "b", [1; 32]);
        store.begin_delivery("b", Some(&[1; 32]), 0).unwrap();
        assert_eq!(store.sweep(999), 0);
        assert_eq!(store.sweep(1_000), 1, "a is expired and idle; b is being sent");
        assert_eq!(store.begin_delivery("a", Some(&[1; 32]), 1_000).err(), Some(BlobError::NotFound));
    }
}
