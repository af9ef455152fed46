//! Remote actions (ADR R014 as the trust page describes them): they arrive only as fields of a
//! signed capability set, each naming the Paramant role that ordered it (Owner or Support) and
//! an id. Each becomes a license-event leaf in the relay's own CT log *before* it takes effect;
//! the service writes the set where the relay reads it only after every new action was logged,
//! so an action that could not be logged never happens.
//!
//! - a short-lived support key: only its SHA-256 travels (Paramant hands the key to its support
//!   engineer); the relay accepts it until it expires or the operator revokes it locally;
//! - an update offer: a banner, never applied without the operator;
//! - drain / undrain: refuse new uploads and let transfers in flight finish, or serve again;
//! - a capability adjustment: the set's new tier and capabilities, effective with this set.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Who at Paramant ordered an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The Owner role.
    Owner,
    /// The Support role.
    Support,
}

impl Role {
    /// The name logged (`Owner`, `Support`).
    #[must_use]
    pub fn log_name(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Support => "Support",
        }
    }
}

/// Drain mode as ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainMode {
    /// Refuse new uploads, finish transfers in flight, then idle.
    Drain,
    /// Serve again.
    Undrain,
}

/// A drain or undrain order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainOrder {
    /// Unique id of the order.
    pub id: String,
    /// Who ordered it.
    pub role: Role,
    /// What was ordered.
    pub mode: DrainMode,
}

/// An update offer (a banner; the operator decides).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateOffer {
    /// Unique id of the offer.
    pub id: String,
    /// Who offered it.
    pub role: Role,
    /// The version offered.
    pub version: String,
    /// Where its release notes are.
    #[serde(default)]
    pub notes_url: String,
}

/// A short-lived support key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportKey {
    /// Unique id of the key (what the operator revokes it by).
    pub id: String,
    /// Who issued it.
    pub role: Role,
    /// SHA-256 of the key (hex); the key itself never travels to the relay.
    pub key_sha256: String,
    /// When it stops working (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    pub expires_at: String,
}

/// A capability adjustment (tier change, trial extension, upgrade after payment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityChange {
    /// Unique id of the change.
    pub id: String,
    /// Who made it.
    pub role: Role,
    /// Why (informative).
    #[serde(default)]
    pub reason: String,
}

/// The remote-action fields of a capability set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// The drain order in force, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainOrder>,
    /// The update on offer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_offer: Option<UpdateOffer>,
    /// Support keys issued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub support_keys: Vec<SupportKey>,
    /// The capability change this set carries, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_change: Option<CapabilityChange>,
}

/// One action to log: the id it is known by and the log event (without timestamp; the log
/// stamps it) for the log's internal append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedAction {
    /// The action's id (an action is logged once; a later set repeating it is not re-logged).
    pub id: String,
    /// `{"type":"license_event","action":…,"role":…,"detail":…}`.
    pub event: Value,
}

impl Remote {
    /// Whether there is nothing in it.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Remote::default()
    }

    /// Every action of this set, as log events, in the order they take effect.
    /// `tier` and `max_users` describe the set for a capability change.
    #[must_use]
    pub fn actions(&self, tier: &str, max_users: &str) -> Vec<LoggedAction> {
        let mut out = Vec::new();
        if let Some(c) = &self.capability_change {
            let detail = json!({ "id": c.id, "tier": tier, "max_users": max_users, "reason": c.reason });
            out.push(action(&c.id, "capabilities_adjusted", c.role, &detail));
        }
        if let Some(d) = &self.drain {
            let name = match d.mode {
                DrainMode::Drain => "drain_mode_requested",
                DrainMode::Undrain => "drain_mode_lifted",
            };
            out.push(action(&d.id, name, d.role, &json!({ "id": d.id })));
        }
        if let Some(u) = &self.update_offer {
            let detail = json!({ "id": u.id, "version": u.version, "notes_url": u.notes_url });
            out.push(action(&u.id, "update_offered", u.role, &detail));
        }
        for k in &self.support_keys {
            let detail = json!({ "id": k.id, "key_sha256": k.key_sha256, "expires_at": k.expires_at });
            out.push(action(&k.id, "support_key_issued", k.role, &detail));
        }
        out
    }

    /// Whether the relay is to drain.
    #[must_use]
    pub fn draining(&self) -> bool {
        self.drain.as_ref().is_some_and(|d| d.mode == DrainMode::Drain)
    }
}

fn action(id: &str, name: &str, role: Role, detail: &Value) -> LoggedAction {
    // `detail` is a JSON object of strings: its canonical form cannot fail.
    let detail = wire::canonical_json(detail).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    LoggedAction {
        id: id.to_owned(),
        event: json!({ "type": "license_event", "action": name, "role": role.log_name(), "detail": detail }),
    }
}

/// The log event of one check-in, appended before the request is sent: the SHA3-256 digest of
/// the exact request body (the body itself goes to the journal), so an operator can match what
/// the relay sent against the log.
#[must_use]
pub fn check_in_event(body: &[u8]) -> Value {
    use sha3::{Digest, Sha3_256};
    let digest = hex::encode(Sha3_256::digest(body));
    let detail = format!("{{\"body_sha3_256\":\"{digest}\"}}");
    json!({ "type": "license_event", "action": "check_in", "role": "Relay", "detail": detail })
}
