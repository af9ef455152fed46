//! Large payload buffers kept for the next upload after their blob is gone.
//!
//! The relay has glibc return every allocation of 1 MiB or more to the kernel when freed
//! (`harden::return_large_allocations`), so a freed 5 MiB blob does not stay resident. The price
//! is that the next large upload decodes into fresh pages: faulting them in and unmapping them
//! again cost about a quarter of the relay's CPU per 5 MiB upload. This pool keeps such buffers —
//! already overwritten with zeros by the blob store — for uploads of nearly the same size.
//!
//! What it may keep is bounded by the blob budget: at most [`MAX_BEYOND_BUDGET`] plus the part
//! of the budget that stored blobs and uploads in flight do not use ([`PayloadPool::set_spare`]),
//! so payload memory, kept buffers included, stays within the budget plus that margin whatever
//! clients do. Buffers nobody took for a whole sweep interval go back to the kernel
//! ([`PayloadPool::release_idle`]): a relay whose traffic stopped does not stay at its peak.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Smaller buffers come from the allocator's heap (mimalloc, `harden::ServiceAllocator`), which
/// reuses them anyway.
const MIN_POOLED: usize = harden::LARGE_ALLOCATION_BYTES;
/// What the pool may hold beyond the unused part of the blob budget.
pub const MAX_BEYOND_BUDGET: u64 = 32 << 20;
/// A kept buffer serves a request only if it is at most this much larger: the blob budget
/// counts payload bytes, so slack would be memory it does not see.
const MAX_SLACK: usize = 64 << 10;

/// Kept buffers, each zero-filled over its whole capacity.
pub struct PayloadPool {
    inner: Mutex<Kept>,
    /// The blob budget's unused bytes, as the blob store last reported them.
    spare: AtomicU64,
    /// Bytes of capacity kept; changed only under the lock, read without it (every upload's
    /// reservation lowers the spare; most find nothing to release).
    held: AtomicU64,
}

#[derive(Default)]
struct Kept {
    /// `(buffer, sweep generation it was given back in)`.
    buffers: Vec<(Vec<u8>, u64)>,
    generation: u64,
}

impl Kept {
    fn pop(&mut self, i: usize, held: &AtomicU64) -> Vec<u8> {
        let (buffer, _) = self.buffers.swap_remove(i);
        held.fetch_sub(buffer.capacity() as u64, Ordering::AcqRel);
        buffer
    }
}

impl PayloadPool {
    /// An empty pool that may keep `spare` bytes beyond [`MAX_BEYOND_BUDGET`].
    pub fn new(spare: u64) -> Self {
        Self { inner: Mutex::new(Kept::default()), spare: AtomicU64::new(spare), held: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn limit(&self) -> u64 {
        MAX_BEYOND_BUDGET.saturating_add(self.spare.load(Ordering::Acquire))
    }

    /// A zero-filled buffer of `len` bytes: a kept one whose capacity fits, else a fresh one.
    pub fn zeroed(&self, len: usize) -> Vec<u8> {
        if len >= MIN_POOLED {
            let kept = {
                let mut kept = self.lock();
                let fits =
                    kept.buffers.iter().position(|(b, _)| b.capacity() >= len && b.capacity() - len <= MAX_SLACK);
                fits.map(|i| kept.pop(i, &self.held))
            };
            if let Some(mut buffer) = kept {
                // Every byte up to the capacity is zero already: only a longer length writes.
                if buffer.len() >= len {
                    buffer.truncate(len);
                } else {
                    buffer.resize(len, 0);
                }
                return buffer;
            }
        }
        vec![0; len]
    }

    /// Keeps `buffer` for a later [`PayloadPool::zeroed`] if it is large and within the limit.
    /// The caller has overwritten `buffer[..len]` with zeros, and the bytes past its length
    /// were never written since they were last zeroed (the reader truncates, it never writes
    /// beyond the payload).
    pub fn give_back(&self, buffer: Vec<u8>) {
        if buffer.capacity() < MIN_POOLED {
            return;
        }
        let refused = {
            let mut kept = self.lock();
            let capacity = buffer.capacity() as u64;
            if self.held.load(Ordering::Acquire) + capacity <= self.limit() {
                self.held.fetch_add(capacity, Ordering::AcqRel);
                let generation = kept.generation;
                kept.buffers.push((buffer, generation));
                None
            } else {
                Some(buffer)
            }
        };
        drop(refused); // unmapped outside the lock
    }

    /// The blob store's unused budget changed to `spare`; buffers beyond the new limit are
    /// released (unmapped after the lock is let go).
    pub fn set_spare(&self, spare: u64) {
        let before = self.spare.swap(spare, Ordering::AcqRel);
        if spare >= before || self.held.load(Ordering::Acquire) <= self.limit() {
            return;
        }
        let released: Vec<Vec<u8>> = {
            let mut kept = self.lock();
            let limit = self.limit();
            let mut out = Vec::new();
            while self.held.load(Ordering::Acquire) > limit && !kept.buffers.is_empty() {
                let last = kept.buffers.len() - 1;
                out.push(kept.pop(last, &self.held));
            }
            out
        };
        drop(released);
    }

    /// Called once per sweep: releases the buffers given back before the previous call and not
    /// taken since. Returns how many bytes went back to the kernel.
    pub fn release_idle(&self) -> u64 {
        let released: Vec<Vec<u8>> = {
            let mut kept = self.lock();
            let cutoff = kept.generation;
            kept.generation += 1;
            let mut out = Vec::new();
            let mut i = 0;
            while i < kept.buffers.len() {
                if kept.buffers[i].1 < cutoff {
                    out.push(kept.pop(i, &self.held));
                } else {
                    i += 1;
                }
            }
            out
        };
        released.iter().map(|b| b.capacity() as u64).sum()
    }

    /// Bytes of capacity kept.
    #[cfg(test)]
    fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    fn used(len: usize, pool: &PayloadPool) -> Vec<u8> {
        let mut buffer = pool.zeroed(len);
        assert!(buffer.iter().all(|&b| b == 0), "handed out zeroed");
        buffer.fill(0xAB);
        buffer.fill(0); // what the blob store does before giving a payload back
        buffer
    }

    #[test]
    fn large_buffers_are_reused_zeroed() {
        let pool = PayloadPool::new(0);
        let first = used(3 * MIB, &pool);
        let address = first.as_ptr();
        pool.give_back(first);
        let again = used(3 * MIB - 1000, &pool);
        assert_eq!(again.as_ptr(), address, "a kept buffer of nearly the size is reused");
        assert_eq!(again.len(), 3 * MIB - 1000);
        pool.give_back(again);
        // A request longer than the kept length (within the capacity) is zero-filled too.
        let longer = pool.zeroed(3 * MIB - 500);
        assert_eq!(longer.as_ptr(), address);
        assert!(longer.iter().all(|&b| b == 0));
        pool.give_back(longer);

        // Much smaller requests do not take it (the slack would escape the budget)...
        let small = pool.zeroed(3 * MIB / 2);
        assert_ne!(small.as_ptr(), address);
        // ...and small buffers are never kept.
        pool.give_back(vec![0; 4096]);
        assert!(pool.lock().buffers.iter().all(|(b, _)| b.capacity() >= MIN_POOLED));
    }

    #[test]
    fn the_pool_keeps_at_most_the_spare_budget_plus_the_margin() {
        let pool = PayloadPool::new(0);
        for _ in 0..20 {
            pool.give_back(vec![0; 4 * MIB]);
        }
        assert!(pool.held() <= MAX_BEYOND_BUDGET, "{}", pool.held());

        let pool = PayloadPool::new(40 * MIB as u64);
        for _ in 0..40 {
            pool.give_back(vec![0; 4 * MIB]);
        }
        assert_eq!(pool.held(), 72 * MIB as u64, "margin + spare, in whole buffers");
        // Uploads reserve budget: the spare shrinks and so does the pool, at once.
        pool.set_spare(8 * MIB as u64);
        assert_eq!(pool.held(), 40 * MIB as u64);
        pool.set_spare(0);
        assert!(pool.held() <= MAX_BEYOND_BUDGET);
    }

    #[test]
    fn buffers_nobody_takes_for_a_sweep_go_back_to_the_kernel() {
        let pool = PayloadPool::new(1 << 30);
        pool.give_back(vec![0; 2 * MIB]);
        assert_eq!(pool.release_idle(), 0, "given back in this sweep interval");
        pool.give_back(vec![0; 3 * MIB]);
        assert_eq!(pool.release_idle(), 2 * MIB as u64, "idle for a whole interval");
        let _taken = pool.zeroed(3 * MIB);
        assert_eq!(pool.release_idle(), 0, "the other one was taken");
        assert_eq!(pool.held(), 0);
    }
}
