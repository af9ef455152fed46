//! A short-lived cache of the log's public GET answers on the relay's origin (`/v2/sth`,
//! `/v2/ct/…`, `/checkpoint`, tiles, the `/ct/` page), so that a popular read costs the relay a
//! map lookup instead of an HTTP round trip to the log.
//!
//! Freshness: an answer is kept for [`TTL`] at most, and every append this relay makes to the
//! log empties the cache (a read after an upload's answer sees that upload); an answer fetched
//! while an append completed is not stored. So only changes made by someone else (an STH
//! refresh, another appender) can be seen up to [`TTL`] late — like any cache in front of a log.
//! Only `200` answers are kept, within a bounded number of bytes; a request that misses is
//! forwarded as before (the log parses and limits it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use bytes::Bytes;

/// Longest an answer is served from the cache.
pub const TTL: Duration = Duration::from_secs(1);
/// Most bytes of answers held (keys and bodies).
const MAX_BYTES: usize = 4 << 20;
/// Largest single answer kept.
const MAX_ENTRY: usize = 256 << 10;

/// The cache; see the module documentation.
#[derive(Default)]
pub struct CtCache {
    entries: Mutex<Entries>,
    /// Bumped by every append; an answer fetched across a bump is not stored.
    generation: AtomicU64,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Cached>,
    bytes: usize,
}

struct Cached {
    fetched: Instant,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

/// Where a miss stands: the generation when it was looked up.
#[derive(Clone, Copy)]
pub struct Miss(u64);

impl CtCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Only answers live under this lock; a panic cannot leave them inconsistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached answer to `GET path_and_query`, or the [`Miss`] to store the fetched one with.
    pub fn get(&self, path_and_query: &str) -> Result<Response<Body>, Miss> {
        let miss = Miss(self.generation.load(Ordering::Acquire));
        let entries = self.lock();
        let Some(cached) = entries.map.get(path_and_query) else { return Err(miss) };
        if cached.fetched.elapsed() >= TTL {
            return Err(miss);
        }
        let mut response = Response::new(Body::from(cached.body.clone()));
        for (name, value) in &cached.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        Ok(response)
    }

    /// Keeps a fetched answer unless it is not a `200`, too large, or an append completed
    /// since the lookup.
    pub fn put(
        &self,
        miss: Miss,
        path_and_query: &str,
        status: StatusCode,
        headers: &[(HeaderName, HeaderValue)],
        body: &Bytes,
    ) {
        if status != StatusCode::OK || body.len() > MAX_ENTRY {
            return;
        }
        let size = path_and_query.len() + body.len();
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != miss.0 {
            return;
        }
        if entries.bytes + size > MAX_BYTES {
            entries.map.retain(|_, c| c.fetched.elapsed() < TTL);
            entries.bytes = entries.map.iter().map(|(k, c)| k.len() + c.body.len()).sum();
            if entries.bytes + size > MAX_BYTES {
                entries.map.clear();
                entries.bytes = 0;
            }
        }
        let cached = Cached { fetched: Instant::now(), headers: headers.to_vec(), body: body.clone() };
        if let Some(old) = entries.map.insert(path_and_query.to_owned(), cached) {
            entries.bytes -= path_and_query.len() + old.body.len();
        }
        entries.bytes += size;
    }

    /// The log changed under this relay's hands: forget every answer.
    pub fn invalidate(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.map.clear();
        entries.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body_of(response: Response<Body>) -> Bytes {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(http_body_util::BodyExt::collect(response.into_body())).unwrap().to_bytes()
    }

    #[test]
    fn an_answer_is_served_until_an_append_and_only_a_200_is_kept() {
        let cache = CtCache::default();
        let headers = [(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        let miss = cache.get("/v2/sth").err().unwrap();
        cache.put(miss, "/v2/sth", StatusCode::OK, &headers, &Bytes::from_static(b"{\"sth\":1}"));
        let hit = cache.get("/v2/sth").ok().unwrap();
        assert_eq!(hit.headers()["content-type"], "application/json");
        assert_eq!(body_of(hit), Bytes::from_static(b"{\"sth\":1}"));

        cache.invalidate();
        assert!(cache.get("/v2/sth").is_err(), "an append empties the cache");

        // Fetched across an append: not stored.
        let stale = cache.get("/v2/sth").err().unwrap();
        cache.invalidate();
        cache.put(stale, "/v2/sth", StatusCode::OK, &headers, &Bytes::from_static(b"old"));
        assert!(cache.get("/v2/sth").is_err());

        let miss = cache.get("/v2/ct/proof?x").err().unwrap();
        cache.put(miss, "/v2/ct/proof?x", StatusCode::NOT_FOUND, &headers, &Bytes::from_static(b"{}"));
        assert!(cache.get("/v2/ct/proof?x").is_err(), "a refusal is not kept");
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = CtCache::default();
        let big = Bytes::from(vec![b'x'; MAX_ENTRY]);
        for i in 0..64 {
            let key = format!("/tile/{i}");
            let miss = cache.get(&key).err().unwrap();
            cache.put(miss, &key, StatusCode::OK, &[], &big);
            assert!(cache.lock().bytes <= MAX_BYTES);
        }
        let too_big = Bytes::from(vec![b'x'; MAX_ENTRY + 1]);
        let miss = cache.get("/huge").err().unwrap();
        cache.put(miss, "/huge", StatusCode::OK, &[], &too_big);
        assert!(cache.get("/huge").is_err());
    }
}
