//! The C2SP tlog-tiles read API (`/checkpoint`, `/tile/<L>/<N>[.p/<W>]`,
//! `/tile/entries/<N>[.p/<W>]`) and the checkpoint in C2SP signed-note form with the log's
//! Ed25519 note key (c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint, c2sp.org/signed-note).
//!
//! The log's own tree hashes with SHA3-256 and typed leaf hashes (signed by the ML-DSA-65
//! STHs); tlog-tiles clients expect RFC 6962 with SHA-256. So the sequencer keeps a second
//! tree over the same entries, the *C2SP view*, in the same commit: entry = the leaf's stored
//! canonical event JSON, leaf hash = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ l ‖ r).
//! Everything here is served from that tree's stored tiles and compact range, so any
//! tlog-tiles client, monitor or witness reads, verifies and cosigns it unchanged.

use std::sync::Mutex;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use crypto::NoteSigningKey;
use sha2::{Digest, Sha256};
use tlog::Hash;
use tlog::tile::{TILE_WIDTH, TileId};

use crate::error::{ApiError, ApiResult};
use crate::state::{SharedState, latest_sth};

/// The signed-note signature type of Ed25519 (C2SP signed-note).
const ED25519_TYPE: u8 = 0x01;
/// Tiles and full bundles never change: cache them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The checkpoint changes with every STH (spec: no caching beyond a few seconds).
const MUTABLE: &str = "no-cache";
/// Tile levels a u64 tree can have (8 bits per level).
const MAX_TILE_LEVEL: u64 = 63;

/// The C2SP tlog-tiles read endpoints: `/checkpoint` and `/tile/…`.
pub fn router() -> Router<SharedState> {
    Router::new().route("/checkpoint", get(checkpoint)).route("/tile/{*path}", get(tile))
}

/// Signs checkpoints with the Ed25519 note key under the log's origin; remembers the last one
/// (Ed25519 is deterministic, so re-signing the same tree head gives the same bytes anyway).
pub struct CheckpointSigner {
    key: NoteSigningKey,
    origin: String,
    key_id: [u8; 4],
    last: Mutex<Option<(u64, Hash, String)>>,
}

impl CheckpointSigner {
    /// `origin` is the checkpoint's first line and the key's name.
    pub fn new(key: NoteSigningKey, origin: String) -> Self {
        let key_id = note_key_id(&origin, &key.public_key());
        Self { key, origin, key_id, last: Mutex::new(None) }
    }

    /// The origin line (also the note key's name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The C2SP signed-note verifier key: `<name>+<key id hex>+<base64(0x01 ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut typed = vec![ED25519_TYPE];
        typed.extend_from_slice(&self.key.public_key());
        format!("{}+{}+{}", self.origin, hex::encode(self.key_id), B64.encode(typed))
    }

    /// The signed checkpoint of the tree of `size` with root `root`.
    pub fn sign(&self, size: u64, root: &Hash) -> String {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((s, r, note)) = last.as_ref()
            && *s == size
            && r == root
        {
            return note.clone();
        }
        let text = checkpoint_text(&self.origin, size, root);
        let mut signed = self.key_id.to_vec();
        signed.extend_from_slice(&self.key.sign(text.as_bytes()));
        let note = format!("{text}\n\u{2014} {} {}\n", self.origin, B64.encode(signed));
        *last = Some((size, *root, note.clone()));
        note
    }
}

/// The checkpoint origin for a log whose public base URL (the tlog-tiles prefix) is
/// `public_url`: the URL without scheme and trailing slashes (tlog-tiles § Parameters; C2SP:
/// no spaces, no `+`). It is also the note key's name.
pub fn origin_for(public_url: &str) -> String {
    let without_scheme = public_url.split_once("://").map_or(public_url, |(_, rest)| rest);
    without_scheme.trim_end_matches('/').chars().filter(|c| !c.is_whitespace() && *c != '+').collect()
}

/// The note text (tlog-checkpoint): origin, decimal size, base64 root, each on its own line.
pub fn checkpoint_text(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root))
}

/// C2SP signed-note key ID: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ type ‖ public key).
pub fn note_key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_TYPE]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The checkpoint of the newest committed tree: its size (that of the newest ML-DSA-65 STH)
/// and the C2SP tree's root, read in one snapshot.
async fn checkpoint(State(state): State<SharedState>) -> ApiResult<impl IntoResponse> {
    let snapshot = state.snapshot()?;
    let sth = latest_sth(&snapshot)?;
    let c2sp = snapshot.c2sp_compact()?;
    if c2sp.size() != sth.body.tree_size {
        return Err(ApiError::internal(
            "checkpoint",
            &format!("the C2SP tree has {} leaves, the newest STH {}", c2sp.size(), sth.body.tree_size),
        ));
    }
    let note = state.checkpoint.sign(c2sp.size(), &c2sp.root());
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, MUTABLE)], note))
}

/// What a `/tile/...` path names.
#[derive(Debug, PartialEq, Eq)]
pub enum TilePath {
    /// Hash tile `(level, index)`; `width` is `None` for a full tile.
    Hashes {
        /// Tile level (0 = leaf hashes).
        level: u8,
        /// Tile index within the level.
        index: u64,
        /// Hashes in a partial tile.
        width: Option<usize>,
    },
    /// Entry bundle `index`; `width` is `None` for a full bundle.
    Entries {
        /// Bundle index.
        index: u64,
        /// Entries in a partial bundle.
        width: Option<usize>,
    },
}

/// Parses the part after `/tile/` strictly (tlog-tiles: no leading zeroes, 3-digit groups,
/// `x` before all but the last, width 1..=255). Anything else is `None`.
pub fn parse_tile_path(path: &str) -> Option<TilePath> {
    let (first, rest) = path.split_once('/')?;
    let (index_part, width) = match rest.split_once(".p/") {
        Some((index, w)) => (index, Some(parse_width(w)?)),
        None => (rest, None),
    };
    let index = parse_index(index_part)?;
    if first == "entries" {
        return Some(TilePath::Entries { index, width });
    }
    let level = parse_decimal(first).filter(|&l| l <= MAX_TILE_LEVEL)?;
    Some(TilePath::Hashes { level: u8::try_from(level).ok()?, index, width })
}

fn parse_width(text: &str) -> Option<usize> {
    parse_decimal(text).and_then(|w| usize::try_from(w).ok()).filter(|w| (1..TILE_WIDTH).contains(w))
}

/// A decimal with no leading zeroes (except "0" itself).
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// `x001/x234/067` → 1234067; the first group may not be `x000` (one encoding per index).
fn parse_index(text: &str) -> Option<u64> {
    let groups: Vec<&str> = text.split('/').collect();
    let (last, leading) = groups.split_last()?;
    let mut value: u64 = 0;
    for (i, group) in leading.iter().map(|g| g.strip_prefix('x')).chain([Some(*last)]).enumerate() {
        let group = group?;
        if group.len() != 3
            || !group.bytes().all(|b| b.is_ascii_digit())
            || (i == 0 && !leading.is_empty() && group == "000")
        {
            return None;
        }
        value = value.checked_mul(1000)?.checked_add(group.parse().ok()?)?;
    }
    Some(value)
}

async fn tile(
    State(state): State<SharedState>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> ApiResult<impl IntoResponse> {
    let parsed = parse_tile_path(&path).ok_or_else(|| {
        ApiError::not_found("not a tlog-tiles path: /tile/<L>/<N>[.p/<W>] or /tile/entries/<N>[.p/<W>]")
    })?;
    let body = match parsed {
        TilePath::Hashes { level, index, width } => hash_tile(&state, TileId { level, index }, width)?,
        TilePath::Entries { index, width } => entry_bundle(&state, index, width)?,
    };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, IMMUTABLE)], body))
}

/// The first `width` (default 256) base hashes of a stored C2SP tile. A stored tile only
/// grows, so any prefix of it is the tile of some earlier tree (tlog-tiles: partial tiles of
/// every checkpointed size stay available).
fn hash_tile(state: &SharedState, id: TileId, width: Option<usize>) -> ApiResult<Vec<u8>> {
    let want = width.unwrap_or(TILE_WIDTH);
    let tile = state
        .snapshot()?
        .c2sp_tile(id)?
        .filter(|t| t.width() >= want)
        .ok_or_else(|| ApiError::not_found("no such tile"))?;
    Ok(tile.base()[..want].as_flattened().to_vec())
}

/// Entries `256 * index ..` (`width` of them, default 256): each the event JSON the leaf
/// commits to (the C2SP entry, hashed as SHA-256(0x00 ‖ entry)), prefixed by its big-endian
/// u16 length (the sequencer refuses larger events).
fn entry_bundle(state: &SharedState, index: u64, width: Option<usize>) -> ApiResult<Vec<u8>> {
    let want = width.unwrap_or(TILE_WIDTH);
    let start = index.checked_mul(TILE_WIDTH as u64).ok_or_else(|| ApiError::not_found("no such entry bundle"))?;
    let snapshot = state.snapshot()?;
    if snapshot.tree_size()? < start.saturating_add(want as u64) {
        return Err(ApiError::not_found("no such entry bundle"));
    }
    let mut out = Vec::new();
    for leaf in snapshot.leaves(start, want)? {
        let len = u16::try_from(leaf.event_json.len())
            .map_err(|_| ApiError::internal("entry bundle", &format!("entry {} exceeds 65535 bytes", leaf.index)))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&leaf.event_json);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_only_in_their_canonical_form() {
        let hashes = |level, index, width| Some(TilePath::Hashes { level, index, width });
        assert_eq!(parse_tile_path("0/000"), hashes(0, 0, None));
        assert_eq!(parse_tile_path("1/x001/x234/067"), hashes(1, 1_234_067, None));
        assert_eq!(parse_tile_path("2/005.p/17"), hashes(2, 5, Some(17)));
        assert_eq!(
            parse_tile_path("entries/x001/000.p/255"),
            Some(TilePath::Entries { index: 1000, width: Some(255) })
        );
        for bad in [
            "0/0",
            "00/000",
            "01/000",
            "64/000",
            "0/x000/001",
            "0/001/002",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "0/000.p/",
            "0/abc",
            "0/",
            "entries/",
            "0/x001",
            "0/000/",
            "0/-01",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn origin_is_the_prefix_without_scheme_and_slash() {
        assert_eq!(origin_for("https://ct.example.org/"), "ct.example.org");
        assert_eq!(origin_for("https://rome.ct.example.com/tevere/"), "rome.ct.example.com/tevere");
        assert_eq!(origin_for("http://127.0.0.1:8081"), "127.0.0.1:8081");
    }

    #[test]
    fn the_verifier_key_names_the_origin_and_its_key_id() {
        let signer = CheckpointSigner::new(NoteSigningKey::from_seed(&[7; 32]), "log.example".into());
        let vkey = signer.verifier_key();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "log.example");
        let typed = B64.decode(parts[2]).unwrap();
        assert_eq!((typed.len(), typed[0]), (33, ED25519_TYPE));
        assert_eq!(parts[1], hex::encode(note_key_id("log.example", &typed[1..])));
    }
}
