//! Identifiers parsed at the edge. Handlers turn path segments and body fields into these
//! types once; inner code takes the type and never re-checks. A leaf module: it uses nothing
//! else of the crate.

use std::fmt;
use std::ops::Deref;

use jsonapi::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};

/// 64 hex characters, lowercased; the shape of content hashes and drop lookup ids.
fn hex64(raw: &str) -> Option<String> {
    (raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit())).then(|| raw.to_ascii_lowercase())
}

/// A content blob's id: the SHA-256 of its payload, 64 lowercase hex characters. An upload is
/// stored under it only after the relay computed that hash itself, so no uploader chooses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobId(String);

impl BlobId {
    /// Parses a hash from a path or body.
    pub fn parse(raw: &str) -> ApiResult<Self> {
        hex64(raw).map(Self).ok_or_else(|| ApiError::bad_request("hash must be 64 hex characters (SHA-256)"))
    }

    /// The lowercase hex form (also the blob store key of a content blob).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl BlobId {
    /// The drop a download of the same 64 hex characters may mean (drops and content blobs
    /// share the download path, not the store's namespace).
    pub fn as_drop(&self) -> DropId {
        DropId(self.0.clone())
    }
}

impl Deref for BlobId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An anonymous drop's lookup id: 64 hex characters the uploader chose (the SDK derives it
/// from the mnemonic). Drops live in their own namespace of the blob store
/// ([`DropId::storage_key`]), so a drop can never take a content hash someone else uploads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DropId(String);

/// Prefix of drop keys in the blob store; content keys are bare hex and never contain ':'.
const DROP_PREFIX: &str = "drop:";

impl DropId {
    /// Parses a lookup id from a body.
    pub fn parse(raw: &str) -> ApiResult<Self> {
        hex64(raw).map(Self).ok_or_else(|| ApiError::bad_request("hash must be 64 hex characters"))
    }

    /// The lowercase hex form, as the client knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The blob store key: disjoint from every content key.
    pub fn storage_key(&self) -> String {
        format!("{DROP_PREFIX}{}", self.0)
    }
}

/// Decodes a public key sent as hex (what the SDK sends) or base64 (the API reference's form).
pub fn decode_public_key(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let is_hex = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex { hex::decode(text).ok() } else { base64::engine::general_purpose::STANDARD.decode(text).ok() }
}

/// SHA-256 of an ML-DSA public key: how the device index names signing keys.
pub fn signer_id(dsa_pub: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(dsa_pub).into()
}

/// A device id: 1–256 characters of `[A-Za-z0-9._:@-]` (it appears in URL paths unencoded).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl DeviceId {
    /// Parses a device id from a path, header or body.
    pub fn parse(raw: &str) -> ApiResult<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 256
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::bad_request("device_id must be 1-256 characters of A-Z a-z 0-9 . _ : @ -"))
        }
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a receiver session (`inv_…`), which registers a DID without an API key.
    pub fn is_receiver_session(&self) -> bool {
        self.0.starts_with("inv_")
    }
}

impl TryFrom<String> for DeviceId {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Self::parse(&raw).map_err(|_| format!("invalid device id {raw:?}"))
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> String {
        id.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a URL may use plain `http://` (closed networks and tests) or must be `https://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Only `https://`.
    HttpsOnly,
    /// `https://` or `http://`.
    AllowPlainHttp,
}

/// Where an outgoing call goes: `https://host[:port]/path` (or `http://` when allowed). The
/// host is a name or an IP literal; whether its addresses are public is decided at connect
/// time (and, for webhooks, at registration) by `webhook::is_public`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// `https://` (else plain `http://`).
    pub https: bool,
    /// Lowercased host name or IP literal (without brackets).
    pub host: String,
    /// TCP port (443/80 when the URL names none).
    pub port: u16,
    /// Path and query, starting with '/'.
    pub path: String,
}

impl WebhookTarget {
    /// Parses a URL; credentials, whitespace and URLs over 2048 characters are refused.
    pub fn parse(url: &str, scheme: Scheme) -> Result<Self, &'static str> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://").filter(|_| scheme == Scheme::AllowPlainHttp) {
            (false, rest)
        } else {
            return Err("url must be an https:// URL");
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty()
            || authority.contains('@')
            || url.len() > 2048
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("url must have a plain host (no credentials, no spaces) and at most 2048 characters");
        }
        let (host, port) = split_host_port(authority, if https { 443 } else { 80 })?;
        let path = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
        Ok(Self { https, host, port, path })
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip_literal(&self) -> Option<std::net::IpAddr> {
        self.host.parse().ok()
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), &'static str> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']').ok_or("bad IPv6 literal")?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "bad port")?,
            None if rest.is_empty() => default_port,
            None => return Err("bad authority"),
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_ascii_lowercase(), port.parse().map_err(|_| "bad port")?)),
        None => Ok((authority.to_ascii_lowercase(), default_port)),
    }
}

/// The base URL of a relay (a registry entry or the registry this relay announces itself in):
/// the URL as given and its parsed target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerUrl {
    url: String,
    target: WebhookTarget,
}

impl PeerUrl {
    /// Parses a relay's base URL.
    pub fn parse(url: &str, scheme: Scheme) -> Result<Self, &'static str> {
        Ok(Self { url: url.to_owned(), target: WebhookTarget::parse(url, scheme)? })
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Where calls to it go.
    pub fn target(&self) -> &WebhookTarget {
        &self.target
    }

    /// The target of `path` under this base URL.
    pub fn join(&self, path: &str) -> WebhookTarget {
        let mut target = self.target.clone();
        target.path = format!("{}{path}", target.path.trim_end_matches('/'));
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_are_64_hex_characters_lowercased() {
        let upper = "AB".repeat(32);
        let blob = BlobId::parse(&upper).unwrap();
        assert_eq!(blob.as_str(), "ab".repeat(32));
        assert_ne!(blob.as_drop().storage_key(), blob.as_str(), "drops have their own namespace");
        assert!(BlobId::parse("ab").is_err());
        assert!(DropId::parse(&"g".repeat(64)).is_err());
    }

    #[test]
    fn device_ids_are_checked_and_receiver_sessions_recognised() {
        assert!(DeviceId::parse("inv_abc").unwrap().is_receiver_session());
        assert!(!DeviceId::parse("phone-1").unwrap().is_receiver_session());
        for bad in ["", "a b", "a/b", &"x".repeat(257)] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_plain_https_urls_parse_by_default() {
        assert_eq!(
            WebhookTarget::parse("https://hooks.example.com/x?y=1", Scheme::HttpsOnly),
            Ok(WebhookTarget { https: true, host: "hooks.example.com".into(), port: 443, path: "/x?y=1".into() })
        );
        assert_eq!(
            WebhookTarget::parse("https://[2606:4700::1]:8443", Scheme::HttpsOnly).map(|t| (t.host, t.port)),
            Ok(("2606:4700::1".into(), 8443))
        );
        for bad in ["http://example.com/", "https://user:pw@example.com/", "ftp://example.com/", "https://"] {
            assert!(WebhookTarget::parse(bad, Scheme::HttpsOnly).is_err(), "{bad}");
        }
        assert!(WebhookTarget::parse("https://example.com:99999/", Scheme::HttpsOnly).is_err());
        assert!(WebhookTarget::parse("http://127.0.0.1:9/", Scheme::AllowPlainHttp).is_ok());
        let peer = PeerUrl::parse("https://r.example/base/", Scheme::HttpsOnly).unwrap();
        assert_eq!(peer.join("/v2/relays/register").path, "/base/v2/relays/register");
    }
}
