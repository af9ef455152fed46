//! The service's clock: the wall clock, plus — in tests only — an offset read from the file
//! `danger_clock_offset_file` names, so tests move TOTP steps and session ages without sleeping.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall clock with an optional test offset.
pub struct Clock {
    offset_file: Option<PathBuf>,
}

impl Clock {
    /// The system clock, shifted by the seconds in `offset_file` when one is given (tests).
    pub fn new(offset_file: Option<PathBuf>) -> Self {
        Self { offset_file }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        wall.saturating_add_signed(self.offset_secs().saturating_mul(1000))
    }

    /// Seconds since the Unix epoch.
    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// The test offset in seconds (0 without a file, or when it does not hold an integer).
    fn offset_secs(&self) -> i64 {
        let Some(path) = &self.offset_file else { return 0 };
        std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }
}
