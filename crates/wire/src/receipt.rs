//! Delivery receipts: signed by the log key, sent base64url-encoded in `X-Paramant-Receipt`,
//! checked by `POST /v2/verify-receipt`.

use serde::{Deserialize, Serialize};

use crate::{Error, InclusionProof, b64, b64url, canonical_json_of, parse_b64, parse_b64url_lenient};

/// The signed fields of a delivery receipt.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    /// SHA-256 of the delivered blob, 64 lowercase hex.
    pub blob_hash: String,
    /// The sector the relay serves (`relay`, `health`, `legal`, `finance`, `iot`).
    pub sector: String,
    /// When the blob was retrieved, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub retrieved_at: String,
    /// The relay's host name (as in its STHs).
    pub relay_id: String,
    /// Size of the log when the blob was retrieved.
    pub tree_size_at_retrieval: u64,
    /// Inclusion of the blob's transfer leaf in the log.
    pub inclusion_proof: InclusionProof,
    /// Whether the blob was destroyed on delivery.
    pub burn_confirmed: bool,
}

impl ReceiptBody {
    /// The bytes that are signed: canonical JSON of every field, keys sorted at every level.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        // Invariant: strings, integers and booleans only, which canonical JSON always accepts.
        canonical_json_of(self).expect("receipt body holds no floats")
    }

    /// Signs the body with the log key (pure ML-DSA-65, empty context, deterministic).
    #[must_use]
    pub fn sign(self, key: &logkey::LogSigningKey) -> Receipt {
        let signature = b64(key.sign(&self.signed_bytes()));
        Receipt { body: self, signature }
    }

    /// Signs the body and returns the `X-Paramant-Receipt` value: the same string as
    /// `self.sign(key).to_header()`, with the canonical JSON written once. The receipt's
    /// canonical JSON is the body's with `"signature"` in its sorted place: just before
    /// `tree_size_at_retrieval`, the last key (a number, so its text cannot occur in a value).
    #[must_use]
    pub fn sign_to_header(&self, key: &logkey::LogSigningKey) -> String {
        let mut json = self.signed_bytes();
        let signature = b64(key.sign(&json));
        let tail = format!(",\"tree_size_at_retrieval\":{}}}", self.tree_size_at_retrieval);
        if !json.ends_with(tail.as_bytes()) {
            // Unreachable while the fields are as above; never a wrong header if they change.
            return Receipt { body: self.clone(), signature }.to_header();
        }
        let at = json.len() - tail.len();
        // Base64 needs no JSON escaping.
        let field = format!(",\"signature\":\"{signature}\"");
        json.splice(at..at, field.bytes());
        b64url(json)
    }
}

/// A signed delivery receipt: the body's fields plus `signature`, flat in one JSON object.
/// Parsing rejects unknown fields (they would not be covered by the signature).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(from = "ReceiptJson")]
pub struct Receipt {
    /// The signed fields.
    #[serde(flatten)]
    pub body: ReceiptBody,
    /// ML-DSA-65 signature over [`ReceiptBody::signed_bytes`], standard base64.
    pub signature: String,
}

/// The flat JSON shape of a [`Receipt`]; exists because serde cannot combine `flatten` with
/// `deny_unknown_fields`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptJson {
    blob_hash: String,
    sector: String,
    retrieved_at: String,
    relay_id: String,
    tree_size_at_retrieval: u64,
    inclusion_proof: InclusionProof,
    burn_confirmed: bool,
    signature: String,
}

impl From<ReceiptJson> for Receipt {
    fn from(r: ReceiptJson) -> Self {
        let body = ReceiptBody {
            blob_hash: r.blob_hash,
            sector: r.sector,
            retrieved_at: r.retrieved_at,
            relay_id: r.relay_id,
            tree_size_at_retrieval: r.tree_size_at_retrieval,
            inclusion_proof: r.inclusion_proof,
            burn_confirmed: r.burn_confirmed,
        };
        Self { body, signature: r.signature }
    }
}

impl Receipt {
    /// The `X-Paramant-Receipt` header value: base64url without padding of the receipt's
    /// canonical JSON.
    #[must_use]
    pub fn to_header(&self) -> String {
        // Invariant: strings, integers and booleans only, which canonical JSON always accepts.
        b64url(canonical_json_of(self).expect("receipt holds no floats"))
    }

    /// Parses a header value: base64url, with or without padding (surrounding whitespace
    /// ignored), of the receipt JSON.
    ///
    /// # Errors
    /// [`Error::Base64`], or [`Error::Json`] for malformed JSON, missing or unknown fields.
    pub fn from_header(s: &str) -> Result<Self, Error> {
        Ok(serde_json::from_slice(&parse_b64url_lenient(s.trim())?)?)
    }

    /// Checks the log's signature over the body.
    ///
    /// # Errors
    /// [`Error::Base64`] or [`Error::Signature`].
    pub fn verify_signature(&self, key: &logkey::LogVerifyingKey) -> Result<(), Error> {
        let signature = parse_b64(&self.signature)?;
        key.verify(&self.body.signed_bytes(), &signature)?;
        Ok(())
    }

    /// The two checks of `POST /v2/verify-receipt` that need no log state: the signature, then
    /// the audit path re-walked to the claimed root. (That the root belongs to a signed tree
    /// head of that size is for the caller, who has the log.)
    ///
    /// # Errors
    /// As [`Receipt::verify_signature`], then as [`InclusionProof::verify`].
    pub fn verify(&self, key: &logkey::LogVerifyingKey) -> Result<(), Error> {
        self.verify_signature(key)?;
        self.body.inclusion_proof.verify()
    }
}
