//! The measurements of one run: throughput and latency of uploads and upload+download cycles
//! against one pair of services, then the relay's memory with a fixed amount stored, against a
//! fresh pair (so earlier load does not colour the memory figure).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use hyper::Method;

use crate::body::BodyFactory;
use crate::bound::{self, Bound};
use crate::client::{RelayClient, call};
use crate::drive::{Outcome, Window, drive};
use crate::probe::{self, Memory};
use crate::services::Services;

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;
/// Lifetime of throughput uploads that are never downloaded: the relay's 1 s sweeper removes
/// them soon after, so a long run does not fill the budget (the upload path is the same for
/// any TTL). Uploads that are downloaded keep the default hour.
const SHORT_TTL_MS: u64 = 1_000;
const LONG_TTL_MS: u64 = 3_600_000;
/// Budget of the throughput relay: a limit, not an allocation; it must not refuse uploads
/// while short-lived 5 MiB blobs wait for the sweeper.
const THROUGHPUT_BUDGET: u64 = 8 << 30;

/// What the command line chose.
#[derive(Clone, Debug)]
pub struct Settings {
    pub paramant: std::path::PathBuf,
    pub window: Window,
    pub small_clients: usize,
    pub large_clients: usize,
    pub store_bytes: u64,
    /// Measure only the 1 KiB uploads (`--only small-uploads`).
    pub only_small_uploads: bool,
}

/// Everything one run measured.
pub struct RunReport {
    pub started_ms: u64,
    pub load_before: String,
    pub load_after: String,
    pub small_uploads: Outcome,
    pub large_uploads: Outcome,
    pub bound: Bound,
    pub small_cycles: Outcome,
    pub large_cycles: Outcome,
    pub after_churn: Option<Memory>,
    /// Payload bytes the throughput relay still held then.
    pub after_churn_stored: u64,
    pub memory: MemoryReport,
}

/// The relay's memory around storing `stored_bytes` of 5 MiB blobs.
pub struct MemoryReport {
    pub idle: Option<Memory>,
    pub stored_bytes: u64,
    pub blobs: usize,
    pub store_failures: u64,
    pub with_blobs: Option<Memory>,
    /// 2 s and 15 s after the last download (allocators may hand memory back with a delay:
    /// jemalloc's dirty pages decay over 10 s).
    pub after_burn: Option<Memory>,
    pub after_burn_later: Option<Memory>,
}

pub async fn run(settings: &Settings) -> anyhow::Result<RunReport> {
    let started_ms = wire_now_ms();
    let load_before = probe::load_average();
    let services = Services::start(&settings.paramant, THROUGHPUT_BUDGET).await?;
    let client = RelayClient::new(&services.relay_url, &services.api_key);
    let pids = [("relay", services.relay_pid), ("ctlog", services.ctlog_pid), ("loadgen", std::process::id())];
    let window = settings.window;

    eprintln!("loadgen: 1 KiB uploads, {} clients", settings.small_clients);
    let small_uploads = uploads(&client, KIB, LONG_TTL_MS, settings.small_clients, window, &pids).await;
    if settings.only_small_uploads {
        services.stop().await;
        return Ok(RunReport::small_uploads_only(started_ms, load_before, small_uploads));
    }
    eprintln!("loadgen: machine bound for 5 MiB (decode + SHA-256 on one core)");
    let bound = tokio::task::spawn_blocking(|| bound::measure(5 * MIB, probe::cores())).await?;
    eprintln!("loadgen: 5 MiB uploads, {} clients", settings.large_clients);
    let large_uploads = uploads(&client, 5 * MIB, SHORT_TTL_MS, settings.large_clients, window, &pids).await;
    eprintln!("loadgen: 1 KiB upload+download cycles, {} clients", settings.small_clients);
    let small_cycles = cycles(&client, KIB, settings.small_clients, window, &pids).await;
    eprintln!("loadgen: 5 MiB upload+download cycles, {} clients", settings.large_clients);
    let large_cycles = cycles(&client, 5 * MIB, settings.large_clients, window, &pids).await;
    // Let the sweeper remove the short-lived 5 MiB blobs, then see what the relay kept.
    tokio::time::sleep(Duration::from_millis(2 * SHORT_TTL_MS + 1_000)).await;
    let after_churn = probe::memory(services.relay_pid);
    let after_churn_stored = stored_bytes(&services.relay_url).await?;
    services.stop().await;

    eprintln!("loadgen: relay memory with {} MiB of 5 MiB blobs stored (fresh relay)", settings.store_bytes >> 20);
    let memory = memory(settings).await?;
    Ok(RunReport {
        started_ms,
        load_before,
        load_after: probe::load_average(),
        small_uploads,
        large_uploads,
        bound,
        small_cycles,
        large_cycles,
        after_churn,
        after_churn_stored,
        memory,
    })
}

impl RunReport {
    /// A run that measured only the 1 KiB uploads; every other figure is empty.
    fn small_uploads_only(started_ms: u64, load_before: String, small_uploads: Outcome) -> Self {
        let memory = MemoryReport {
            idle: None,
            stored_bytes: 0,
            blobs: 0,
            store_failures: 0,
            with_blobs: None,
            after_burn: None,
            after_burn_later: None,
        };
        let bound = Bound { decode_secs: 0.0, hash_secs: 0.0, cpu_secs: 0.0, cores: 0 };
        Self {
            started_ms,
            load_before,
            load_after: probe::load_average(),
            small_uploads,
            large_uploads: Outcome::default(),
            bound,
            small_cycles: Outcome::default(),
            large_cycles: Outcome::default(),
            after_churn: None,
            after_churn_stored: 0,
            memory,
        }
    }
}

/// Uploads of `size` bytes, never downloaded.
async fn uploads(
    client: &RelayClient,
    size: usize,
    ttl_ms: u64,
    clients: usize,
    window: Window,
    pids: &[(&'static str, u32)],
) -> Outcome {
    let factory = Arc::new(BodyFactory::new(size, ttl_ms));
    let client = client.clone();
    drive(clients, window, pids, move |_| {
        let (client, factory) = (client.clone(), factory.clone());
        async move { client.upload(factory.next()).await }
    })
    .await
}

/// An upload of `size` bytes followed by its burning download, timed as one cycle.
async fn cycles(
    client: &RelayClient,
    size: usize,
    clients: usize,
    window: Window,
    pids: &[(&'static str, u32)],
) -> Outcome {
    let factory = Arc::new(BodyFactory::new(size, LONG_TTL_MS));
    let client = client.clone();
    drive(clients, window, pids, move |_| {
        let (client, factory) = (client.clone(), factory.clone());
        async move {
            let upload = factory.next();
            let hash = upload.hash.clone();
            client.upload(upload).await?;
            client.download(&hash, factory.payload_size()).await
        }
    })
    .await
}

/// Stores `store_bytes` of 5 MiB blobs in a fresh relay, reads its memory, burns them all by
/// downloading, and reads it again.
async fn memory(settings: &Settings) -> anyhow::Result<MemoryReport> {
    let size = 5 * MIB;
    let count = (settings.store_bytes as usize).div_ceil(size);
    let budget = (count * size) as u64 + (256 << 20);
    let services = Services::start(&settings.paramant, budget).await?;
    let client = RelayClient::new(&services.relay_url, &services.api_key);
    let idle = probe::memory(services.relay_pid);
    let factory = Arc::new(BodyFactory::new(size, LONG_TTL_MS));
    let (hashes, store_failures) = store(&client, &factory, count, settings.large_clients).await;
    // Settle: responses are sent before every buffer of the request is dropped.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored_bytes = stored_bytes(&services.relay_url).await?;
    let with_blobs = probe::memory(services.relay_pid);
    burn(&client, hashes.clone(), size, settings.large_clients).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_burn = probe::memory(services.relay_pid);
    tokio::time::sleep(Duration::from_secs(13)).await;
    let after_burn_later = probe::memory(services.relay_pid);
    services.stop().await;
    Ok(MemoryReport {
        idle,
        stored_bytes,
        blobs: hashes.len(),
        store_failures,
        with_blobs,
        after_burn,
        after_burn_later,
    })
}

/// Uploads `count` blobs with `clients` concurrent clients; returns the stored hashes and how
/// many uploads failed.
async fn store(client: &RelayClient, factory: &Arc<BodyFactory>, count: usize, clients: usize) -> (Vec<String>, u64) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, factory, next) = (client.clone(), factory.clone(), next.clone());
            tokio::spawn(async move {
                let (mut stored, mut failed) = (Vec::new(), 0u64);
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let upload = factory.next();
                    let hash = upload.hash.clone();
                    match client.upload(upload).await {
                        Ok(()) => stored.push(hash),
                        Err(e) => {
                            eprintln!("loadgen: storing failed: {e}");
                            failed += 1;
                        }
                    }
                }
                (stored, failed)
            })
        })
        .collect();
    let (mut hashes, mut failures) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((stored, failed)) = task.await {
            hashes.extend(stored);
            failures += failed;
        }
    }
    (hashes, failures)
}

/// Downloads (and so burns) every blob in `hashes`.
async fn burn(client: &RelayClient, hashes: Vec<String>, size: usize, clients: usize) {
    let hashes = Arc::new(hashes);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, hashes, next) = (client.clone(), hashes.clone(), next.clone());
            tokio::spawn(async move {
                while let Some(hash) = hashes.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(e) = client.download(hash, size).await {
                        eprintln!("loadgen: burning download failed: {e}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Payload bytes the relay says it holds (`/health` → `blob_bytes`).
async fn stored_bytes(relay_url: &str) -> anyhow::Result<u64> {
    let (_, body) = call(Method::GET, &format!("{relay_url}/health"), &[], b"").await?;
    let health: serde_json::Value = serde_json::from_slice(&body).context("relay /health is not JSON")?;
    health["blob_bytes"].as_u64().context("relay /health without blob_bytes")
}

fn wire_now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
