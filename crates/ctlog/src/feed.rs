//! Human and archival views of the log: the `/ct/` web UI, its JSON feed, and the RSS 2.0
//! feed of the last 20 STHs that lets anyone keep an independent copy of every root.

use axum::Json;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value, json};
use wire::SignedSth;

use crate::error::ApiResult;
use crate::state::{SharedState, latest_sth};
use crate::store::StoredLeaf;

/// STHs in the RSS feed and in the UI feed (API reference: "last 20 STHs").
const FEED_STHS: usize = 20;
/// Newest leaves shown by the UI feed.
const FEED_ENTRIES: usize = 20;

const UI_HTML: &str = include_str!("ct_ui.html");
const UI_JS: &str = include_str!("ct_ui.js");
const UI_CSS: &str = include_str!("ct_ui.css");
/// ML-DSA-65 and SHA3-256 from @noble (audited, MIT), bundled: see `vendor/build-noble.sh`.
const NOBLE_JS: &str = include_str!("vendor/noble-pq.min.js");
/// Same-origin scripts, styles and fetches only; no inline code, no framing, no forms.
const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                      base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/ct", get(ui))
        .route("/ct/", get(ui))
        .route("/ct/ui.js", get(ui_js))
        .route("/ct/ui.css", get(ui_css))
        .route("/ct/noble.js", get(noble_js))
        .route("/ct/feed", get(feed_json))
        .route("/ct/feed.xml", get(feed_rss))
}

/// A log entry as `/v2/ct/log` and the UI show it: index, leaf hash, and the event fields the
/// leaf commits to (so anyone can recompute the leaf hash).
pub fn entry_json(leaf: &StoredLeaf) -> Value {
    let mut entry = serde_json::from_slice::<Value>(&leaf.event_json).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut entry {
        map.insert("index".into(), leaf.index.into());
        map.insert("leaf_hash".into(), hex::encode(leaf.leaf_hash).into());
        return entry;
    }
    json!({ "index": leaf.index, "leaf_hash": hex::encode(leaf.leaf_hash) })
}

async fn ui() -> impl IntoResponse {
    ([(header::CONTENT_SECURITY_POLICY, UI_CSP)], Html(UI_HTML))
}

async fn ui_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, UI_CSP)], UI_JS)
}

async fn ui_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, UI_CSP)], UI_CSS)
}

async fn noble_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CONTENT_SECURITY_POLICY, UI_CSP)], NOBLE_JS)
}

async fn feed_json(State(state): State<SharedState>) -> ApiResult<Json<Value>> {
    let snapshot = state.snapshot()?;
    let sth = latest_sth(&snapshot)?;
    let (sths, total) = snapshot.sth_history(FEED_STHS)?;
    let size = sth.body.tree_size;
    let from = size.saturating_sub(FEED_ENTRIES as u64);
    let entries: Vec<Value> =
        snapshot.leaves(from, FEED_ENTRIES)?.iter().filter(|l| l.index < size).map(entry_json).collect();
    Ok(Json(json!({
        "ok": true,
        "relay_id": state.config.relay_id,
        "sector": state.config.sector,
        "tree_size": size,
        "root": sth.body.sha3_root,
        "sth": sth,
        "sth_total": total,
        "recent_sths": sths,
        "recent_entries": entries,
        "pk_hash": state.pk_hash,
    })))
}

async fn feed_rss(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let (sths, _) = state.snapshot()?.sth_history(FEED_STHS)?;
    let base = forwarded_origin(peer, &headers).unwrap_or_else(|| state.config.public_url());
    let xml = rss(&state.config.relay_id, &base, &sths);
    Ok(([(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8")], xml))
}

/// Header a relay on loopback sets to its own public base URL (from its configuration, never
/// from the client), so links in the feed point where readers reach the log: the relay's
/// origin, not the log's loopback address.
pub const FORWARDED_ORIGIN: &str = "x-paramant-public-origin";

/// The relay's public origin when a relay on loopback forwarded this request; from anywhere
/// else the header is ignored.
fn forwarded_origin(peer: SocketAddr, headers: &HeaderMap) -> Option<String> {
    if !peer.ip().is_loopback() {
        return None;
    }
    let origin = headers.get(FORWARDED_ORIGIN)?.to_str().ok()?;
    let plausible = (origin.starts_with("https://") || origin.starts_with("http://"))
        && origin.len() <= 256
        && !origin.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
    plausible.then(|| origin.trim_end_matches('/').to_owned())
}

/// RSS 2.0 document of the given STHs (newest first). Every text node is escaped.
pub fn rss(relay_id: &str, base_url: &str, sths: &[SignedSth]) -> String {
    let link = format!("{}/ct/", base_url.trim_end_matches('/'));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\">\n<channel>\n");
    out += &format!("<title>{}</title>\n", escape(&format!("paramant CT log: {relay_id}")));
    out += &format!("<link>{}</link>\n", escape(&link));
    out += "<description>Signed tree heads (ML-DSA-65) of this transparency log. Archive them: a root that later changes without a consistent extension proves tampering.</description>\n";
    if let Some(newest) = sths.first() {
        out += &format!("<lastBuildDate>{}</lastBuildDate>\n", wire::rfc2822_date(newest.body.timestamp));
    }
    for sth in sths {
        let json = serde_json::to_string(sth).unwrap_or_default();
        out += "<item>\n";
        out += &format!(
            "<title>{}</title>\n",
            escape(&format!("tree_size {} root {}", sth.body.tree_size, sth.body.sha3_root))
        );
        out += &format!(
            "<link>{}</link>\n",
            escape(&format!("{}/v2/sth/{}", base_url.trim_end_matches('/'), sth.body.timestamp))
        );
        out += &format!(
            "<guid isPermaLink=\"false\">{}</guid>\n",
            escape(&format!("{relay_id}/sth/{}/{}", sth.body.tree_size, sth.body.timestamp))
        );
        out += &format!("<pubDate>{}</pubDate>\n", wire::rfc2822_date(sth.body.timestamp));
        out += &format!("<description>{}</description>\n", escape(&json));
        out += "</item>\n";
    }
    out += "</channel>\n</rss>\n";
    out
}

/// XML text escaping; also drops characters XML 1.0 forbids.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_control_characters() {
        assert_eq!(escape("<a href=\"x\">&'</a>\u{1}"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
    }
}
