//! What every handler shares: configuration, storage, secrets, the relays and the log, limits.

use std::net::IpAddr;
use std::sync::Arc;

use hmac::{KeyInit, Mac};
use jsonapi::ApiError;

use crate::clock::Clock;
use crate::config::Config;
use crate::ratelimit::{self, Limiter};
use crate::store::AdminDb;
use crate::totp::Sealer;
use crate::upstream::{Relays, Upstream};

/// Shared state.
pub type SharedState = Arc<AppState>;

/// The limits of the API reference and our own (per address, per address and account).
pub struct Limits {
    /// Signups per client network per hour.
    pub signup_per_ip: Limiter,
    /// Signups per email address (hashed) per 24 h: the mails one address receives.
    pub signup_per_email: Limiter,
    /// Login attempts (TOTP or backup code) per client network per 15 minutes.
    pub login_per_ip: Limiter,
    /// Login attempts per client network and account per 15 minutes (cleared on success).
    pub login_per_ip_account: Limiter,
    /// Setup-link attempts (setup, confirm) per client network per 15 minutes.
    pub setup_per_ip: Limiter,
    /// Admin sign-in attempts per client network per 15 minutes.
    pub admin_login_per_ip: Limiter,
    /// TOTP-required toggles per admin per 24 h (API reference: 20).
    pub force_totp: Limiter,
}

impl Limits {
    /// The limiters, sized from the `[limits]` configuration.
    pub fn new(config: &crate::config::LimitsConfig) -> Self {
        const HOUR: u64 = 3_600_000;
        const QUARTER: u64 = 900_000;
        Self {
            signup_per_ip: Limiter::new(config.signups_per_ip_per_hour, HOUR),
            signup_per_email: Limiter::new(3, 24 * HOUR),
            login_per_ip: Limiter::new(config.logins_per_ip_per_15min, QUARTER),
            login_per_ip_account: Limiter::new(config.logins_per_ip_and_account_per_15min, QUARTER),
            setup_per_ip: Limiter::new(config.logins_per_ip_per_15min, QUARTER),
            admin_login_per_ip: Limiter::new(10, QUARTER),
            force_totp: Limiter::new(20, 24 * HOUR),
        }
    }
}

/// Everything a handler may use.
pub struct AppState {
    /// The configuration the service was started with.
    pub config: Config,
    /// The accounts database (`admin.redb`).
    pub db: AdminDb,
    /// The wall clock (with a test offset when configured).
    pub clock: Clock,
    /// Seals and opens TOTP secrets.
    pub sealer: Sealer,
    /// `X-Admin-Token` (and the first factor of the admin's panel sign-in).
    pub admin_token: crypto::Secret,
    /// `X-Internal-Auth` of our internal listener.
    pub internal_token: crypto::Secret,
    /// HMAC key for CSRF tokens and the audit subject salt.
    pub panel_key: crypto::Secret,
    /// The relays' internal APIs, one per sector.
    pub relays: Relays,
    /// The sector log's internal API, for the audit trail (`None`: not configured).
    pub log: Option<Upstream>,
    /// The rate limiters.
    pub limits: Limits,
    /// The license: the user cap and the status the panel shows.
    pub license: license_gate::Gate,
    /// Held while a user is counted and created, so two creations cannot both take the last
    /// free place (the relays check again in their own transaction).
    pub user_creation: tokio::sync::Mutex<()>,
    /// What the sandbox enforces, for `/health`.
    pub hardening: harden::Hardening,
}

impl AppState {
    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// HMAC-SHA-256 under the panel key, hex: `label` separates the uses.
    pub fn mac(&self, label: &str, message: &str) -> String {
        // Invariant: HMAC accepts keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.panel_key.danger_expose().as_bytes())
            .expect("HMAC key of any length");
        mac.update(label.as_bytes());
        mac.update(b"\0");
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Counts a hit on `limiter` for `key`; 429 `rate_limited` when over.
    pub fn limit(&self, limiter: &Limiter, key: &str) -> Result<(), ApiError> {
        limiter
            .hit(key, self.now_ms())
            .map_err(|retry| ApiError::rate_limited("too many requests; try again later", retry))
    }

    /// The client network key of `ip`.
    pub fn network(ip: IpAddr) -> String {
        ratelimit::network(ip)
    }
}
