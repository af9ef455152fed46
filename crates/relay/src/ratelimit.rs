//! Fixed-window request counters: [`RateLimiter`] counts exactly per key (API keys, which only
//! the operator creates, so the table stays small), [`AddressLimiter`] per client address in a
//! table of fixed size that strangers cannot fill.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;

/// Most distinct keys one limiter tracks.
const MAX_TRACKED: usize = 100_000;

/// Counts events per key in windows of `window_ms`.
pub struct RateLimiter<K> {
    window_ms: u64,
    counts: Mutex<HashMap<K, (u64, u32)>>,
}

/// A refused event: seconds until the window ends.
#[derive(Debug, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until the window ends.
    pub retry_after_secs: u64,
}

fn limited(window_ms: u64, now_ms: u64) -> Limited {
    let ends = (now_ms / window_ms + 1) * window_ms;
    Limited { retry_after_secs: (ends - now_ms).div_ceil(1000).max(1) }
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Counters with windows of `window_ms`.
    pub fn new(window_ms: u64) -> Self {
        Self { window_ms, counts: Mutex::new(HashMap::new()) }
    }

    /// Counts one event for `key` at `now_ms`; refuses it past `limit` in the current window.
    pub fn check(&self, key: &K, limit: u32, now_ms: u64) -> Result<(), Limited> {
        let window = now_ms / self.window_ms;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= MAX_TRACKED && !counts.contains_key(key) {
            counts.retain(|_, (w, _)| *w == window);
            if counts.len() >= MAX_TRACKED {
                return Err(self.limited(now_ms));
            }
        }
        let entry = counts.entry(key.clone()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            return Err(self.limited(now_ms));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Gives back one counted event (an upload that failed after being counted).
    pub fn refund(&self, key: &K, now_ms: u64) {
        let window = now_ms / self.window_ms;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = counts.get_mut(key)
            && entry.0 == window
        {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    fn limited(&self, now_ms: u64) -> Limited {
        limited(self.window_ms, now_ms)
    }
}

/// Rows of the address sketch (independent hash functions).
const ROWS: usize = 4;
/// Counters per row.
const WIDTH: usize = 1 << 16;

/// Per-address request counts in a count-min sketch of fixed size (1 MiB), reset every window.
///
/// Why not a map: a map of addresses must be bounded, and a bounded map fills — 100k source
/// addresses in a minute used to fill the old table, and every address never seen before was
/// then refused (a global lockout). The sketch never fills: an address's count is the smallest
/// of its four counters (each under a per-process random hash), so it can only be *over*-counted
/// by collisions, and a never-seen address is refused only when all four of its counters reach
/// the limit — which takes about `limit × 65,536` requests in one window (≈ 39 million at the
/// default 600/min), far beyond what the per-connection limits let through. Conservative update
/// (only the smallest counters grow) keeps the over-count low. IPv6 addresses count per /64
/// (one host usually holds a whole /64).
pub struct AddressLimiter {
    window_ms: u64,
    hashers: [RandomState; ROWS],
    sketch: Mutex<Sketch>,
}

struct Sketch {
    window: u64,
    counts: Vec<u32>,
}

impl AddressLimiter {
    /// An empty sketch with windows of `window_ms`.
    pub fn new(window_ms: u64) -> Self {
        let sketch = Sketch { window: 0, counts: vec![0; ROWS * WIDTH] };
        Self { window_ms, hashers: std::array::from_fn(|_| RandomState::new()), sketch: Mutex::new(sketch) }
    }

    /// Counts one request from `ip` at `now_ms`; refuses it past `limit` in the current window.
    pub fn check(&self, ip: IpAddr, limit: u32, now_ms: u64) -> Result<(), Limited> {
        let source = match ip {
            IpAddr::V4(v4) => u128::from(v4.to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => u128::from(v4.to_bits()),
                None => (v6.to_bits() >> 64) | (1 << 127),
            },
        };
        let cells: [usize; ROWS] =
            std::array::from_fn(|row| row * WIDTH + (self.hashers[row].hash_one(source) as usize % WIDTH));
        let window = now_ms / self.window_ms;
        let mut sketch = self.sketch.lock().unwrap_or_else(|p| p.into_inner());
        if sketch.window != window {
            sketch.counts.fill(0);
            sketch.window = window;
        }
        let count = cells.iter().map(|&c| sketch.counts[c]).min().unwrap_or(0);
        if count >= limit {
            return Err(limited(self.window_ms, now_ms));
        }
        for &cell in &cells {
            if sketch.counts[cell] == count {
                sketch.counts[cell] = count + 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_applies_per_key_and_resets_with_the_window() {
        let limiter = RateLimiter::new(60_000);
        for _ in 0..3 {
            assert!(limiter.check(&"a", 3, 1_000).is_ok());
        }
        assert_eq!(limiter.check(&"a", 3, 1_000), Err(Limited { retry_after_secs: 59 }));
        assert!(limiter.check(&"b", 3, 1_000).is_ok(), "other keys are unaffected");
        assert!(limiter.check(&"a", 3, 60_000).is_ok(), "a new window starts fresh");
        limiter.refund(&"a", 60_000);
        assert!(limiter.check(&"a", 1, 60_000).is_ok());
    }

    #[test]
    fn addresses_are_limited_each_and_a_flood_of_addresses_locks_nobody_out() {
        let limiter = AddressLimiter::new(60_000);
        let home: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(home, 3, 1_000).is_ok());
        }
        assert_eq!(limiter.check(home, 3, 1_000), Err(Limited { retry_after_secs: 59 }));
        for i in 0..200_000u32 {
            let _ = limiter.check(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 3, 1_000);
        }
        assert!(limiter.check("198.51.100.7".parse().unwrap(), 3, 1_000).is_ok(), "a new address is served");
        assert!(limiter.check(home, 3, 60_000).is_ok(), "a new window starts fresh");
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        assert!(limiter.check(v6a, 1, 60_000).is_ok());
        assert!(limiter.check(v6b, 1, 60_000).is_err(), "one /64 is one source");
    }
}
