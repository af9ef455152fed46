//! The license state and what it comes down to. The service keeps a [`LicenseState`] (the
//! cache: the last good signed capability set, or why there is none); the relay and the admin
//! panel read it and evaluate an [`Entitlement`] themselves, re-verifying the signed set on
//! every read — a plain file can take a grant away (a degrade marker), never give one.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::capability::{Capabilities, SignedCapabilitySet};
use crate::checkin::CheckInOutcome;
use crate::keys::TrustRoots;
use crate::remote::{SupportKey, UpdateOffer};
use crate::token::{LicenseToken, OfflineLicense, parse_date};
use crate::{COMMUNITY_USERS, Error};

/// A user cap: a number or `"unlimited"` (the reference's `max_keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserLimit {
    /// At most this many.
    Limited(u64),
    /// No cap.
    Unlimited,
}

impl UserLimit {
    /// Whether one more user fits beside `current`.
    #[must_use]
    pub fn admits_one_more(self, current: u64) -> bool {
        match self {
            UserLimit::Limited(max) => current < max,
            UserLimit::Unlimited => true,
        }
    }

    /// `"unlimited"` or the number, as text.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            UserLimit::Limited(n) => n.to_string(),
            UserLimit::Unlimited => "unlimited".into(),
        }
    }
}

impl Serialize for UserLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UserLimit::Limited(n) => s.serialize_u64(*n),
            UserLimit::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for UserLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = UserLimit;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative integer or \"unlimited\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<UserLimit, E> {
                Ok(UserLimit::Limited(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UserLimit, E> {
                u64::try_from(v).map(UserLimit::Limited).map_err(|_| E::custom("negative user cap"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UserLimit, E> {
                if v == "unlimited" { Ok(UserLimit::Unlimited) } else { Err(E::custom("expected \"unlimited\"")) }
            }
        }
        d.deserialize_any(V)
    }
}

/// Community or licensed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    /// No (valid) license: 5 users.
    Community,
    /// A valid license.
    Licensed,
}

impl Edition {
    /// `"community"` or `"licensed"` (as it serialises).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Edition::Community => "community",
            Edition::Licensed => "licensed",
        }
    }
}

/// Where the entitlement comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Nothing valid: Community.
    None,
    /// The offline `plk_` token.
    OfflineToken,
    /// A signed capability set from a check-in (within the 7-day grace).
    CapabilitySet,
}

/// What this appliance may do now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entitlement {
    /// Community or licensed.
    pub edition: Edition,
    /// The user cap.
    pub max_users: UserLimit,
    /// Where it comes from.
    pub source: Source,
    /// When the grant ends (token expiry, or the end of the set's grace), Unix ms.
    pub valid_until_ms: Option<u64>,
    /// The tier of a capability set.
    pub tier: Option<String>,
    /// The capabilities of a capability set.
    pub capabilities: Option<Capabilities>,
    /// The licensee (for the operator's eyes only: never on `/health`).
    #[serde(skip)]
    pub licensee: Option<String>,
    /// Whether a signed set orders the relay to drain.
    pub drain: bool,
    /// An update on offer (a banner).
    pub update_offer: Option<UpdateOffer>,
    /// Support keys of the set (the caller filters expired and locally revoked ones).
    pub support_keys: Vec<SupportKey>,
    /// Why it is not better: an expired or bad token, a revocation, a tampered cache, …
    pub notice: Option<String>,
}

impl Entitlement {
    /// Community Edition, with the reason.
    #[must_use]
    pub fn community(notice: Option<String>) -> Self {
        Self {
            edition: Edition::Community,
            max_users: UserLimit::Limited(COMMUNITY_USERS),
            source: Source::None,
            valid_until_ms: None,
            tier: None,
            capabilities: None,
            licensee: None,
            drain: false,
            update_offer: None,
            support_keys: Vec::new(),
            notice,
        }
    }

    fn offline(license: OfflineLicense) -> Self {
        Self {
            edition: Edition::Licensed,
            max_users: license.max_users,
            source: Source::OfflineToken,
            valid_until_ms: Some(license.expires_at_ms),
            licensee: Some(license.issued_to),
            ..Self::community(None)
        }
    }

    fn online(signed: SignedCapabilitySet, valid_until_ms: u64) -> Self {
        let set = signed.set;
        Self {
            edition: Edition::Licensed,
            max_users: set.capabilities.max_users,
            source: Source::CapabilitySet,
            valid_until_ms: Some(valid_until_ms),
            drain: set.remote.draining(),
            update_offer: set.remote.update_offer.clone(),
            support_keys: set.remote.support_keys.clone(),
            tier: Some(set.tier),
            capabilities: Some(set.capabilities),
            ..Self::community(None)
        }
    }

    /// Checks that one more user fits: the cap every path that creates a user applies.
    ///
    /// # Errors
    /// [`TierLimit`] (HTTP 402, error code `tier_limit_users`).
    pub fn check_new_user(&self, current_users: u64) -> Result<(), TierLimit> {
        if self.max_users.admits_one_more(current_users) {
            Ok(())
        } else {
            Err(TierLimit { current_users, max_users: self.max_users, edition: self.edition })
        }
    }

    /// The largest upload in bytes: the relay's own limit (`configured`, Community Edition's and
    /// an offline token's, which carries no blob size), lowered to a capability set's
    /// `max_blob_size_mb` (MiB) when one is in force. A set never raises the relay's own limit:
    /// that bounds the memory the operator budgeted.
    #[must_use]
    pub fn max_blob_bytes(&self, configured: u64) -> u64 {
        match &self.capabilities {
            Some(c) => configured.min(c.max_blob_size_mb.saturating_mul(1024 * 1024)),
            None => configured,
        }
    }

    /// The longest lifetime of a blob in ms: the plan's retention (`plan_cap_ms`, the API
    /// reference's tier table), lowered to a capability set's `retention_max_seconds` when one
    /// is in force. A longer `ttl_ms` is clamped to it (the answer's `ttl_ms` says what applies).
    #[must_use]
    pub fn retention_cap_ms(&self, plan_cap_ms: u64) -> u64 {
        match &self.capabilities {
            Some(c) => plan_cap_ms.min(c.retention_max_seconds.saturating_mul(1000)),
            None => plan_cap_ms,
        }
    }

    /// Whether uploads must carry a verified ML-DSA-65 sender signature (a capability set's
    /// `ml_dsa_required`; never in Community Edition).
    #[must_use]
    pub fn ml_dsa_required(&self) -> bool {
        self.capabilities.as_ref().is_some_and(|c| c.ml_dsa_required)
    }

    /// Whether the add-on `name` may run (a capability set's `addons_allowed`; none in
    /// Community Edition or under an offline token, which carries no add-ons).
    #[must_use]
    pub fn addon_allowed(&self, name: &str) -> bool {
        self.capabilities.as_ref().is_some_and(|c| c.addons_allowed.iter().any(|a| a == name))
    }

    /// Whether a presented support key (its SHA-256, hex) is one of the set's, unexpired at
    /// `now_ms` and not in `revoked` (ids the operator revoked).
    #[must_use]
    pub fn support_key_valid(&self, key_sha256_hex: &str, revoked: &[String], now_ms: u64) -> bool {
        self.support_keys.iter().any(|k| {
            crypto::ct_eq(k.key_sha256.as_bytes(), key_sha256_hex.as_bytes())
                && !revoked.contains(&k.id)
                && parse_date(&k.expires_at).is_ok_and(|end| now_ms < end)
        })
    }
}

/// A new user refused by the cap: HTTP 402 `tier_limit_users`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "user limit reached: {current_users} users, {} allows {}",
    match edition { Edition::Community => "Community Edition", Edition::Licensed => "the license" },
    max_users.describe()
)]
pub struct TierLimit {
    /// Users now.
    pub current_users: u64,
    /// The cap.
    pub max_users: UserLimit,
    /// The edition in force.
    pub edition: Edition,
}

impl TierLimit {
    /// The HTTP status (402 Payment Required).
    pub const STATUS: u16 = 402;
    /// The API error code.
    pub const CODE: &'static str = "tier_limit_users";
}

/// The online half of the state (what the last conclusive check-in said).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Online {
    /// No conclusive check-in yet (or online checking is off): the offline token decides.
    NotChecked,
    /// The last good answer: the signed set, as received.
    Active {
        /// The signed capability set (JSON text, signature included).
        set: String,
    },
    /// 402 at the last check-in.
    PaymentRequired {
        /// Since when (Unix ms).
        since_ms: u64,
    },
    /// 404 at the last check-in.
    UnknownKey {
        /// Since when (Unix ms).
        since_ms: u64,
    },
    /// 410: the key with this SHA-256 (hex) is revoked; never retried.
    Revoked {
        /// SHA-256 of the revoked token, hex.
        license_sha256: String,
        /// Since when (Unix ms).
        since_ms: u64,
    },
}

/// The state the service keeps (its cache file) and publishes to the relay and the admin panel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseState {
    /// What the last conclusive check-in said.
    pub online: Online,
    /// The last attempt (Unix ms) and what came of it.
    #[serde(default)]
    pub last_attempt_ms: Option<u64>,
    /// The outcome of the last attempt (`active`, `unavailable`, …) and why.
    #[serde(default)]
    pub last_outcome: Option<String>,
    /// Ids of remote actions already logged (an action is logged once).
    #[serde(default)]
    pub logged_actions: Vec<String>,
    /// A key rotation announced by the server (`next_pubkey_hash`), if any.
    #[serde(default)]
    pub next_pubkey_hash: Option<String>,
    /// The nonce the next check-in will send (drawn ahead, so that `telemetry-preview` shows
    /// the very bytes the next check-in sends; used once, then replaced).
    #[serde(default)]
    pub next_nonce: Option<String>,
}

impl Default for LicenseState {
    fn default() -> Self {
        Self {
            online: Online::NotChecked,
            last_attempt_ms: None,
            last_outcome: None,
            logged_actions: Vec::new(),
            next_pubkey_hash: None,
            next_nonce: None,
        }
    }
}

/// What the service does next after a check-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Check in again after this many ms.
    CheckInAfter(u64),
    /// The key is revoked: do not check in with it again.
    StopRetrying,
}

impl LicenseState {
    /// The state after a check-in with `token_sha256` whose outcome is `outcome`, and when to
    /// check in next. An unavailable server changes nothing but the attempt record: the cache
    /// and its grace clock stay as they were.
    #[must_use]
    pub fn after(mut self, outcome: &CheckInOutcome, token_sha256: &[u8; 32], now_ms: u64) -> (Self, Next) {
        self.last_attempt_ms = Some(now_ms);
        self.last_outcome = Some(match outcome {
            CheckInOutcome::Unavailable(why) => format!("unavailable: {why}"),
            other => other.name().to_owned(),
        });
        let mut next = Next::CheckInAfter(crate::CHECK_IN_INTERVAL_MS);
        match outcome {
            CheckInOutcome::Active(signed) => {
                self.online = Online::Active { set: signed.raw.clone() };
                self.next_pubkey_hash = signed.set.next_pubkey_hash.clone();
                let asked = signed.set.next_check_in_seconds.saturating_mul(1000);
                // The server may ask for earlier check-ins, never for fewer than every 6 hours.
                next = Next::CheckInAfter(asked.clamp(60_000, crate::CHECK_IN_INTERVAL_MS));
            }
            CheckInOutcome::PaymentRequired => self.online = Online::PaymentRequired { since_ms: now_ms },
            CheckInOutcome::UnknownKey => self.online = Online::UnknownKey { since_ms: now_ms },
            CheckInOutcome::Revoked => {
                self.online = Online::Revoked { license_sha256: hex::encode(token_sha256), since_ms: now_ms };
                next = Next::StopRetrying;
            }
            CheckInOutcome::Unavailable(_) => {}
        }
        (self, next)
    }

    /// Whether the key with this SHA-256 was revoked (the service then stops checking in).
    #[must_use]
    pub fn revoked(&self, token_sha256: &[u8; 32]) -> bool {
        matches!(&self.online, Online::Revoked { license_sha256, .. } if *license_sha256 == hex::encode(token_sha256))
    }
}

/// The entitlement at `now_ms`, from the offline token (if any), the state the service
/// published (if any) and the trust roots. `relay_id`, when the caller knows it, must match the
/// set's. Every input is re-verified here; anything that does not verify grants Community.
#[must_use]
pub fn evaluate(
    token: Option<&str>,
    state: Option<&LicenseState>,
    roots: &TrustRoots,
    relay_id: Option<&str>,
    now_ms: u64,
) -> Entitlement {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let parsed = token.map(LicenseToken::parse);
    let offline = || match &parsed {
        None => Entitlement::community(None),
        Some(Err(e)) => Entitlement::community(Some(format!("license token: {e}"))),
        Some(Ok(t)) => match t.verify(roots, now_ms) {
            Ok(license) => Entitlement::offline(license),
            Err(e) => Entitlement::community(Some(format!("license token: {e}"))),
        },
    };
    let token_sha256 = parsed.as_ref().and_then(|p| p.as_ref().ok()).map(LicenseToken::sha256);
    match state.map(|s| &s.online) {
        None | Some(Online::NotChecked) => offline(),
        Some(Online::PaymentRequired { .. }) => {
            Entitlement::community(Some("the license server reports a failed payment (402)".into()))
        }
        Some(Online::UnknownKey { .. }) => {
            Entitlement::community(Some("the license server does not know this license key (404)".into()))
        }
        Some(Online::Revoked { license_sha256, .. }) => {
            if token_sha256.is_some_and(|h| hex::encode(h) == *license_sha256) {
                Entitlement::community(Some("this license key was revoked (410)".into()))
            } else {
                // A revocation of another key says nothing about this one.
                offline()
            }
        }
        Some(Online::Active { set }) => match cached_set(set, token, roots, relay_id, now_ms) {
            Ok((signed, until)) => Entitlement::online(signed, until),
            Err(e) => Entitlement::community(Some(format!("cached capability set not accepted: {e}"))),
        },
    }
}

/// Re-verifies a cached set: signature, bound to this token (and relay), within the grace.
fn cached_set(
    raw: &str,
    token: Option<&str>,
    roots: &TrustRoots,
    relay_id: Option<&str>,
    now_ms: u64,
) -> Result<(SignedCapabilitySet, u64), Error> {
    let signed = SignedCapabilitySet::verify(raw.as_bytes(), roots, now_ms)?;
    let token = token.ok_or(Error::Echo("license_key"))?;
    if !crypto::ct_eq(signed.set.license_key.as_bytes(), token.as_bytes()) {
        return Err(Error::Echo("license_key"));
    }
    if relay_id.is_some_and(|id| id != signed.set.relay_id) {
        return Err(Error::Echo("relay_id"));
    }
    signed.set.check_grace(now_ms)?;
    let until = signed.set.issued_at_ms()?.saturating_add(crate::GRACE_MS);
    Ok((signed, until))
}
