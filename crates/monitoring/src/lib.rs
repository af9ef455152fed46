//! What operators watch. One Prometheus recorder per process (the `metrics` facade with
//! `metrics-exporter-prometheus`), rendered by each service's internal listener at `/metrics`,
//! and the metric names both services use, so that dashboards have one vocabulary. Also the
//! process's log output: `tracing` events, as text (`service: message key=value`) or JSON lines.
//!
//! Invariant: no metric label and no log field carries a secret, an API key or payload bytes;
//! labels are fixed words chosen here, never request data (which would also let strangers
//! create unbounded series).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod logging;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use logging::{LogFormat, init_logging};

/// Accepted uploads (`/v2/inbound` and anonymous drops), counted when the blob is stored.
pub const UPLOADS: &str = "paramant_uploads_total";
/// Payload bytes of accepted uploads.
pub const UPLOAD_BYTES: &str = "paramant_upload_bytes_total";
/// Blobs burned after their download was completely sent.
pub const BURNS: &str = "paramant_burns_total";
/// Requests refused by a rate limit, labelled `limit` (a fixed word such as `ip`, `key`, `gossip`).
pub const RATE_LIMITED: &str = "paramant_rate_limited_total";
/// Connections refused by a listener's connection limit, labelled `service` (registered at 0
/// by [`service_started`]; the shared server loop increments it).
pub const REJECTED_CONNECTIONS: &str = "paramant_rejected_connections_total";
/// Leaves in the log's newest signed tree head.
pub const TREE_SIZE: &str = "paramant_log_tree_size";
/// Leaves committed per sequencer batch (one transaction and one STH signature each).
pub const BATCH_SIZE: &str = "paramant_log_batch_leaves";
/// Seconds from a batch's first append to its durable commit.
pub const APPEND_SECONDS: &str = "paramant_log_append_seconds";
/// Seconds one ML-DSA-65 signature takes (STHs and receipts), labelled `what`.
pub const SIGN_SECONDS: &str = "paramant_log_sign_seconds";
/// 1 when the configured sandbox is fully in force, 0 when it is best effort and short of it.
pub const SANDBOX_ENFORCED: &str = "paramant_sandbox_enforced";
/// License state, labelled `edition`: 1 for the edition in force (set by the license service
/// integration; `community` until then).
pub const LICENSE_STATE: &str = "paramant_license_state";

/// Bucket bounds in seconds for latency histograms (100 µs … 10 s).
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Bucket bounds for batch sizes.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (first call) and returns its handle. Later calls, also
/// from another service running in the same process (tests), get the same handle.
pub fn prometheus() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), BATCH_BUCKETS));
        // Invariant: the bucket lists above are non-empty constants, so the builder accepts them.
        let builder = builder.expect("histogram buckets are non-empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then this handle renders our own
        // (empty) registry and the other recorder keeps working.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// The Prometheus text exposition of every metric recorded so far.
pub fn render() -> String {
    prometheus().render()
}

/// Content type of [`render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(UPLOADS, "Accepted uploads");
    describe_counter!(UPLOAD_BYTES, metrics::Unit::Bytes, "Payload bytes of accepted uploads");
    describe_counter!(BURNS, "Blobs burned after a complete download");
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit");
    describe_counter!(REJECTED_CONNECTIONS, "Connections refused by a listener's connection limit");
    describe_gauge!(TREE_SIZE, "Leaves in the newest signed tree head");
    describe_histogram!(BATCH_SIZE, "Leaves per sequencer batch");
    describe_histogram!(APPEND_SECONDS, metrics::Unit::Seconds, "Batch append latency until durable");
    describe_histogram!(SIGN_SECONDS, metrics::Unit::Seconds, "ML-DSA-65 signing latency");
    describe_gauge!(SANDBOX_ENFORCED, "1 when the configured sandbox is fully in force");
    describe_gauge!(LICENSE_STATE, "1 for the license edition in force");
}

/// Records what every service reports from its start: the sandbox verdict, and the license
/// edition (`community` until the license service sets another), and makes the counters
/// visible at 0 so that rates work from the first scrape.
pub fn service_started(service: &'static str, sandbox_fully_enforced: bool) {
    prometheus();
    metrics::gauge!(SANDBOX_ENFORCED, "service" => service).set(if sandbox_fully_enforced { 1.0 } else { 0.0 });
    metrics::gauge!(LICENSE_STATE, "service" => service, "edition" => "community").set(1.0);
    metrics::counter!(REJECTED_CONNECTIONS, "service" => service).absolute(0);
}

/// Counts a connection a listener's connection cap refused.
pub fn connection_rejected(service: &'static str) {
    metrics::counter!(REJECTED_CONNECTIONS, "service" => service).increment(1);
}

/// Counts a response a service sent: a 429 is a rate-limit hit (whichever limit refused it).
pub fn observe_response(service: &'static str, status: u16) {
    if status == 429 {
        metrics::counter!(RATE_LIMITED, "service" => service).increment(1);
    }
}

/// An accepted upload of `bytes` payload bytes.
pub fn upload_stored(bytes: u64) {
    metrics::counter!(UPLOADS).increment(1);
    metrics::counter!(UPLOAD_BYTES).increment(bytes);
}

/// A blob burned after its last view was completely sent.
pub fn burned() {
    metrics::counter!(BURNS).increment(1);
}

/// A committed sequencer batch of `leaves` leaves, leaving a tree of `tree_size`, that took
/// `elapsed` from its first request to durability.
pub fn batch_committed(leaves: usize, tree_size: u64, elapsed: std::time::Duration) {
    metrics::histogram!(BATCH_SIZE).record(leaves as f64);
    metrics::histogram!(APPEND_SECONDS).record(elapsed.as_secs_f64());
    tree_size_is(tree_size);
}

/// The newest signed tree head covers `tree_size` leaves.
pub fn tree_size_is(tree_size: u64) {
    metrics::gauge!(TREE_SIZE).set(tree_size as f64);
}

/// Runs `sign` (one ML-DSA-65 signature of `what`: `sth`, `receipt`, …) and records its time.
pub fn timed_sign<T>(what: &'static str, sign: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = sign();
    metrics::histogram!(SIGN_SECONDS, "what" => what).record(started.elapsed().as_secs_f64());
    out
}
