//! The relay's own counters for opted-in license telemetry (`GET /internal/stats`): transfers,
//! requests, 5xx answers and authentication failures over the last 24 hours, and uptime. Only
//! counts — no key, hash, address or path is kept — so nothing on the trust model's "never"
//! list can leave through them.
//!
//! Each counter lives in 24 hourly buckets; a bucket is reset when its hour comes round again.
//! The sum over the buckets of the last 24 hours is the figure reported.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const HOUR_MS: u64 = 3_600_000;
const BUCKETS: usize = 24;

/// What is counted.
#[derive(Clone, Copy)]
pub enum Counter {
    /// A stored upload (a transfer).
    Transfer,
    /// A request answered on the public API.
    Request,
    /// An answer with a 5xx status.
    ServerError,
    /// A request refused for a missing or wrong credential (401).
    AuthFailure,
}

const COUNTERS: usize = 4;

#[derive(Default)]
struct Bucket {
    /// The hour (`now_ms / HOUR_MS`) the counts belong to.
    hour: AtomicU64,
    counts: [AtomicU64; COUNTERS],
}

/// The counters (one per relay process).
pub struct Stats {
    started_ms: u64,
    buckets: [Bucket; BUCKETS],
    /// Held only while a bucket is reset for a new hour.
    rollover: Mutex<()>,
}

/// The sums over the last 24 hours, and the uptime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Stored uploads.
    pub transfers_24h: u64,
    /// Requests answered.
    pub requests_24h: u64,
    /// 5xx answers.
    pub errors_5xx_24h: u64,
    /// 401 answers.
    pub auth_failures_24h: u64,
    /// Seconds since the relay started.
    pub uptime_seconds: u64,
}

impl Stats {
    /// Counters of a relay started at `now_ms`.
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        Self { started_ms: now_ms, buckets: Default::default(), rollover: Mutex::new(()) }
    }

    /// Counts one `counter` at `now_ms`.
    pub fn count(&self, counter: Counter, now_ms: u64) {
        let hour = now_ms / HOUR_MS;
        let bucket = &self.buckets[(hour % BUCKETS as u64) as usize];
        if bucket.hour.load(Ordering::Acquire) != hour {
            let _reset = self.rollover.lock().unwrap_or_else(|p| p.into_inner());
            if bucket.hour.load(Ordering::Acquire) != hour {
                for c in &bucket.counts {
                    c.store(0, Ordering::Relaxed);
                }
                bucket.hour.store(hour, Ordering::Release);
            }
        }
        bucket.counts[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer's status: a request, and a 5xx or a 401 when it is one.
    pub fn answered(&self, status: u16, now_ms: u64) {
        self.count(Counter::Request, now_ms);
        if status >= 500 {
            self.count(Counter::ServerError, now_ms);
        } else if status == 401 {
            self.count(Counter::AuthFailure, now_ms);
        }
    }

    /// The sums over the 24 hours up to `now_ms`.
    #[must_use]
    pub fn snapshot(&self, now_ms: u64) -> Snapshot {
        let hour = now_ms / HOUR_MS;
        let sum = |counter: Counter| {
            self.buckets
                .iter()
                .filter(|b| {
                    let h = b.hour.load(Ordering::Acquire);
                    h <= hour && hour - h < BUCKETS as u64
                })
                .map(|b| b.counts[counter as usize].load(Ordering::Relaxed))
                .sum()
        };
        Snapshot {
            transfers_24h: sum(Counter::Transfer),
            requests_24h: sum(Counter::Request),
            errors_5xx_24h: sum(Counter::ServerError),
            auth_failures_24h: sum(Counter::AuthFailure),
            uptime_seconds: now_ms.saturating_sub(self.started_ms) / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_796_000_000_000;

    #[test]
    fn counts_fall_out_after_24_hours_and_uptime_runs() {
        let stats = Stats::new(T0);
        stats.count(Counter::Transfer, T0);
        stats.answered(503, T0);
        stats.answered(401, T0 + HOUR_MS);
        stats.answered(200, T0 + 2 * HOUR_MS);
        let s = stats.snapshot(T0 + 2 * HOUR_MS);
        assert_eq!((s.transfers_24h, s.requests_24h, s.errors_5xx_24h, s.auth_failures_24h), (1, 3, 1, 1));
        assert_eq!(s.uptime_seconds, 7200);
        // 24 hours after the first hour: its counts are gone, the later ones stay.
        let s = stats.snapshot(T0 + 24 * HOUR_MS);
        assert_eq!((s.transfers_24h, s.requests_24h, s.errors_5xx_24h, s.auth_failures_24h), (0, 2, 0, 1));
        // A new count in a reused bucket starts from zero.
        stats.count(Counter::Transfer, T0 + 24 * HOUR_MS);
        assert_eq!(stats.snapshot(T0 + 24 * HOUR_MS).transfers_24h, 1);
    }
}
