//! Checks anyone can run against a log without trusting its operator: the STH's ML-DSA-65
//! signature against a key pinned on first use, consistency between successive heads
//! (RFC 9162 proofs, checked with `tlog`), receipts (signature, audit path, and the root tied
//! to a signed head), peers' mirrored heads, and the RSS feed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crypto::LogVerifyingKey;
use serde::Serialize;
use serde_json::{Value, json};
use wire::{Receipt, SignedSth, SthBody};

use crate::relay::Relay;
use crate::store::Store;
use crate::{Error, store};

/// How a log key compared with the pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pin {
    /// No key was pinned for this log; this one is now.
    FirstUse,
    /// The key is the pinned key.
    Matched,
    /// `--pubkey-hash` named this key, so it replaced a different pinned key.
    Replaced,
}

/// Fetches `/v2/pubkey` and checks its `pk_hash` is the SHA3-256 of the key.
///
/// # Errors
/// Transport errors; [`Error::Invalid`] when the key does not decode or its hash is wrong.
pub fn fetch_key(relay: &Relay) -> Result<LogVerifyingKey, Error> {
    let doc = relay.get_json("/v2/pubkey", false)?;
    let b64 = doc
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Invalid("/v2/pubkey has no public_key".into()))?;
    key_from_b64(b64, doc.get("pk_hash").and_then(Value::as_str))
}

fn key_from_b64(b64: &str, claimed_hash: Option<&str>) -> Result<LogVerifyingKey, Error> {
    let bytes = wire::parse_b64(b64).map_err(|e| Error::Invalid(format!("public key: {e}")))?;
    let key = LogVerifyingKey::from_bytes(&bytes).map_err(|e| Error::Invalid(format!("public key: {e}")))?;
    if let Some(claimed) = claimed_hash
        && !claimed.eq_ignore_ascii_case(&hex::encode(key.pk_hash()))
    {
        return Err(Error::Invalid(format!("pk_hash {claimed} is not the SHA3-256 of the key served with it")));
    }
    Ok(key)
}

/// Fetches the newest STH (`/v2/sth`), unverified.
///
/// # Errors
/// Transport errors, or an answer without an STH.
pub fn fetch_sth(relay: &Relay) -> Result<SignedSth, Error> {
    let doc = relay.get_json("/v2/sth", false)?;
    parse_sth(doc.get("sth").unwrap_or(&Value::Null))
}

fn parse_sth(v: &Value) -> Result<SignedSth, Error> {
    serde_json::from_value(v.clone()).map_err(|e| Error::Invalid(format!("not a signed tree head: {e}")))
}

/// Verifies a signed head with `key` (signature over the canonical body, `pk_hash`, version).
///
/// # Errors
/// [`Error::Invalid`] naming the failure.
pub fn verify_sth(sth: &SignedSth, key: &LogVerifyingKey) -> Result<(), Error> {
    sth.verify(key).map_err(|e| Error::Invalid(format!("STH of tree size {}: {e}", sth.body.tree_size)))
}

/// The pins file: per log, the pinned key hash and the newest verified head.
pub struct Pins {
    store: Store,
    doc: serde_json::Map<String, Value>,
}

const PINS: &str = "pins.json";

impl Pins {
    /// Loads `pins.json` from the store.
    ///
    /// # Errors
    /// It exists but cannot be read.
    pub fn load(store: &Store) -> Result<Self, Error> {
        let doc = match store.read_json(PINS)? {
            Some(Value::Object(map)) => map,
            Some(_) => return Err(Error::Io(format!("{}: not a JSON object", store.root().join(PINS).display()))),
            None => serde_json::Map::new(),
        };
        Ok(Self { store: store.clone(), doc })
    }

    /// Writes it back.
    ///
    /// # Errors
    /// It cannot be written.
    pub fn save(&self) -> Result<(), Error> {
        self.store.write_json(PINS, &Value::Object(self.doc.clone()))?;
        Ok(())
    }

    /// The pinned key hash of `log`, if any.
    #[must_use]
    pub fn pinned(&self, log: &str) -> Option<String> {
        self.doc.get(log)?.get("pk_hash")?.as_str().map(str::to_owned)
    }

    /// Compares `key` with the pin of `log` (`expected` from `--pubkey-hash` overrides the pin)
    /// and pins it when this is the first use or `expected` names it.
    ///
    /// # Errors
    /// [`Error::KeyChanged`] when the key is neither the pinned key nor `expected`.
    pub fn check(&mut self, log: &str, key: &LogVerifyingKey, expected: Option<&str>) -> Result<Pin, Error> {
        let actual = hex::encode(key.pk_hash());
        let pinned = self.pinned(log);
        let outcome = match (expected, pinned.as_deref()) {
            (Some(want), _) if !want.trim().eq_ignore_ascii_case(&actual) => {
                return Err(Error::KeyChanged(format!(
                    "{log} serves key {actual}, --pubkey-hash says {}",
                    want.trim()
                )));
            }
            (_, Some(p)) if p == actual => Pin::Matched,
            (Some(_), Some(_)) => Pin::Replaced,
            (None, Some(p)) => {
                return Err(Error::KeyChanged(format!(
                    "{log} now serves key {actual}, but {p} was pinned on first use; if the operator rotated \
                     the key, confirm the new hash out of band and pass --pubkey-hash {actual}"
                )));
            }
            (_, None) => Pin::FirstUse,
        };
        let entry = self.doc.entry(log.to_owned()).or_insert_with(|| json!({}));
        if outcome != Pin::Matched {
            entry["pk_hash"] = json!(actual);
            entry["pinned_at"] = json!(wire::iso8601_ms(now_ms()));
            if let Some(map) = entry.as_object_mut() {
                map.remove("last_sth");
            }
        }
        Ok(outcome)
    }

    /// The newest head verified for `log`.
    #[must_use]
    pub fn last_sth(&self, log: &str) -> Option<SignedSth> {
        serde_json::from_value(self.doc.get(log)?.get("last_sth")?.clone()).ok()
    }

    /// Records `sth` as the newest verified head of `log`.
    pub fn set_last_sth(&mut self, log: &str, sth: &SignedSth) {
        let entry = self.doc.entry(log.to_owned()).or_insert_with(|| json!({}));
        entry["last_sth"] = serde_json::to_value(sth).unwrap_or(Value::Null);
    }
}

/// How a newer head relates to an older one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Same size and the same root.
    Same,
    /// The older tree was empty.
    FromEmpty,
    /// The log's consistency proof from the older to the newer size verified.
    Verified,
}

/// Checks that `new` extends `old`: never smaller, the same root at the same size, and a valid
/// consistency proof from `log` otherwise.
///
/// # Errors
/// [`Error::Fork`] for a shrink, two roots for one size, or a proof that does not verify;
/// transport errors when the proof cannot be fetched.
pub fn check_consistency(log: &Relay, old: &SthBody, new: &SthBody) -> Result<Consistency, Error> {
    let root = |b: &SthBody| b.root().map_err(|e| Error::Invalid(format!("sha3_root: {e}")));
    let (old_root, new_root) = (root(old)?, root(new)?);
    if new.tree_size < old.tree_size {
        return Err(Error::Fork(format!(
            "the log signed tree size {} after already signing {} (a tree never shrinks)",
            new.tree_size, old.tree_size
        )));
    }
    if new.tree_size == old.tree_size {
        return if new_root == old_root {
            Ok(Consistency::Same)
        } else {
            Err(Error::Fork(format!(
                "two different roots signed for tree size {}: {} and {}",
                new.tree_size, old.sha3_root, new.sha3_root
            )))
        };
    }
    if old.tree_size == 0 {
        return Ok(Consistency::FromEmpty);
    }
    let proof = consistency_proof(log, old.tree_size, new.tree_size)?;
    tlog::verify_consistency::<tlog::Sha3_256>(old.tree_size, new.tree_size, &proof, &old_root, &new_root).map_err(
        |e| {
            Error::Fork(format!(
                "tree {} ({}) is not a prefix of tree {} ({}): {e}",
                old.tree_size, old.sha3_root, new.tree_size, new.sha3_root
            ))
        },
    )?;
    Ok(Consistency::Verified)
}

fn consistency_proof(log: &Relay, from: u64, to: u64) -> Result<Vec<tlog::Hash>, Error> {
    let doc = log.get_json(&format!("/v2/sth/consistency?from={from}&to={to}"), false)?;
    let nodes = doc
        .get("proof")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Invalid("consistency answer has no proof".into()))?;
    nodes
        .iter()
        .map(|n| {
            n.as_str()
                .ok_or_else(|| Error::Invalid("proof node is not a string".into()))
                .and_then(|s| wire::parse_hash_hex(s).map_err(|e| Error::Invalid(format!("proof node: {e}"))))
        })
        .collect()
}

/// What `verify-sth` found.
#[derive(Debug, Serialize)]
pub struct SthReport {
    /// The log's origin.
    pub relay: String,
    /// The verified head.
    pub sth: SignedSth,
    /// The key's SHA3-256, hex.
    pub pk_hash: String,
    /// How the key compared with the pin.
    pub pin: Pin,
    /// The previously verified head's size, when there was one.
    pub previous_tree_size: Option<u64>,
    /// How this head relates to the previously verified one.
    pub consistency: Option<Consistency>,
}

/// `verify-sth`: fetch key and head, check the pin, the signature, and consistency with the
/// head verified last time; then remember this head.
///
/// # Errors
/// As [`Pins::check`], [`verify_sth`] and [`check_consistency`].
pub fn verify_sth_of(relay: &Relay, store: &Store, expected_pk_hash: Option<&str>) -> Result<SthReport, Error> {
    let mut pins = Pins::load(store)?;
    let key = fetch_key(relay)?;
    let pin = pins.check(relay.base(), &key, expected_pk_hash)?;
    let sth = fetch_sth(relay)?;
    verify_sth(&sth, &key)?;
    let previous = pins.last_sth(relay.base()).filter(|p| verify_sth(p, &key).is_ok());
    let consistency = previous.as_ref().map(|p| check_consistency(relay, &p.body, &sth.body)).transpose()?;
    pins.set_last_sth(relay.base(), &sth);
    pins.save()?;
    Ok(SthReport {
        relay: relay.base().to_owned(),
        pk_hash: hex::encode(key.pk_hash()),
        pin,
        previous_tree_size: previous.map(|p| p.body.tree_size),
        consistency,
        sth,
    })
}

/// What [`verify_upload_proof`] found.
#[derive(Debug, Serialize)]
pub struct UploadProof {
    /// Always true when returned.
    pub verified: bool,
    /// The upload's leaf.
    pub leaf_index: u64,
    /// The leaf hash.
    pub leaf_hash: String,
    /// The signed tree the leaf is in.
    pub tree_size: u64,
    /// The log key's SHA3-256.
    pub pk_hash: String,
    /// How the key compared with the pin.
    pub pin: Pin,
}

/// Checks the `merkle_proof` an upload returned: the audit path leads from the leaf to the
/// root, and that root and size are those of the enclosed STH, whose signature verifies with
/// the log's (pinned) key.
///
/// # Errors
/// [`Error::Invalid`] for a bad path, root or signature; pin and transport errors.
pub fn verify_upload_proof(relay: &Relay, store: &Store, merkle_proof: &Value) -> Result<UploadProof, Error> {
    let field = |name: &str| merkle_proof.get(name).cloned().unwrap_or(Value::Null);
    let proof: wire::InclusionProof = serde_json::from_value(json!({
        "leaf_hash": field("leaf_hash"),
        "leaf_index": field("leaf_index"),
        "tree_size": field("tree_size"),
        "audit_path": field("audit_path"),
        "root": field("root"),
    }))
    .map_err(|e| Error::Invalid(format!("merkle_proof: {e}")))?;
    proof.verify().map_err(|e| Error::Invalid(format!("merkle_proof audit path: {e}")))?;
    let sth = parse_sth(&field("sth"))?;
    if sth.body.tree_size != proof.tree_size || !sth.body.sha3_root.eq_ignore_ascii_case(&proof.root) {
        return Err(Error::Invalid("merkle_proof: the root is not the root of the enclosed signed head".into()));
    }
    let mut pins = Pins::load(store)?;
    let key = fetch_key(relay)?;
    let pin = pins.check(relay.base(), &key, None)?;
    pins.save()?;
    verify_sth(&sth, &key)?;
    Ok(UploadProof {
        verified: true,
        leaf_index: proof.leaf_index,
        leaf_hash: proof.leaf_hash,
        tree_size: proof.tree_size,
        pk_hash: hex::encode(key.pk_hash()),
        pin,
    })
}

/// Parses a receipt from a file's contents, a JSON text, or base64url (the header form).
///
/// # Errors
/// [`Error::Invalid`] when it is none of these.
pub fn parse_receipt(text: &str) -> Result<Receipt, Error> {
    let text = text.trim();
    if text.starts_with('{') {
        return serde_json::from_str(text).map_err(|e| Error::Invalid(format!("receipt JSON: {e}")));
    }
    Receipt::from_header(text).map_err(|e| Error::Invalid(format!("receipt (base64url JSON expected): {e}")))
}

/// What a receipt check found.
#[derive(Debug, Serialize)]
pub struct ReceiptReport {
    /// Always true when returned (failures are errors).
    pub valid: bool,
    /// True when checked from a bundle alone, without asking the log anything.
    pub offline: bool,
    /// The blob.
    pub blob_hash: String,
    /// Whether the relay says it burned the blob.
    pub burn_confirmed: bool,
    /// The tree size of the inclusion proof.
    pub tree_size: u64,
    /// The receipt's root.
    pub root: String,
    /// The key's SHA3-256.
    pub pk_hash: String,
    /// How the log key compared with the pin.
    pub pin: Pin,
    /// The signed head the root was tied to.
    pub signed_head_size: u64,
    /// How: "equal" (the signed head has the receipt's size and root) or "consistency" (a
    /// verified consistency proof shows the signed head's tree extends the receipt's tree).
    pub tied_by: &'static str,
}

/// The format tag of a [`ReceiptBundle`].
pub const BUNDLE_FORMAT: &str = "paramant-receipt-bundle-v1";

/// A receipt with everything needed to check it offline: the log's key, a signed head at least
/// as large as the receipt's tree, and the consistency proof from the receipt's tree to it.
/// `receive` keeps one; `receipt --hash H --save FILE` writes it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The log's origin (the key is pinned under it).
    pub log: String,
    /// The log's ML-DSA-65 public key, standard base64.
    pub log_public_key: String,
    /// Its SHA3-256, hex: compare it with the log's published key hash.
    pub log_pk_hash: String,
    /// The receipt, as the relay signed it.
    pub receipt: Receipt,
    /// A signed head whose tree contains the receipt's tree.
    pub sth: SignedSth,
    /// The consistency proof from the receipt's tree size to the head's (empty when equal).
    pub consistency: Vec<String>,
}

/// A receipt to check: a bundle (offline) or a bare receipt (the log supplies the rest).
pub enum ReceiptInput {
    /// Checkable without the network.
    Bundle(Box<ReceiptBundle>),
    /// Needs the log's key and a signed head.
    Bare(Box<Receipt>),
}

impl ReceiptInput {
    /// The receipt itself.
    #[must_use]
    pub fn receipt(&self) -> &Receipt {
        match self {
            ReceiptInput::Bundle(b) => &b.receipt,
            ReceiptInput::Bare(r) => r,
        }
    }
}

/// Parses a bundle (JSON with a `format` field) or a bare receipt (JSON or base64url).
///
/// # Errors
/// [`Error::Invalid`] when it is none of these.
pub fn parse_receipt_input(text: &str) -> Result<ReceiptInput, Error> {
    let text = text.trim();
    if text.starts_with('{') && text.contains(BUNDLE_FORMAT) {
        let bundle: ReceiptBundle =
            serde_json::from_str(text).map_err(|e| Error::Invalid(format!("receipt bundle: {e}")))?;
        return Ok(ReceiptInput::Bundle(Box::new(bundle)));
    }
    parse_receipt(text).map(|r| ReceiptInput::Bare(Box::new(r)))
}

/// The receipt's own checks: the signature with `key`, a well-formed audit path to its root.
fn check_receipt(receipt: &Receipt, key: &LogVerifyingKey) -> Result<(), Error> {
    receipt.verify_signature(key).map_err(|e| Error::Invalid(format!("receipt signature: {e}")))?;
    let proof = &receipt.body.inclusion_proof;
    proof.verify().map_err(|e| Error::Invalid(format!("receipt audit path: {e}")))?;
    if proof.leaf_index >= proof.tree_size {
        return Err(Error::Invalid("leaf index outside the tree".into()));
    }
    Ok(())
}

/// Ties the receipt's root to a signed head (whose signature the caller verified): the same
/// size and root, or a consistency proof from the receipt's tree to the head's.
fn tie_to_head(receipt: &Receipt, head: &SthBody, proof: &[tlog::Hash]) -> Result<&'static str, Error> {
    let inclusion = &receipt.body.inclusion_proof;
    let root = wire::parse_hash_hex(&inclusion.root).map_err(|e| Error::Invalid(format!("receipt root: {e}")))?;
    let head_root = head.root().map_err(|e| Error::Invalid(format!("signed head root: {e}")))?;
    let not_in_history =
        |detail: String| Error::Invalid(format!("the receipt's root is not in the log's signed history: {detail}"));
    if head.tree_size < inclusion.tree_size {
        return Err(not_in_history(format!(
            "the signed head (size {}) is older than the receipt's tree (size {})",
            head.tree_size, inclusion.tree_size
        )));
    }
    if head.tree_size == inclusion.tree_size {
        return if root == head_root {
            Ok("equal")
        } else {
            Err(not_in_history(format!("tree size {} was signed with another root", head.tree_size)))
        };
    }
    tlog::verify_consistency::<tlog::Sha3_256>(inclusion.tree_size, head.tree_size, proof, &root, &head_root)
        .map_err(|e| not_in_history(format!("consistency from {} to {}: {e}", inclusion.tree_size, head.tree_size)))?;
    Ok("consistency")
}

/// Builds the bundle of a receipt just received, checking all of it on the way: the log key
/// against the pin, the receipt, the newest signed head, and the consistency proof.
///
/// # Errors
/// Pin, signature, proof and transport errors.
pub fn bundle_receipt(receipt: &Receipt, log: &Relay, store: &Store) -> Result<ReceiptBundle, Error> {
    let mut pins = Pins::load(store)?;
    let key = fetch_key(log)?;
    pins.check(log.base(), &key, None)?;
    pins.save()?;
    check_receipt(receipt, &key)?;
    let sth = fetch_sth(log)?;
    verify_sth(&sth, &key)?;
    let size = receipt.body.inclusion_proof.tree_size;
    let proof = if sth.body.tree_size > size { consistency_proof(log, size, sth.body.tree_size)? } else { Vec::new() };
    tie_to_head(receipt, &sth.body, &proof)?;
    Ok(ReceiptBundle {
        format: BUNDLE_FORMAT.into(),
        log: log.base().to_owned(),
        log_public_key: wire::b64(key.to_bytes()),
        log_pk_hash: hex::encode(key.pk_hash()),
        receipt: receipt.clone(),
        sth,
        consistency: proof.iter().map(hex::encode).collect(),
    })
}

/// `receipt --verify BUNDLE`, with no network: the bundle's key must be the key pinned for its
/// log in the store, or the one `expected_pk_hash` names; then the receipt's signature and
/// audit path, the signed head's signature, and the receipt's root tied to that head.
///
/// # Errors
/// [`Error::Usage`] when the key is neither pinned nor named; [`Error::KeyChanged`] when it is
/// not the pinned or named key; [`Error::Invalid`] for any failed check.
pub fn verify_bundle(
    bundle: &ReceiptBundle,
    store: &Store,
    expected_pk_hash: Option<&str>,
) -> Result<ReceiptReport, Error> {
    let key = key_from_b64(&bundle.log_public_key, Some(&bundle.log_pk_hash))?;
    let actual = hex::encode(key.pk_hash());
    let pinned = Pins::load(store)?.pinned(&bundle.log);
    let pin = match (expected_pk_hash.map(str::trim), pinned) {
        (Some(want), _) if !want.eq_ignore_ascii_case(&actual) => {
            return Err(Error::KeyChanged(format!("the bundle's log key is {actual}, --pubkey-hash says {want}")));
        }
        (Some(_), _) => Pin::Matched,
        (None, Some(p)) if p == actual => Pin::Matched,
        (None, Some(p)) => {
            return Err(Error::KeyChanged(format!(
                "the bundle's log key is {actual}, but {p} is pinned for {}",
                bundle.log
            )));
        }
        (None, None) => {
            return Err(Error::Usage(format!(
                "no key is pinned for {} here: pass --pubkey-hash with the log's key hash, confirmed out of band \
                 (the bundle names {actual})",
                bundle.log
            )));
        }
    };
    check_receipt(&bundle.receipt, &key)?;
    verify_sth(&bundle.sth, &key)?;
    let proof = bundle
        .consistency
        .iter()
        .map(|h| wire::parse_hash_hex(h).map_err(|e| Error::Invalid(format!("consistency proof node: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let tied_by = tie_to_head(&bundle.receipt, &bundle.sth.body, &proof)?;
    Ok(report_of(&bundle.receipt, actual, pin, bundle.sth.body.tree_size, tied_by, true))
}

fn report_of(
    receipt: &Receipt,
    pk_hash: String,
    pin: Pin,
    signed_head_size: u64,
    tied_by: &'static str,
    offline: bool,
) -> ReceiptReport {
    let proof = &receipt.body.inclusion_proof;
    ReceiptReport {
        valid: true,
        offline,
        blob_hash: receipt.body.blob_hash.clone(),
        burn_confirmed: receipt.body.burn_confirmed,
        tree_size: proof.tree_size,
        root: proof.root.clone(),
        pk_hash,
        pin,
        signed_head_size,
        tied_by,
    }
}

/// `receipt --verify` of a bare receipt (no bundle): the key, the newest signed head and the
/// consistency proof come from the log; every check is still made here.
///
/// # Errors
/// As [`verify_bundle`], plus transport errors.
pub fn verify_receipt_with_log(
    receipt: &Receipt,
    log: &Relay,
    store: &Store,
    expected_pk_hash: Option<&str>,
) -> Result<ReceiptReport, Error> {
    let mut pins = Pins::load(store)?;
    let key = fetch_key(log)?;
    let pin = pins.check(log.base(), &key, expected_pk_hash)?;
    pins.save()?;
    check_receipt(receipt, &key)?;
    let newest = fetch_sth(log)?;
    verify_sth(&newest, &key)?;
    let size = receipt.body.inclusion_proof.tree_size;
    let proof =
        if newest.body.tree_size > size { consistency_proof(log, size, newest.body.tree_size)? } else { Vec::new() };
    let tied_by = tie_to_head(receipt, &newest.body, &proof)?;
    Ok(report_of(receipt, hex::encode(key.pk_hash()), pin, newest.body.tree_size, tied_by, false))
}

/// Where a receipt of blob `hash` is kept after `receive`.
#[must_use]
pub fn receipt_path(hash: &str) -> String {
    format!("receipts/{hash}.json")
}

/// Whether a peer's history was fully checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerStatus {
    /// Every mirrored head's signature and every consistency proof between them verified.
    Valid,
    /// The signatures verified and nothing was found wrong, but the peer's own log could not
    /// be reached for (some) consistency proofs: its history is not checked.
    Unchecked,
}

/// What `verify-peers` found about one peer.
#[derive(Debug, Serialize)]
pub struct PeerReport {
    /// The peer's relay id.
    pub relay_id: String,
    /// Its key hash.
    pub relay_pk_hash: String,
    /// How its key compared with the pin.
    pub pin: Pin,
    /// Valid, or unchecked (its log unreachable).
    pub status: PeerStatus,
    /// Mirrored heads whose signatures verified.
    pub sths_verified: usize,
    /// Successive pairs checked with the peer's consistency proof.
    pub consistency_verified: usize,
    /// Successive pairs of equal size and root.
    pub same: usize,
    /// Successive pairs whose consistency proof could not be fetched from the peer's log.
    pub consistency_unchecked: usize,
    /// Why they could not be fetched (the first failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked_reason: Option<String>,
    /// The origin asked for consistency proofs.
    pub log_url: String,
}

/// `verify-peers`: for every peer the log mirrors, the key pin (per relay id), every mirrored
/// head's signature, and consistency between successive heads — proved by the peer's own
/// log at `peer_urls[relay_id]` (default `https://RELAY_ID`). A peer whose log cannot be reached
/// (or answers an error) is reported [`PeerStatus::Unchecked`], not invalid: every check that
/// needs no proof (signatures, a shrink, two roots for one size) is still made.
///
/// # Errors
/// This log unreachable; the first failure, by precedence: key change, invalid signature, fork.
pub fn verify_peers(
    log: &Relay,
    store: &Store,
    peer_urls: &BTreeMap<String, String>,
) -> Result<Vec<PeerReport>, Error> {
    let mut pins = Pins::load(store)?;
    let doc = log.get_json("/v2/sth/peers", false)?;
    let peers = doc.get("peers").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut reports = Vec::new();
    for peer in &peers {
        let field = |name: &str| peer.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
        let (relay_id, pk_hash) = (field("relay_id"), field("relay_pk_hash"));
        let key = key_from_b64(&field("public_key"), Some(&pk_hash))?;
        let pin = pins.check(&format!("peer:{relay_id}"), &key, None)?;
        let sths = peer_sths(log, &pk_hash)?;
        for sth in &sths {
            verify_sth(sth, &key).map_err(|e| Error::Invalid(format!("peer {relay_id}: {e}")))?;
            if sth.body.relay_id != relay_id {
                return Err(Error::Invalid(format!(
                    "peer {relay_id}: a mirrored head names relay {}",
                    sth.body.relay_id
                )));
            }
        }
        let url = peer_urls
            .get(&relay_id)
            .cloned()
            .unwrap_or_else(|| if relay_id.contains("://") { relay_id.clone() } else { format!("https://{relay_id}") });
        let peer_log = Relay::new(&url, None)?;
        let mut ordered = sths.clone();
        ordered.sort_by_key(|s| (s.body.timestamp, s.body.tree_size));
        let (mut verified, mut same, mut unchecked, mut reason) = (0, 0, 0, None);
        for pair in ordered.windows(2) {
            match check_consistency(&peer_log, &pair[0].body, &pair[1].body) {
                Ok(Consistency::Verified) => verified += 1,
                Ok(Consistency::Same) => same += 1,
                Ok(Consistency::FromEmpty) => {}
                Err(Error::Fork(d)) => return Err(Error::Fork(format!("peer {relay_id}: {d}"))),
                Err(e @ (Error::Transport(_) | Error::Status { .. })) => {
                    unchecked += 1;
                    reason.get_or_insert_with(|| e.to_string());
                }
                Err(other) => return Err(other),
            }
        }
        reports.push(PeerReport {
            relay_id,
            relay_pk_hash: pk_hash,
            pin,
            status: if unchecked == 0 { PeerStatus::Valid } else { PeerStatus::Unchecked },
            sths_verified: sths.len(),
            consistency_verified: verified,
            same,
            consistency_unchecked: unchecked,
            unchecked_reason: reason,
            log_url: url,
        });
    }
    pins.save()?;
    Ok(reports)
}

fn peer_sths(log: &Relay, pk_hash: &str) -> Result<Vec<SignedSth>, Error> {
    let pk_hash = wire::parse_hash_hex(pk_hash).map_err(|e| Error::Invalid(format!("relay_pk_hash: {e}")))?;
    let mut out = Vec::new();
    loop {
        let doc =
            log.get_json(&format!("/v2/sth/peers/{}?limit=100&offset={}", hex::encode(pk_hash), out.len()), false)?;
        let page = doc.get("sths").and_then(Value::as_array).cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        for v in &page {
            out.push(parse_sth(v)?);
        }
        let total = doc.get("total").and_then(Value::as_u64).unwrap_or(0);
        if out.len() as u64 >= total || out.len() >= 100_000 {
            break;
        }
    }
    Ok(out)
}

/// The STHs in an RSS feed (`/ct/feed.xml`): each item's description is a signed head.
///
/// # Errors
/// [`Error::Invalid`] when it is not RSS or an item is not a signed head.
pub fn parse_feed(xml: &str) -> Result<Vec<SignedSth>, Error> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| Error::Invalid(format!("RSS feed: {e}")))?;
    doc.descendants()
        .filter(|n| n.has_tag_name("item"))
        .filter_map(|item| item.children().find(|c| c.has_tag_name("description")))
        .map(|d| {
            let text = d.text().unwrap_or("");
            serde_json::from_str::<Value>(text)
                .map_err(|e| Error::Invalid(format!("RSS item is not JSON: {e}")))
                .and_then(|v| parse_sth(&v))
        })
        .collect()
}

/// One poll of `monitor`.
#[derive(Debug, Serialize)]
pub struct PollReport {
    /// The newest head.
    pub tree_size: u64,
    /// Its root.
    pub sha3_root: String,
    /// Its timestamp.
    pub timestamp: u64,
    /// Heads newly archived in this poll (from `/v2/sth` and the RSS feed).
    pub archived: usize,
    /// How the newest head relates to the previous newest.
    pub consistency: Option<Consistency>,
    /// Heads read from the RSS feed.
    pub feed_items: usize,
}

/// `monitor`'s state: the archive directory of every head seen (one file per head).
pub struct Monitor {
    dir: PathBuf,
    /// Archived roots by tree size.
    roots: BTreeMap<u64, String>,
    last: Option<SignedSth>,
}

impl Monitor {
    /// Opens (creates) the archive and reads what it holds.
    ///
    /// # Errors
    /// The directory cannot be read or holds a file that is not a head.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
        let mut roots = BTreeMap::new();
        let mut last: Option<SignedSth> = None;
        let entries = std::fs::read_dir(dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::Io(e.to_string()))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !(name.starts_with("sth-") && name.ends_with(".json")) {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
            let sth: SignedSth = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Io(format!("{}: not an STH: {e}", path.display())))?;
            roots.insert(sth.body.tree_size, sth.body.sha3_root.clone());
            if last
                .as_ref()
                .is_none_or(|l| (sth.body.tree_size, sth.body.timestamp) > (l.body.tree_size, l.body.timestamp))
            {
                last = Some(sth);
            }
        }
        Ok(Self { dir: dir.to_owned(), roots, last })
    }

    /// Keeps a head that contradicts the archive as evidence, next to it.
    fn evidence(&self, sth: &SignedSth) -> Result<PathBuf, Error> {
        let path = self.dir.join(format!("fork-{}-{}.json", sth.body.tree_size, sth.body.timestamp));
        let bytes = serde_json::to_vec_pretty(sth).map_err(|e| Error::Io(e.to_string()))?;
        store::write_private(&path, &bytes)?;
        Ok(path)
    }

    /// Checks `new` against `old` with the log's proof; a fork keeps `new` as evidence.
    fn consistent(
        &self,
        relay: &Relay,
        old: &SignedSth,
        new: &SignedSth,
        evidence: &SignedSth,
    ) -> Result<Consistency, Error> {
        match check_consistency(relay, &old.body, &new.body) {
            Err(Error::Fork(detail)) => {
                let path = self.evidence(evidence)?;
                Err(Error::Fork(format!("{detail} (evidence: {})", path.display())))
            }
            other => other,
        }
    }

    fn archive(&mut self, sth: &SignedSth) -> Result<bool, Error> {
        if let Some(root) = self.roots.get(&sth.body.tree_size) {
            if *root != sth.body.sha3_root {
                let evidence = self.evidence(sth)?;
                return Err(Error::Fork(format!(
                    "tree size {} was signed with root {root} and now with {} (evidence: {})",
                    sth.body.tree_size,
                    sth.body.sha3_root,
                    evidence.display()
                )));
            }
            return Ok(false);
        }
        let path = self.dir.join(format!("sth-{:020}-{}.json", sth.body.tree_size, sth.body.timestamp));
        let bytes = serde_json::to_vec_pretty(sth).map_err(|e| Error::Io(e.to_string()))?;
        store::write_private(&path, &bytes)?;
        self.roots.insert(sth.body.tree_size, sth.body.sha3_root.clone());
        Ok(true)
    }

    /// One poll: the key against the pin, the newest head's signature, consistency with the
    /// previous newest head, every RSS item's signature, and each new item's consistency with
    /// the newest head (same-size items against the archive); every new head is archived,
    /// only after it was checked. A fork keeps the contradicting head as `fork-*.json`.
    ///
    /// The log announces no key rotation (no next-key field in its heads or `/v2/pubkey`), so
    /// any new key is [`Error::KeyChanged`] until `expected_pk_hash` (confirmed out of band)
    /// names it; the tree signed by the new key must still extend the archived one.
    ///
    /// # Errors
    /// [`Error::KeyChanged`], [`Error::Fork`], [`Error::Invalid`], transport errors.
    pub fn poll(&mut self, relay: &Relay, store: &Store, expected_pk_hash: Option<&str>) -> Result<PollReport, Error> {
        let mut pins = Pins::load(store)?;
        let key = fetch_key(relay)?;
        pins.check(relay.base(), &key, expected_pk_hash)?;
        pins.save()?;
        let sth = fetch_sth(relay)?;
        verify_sth(&sth, &key)?;
        let consistency = match &self.last {
            Some(last) if last.body.tree_size > sth.body.tree_size || last.body.timestamp <= sth.body.timestamp => {
                Some(self.consistent(relay, last, &sth, &sth)?)
            }
            _ => None,
        };
        let mut archived = usize::from(self.archive(&sth)?);
        let feed = parse_feed(&relay.get_text("/ct/feed.xml")?)?;
        for item in &feed {
            verify_sth(item, &key).map_err(|e| Error::Invalid(format!("RSS feed: {e}")))?;
            if !self.roots.contains_key(&item.body.tree_size) {
                let (old, new) = if item.body.tree_size <= sth.body.tree_size { (item, &sth) } else { (&sth, item) };
                self.consistent(relay, old, new, item).map_err(|e| match e {
                    Error::Fork(d) => Error::Fork(format!("RSS feed item of tree size {}: {d}", item.body.tree_size)),
                    other => other,
                })?;
            }
            archived += usize::from(self.archive(item)?);
        }
        self.last = Some(sth.clone());
        Ok(PollReport {
            tree_size: sth.body.tree_size,
            sha3_root: sth.body.sha3_root.clone(),
            timestamp: sth.body.timestamp,
            archived,
            consistency,
            feed_items: feed.len(),
        })
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report
    use std::collections::HashMap;

    use tlog::{CompactRange, NodeId, Sha3_256, TreeHasher};
    use wire::{InclusionProof, ReceiptBody};

    use super::*;

    /// A log of 12 leaves; a receipt for leaf 3 in the tree of size 5; a signed head of size 9.
    fn bundle(key: &crypto::LogSigningKey) -> ReceiptBundle {
        let mut nodes = HashMap::new();
        let mut range = CompactRange::<Sha3_256>::new();
        let mut roots = vec![[0u8; 32]];
        for i in 0..12u8 {
            range.append(Sha3_256::hash_leaf(&[i]), |id, h| {
                nodes.insert(id, *h);
            });
            roots.push(range.root());
        }
        let rehash = |ids: tlog::ProofNodes| {
            let hashes: Vec<_> = ids.ids().iter().map(|id| nodes[id]).collect();
            ids.rehash::<Sha3_256>(&hashes).unwrap()
        };
        let path = rehash(tlog::inclusion_nodes(3, 5).unwrap());
        let receipt = ReceiptBody {
            blob_hash: "ab".repeat(32),
            sector: "relay".into(),
            retrieved_at: wire::iso8601_ms(1000),
            relay_id: "fake.log".into(),
            tree_size_at_retrieval: 5,
            inclusion_proof: InclusionProof {
                leaf_hash: hex::encode(nodes[&NodeId { level: 0, index: 3 }]),
                leaf_index: 3,
                tree_size: 5,
                audit_path: wire::audit_path(3, 5, &path),
                root: hex::encode(roots[5]),
            },
            burn_confirmed: true,
        }
        .sign(key);
        let sth = SthBody::new("fake.log", &roots[9], 9, 2000).sign(key);
        let vk = key.verifying_key();
        ReceiptBundle {
            format: BUNDLE_FORMAT.into(),
            log: "http://127.0.0.1:9".into(),
            log_public_key: wire::b64(vk.to_bytes()),
            log_pk_hash: hex::encode(vk.pk_hash()),
            receipt,
            sth,
            consistency: rehash(tlog::consistency_nodes(5, 9).unwrap()).iter().map(hex::encode).collect(),
        }
    }

    #[test]
    fn a_bundle_verifies_offline_only_when_every_part_holds() {
        let key = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().to_owned());
        let good = bundle(&key);
        let pk = good.log_pk_hash.clone();
        let report = verify_bundle(&good, &store, Some(&pk)).unwrap();
        assert_eq!((report.tied_by, report.signed_head_size, report.offline), ("consistency", 9, true));
        assert!(matches!(verify_bundle(&good, &store, None), Err(Error::Usage(_))), "nothing pinned, nothing named");

        let check = |edit: &dyn Fn(&mut ReceiptBundle)| {
            let mut b = bundle(&key);
            edit(&mut b);
            verify_bundle(&b, &store, Some(&pk))
        };
        let invalid = |r: Result<ReceiptReport, Error>| matches!(r, Err(Error::Invalid(_)));
        assert!(invalid(check(&|b| b.consistency[0] = "00".repeat(32))), "a forged consistency proof");
        assert!(invalid(check(&|b| drop(b.consistency.pop()))), "a short consistency proof");
        assert!(invalid(check(&|b| b.sth.body.timestamp += 1)), "a signed head whose signature fails");
        assert!(invalid(check(&|b| b.receipt.body.burn_confirmed = false)), "a receipt whose signature fails");
        // A validly signed head that is older than the receipt's tree, or of its size with
        // another root: the receipt's root is not in the signed history.
        let older = SthBody::new("fake.log", &[7; 32], 4, 2000).sign(&key);
        assert!(invalid(check(&|b| b.sth = older.clone())));
        let other_root = SthBody::new("fake.log", &[7; 32], 5, 2000).sign(&key);
        assert!(invalid(check(&|b| {
            b.sth = other_root.clone();
            b.consistency.clear();
        })));
        // Signed by a stranger throughout: the key is not the named one.
        let stranger = <crypto::LogSigningKey as crypto::KeyFile>::generate().unwrap();
        assert!(matches!(verify_bundle(&bundle(&stranger), &store, Some(&pk)), Err(Error::KeyChanged(_))));
    }
}
