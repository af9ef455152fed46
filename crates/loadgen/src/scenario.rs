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
    pub phases: Phases,
}

/// Which measurements a run makes (`--only`); a skipped one is left out of the report.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    pub small_uploads: bool,
    /// 5 MiB uploads and the machine bound they are compared with.
    pub large_uploads: bool,
    pub small_cycles: bool,
    pub large_cycles: bool,
    pub memory: bool,
}

impl Phases {
    pub const ALL: Self =
        Self { small_uploads: true, large_uploads: true, small_cycles: true, large_cycles: true, memory: true };

    /// A comma-separated list of phase names.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut phases = Self {
            small_uploads: false,
            large_uploads: false,
            small_cycles: false,
            large_cycles: false,
            memory: false,
        };
        for name in list.split(',') {
            match name.trim() {
                "small-uploads" => phases.small_uploads = true,
                "large-uploads" => phases.large_uploads = true,
                "small-cycles" => phases.small_cycles = true,
                "large-cycles" => phases.large_cycles = true,
                "memory" => phases.memory = true,
                other => anyhow::bail!("unknown phase {other:?}"),
            }
        }
        Ok(phases)
    }
}

/// Everything one run measured.
pub struct RunReport {
    pub started_ms: u64,
    pub load_before: String,
    pub load_after: String,
    /// Each measurement, `None` when `--only` skipped it.
    pub small_uploads: Option<Outcome>,
    pub large_uploads: Option<Outcome>,
    pub bound: Option<Bound>,
    pub small_cycles: Option<Outcome>,
    pub large_cycles: Option<Outcome>,
    pub after_churn: Option<Memory>,
    /// Payload bytes the throughput relay still held then.
    pub after_churn_stored: u64,
    pub memory: Option<MemoryReport>,
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

    let phases = settings.phases;
    let mut small_uploads = None;
    if phases.small_uploads {
        eprintln!("loadgen: 1 KiB uploads, {} clients", settings.small_clients);
        small_uploads = Some(uploads(&client, KIB, LONG_TTL_MS, settings.small_clients, window, &pids).await);
    }
    let (mut bound, mut large_uploads) = (None, None);
    if phases.large_uploads {
        eprintln!("loadgen: machine bound for 5 MiB (decode + SHA-256 on one core)");
        bound = Some(tokio::task::spawn_blocking(|| bound::measure(5 * MIB, probe::cores())).await?);
        eprintln!("loadgen: 5 MiB uploads, {} clients", settings.large_clients);
        large_uploads = Some(uploads(&client, 5 * MIB, SHORT_TTL_MS, settings.large_clients, window, &pids).await);
    }
    let mut small_cycles = None;
    if phases.small_cycles {
        eprintln!("loadgen: 1 KiB upload+download cycles, {} clients", settings.small_clients);
        small_cycles = Some(cycles(&client, KIB, settings.small_clients, window, &pids).await);
    }
    let mut large_cycles = None;
    if phases.large_cycles {
        eprintln!("loadgen: 5 MiB upload+download cycles, {} clients", settings.large_clients);
        large_cycles = Some(cycles(&client, 5 * MIB, settings.large_clients, window, &pids).await);
    }
    // Let the sweeper remove the short-lived 5 MiB blobs (≤ 1 s after they expire) and, one
    // sweep later, return the payload buffers nobody took to the kernel; then see what the
    // relay kept.
    if phases.large_uploads {
        tokio::time::sleep(Duration::from_millis(2 * SHORT_TTL_MS + 2_500)).await;
    }
    let after_churn = probe::memory(services.relay_pid);
    let after_churn_stored = stored_bytes(&services.relay_url).await?;
    services.stop().await;

    let mut memory_report = None;
    if phases.memory {
        eprintln!("loadgen: relay memory with {} MiB of 5 MiB blobs stored (fresh relay)", settings.store_bytes >> 20);
        memory_report = Some(memory(settings).await?);
    }
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
        memory: memory_report,
    })
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
