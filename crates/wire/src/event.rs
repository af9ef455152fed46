//! The log's entries (leaves) and their leaf hashes.
//!
//! Every leaf hash is SHA3-256 of a type byte followed by the entry's content, so entries of
//! different kinds can never collide, and never with inner nodes (`0x01`) or RFC 9162 plain
//! leaves (`0x00`). A transfer leaf is hashed exactly as the reference relay does; every other
//! entry commits to its whole record: the canonical JSON of the event as the log serves it
//! (with its `"type"` tag, every field in full), so an auditor can take an entry from
//! `/v2/ct/log` and recompute its leaf hash.

use serde::{Deserialize, Serialize};
use tlog::{Hash, Sha3_256, TreeHasher};

use crate::encoding::parse_hash_hex_named;
use crate::{Error, canonical_json_of, parse_iso8601_ms};

/// Largest allowed length, in bytes, of any string field of a [`LogEvent`]. Fits an ML-DSA-65
/// public key in hex (3904 characters).
pub const MAX_FIELD_LEN: usize = 4096;

/// Type byte of a transfer leaf (a blob accepted by `POST /v2/inbound`); the reference relay's
/// leaf format, kept for compatibility.
const TYPE_TRANSFER: u8 = 0x02;
/// Type byte of a device registration (`POST /v2/pubkey`: a device's ECDH and ML-KEM keys).
const TYPE_DEVICE_REGISTERED: u8 = 0x03;
/// Type byte of a DID registration (a DID bound to a device and its keys).
const TYPE_DID_REGISTERED: u8 = 0x04;
/// Type byte of a delivery (a blob downloaded, and whether it was burned).
const TYPE_DELIVERY: u8 = 0x05;
/// Type byte of an administrative action (admin panel or internal API changes).
const TYPE_ADMIN_ACTION: u8 = 0x06;
/// Type byte of a license event (license check-ins and remote actions).
const TYPE_LICENSE_EVENT: u8 = 0x07;

/// One entry of the log. Serialized as a JSON object with a `"type"` tag in snake case
/// (`"transfer"`, `"device_registered"`, …); unknown fields are rejected.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LogEvent {
    /// A blob was accepted for transfer. Type byte `0x02`; leaf hash
    /// `SHA3-256(0x02 ‖ sha256(payload) ‖ SHA3-256(utf8 sector) ‖ utf8 timestamp)`.
    Transfer {
        /// SHA-256 of the payload, 64 lowercase hex.
        blob_hash: String,
        /// The relay's sector.
        sector: String,
        /// When, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
        timestamp: String,
    },
    /// A device registered its public keys. Type byte `0x03`.
    DeviceRegistered {
        /// The device's id.
        device_id: String,
        /// Its ECDH public key, as sent by the client.
        ecdh_pub: String,
        /// Its ML-KEM-768 public key, as sent by the client.
        kyber_pub: String,
        /// Its ML-DSA-65 public key, if it registered one (absent from the record otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dsa_pub: Option<String>,
        /// The relay's sector.
        sector: String,
        /// When, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
        timestamp: String,
    },
    /// A DID was registered for a device. Type byte `0x04`.
    DidRegistered {
        /// The DID.
        did: String,
        /// The device it belongs to.
        device_id: String,
        /// The device's ECDH public key.
        ecdh_pub: String,
        /// The device's ML-DSA public key, if it has one (`null` otherwise).
        dsa_pub: Option<String>,
        /// The relay's sector.
        sector: String,
        /// When, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
        timestamp: String,
    },
    /// A blob was delivered (downloaded). Type byte `0x05`.
    Delivery {
        /// SHA-256 of the payload, 64 lowercase hex.
        blob_hash: String,
        /// The relay's sector.
        sector: String,
        /// Whether the blob was destroyed on delivery.
        burned: bool,
        /// When, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
        timestamp: String,
    },
    /// An administrative action. Type byte `0x06`.
    AdminAction {
        /// What was done (e.g. `api_key_revoked`).
        action: String,
        /// Who did it.
        actor: String,
        /// What it was done to.
        subject: String,
        /// Free-form detail.
        detail: String,
        /// When, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
        timestamp: String,
    },
    /// A license event: check-in result or remote action. Type byte `0x07`.
    LicenseEvent {
        /// What happened (e.g. `check_in`, `remote_disable`).
        action: String,
        /// The role of the instance it concerns.
        role: String,
        /// Free-form detail.
        detail: String,
        /// When, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
        timestamp: String,
    },
}

impl LogEvent {
    /// A transfer to append; the log stamps the time.
    #[must_use]
    pub fn transfer(blob_hash: &str, sector: &str) -> Self {
        LogEvent::Transfer { blob_hash: blob_hash.to_owned(), sector: sector.to_owned(), timestamp: String::new() }
    }

    /// A delivery to append; the log stamps the time.
    #[must_use]
    pub fn delivery(blob_hash: &str, sector: &str, burned: bool) -> Self {
        LogEvent::Delivery {
            blob_hash: blob_hash.to_owned(),
            sector: sector.to_owned(),
            burned,
            timestamp: String::new(),
        }
    }

    /// An administrative action to append; the log stamps the time.
    #[must_use]
    pub fn admin_action(action: &str, actor: &str, subject: &str, detail: &str) -> Self {
        LogEvent::AdminAction {
            action: action.to_owned(),
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            detail: detail.to_owned(),
            timestamp: String::new(),
        }
    }

    /// The domain-separation byte that starts this entry's leaf preimage (`0x02`..=`0x07`;
    /// never `0x00`, the RFC 9162 leaf prefix, nor `0x01`, the inner-node prefix).
    #[must_use]
    pub fn type_byte(&self) -> u8 {
        match self {
            LogEvent::Transfer { .. } => TYPE_TRANSFER,
            LogEvent::DeviceRegistered { .. } => TYPE_DEVICE_REGISTERED,
            LogEvent::DidRegistered { .. } => TYPE_DID_REGISTERED,
            LogEvent::Delivery { .. } => TYPE_DELIVERY,
            LogEvent::AdminAction { .. } => TYPE_ADMIN_ACTION,
            LogEvent::LicenseEvent { .. } => TYPE_LICENSE_EVENT,
        }
    }

    /// The exact bytes hashed into the leaf hash: for a transfer,
    /// `0x02 ‖ sha256(payload) [32 B] ‖ SHA3-256(utf8 sector) [32 B] ‖ utf8 timestamp`; for
    /// every other event, `type byte ‖ canonical JSON of the event (with its "type" tag)`.
    ///
    /// # Errors
    /// [`Error::HashHex`] if a transfer's `blob_hash` is not 64 hex characters.
    pub fn leaf_preimage(&self) -> Result<Vec<u8>, Error> {
        let mut out = vec![self.type_byte()];
        if let LogEvent::Transfer { blob_hash, sector, timestamp } = self {
            out.extend_from_slice(&parse_hash_hex_named(blob_hash, "blob_hash")?);
            out.extend_from_slice(&Sha3_256::digest(&[sector.as_bytes()]));
            out.extend_from_slice(timestamp.as_bytes());
        } else {
            out.extend_from_slice(&canonical_json_of(self)?);
        }
        Ok(out)
    }

    /// The leaf hash: SHA3-256 of [`LogEvent::leaf_preimage`].
    ///
    /// # Errors
    /// As [`LogEvent::leaf_preimage`].
    pub fn leaf_hash(&self) -> Result<Hash, Error> {
        Ok(Sha3_256::digest(&[&self.leaf_preimage()?]))
    }

    /// The event's timestamp, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    #[must_use]
    pub fn timestamp(&self) -> &str {
        match self {
            LogEvent::Transfer { timestamp, .. }
            | LogEvent::DeviceRegistered { timestamp, .. }
            | LogEvent::DidRegistered { timestamp, .. }
            | LogEvent::Delivery { timestamp, .. }
            | LogEvent::AdminAction { timestamp, .. }
            | LogEvent::LicenseEvent { timestamp, .. } => timestamp,
        }
    }

    /// Replaces the timestamp: the log stamps every event with the time of its batch.
    pub fn set_timestamp(&mut self, new: String) {
        match self {
            LogEvent::Transfer { timestamp, .. }
            | LogEvent::DeviceRegistered { timestamp, .. }
            | LogEvent::DidRegistered { timestamp, .. }
            | LogEvent::Delivery { timestamp, .. }
            | LogEvent::AdminAction { timestamp, .. }
            | LogEvent::LicenseEvent { timestamp, .. } => *timestamp = new,
        }
    }

    /// Checks the event before it is appended: every string at most [`MAX_FIELD_LEN`] bytes,
    /// identifiers (`sector`, `device_id`, `did`, `action`) non-empty, `blob_hash` 64 lowercase
    /// hex, and the timestamp in the strict format.
    ///
    /// # Errors
    /// [`Error::FieldTooLong`], [`Error::InvalidField`], [`Error::Timestamp`].
    pub fn validate(&self) -> Result<(), Error> {
        for (name, value) in self.string_fields() {
            if value.len() > MAX_FIELD_LEN {
                return Err(Error::FieldTooLong { field: name, len: value.len() });
            }
            let required = matches!(name, "sector" | "device_id" | "did" | "action");
            if required && value.is_empty() {
                return Err(Error::InvalidField { field: name, reason: "must not be empty" });
            }
            if name == "blob_hash" && !is_lower_hex_64(value) {
                return Err(Error::InvalidField { field: name, reason: "must be 64 lowercase hex characters" });
            }
        }
        parse_iso8601_ms(self.timestamp())?;
        Ok(())
    }

    /// Every string field with its JSON name (an absent `dsa_pub` is skipped).
    fn string_fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            LogEvent::Transfer { blob_hash, sector, timestamp } => {
                vec![("blob_hash", blob_hash.as_str()), ("sector", sector.as_str()), ("timestamp", timestamp.as_str())]
            }
            LogEvent::DeviceRegistered { device_id, ecdh_pub, kyber_pub, dsa_pub, sector, timestamp } => vec![
                ("device_id", device_id.as_str()),
                ("ecdh_pub", ecdh_pub.as_str()),
                ("kyber_pub", kyber_pub.as_str()),
                ("dsa_pub", dsa_pub.as_deref().unwrap_or_default()),
                ("sector", sector.as_str()),
                ("timestamp", timestamp.as_str()),
            ],
            LogEvent::DidRegistered { did, device_id, ecdh_pub, dsa_pub, sector, timestamp } => {
                let mut fields = vec![
                    ("did", did.as_str()),
                    ("device_id", device_id.as_str()),
                    ("ecdh_pub", ecdh_pub.as_str()),
                    ("sector", sector.as_str()),
                    ("timestamp", timestamp.as_str()),
                ];
                fields.extend(dsa_pub.as_deref().map(|d| ("dsa_pub", d)));
                fields
            }
            LogEvent::Delivery { blob_hash, sector, timestamp, .. } => {
                vec![("blob_hash", blob_hash.as_str()), ("sector", sector.as_str()), ("timestamp", timestamp.as_str())]
            }
            LogEvent::AdminAction { action, actor, subject, detail, timestamp } => vec![
                ("action", action.as_str()),
                ("actor", actor.as_str()),
                ("subject", subject.as_str()),
                ("detail", detail.as_str()),
                ("timestamp", timestamp.as_str()),
            ],
            LogEvent::LicenseEvent { action, role, detail, timestamp } => {
                vec![
                    ("action", action.as_str()),
                    ("role", role.as_str()),
                    ("detail", detail.as_str()),
                    ("timestamp", timestamp.as_str()),
                ]
            }
        }
    }
}

fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
