//! Fixed-window counters in memory: attempts per client address, and per address and account
//! together. No limit is keyed by the account alone, so a stranger cannot lock someone else out
//! (the reference counted every attempt per email before checking it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most distinct keys held; beyond, expired windows are dropped, and if none has expired the
/// request is refused (a flood of fresh addresses cannot grow memory without bound).
const MAX_KEYS: usize = 200_000;

/// One limiter: at most `limit` hits per key per `window_ms`.
pub struct Limiter {
    limit: u32,
    window_ms: u64,
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl Limiter {
    /// A limiter allowing `limit` hits per key in each window of `window_ms` milliseconds.
    pub fn new(limit: u32, window_ms: u64) -> Self {
        Self { limit, window_ms, windows: Mutex::default() }
    }

    /// Counts a hit for `key`; `Err(retry_after_secs)` when over the limit.
    pub fn hit(&self, key: &str, now_ms: u64) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_KEYS && !windows.contains_key(key) {
            let window = self.window_ms;
            windows.retain(|_, (start, _)| now_ms.saturating_sub(*start) < window);
            if windows.len() >= MAX_KEYS {
                return Err(self.window_ms / 1000);
            }
        }
        let entry = windows.entry(key.to_owned()).or_insert((now_ms, 0));
        if now_ms.saturating_sub(entry.0) >= self.window_ms {
            *entry = (now_ms, 0);
        }
        if entry.1 >= self.limit {
            let retry = (entry.0 + self.window_ms).saturating_sub(now_ms).div_ceil(1000);
            return Err(retry.max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Forgets `key` (after a successful login the address+account counter starts again).
    pub fn clear(&self, key: &str) {
        self.windows.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// The client's network as a limiter key: the /24 of an IPv4 address, the /64 of IPv6 (one
/// host usually owns a whole /64).
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_window_allows_the_limit_then_refuses_until_it_ends() {
        let limiter = Limiter::new(2, 60_000);
        assert!(limiter.hit("a", 0).is_ok());
        assert!(limiter.hit("a", 1).is_ok());
        assert_eq!(limiter.hit("a", 2_000), Err(58));
        assert!(limiter.hit("b", 2_000).is_ok());
        assert!(limiter.hit("a", 60_000).is_ok());
    }

    #[test]
    fn networks_group_neighbouring_addresses() {
        assert_eq!(network("10.1.2.3".parse().unwrap()), "10.1.2.0/24");
        assert_eq!(network("2001:db8:1:2:3::4".parse().unwrap()), "2001:db8:1:2::/64");
    }
}
