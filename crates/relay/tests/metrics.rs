//! Prometheus `/metrics` on the relay's internal listener: a scrape after a real upload,
//! download-and-burn and a rate-limited request shows them, in the text format Prometheus
//! reads; nothing in it names a key or a blob.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::json;

/// The value of the sample `name{labels}` (or unlabelled `name`) in a Prometheus text scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

fn scrape(sector: &Sector) -> String {
    let reply = call(&format!("{}/metrics", sector.internal), "GET", &[], None).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

#[test]
fn a_scrape_shows_uploads_bytes_burns_and_rate_limit_hits() {
    let sector = Sector::with_config("[limits]\nrequests_per_key_per_minute = 4\n");
    let before = scrape(&sector);
    assert_eq!(sample(&before, "paramant_uploads_total"), None, "nothing uploaded yet");
    assert_eq!(
        sample(&before, "paramant_sandbox_enforced{service=\"relay\"}").map(|v| v == 0.0 || v == 1.0),
        Some(true)
    );
    assert_eq!(sample(&before, "paramant_license_state{service=\"relay\",edition=\"community\"}"), Some(1.0));

    let key = sector.key("pro");
    let payload = b"metrics test payload";
    let hash = sector.upload_ok(&key, payload, json!({}));
    let download = sector.download(&key, &hash);
    assert_eq!(download.status, 200);
    // The burn is counted when the body has been completely sent, just after the client has it.
    let after = wait_until("the burn to be counted", || {
        let text = scrape(&sector);
        (sample(&text, "paramant_burns_total") == Some(1.0)).then_some(text)
    });
    assert_eq!(sample(&after, "paramant_uploads_total"), Some(1.0));
    assert_eq!(sample(&after, "paramant_upload_bytes_total"), Some(payload.len() as f64));

    let limited = (0..10).map(|_| sector.get("/v2/audit", Some(&key)).status).filter(|&s| s == 429).count();
    assert!(limited > 0, "the per-key limit of 4 a minute refused some of 10 requests");
    let text = scrape(&sector);
    assert_eq!(sample(&text, "paramant_rate_limited_total{service=\"relay\"}"), Some(limited as f64));
    assert!(!text.contains(&key) && !text.contains(&hash), "no key or blob id in metrics");
}
