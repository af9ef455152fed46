//! Large payload buffers kept for the next upload after their blob is gone.
//!
//! The relay has glibc return every allocation of 1 MiB or more to the kernel when freed
//! (`harden::return_large_allocations`), so a freed 5 MiB blob does not stay resident. The price
//! is that the next large upload decodes into fresh pages, and faulting them in cost about
//! 17 % of the relay's CPU per 5 MiB upload. This pool keeps a few such buffers — already
//! overwritten with zeros by the blob store — for uploads of nearly the same size, so steady
//! traffic of large blobs reuses faulted pages while the memory kept stays bounded
//! (`MAX_POOLED_BYTES`, on top of the blob budget).

use std::sync::{Mutex, PoisonError};

/// Smaller buffers come from glibc's heap, which keeps and reuses them anyway.
const MIN_POOLED: usize = harden::LARGE_ALLOCATION_BYTES;
/// The most the pool holds (capacity of all kept buffers).
const MAX_POOLED_BYTES: usize = 32 << 20;
/// A kept buffer serves a request only if it is at most this much larger: the blob budget
/// counts payload bytes, so slack would be memory it does not see.
const MAX_SLACK: usize = 64 << 10;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A zero-filled buffer of `len` bytes: a kept one whose capacity fits, else a fresh one.
pub fn zeroed(len: usize) -> Vec<u8> {
    if len >= MIN_POOLED {
        let kept = {
            let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
            let fits = pool.iter().position(|b| b.capacity() >= len && b.capacity() - len <= MAX_SLACK);
            fits.map(|i| pool.swap_remove(i))
        };
        if let Some(mut buffer) = kept {
            buffer.resize(len, 0);
            return buffer;
        }
    }
    vec![0; len]
}

/// Keeps `buffer` for a later [`zeroed`] if it is large and there is room. The caller has
/// already overwritten its bytes (it held a payload); they are cleared again when reused.
pub fn give_back(mut buffer: Vec<u8>) {
    buffer.clear();
    if buffer.capacity() < MIN_POOLED {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    let held: usize = pool.iter().map(Vec::capacity).sum();
    if held + buffer.capacity() <= MAX_POOLED_BYTES {
        pool.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the pool is process-wide, and tests of one binary run in parallel.
    #[test]
    fn large_buffers_are_reused_zeroed_and_the_pool_is_bounded() {
        let len = 3 << 20;
        let mut first = zeroed(len);
        first.fill(0xAB);
        let address = first.as_ptr();
        first.fill(0); // what the blob store does before giving a payload back
        give_back(first);
        let again = zeroed(len - 1000);
        assert_eq!(again.as_ptr(), address, "a kept buffer of nearly the size is reused");
        assert_eq!(again.len(), len - 1000);
        assert!(again.iter().all(|&b| b == 0));
        give_back(again);

        // Much smaller requests do not take it (the slack would escape the budget)...
        let small = zeroed(len / 2);
        assert_ne!(small.as_ptr(), address);
        // ...and small buffers are never kept.
        give_back(vec![0; 4096]);
        assert!(POOL.lock().unwrap_or_else(PoisonError::into_inner).iter().all(|b| b.capacity() >= MIN_POOLED));

        // The pool never holds more than its bound.
        for _ in 0..20 {
            give_back(vec![0; 4 << 20]);
        }
        let held: usize = POOL.lock().unwrap_or_else(PoisonError::into_inner).iter().map(Vec::capacity).sum();
        assert!(held <= MAX_POOLED_BYTES, "{held}");
    }
}
