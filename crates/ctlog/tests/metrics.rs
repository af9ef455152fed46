//! Prometheus `/metrics` on the log's internal listener (no secret needed, loopback only):
//! tree size, batch sizes, append and signing latency histograms after real appends.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;

fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

#[test]
fn a_scrape_shows_tree_size_batches_and_latency_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "").start();
    for n in 0..3 {
        log.append_transfer(&blob_hash(n));
    }
    let (status, text) = get_text(&format!("{}/metrics", log.internal));
    assert_eq!(status, 200, "{text}");
    assert_eq!(sample(&text, "paramant_log_tree_size"), Some(3.0));
    assert_eq!(sample(&text, "paramant_log_batch_leaves_sum"), Some(3.0), "3 leaves in batches");
    assert_eq!(sample(&text, "paramant_log_append_seconds_count"), sample(&text, "paramant_log_batch_leaves_count"));
    assert!(sample(&text, "paramant_log_append_seconds_bucket{le=\"+Inf\"}").unwrap() >= 1.0);
    // The empty tree's STH at start and one per batch, each timed.
    assert!(sample(&text, "paramant_log_sign_seconds_count{what=\"sth\"}").unwrap() >= 2.0, "{text}");
    assert!(text.contains("# TYPE paramant_log_sign_seconds histogram"));
    assert_eq!(sample(&text, "paramant_sandbox_enforced{service=\"ctlog\"}"), Some(1.0), "{text}");
    // Other internal endpoints still need the secret.
    let (status, _) = post(&format!("{}/internal/append", log.internal), &serde_json::json!({}), None);
    assert_eq!(status, 401);
}
