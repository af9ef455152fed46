//! Fixed-window request counters (per client IP, per API key, per day for upload quotas),
//! bounded in memory: when a table is full, windows that have ended are dropped first.

use std::collections::HashMap;
use std::hash::Hash;
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
    pub retry_after_secs: u64,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
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
        let ends = (now_ms / self.window_ms + 1) * self.window_ms;
        Limited { retry_after_secs: (ends - now_ms).div_ceil(1000).max(1) }
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
}
