//! The relay's redb file behind [`RelayDb`]: API keys, devices, DIDs, webhooks, the relay
//! registry and trial request limits. Payloads never come here (they live in RAM only, see
//! `blobs`). Handlers call its methods; no table is opened anywhere else.
//!
//! Durability: every method that writes runs one durable transaction (`Durability::Immediate`)
//! and returns only after it committed, so a client is answered after its change is on disk; a
//! crash before the commit leaves the previous state. Multi-record changes (a DID and its
//! device) are one transaction.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{DeviceId, WebhookTarget};
use crate::keys::{KeyHash, KeyRecord};

/// `sha256(api key) -> KeyRecord JSON`.
const KEYS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("keys");
/// `(sha256(api key), device_id) -> DeviceRecord JSON`.
const DEVICES: TableDefinition<([u8; 32], &str), &[u8]> = TableDefinition::new("devices");
/// `(sha256(api key), sha256(ML-DSA public key)) -> device_id`: which device of a key signs
/// with a key (an entry may be stale after a rotation; readers compare the device's key).
const DEVICE_SIGNERS: TableDefinition<([u8; 32], [u8; 32]), &str> = TableDefinition::new("device_signers");
/// `did -> DidRecord JSON`.
const DIDS: TableDefinition<&str, &[u8]> = TableDefinition::new("dids");
/// `(sha256(api key), did) -> ()`: which key registered which DID (listing and the 500 cap).
const DIDS_BY_KEY: TableDefinition<([u8; 32], &str), ()> = TableDefinition::new("dids_by_key");
/// `(sha256(api key), device_id) -> WebhookRecord JSON list`.
const WEBHOOKS: TableDefinition<([u8; 32], &str), &[u8]> = TableDefinition::new("webhooks");
/// `relay url -> RelayRecord JSON` (the `/v2/relays` registry).
const RELAYS: TableDefinition<&str, &[u8]> = TableDefinition::new("relays");
/// `"ip:<addr>" | "email:<sha256>" -> JSON list of request times (ms)` for trial limits.
const TRIAL_LIMITS: TableDefinition<&str, &[u8]> = TableDefinition::new("trial_limits");

/// Storage failure: always the operator's problem, never the client's (a 500 `internal`).
pub use jsonapi::StorageError as DbError;

/// A registered device, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The device.
    pub device_id: DeviceId,
    /// Its ECDH key (or the SDK's 32-byte identity anchor), as sent (hex or base64).
    pub ecdh_pub: String,
    /// Its ML-KEM-768 key, as sent; empty when none was registered.
    #[serde(default)]
    pub kyber_pub: String,
    /// Its ML-DSA-65 key, as sent.
    #[serde(default)]
    pub dsa_pub: Option<String>,
    /// When these keys were registered (ISO-8601 ms).
    pub registered_at: String,
    /// The log leaf of the registration.
    pub ct_index: u64,
}

/// A DID as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DidRecord {
    /// `did:paramant:…`.
    pub did: String,
    /// The device it names.
    pub device_id: DeviceId,
    /// Hex SHA-256 of the registering API key; empty for a receiver session (`inv_…`).
    pub owner: String,
    /// When it was registered (ISO-8601 ms).
    pub created: String,
    /// The log leaf of the registration.
    pub ct_index: u64,
    /// The W3C DID document served by `/v2/did/{did}`.
    pub document: Value,
}

/// A webhook registration, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hook {
    /// The URL as registered.
    pub url: String,
    /// Where it is delivered.
    pub target: WebhookTarget,
    /// HMAC key of `X-Paramant-Sig`.
    pub secret: String,
}

/// A relay registry entry, as stored and listed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RelayRecord {
    /// Its base URL.
    pub url: String,
    /// Its sector.
    pub sector: String,
    /// Its software version.
    pub version: String,
    /// Its edition.
    pub edition: String,
    /// SHA3-256 of the ML-DSA-65 key that signed its registration (its log's key).
    pub pk_hash: String,
    /// First registration with this key.
    pub verified_since: String,
    /// Newest registration.
    pub last_seen: String,
    /// The log leaf of its newest changed registration.
    pub ct_index: u64,
    /// When this entry last changed (and so appended to the log), Unix ms; not shown in listings.
    #[serde(default)]
    pub changed_ms: u64,
}

/// A limit that refused a write (nothing was written).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The device already has this many webhooks.
    TooManyHooks(usize),
    /// The address asked for too many trial keys in its window.
    TrialsPerAddress,
    /// The email address asked for too many trial keys in its window.
    TrialsPerEmail,
}

/// Trial request limits: at most `per_ip` requests per `ip_window_ms` from one address and
/// `per_email` per `email_window_ms` for one email address.
pub struct TrialLimits {
    /// Requests per address per window.
    pub per_ip: usize,
    /// The address window.
    pub ip_window_ms: u64,
    /// Requests per email per window.
    pub per_email: usize,
    /// The email window.
    pub email_window_ms: u64,
}

/// The relay database.
pub struct RelayDb {
    db: Database,
}

/// Active keys in the table (each is a user: an account's key or a key without an account).
fn count_active(table: &impl ReadableTable<KeyHash, &'static [u8]>) -> Result<u64, DbError> {
    let mut users = 0;
    for row in table.iter()? {
        let record: KeyRecord = decode(row?.1.value())?;
        users += u64::from(record.active);
    }
    Ok(users)
}

fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, DbError> {
    Ok(serde_json::from_slice(raw)?)
}

/// Every `(key, _)` entry of a table keyed by `(key, str)`.
fn key_range(key: KeyHash) -> std::ops::RangeInclusive<([u8; 32], &'static str)> {
    (key, "")..=(key, "\u{10FFFF}")
}

impl RelayDb {
    /// Opens (or creates) the file and every table.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(KEYS)?;
            txn.open_table(DEVICES)?;
            txn.open_table(DEVICE_SIGNERS)?;
            txn.open_table(DIDS)?;
            txn.open_table(DIDS_BY_KEY)?;
            txn.open_table(WEBHOOKS)?;
            txn.open_table(RELAYS)?;
            txn.open_table(TRIAL_LIMITS)?;
            index_signers(&txn)?;
        }
        txn.commit()?;
        Ok(Self { db })
    }

    /// Runs `f` in one durable write transaction; commits only if `f` returns Ok.
    fn write<T, E: From<DbError>>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T, E>) -> Result<T, E> {
        jsonapi::write_durably(&self.db, f)
    }

    // ------------------------------------------------------------ keys

    /// The record of a key hash.
    pub fn key(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(KEYS)?;
        table.get(hash)?.map(|raw| decode(raw.value())).transpose()
    }

    /// Stores a new key record.
    ///
    /// `admit` sees the number of active keys counted in the same write transaction, so two
    /// concurrent creations cannot both take the last place under a user cap.
    /// Returns `false`, changing nothing, when a key with this hash exists.
    pub fn insert_key<E: From<DbError>>(
        &self,
        record: &KeyRecord,
        admit: impl FnOnce(u64) -> Result<(), E>,
    ) -> Result<bool, E> {
        let json = serde_json::to_vec(record).map_err(DbError::from)?;
        self.write(|txn| {
            let mut table = txn.open_table(KEYS).map_err(DbError::from)?;
            if table.get(&record.key_hash).map_err(DbError::from)?.is_some() {
                return Ok(false);
            }
            admit(count_active(&table)?)?;
            table.insert(&record.key_hash, json.as_slice()).map_err(DbError::from)?;
            Ok(true)
        })
    }

    /// Changes a key record in place; `None` when there is no such key.
    ///
    /// A change that re-activates a key adds a user: `admit` then sees the number of active keys
    /// counted in the same write transaction.
    pub fn update_key<E: From<DbError>>(
        &self,
        hash: &KeyHash,
        change: impl FnOnce(&mut KeyRecord),
        admit: impl FnOnce(u64) -> Result<(), E>,
    ) -> Result<Option<KeyRecord>, E> {
        self.write(|txn| {
            let mut table = txn.open_table(KEYS).map_err(DbError::from)?;
            let existing = table.get(hash).map_err(DbError::from)?.map(|v| v.value().to_vec());
            let Some(raw) = existing else { return Ok(None) };
            let mut record: KeyRecord = decode(&raw)?;
            let was_active = record.active;
            change(&mut record);
            if record.active && !was_active {
                admit(count_active(&table)?)?;
            }
            table
                .insert(hash, serde_json::to_vec(&record).map_err(DbError::from)?.as_slice())
                .map_err(DbError::from)?;
            Ok(Some(record))
        })
    }

    /// Users: the active keys.
    pub fn active_users(&self) -> Result<u64, DbError> {
        let txn = self.db.begin_read()?;
        count_active(&txn.open_table(KEYS)?)
    }

    /// Every key record (hashes only).
    pub fn keys(&self) -> Result<Vec<KeyRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(KEYS)?;
        table.iter()?.map(|row| decode(row?.1.value())).collect()
    }

    // ------------------------------------------------------------ devices

    /// A device of a key.
    pub fn device(&self, key: &KeyHash, device: &DeviceId) -> Result<Option<DeviceRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DEVICES)?;
        table.get((*key, device.as_str()))?.map(|raw| decode(raw.value())).transpose()
    }

    /// How many devices a key has.
    pub fn device_count(&self, key: &KeyHash) -> Result<usize, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DEVICES)?;
        Ok(table.range(key_range(*key))?.count())
    }

    /// Stores a device's keys; `signer` is SHA-256 of its ML-DSA public key bytes, if any.
    pub fn put_device(&self, key: &KeyHash, record: &DeviceRecord, signer: Option<&[u8; 32]>) -> Result<(), DbError> {
        self.write(|txn| put_device_in(txn, key, record, signer))
    }

    /// The device of `key` whose ML-DSA key hashes to `signer` (the caller compares the
    /// device's current key: an entry may be stale after a rotation).
    pub fn device_signing_with(&self, key: &KeyHash, signer: &[u8; 32]) -> Result<Option<DeviceRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let index = txn.open_table(DEVICE_SIGNERS)?;
        let Some(device) = index.get((*key, *signer))? else { return Ok(None) };
        let devices = txn.open_table(DEVICES)?;
        let record = devices.get((*key, device.value()))?;
        record.map(|raw| decode(raw.value())).transpose()
    }

    // ------------------------------------------------------------ DIDs

    /// A DID's record.
    pub fn did(&self, did: &str) -> Result<Option<DidRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DIDS)?;
        table.get(did)?.map(|raw| decode(raw.value())).transpose()
    }

    /// How many DIDs a key registered.
    pub fn did_count(&self, key: &KeyHash) -> Result<u64, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(DIDS_BY_KEY)?;
        Ok(table.range(key_range(*key))?.count() as u64)
    }

    /// The DIDs a key registered.
    pub fn dids_of(&self, key: &KeyHash) -> Result<Vec<DidRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let by_key = txn.open_table(DIDS_BY_KEY)?;
        let dids = txn.open_table(DIDS)?;
        let mut out = Vec::new();
        for row in by_key.range(key_range(*key))? {
            let (k, _) = row?;
            if let Some(raw) = dids.get(k.value().1)? {
                out.push(decode(raw.value())?);
            }
        }
        Ok(out)
    }

    /// Stores a DID, owned by `owner` (None: a receiver session), and with it, in the same
    /// transaction, a newly registered device (`device`: its record and signer hash).
    pub fn put_did(
        &self,
        owner: Option<&KeyHash>,
        record: &DidRecord,
        device: Option<(&DeviceRecord, Option<&[u8; 32]>)>,
    ) -> Result<(), DbError> {
        let json = serde_json::to_vec(record)?;
        self.write(|txn| {
            txn.open_table(DIDS)?.insert(record.did.as_str(), json.as_slice())?;
            if let Some(owner) = owner {
                txn.open_table(DIDS_BY_KEY)?.insert((*owner, record.did.as_str()), ())?;
                if let Some((device, signer)) = device {
                    put_device_in(txn, owner, device, signer)?;
                }
            }
            Ok(())
        })
    }

    // ------------------------------------------------------------ webhooks

    /// The webhooks of a device.
    pub fn hooks(&self, key: &KeyHash, device: &DeviceId) -> Result<Vec<Hook>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(WEBHOOKS)?;
        match table.get((*key, device.as_str()))? {
            Some(raw) => decode(raw.value()),
            None => Ok(Vec::new()),
        }
    }

    /// Adds (or replaces, by URL) a webhook of a device, at most `max` per device.
    pub fn add_hook(
        &self,
        key: &KeyHash,
        device: &DeviceId,
        hook: Hook,
        max: usize,
    ) -> Result<Result<(), Refused>, DbError> {
        self.write(|txn| {
            let mut table = txn.open_table(WEBHOOKS)?;
            let mut hooks: Vec<Hook> = match table.get((*key, device.as_str()))? {
                Some(raw) => decode(raw.value())?,
                None => Vec::new(),
            };
            hooks.retain(|h| h.url != hook.url);
            if hooks.len() >= max {
                return Ok(Err(Refused::TooManyHooks(max)));
            }
            hooks.push(hook);
            table.insert((*key, device.as_str()), serde_json::to_vec(&hooks)?.as_slice())?;
            Ok(Ok(()))
        })
    }

    // ------------------------------------------------------------ relay registry

    /// A registry entry by URL.
    pub fn relay(&self, url: &str) -> Result<Option<RelayRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RELAYS)?;
        table.get(url)?.map(|raw| decode(raw.value())).transpose()
    }

    /// Stores a registry entry.
    pub fn put_relay(&self, record: &RelayRecord) -> Result<(), DbError> {
        let json = serde_json::to_vec(record)?;
        self.write(|txn| {
            txn.open_table(RELAYS)?.insert(record.url.as_str(), json.as_slice())?;
            Ok(())
        })
    }

    /// Every registry entry, in URL order.
    pub fn relays(&self) -> Result<Vec<RelayRecord>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(RELAYS)?;
        table.iter()?.map(|row| decode(row?.1.value())).collect()
    }

    // ------------------------------------------------------------ trial limits

    /// Counts a trial request of `ip_key` and `email_key` at `now`, unless either is over its
    /// limit (then nothing is written).
    pub fn count_trial(
        &self,
        ip_key: &str,
        email_key: &str,
        now: u64,
        limits: &TrialLimits,
    ) -> Result<Result<(), Refused>, DbError> {
        self.write(|txn| {
            let mut table = txn.open_table(TRIAL_LIMITS)?;
            let times = |table: &redb::Table<&str, &[u8]>, key: &str, window: u64| -> Result<Vec<u64>, DbError> {
                let list: Vec<u64> = match table.get(key)? {
                    Some(raw) => decode(raw.value())?,
                    None => Vec::new(),
                };
                Ok(list.into_iter().filter(|t| now.saturating_sub(*t) < window).collect())
            };
            let mut by_ip = times(&table, ip_key, limits.ip_window_ms)?;
            let mut by_email = times(&table, email_key, limits.email_window_ms)?;
            if by_ip.len() >= limits.per_ip {
                return Ok(Err(Refused::TrialsPerAddress));
            }
            if by_email.len() >= limits.per_email {
                return Ok(Err(Refused::TrialsPerEmail));
            }
            by_ip.push(now);
            by_email.push(now);
            table.insert(ip_key, serde_json::to_vec(&by_ip)?.as_slice())?;
            table.insert(email_key, serde_json::to_vec(&by_email)?.as_slice())?;
            Ok(Ok(()))
        })
    }
}

/// Fills the signing-key index from the devices when it is empty (a database from before the
/// index existed), so devices registered then are recognised as senders too.
fn index_signers(txn: &WriteTransaction) -> Result<(), DbError> {
    let mut index = txn.open_table(DEVICE_SIGNERS)?;
    if !index.is_empty()? {
        return Ok(());
    }
    let devices = txn.open_table(DEVICES)?;
    for row in devices.iter()? {
        let (key, raw) = row?;
        let (owner, _) = key.value();
        let record: DeviceRecord = decode(raw.value())?;
        let signer = record.dsa_pub.as_deref().and_then(crate::ids::decode_public_key);
        if let Some(dsa) = signer {
            index.insert((owner, crate::ids::signer_id(&dsa)), record.device_id.as_str())?;
        }
    }
    Ok(())
}

fn put_device_in(
    txn: &WriteTransaction,
    key: &KeyHash,
    record: &DeviceRecord,
    signer: Option<&[u8; 32]>,
) -> Result<(), DbError> {
    let json = serde_json::to_vec(record)?;
    txn.open_table(DEVICES)?.insert((*key, record.device_id.as_str()), json.as_slice())?;
    if let Some(signer) = signer {
        txn.open_table(DEVICE_SIGNERS)?.insert((*key, *signer), record.device_id.as_str())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_stored_before_the_signer_index_are_indexed_when_the_file_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.redb");
        let dsa = vec![7u8; 1952];
        let record = DeviceRecord {
            device_id: DeviceId::parse("old-device").unwrap(),
            ecdh_pub: hex::encode([1u8; 32]),
            kyber_pub: String::new(),
            dsa_pub: Some(hex::encode(&dsa)),
            registered_at: "2026-01-01T00:00:00.000Z".into(),
            ct_index: 0,
        };
        let signer = crate::ids::signer_id(&dsa);
        {
            let db = RelayDb::open(&path).unwrap();
            // As a relay without the index stored it: no index entry.
            db.put_device(&[1; 32], &record, None).unwrap();
            assert_eq!(db.device_signing_with(&[1; 32], &signer).unwrap(), None);
        }
        let db = RelayDb::open(&path).unwrap();
        assert_eq!(db.device_signing_with(&[1; 32], &signer).unwrap(), Some(record));
        assert_eq!(db.device_signing_with(&[2; 32], &signer).unwrap(), None, "per API key");
    }
}
