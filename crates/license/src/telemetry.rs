//! Telemetry: off by default; when the operator opts in, only the aggregate numbers the trust
//! model lists — user count, transfers per 24 h, 5xx and auth-failure rates, uptime. The type
//! holds numbers and nothing else, so no hash, email, name, address or log content can ever be
//! put into it; the rates are per mille (integers: the body is canonical JSON, which has no
//! fractions). Counts are over the last 24 hours; uptime is given in whole hours.

use serde::{Deserialize, Serialize};

/// The telemetry block of a check-in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Whether the operator opted in; when false every other field is null.
    pub opted_in: bool,
    /// Users (active accounts and active keys not owned by an account).
    pub user_count: Option<u64>,
    /// Transfers in the last 24 hours.
    pub transfer_count_24h: Option<u64>,
    /// Share of answers that were 5xx, per mille.
    pub error_rate_5xx_permille: Option<u32>,
    /// Share of requests that failed authentication, per mille.
    pub auth_failure_rate_permille: Option<u32>,
    /// Seconds since the relay started, in whole hours (a multiple of 3600: coarse, and the
    /// same in the preview and the check-in that follows it).
    pub uptime_seconds: Option<u64>,
}

/// The aggregates a relay can report (`None`: not counted on this appliance, sent as null).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Aggregates {
    /// Users.
    pub user_count: Option<u64>,
    /// Transfers in the last 24 hours.
    pub transfer_count_24h: Option<u64>,
    /// Requests answered (the denominator of both rates).
    pub requests: Option<u64>,
    /// Answers with a 5xx.
    pub errors_5xx: Option<u64>,
    /// Failed authentications.
    pub auth_failures: Option<u64>,
    /// Seconds since start.
    pub uptime_seconds: Option<u64>,
}

/// Whether the operator opted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptIn {
    /// Off (the default): nothing but `opted_in: false`.
    Off,
    /// On: the aggregates.
    On,
}

impl Telemetry {
    /// The block for a check-in.
    #[must_use]
    pub fn new(opt_in: OptIn, aggregates: &Aggregates) -> Self {
        match opt_in {
            OptIn::Off => Self::default(),
            OptIn::On => Self {
                opted_in: true,
                user_count: aggregates.user_count,
                transfer_count_24h: aggregates.transfer_count_24h,
                error_rate_5xx_permille: permille(aggregates.errors_5xx, aggregates.requests),
                auth_failure_rate_permille: permille(aggregates.auth_failures, aggregates.requests),
                uptime_seconds: aggregates.uptime_seconds.map(|s| s / 3600 * 3600),
            },
        }
    }
}

fn permille(part: Option<u64>, whole: Option<u64>) -> Option<u32> {
    let (part, whole) = (part?, whole?);
    if whole == 0 {
        return Some(0);
    }
    // At most 1000 (part is capped at whole), so the cast cannot truncate.
    Some((u128::from(part.min(whole)) * 1000 / u128::from(whole)) as u32)
}
