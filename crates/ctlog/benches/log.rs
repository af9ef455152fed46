//! Benchmark of the log's real write and read paths: `LogStore` (a durable redb file in a temp
//! directory) and the `Sequencer` in-process, signing with a fresh ML-DSA-65 key.
//!
//! `cargo bench -p ctlog --bench log` measures
//! 1. durable appends/s with 1, 16 and 256 closed-loop appenders (only acknowledged appends
//!    count; an append resolves after its batch's one durable transaction, STH included);
//! 2. append → signed STH latency at an open-loop offered rate (a task per append spawned on
//!    a fixed schedule, so queueing is included and a slow batch cannot slow the offer);
//! 3. at each size of `BENCH_PROOF_SIZES` (1M and 10M; 100M on request): the build rate and the
//!    CPU per leaf of the sequencer and leaf-hash index threads for that stretch of tree sizes,
//!    where the log file's bytes go (per table), inclusion and consistency proof latency, and
//!    durable appends/s with the most appenders of `BENCH_CONCURRENCY` *at that size*.
//!
//! Scale with environment variables (defaults in brackets): `BENCH_RUNS` [3],
//! `BENCH_SECONDS` [5] per throughput run, `BENCH_CONCURRENCY` [1,16,256], `BENCH_RATE` [1000]
//! appends/s, `BENCH_LATENCY_SECONDS` [10], `BENCH_PROOF_SIZES` [1000000,10000000],
//! `BENCH_PROOFS` [100000], `BENCH_BUILD_TASKS` [4096], `BENCH_DIR` (where the databases go)
//! and `BENCH_ONLY` (any of `appends,latency,proofs`). With `BENCH_DIR` set, the large log of
//! part 3 is kept in `BENCH_DIR/large-log` (database, index, key): a later run continues from
//! the size it has, so a measurement at 100M can be repeated without building it again (delete
//! the directory when done). Run outside `cargo bench` (e.g. `cargo test --benches`) it does a
//! quick smoke run instead.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use crypto::{KeyFile, LogSigningKey};
use ctlog::sequencer::{Sequencer, SequencerConfig, SequencerThread};
use ctlog::store::{LogStore, Snapshot};
use tlog::{Hash, Sha3_256};
use wire::LogEvent;

/// The targets named in the issue, printed next to the measurements.
const TARGET_APPENDS_PER_SEC: f64 = 50_000.0;
const TARGET_APPEND_P99: Duration = Duration::from_millis(50);
const TARGET_PROOF_P99: Duration = Duration::from_micros(50);

/// What to run and how long; see the module docs for the variables.
struct Settings {
    runs: usize,
    seconds: f64,
    concurrency: Vec<usize>,
    rate: f64,
    latency_seconds: f64,
    proof_sizes: Vec<u64>,
    proofs: usize,
    build_tasks: usize,
    dir: Option<PathBuf>,
    only: Vec<String>,
}

impl Settings {
    fn from_env() -> Result<Self> {
        // `cargo bench` passes `--bench`; anything else (cargo test --benches) gets a smoke run.
        let full = std::env::args().any(|a| a == "--bench");
        let pick = |full_value: &str, smoke: &str| if full { full_value.to_owned() } else { smoke.to_owned() };
        Ok(Settings {
            runs: env_or("BENCH_RUNS", &pick("3", "1"))?,
            seconds: env_or("BENCH_SECONDS", &pick("5", "0.5"))?,
            concurrency: env_list("BENCH_CONCURRENCY", "1,16,256")?,
            rate: env_or("BENCH_RATE", "1000")?,
            latency_seconds: env_or("BENCH_LATENCY_SECONDS", &pick("10", "1"))?,
            proof_sizes: env_list("BENCH_PROOF_SIZES", &pick("1000000,10000000", "5000"))?,
            proofs: env_or("BENCH_PROOFS", &pick("100000", "1000"))?,
            build_tasks: env_or("BENCH_BUILD_TASKS", "4096")?,
            dir: std::env::var_os("BENCH_DIR").map(PathBuf::from),
            only: env_list("BENCH_ONLY", "appends,latency,proofs")?,
        })
    }

    fn wants(&self, part: &str) -> bool {
        self.only.iter().any(|p| p == part)
    }
}

fn env_or<T: FromStr>(name: &str, default: &str) -> Result<T> {
    let raw = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    raw.trim().parse().map_err(|_| anyhow::anyhow!("{name}={raw:?} is not a valid value"))
}

fn env_list<T: FromStr>(name: &str, default: &str) -> Result<Vec<T>> {
    let raw = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().map_err(|_| anyhow::anyhow!("{name}: {s:?} is not a valid value")))
        .collect()
}

fn main() -> Result<()> {
    let settings = Settings::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> Result<()> {
    println!(
        "ctlog log benchmark — {} cores, {} run(s) per measurement, median of runs shown [min–max]",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        settings.runs
    );
    if settings.wants("appends") {
        appends_table(&settings).await?;
    }
    if settings.wants("latency") {
        latency_table(&settings).await?;
    }
    if settings.wants("proofs") {
        proofs_table(&settings).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The log under test

/// A fresh log in its own temporary directory: store, sequencer thread and key.
struct BenchLog {
    dir: LogDir,
    store: Arc<LogStore>,
    sequencer: Sequencer,
    key: Arc<LogSigningKey>,
    /// Joined by [`BenchLog::close`], so a kept log is closed cleanly (redb walks a whole
    /// file that was not closed at its next open: minutes at 100M leaves).
    thread: SequencerThread,
    /// Source of unique blob hashes, so no two events of a run are equal.
    next_blob: Arc<AtomicU64>,
}

/// Where a benchmark log lives: a temporary directory, or one that is kept.
enum LogDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl LogDir {
    fn path(&self) -> &std::path::Path {
        match self {
            LogDir::Temporary(dir) => dir.path(),
            LogDir::Kept(dir) => dir,
        }
    }
}

impl BenchLog {
    /// A fresh log in a temporary directory (under `BENCH_DIR` if set).
    fn open(settings: &Settings) -> Result<Self> {
        let dir = match &settings.dir {
            Some(parent) => tempfile::tempdir_in(parent)?,
            None => tempfile::tempdir()?,
        };
        let key = Arc::new(LogSigningKey::generate()?);
        Self::open_in(LogDir::Temporary(dir), key)
    }

    /// The large log of part 3: kept in `BENCH_DIR/large-log` (reopened with its key if it
    /// exists), else temporary.
    fn open_large(settings: &Settings) -> Result<Self> {
        let Some(parent) = &settings.dir else { return Self::open(settings) };
        let dir = parent.join("large-log");
        std::fs::create_dir_all(&dir)?;
        let (key, _) = LogSigningKey::load_or_generate(&dir.join("log.key"))?;
        Self::open_in(LogDir::Kept(dir), Arc::new(key))
    }

    fn open_in(dir: LogDir, key: Arc<LogSigningKey>) -> Result<Self> {
        // `BENCH_CACHE_MIB`: the service's `cache_mib` (default: the service's default).
        let cache_bytes = std::env::var("BENCH_CACHE_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(ctlog::store::DEFAULT_CACHE_BYTES, |mib| mib << 20);
        let store = Arc::new(LogStore::open_with_cache(&dir.path().join("ctlog.redb"), cache_bytes)?);
        let config = SequencerConfig { relay_id: "bench".into(), refresh_interval: Duration::from_secs(3600) };
        let (sequencer, _, thread) =
            Sequencer::start(store.clone(), key.clone(), config, ctlog::sequencer::exit_on_storage_fault())?;
        let size = store.snapshot()?.tree_size()?;
        Ok(BenchLog { dir, store, sequencer, key, thread, next_blob: Arc::new(AtomicU64::new(size)) })
    }

    /// Stops the sequencer and closes the store (the index threads stop with it).
    fn close(self) {
        let BenchLog { dir, store, sequencer, thread, .. } = self;
        drop(sequencer);
        thread.join();
        drop(store);
        drop(dir);
    }

    fn db_path(&self) -> PathBuf {
        self.dir.path().join("ctlog.redb")
    }

    fn size(&self) -> Result<u64> {
        Ok(self.store.snapshot()?.tree_size()?)
    }

    /// Appends one transfer event with a fresh blob hash; `Ok` only when acknowledged.
    async fn append_one(sequencer: &Sequencer, next_blob: &AtomicU64) -> Result<()> {
        let n = next_blob.fetch_add(1, Ordering::Relaxed);
        sequencer.append(transfer(n)).await?;
        Ok(())
    }

    /// The head the sequencer last stored verifies with the key and matches the tree.
    fn check_head(&self, expected_size: u64) -> Result<()> {
        let snapshot = self.store.snapshot()?;
        let sth = snapshot.latest_sth()?.context("no STH")?;
        sth.verify(&self.key.verifying_key())?;
        ensure!(sth.body.tree_size == expected_size, "STH size {} != {expected_size}", sth.body.tree_size);
        ensure!(snapshot.tree_size()? == expected_size, "tree size differs from acknowledged appends");
        ensure!(hex::encode(snapshot.root_at(expected_size)?) == sth.body.sha3_root, "root differs");
        Ok(())
    }
}

/// A transfer event whose blob hash is `n` as 64 hex digits (hex-encoded bytes rather than
/// `format!`, which would cost the appenders' two cores more than the sequencer's own work).
fn transfer(n: u64) -> LogEvent {
    let mut blob = [0u8; 32];
    blob[24..].copy_from_slice(&n.to_be_bytes());
    LogEvent::Transfer {
        blob_hash: hex::encode(blob),
        sector: "health".into(),
        // The sequencer stamps the batch time over this.
        timestamp: String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Durable appends per second

struct Throughput {
    per_sec: f64,
    mean_batch: f64,
    /// CPU time of the whole process (sequencer, signer, appender tasks) per append: less
    /// disturbed by a busy machine than wall-clock rates.
    cpu_per_append: Duration,
    /// Bytes this process caused to be written to storage, per append (`/proc/self/io`).
    disk_per_append: f64,
    /// CPU time of the sequencer thread per append (the serial part every append waits for).
    sequencer_cpu_per_append: Duration,
    /// CPU time of the leaf-hash indexer thread per append (runs beside the sequencer).
    indexer_cpu_per_append: Duration,
}

async fn appends_table(settings: &Settings) -> Result<()> {
    println!("\n## Durable appends/s (closed loop, {:.1} s per run after 0.5 s warm-up)\n", settings.seconds);
    println!("{}\n", machine_load());
    println!(
        "| appenders | appends/s | mean batch (appends per STH) | CPU per append (sequencer thread, indexer thread) \
         | disk writes per append | target |"
    );
    println!("|---:|---:|---:|---:|---:|---|");
    let most = settings.concurrency.iter().copied().max().unwrap_or(0);
    for &tasks in &settings.concurrency {
        let mut runs = Vec::new();
        for _ in 0..settings.runs {
            runs.push(throughput(settings, tasks).await?);
        }
        let per_sec: Vec<f64> = runs.iter().map(|r| r.per_sec).collect();
        let batch: Vec<f64> = runs.iter().map(|r| r.mean_batch).collect();
        let cpu: Vec<f64> = runs.iter().map(|r| r.cpu_per_append.as_secs_f64()).collect();
        let disk: Vec<f64> = runs.iter().map(|r| r.disk_per_append).collect();
        let sequencer: Vec<f64> = runs.iter().map(|r| r.sequencer_cpu_per_append.as_secs_f64()).collect();
        let indexer: Vec<f64> = runs.iter().map(|r| r.indexer_cpu_per_append.as_secs_f64()).collect();
        // A closed-loop appender waits a whole sign + fsync per append, so few appenders
        // cannot reach the target by design; it is judged where batches can fill.
        let target = if tasks == most {
            format!("≥ {TARGET_APPENDS_PER_SEC:.0}/s: {}", verdict(median(&per_sec) >= TARGET_APPENDS_PER_SEC))
        } else {
            "— (bound by sign + fsync per round trip)".to_owned()
        };
        println!(
            "| {tasks} | {} | {:.1} | {} ({}, {}) | {:.1} KiB | {target} |",
            spread(&per_sec, |v| format!("{v:.0}")),
            median(&batch),
            fmt_secs(median(&cpu)),
            fmt_secs(median(&sequencer)),
            fmt_secs(median(&indexer)),
            median(&disk) / 1024.0,
        );
    }
    Ok(())
}

/// `tasks` appenders loop until the deadline on a fresh log; counts appends acknowledged inside
/// the window.
async fn throughput(settings: &Settings, tasks: usize) -> Result<Throughput> {
    throughput_on(&BenchLog::open(settings)?, settings, tasks).await
}

/// [`throughput`] on `log` as it is (the large log at its current size).
async fn throughput_on(log: &BenchLog, settings: &Settings, tasks: usize) -> Result<Throughput> {
    let base = log.size()?;
    log.next_blob.store(base, Ordering::Relaxed);
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (sequencer, next_blob) = (log.sequencer.clone(), log.next_blob.clone());
        let (counting, stop, acked) = (counting.clone(), stop.clone(), acked.clone());
        handles.push(tokio::spawn(async move {
            let mut total = 0u64;
            while !stop.load(Ordering::Relaxed) {
                BenchLog::append_one(&sequencer, &next_blob).await?;
                total += 1;
                if counting.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(total)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sths_before = sth_count(&log.store)?;
    let cpu_before = process_cpu()?;
    let threads_before = [thread_cpu("sequencer")?, indexer_cpu()?];
    let disk_before = process_disk_writes()?;
    counting.store(true, Ordering::Relaxed);
    let window = Duration::from_secs_f64(settings.seconds);
    let start = Instant::now();
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let cpu = process_cpu()?.saturating_sub(cpu_before);
    let threads =
        [thread_cpu("sequencer")?.saturating_sub(threads_before[0]), indexer_cpu()?.saturating_sub(threads_before[1])];
    let disk = process_disk_writes()?.saturating_sub(disk_before);
    let sths_after = sth_count(&log.store)?;
    let mut total = 0;
    for handle in handles {
        total += handle.await??;
    }
    log.check_head(base + total)?;
    let in_window = acked.load(Ordering::Relaxed);
    let batches = (sths_after - sths_before).max(1);
    Ok(Throughput {
        per_sec: in_window as f64 / elapsed.as_secs_f64(),
        mean_batch: in_window as f64 / batches as f64,
        cpu_per_append: cpu / u32::try_from(in_window.max(1))?,
        disk_per_append: disk as f64 / in_window.max(1) as f64,
        sequencer_cpu_per_append: threads[0] / u32::try_from(in_window.max(1))?,
        indexer_cpu_per_append: threads[1] / u32::try_from(in_window.max(1))?,
    })
}

/// User + system CPU time of this process's threads named `name` (`/proc/self/task/*/stat`).
fn thread_cpu(name: &str) -> Result<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task")? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else { continue };
        if stat.split_once('(').and_then(|(_, rest)| rest.rsplit_once(')')).is_some_and(|(comm, _)| comm == name) {
            total += cpu_of_stat(&stat)?;
        }
    }
    Ok(total)
}

/// CPU time of the leaf-hash index threads (the run writer and the merger).
fn indexer_cpu() -> Result<Duration> {
    Ok(thread_cpu("leaf-index")? + thread_cpu("leaf-index-mrg")?)
}

/// Bytes of the files in `dir` (the index runs).
fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// Bytes this process has caused to be sent to storage (`write_bytes` of `/proc/self/io`).
fn process_disk_writes() -> Result<u64> {
    let io = std::fs::read_to_string("/proc/self/io")?;
    let line = io.lines().find_map(|l| l.strip_prefix("write_bytes:")).context("/proc/self/io format")?;
    Ok(line.trim().parse()?)
}

/// The load average when a table starts: the machine is shared, so say how busy it was.
fn machine_load() -> String {
    format!("Machine load (1-minute average) before measuring: {}.", machine_load_value())
}

fn machine_load_value() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().next().unwrap_or("?").to_owned()
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (fields 14 and 15,
/// in USER_HZ ticks, which Linux fixes at 100 per second for user space).
fn process_cpu() -> Result<Duration> {
    cpu_of_stat(&std::fs::read_to_string("/proc/self/stat")?)
}

/// User + system CPU time in a `stat` line of `/proc` (a process's or a thread's).
fn cpu_of_stat(stat: &str) -> Result<Duration> {
    // The command name (field 2) may contain spaces; the fields after it cannot.
    let after_name = stat.rsplit_once(')').context("/proc/self/stat format")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> { Ok(fields.get(i).context("/proc/self/stat fields")?.parse()?) };
    // After the name, field 3 (state) is index 0, so fields 14 and 15 are indices 11 and 12.
    Ok(Duration::from_millis(10 * (ticks(11)? + ticks(12)?)))
}

fn sth_count(store: &LogStore) -> Result<u64> {
    Ok(store.snapshot()?.sth_history(0)?.1)
}

// ---------------------------------------------------------------------------------------------
// 2. Append → signed STH latency, open loop

struct LatencyRun {
    offered: f64,
    append: Percentiles,
    from_schedule: Percentiles,
}

async fn latency_table(settings: &Settings) -> Result<()> {
    println!(
        "\n## Append → durable signed STH latency (open loop, {:.0} appends/s offered, {:.0} s per run after 1 s warm-up)\n",
        settings.rate, settings.latency_seconds
    );
    println!("{}\n", machine_load());
    let mut runs = Vec::new();
    for _ in 0..settings.runs {
        runs.push(open_loop(settings).await?);
    }
    print_latency_rows(
        "measured from",
        &runs,
        &[
            Row { name: "`append()` call (what a caller waits)", pick: |r| &r.append, target: Some(TARGET_APPEND_P99) },
            Row { name: "scheduled send time (adds timer + spawn delay)", pick: |r| &r.from_schedule, target: None },
        ],
    );
    let offered: Vec<f64> = runs.iter().map(|r| r.offered).collect();
    println!("\nOffered rate achieved: {}/s.", spread(&offered, |v| format!("{v:.0}")));
    Ok(())
}

/// Spawns one append task per `1 / rate` seconds on an absolute schedule; returns latencies of
/// the appends after the warm-up second.
async fn open_loop(settings: &Settings) -> Result<LatencyRun> {
    let log = BenchLog::open(settings)?;
    let interval = Duration::from_secs_f64(1.0 / settings.rate);
    let warm_up = settings.rate.round() as usize;
    let total = warm_up + (settings.rate * settings.latency_seconds).round() as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut handles = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let (sequencer, next_blob) = (log.sequencer.clone(), log.next_blob.clone());
        handles.push(tokio::spawn(async move {
            let called = Instant::now();
            BenchLog::append_one(&sequencer, &next_blob).await?;
            anyhow::Ok((called.elapsed(), due.elapsed()))
        }));
    }
    let offered = (total - 1) as f64 / start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let mut append = Vec::with_capacity(total);
    let mut from_schedule = Vec::with_capacity(total);
    for (i, handle) in handles.into_iter().enumerate() {
        let (a, s) = handle.await??;
        if i >= warm_up {
            append.push(a);
            from_schedule.push(s);
        }
    }
    log.check_head(total as u64)?;
    Ok(LatencyRun { offered, append: Percentiles::of(append), from_schedule: Percentiles::of(from_schedule) })
}

// ---------------------------------------------------------------------------------------------
// 3. Proof latency at large tree sizes

async fn proofs_table(settings: &Settings) -> Result<()> {
    println!(
        "\n## Large trees: build rate, bytes, proofs ({} random proofs per run against the current size, on a \
         held snapshot unless noted) and durable appends at each size",
        settings.proofs
    );
    let log = BenchLog::open_large(settings)?;
    let mut size = log.size()?;
    if size > 0 {
        println!("\nReopened the kept log at {} with {size} leaves.", log.dir.path().display());
    }
    let appenders = settings.concurrency.iter().copied().max().unwrap_or(256);
    for &target in &settings.proof_sizes {
        if target > size {
            let cpu_before = [thread_cpu("sequencer")?, indexer_cpu()?];
            let took = build_to(&log, size, target, settings.build_tasks).await?;
            let leaves = u32::try_from((target - size).max(1))?;
            let sequencer = thread_cpu("sequencer")?.saturating_sub(cpu_before[0]) / leaves;
            let indexer = indexer_cpu()?.saturating_sub(cpu_before[1]) / leaves;
            println!(
                "\n### {} leaves\n\nBuilt {} → {} through the sequencer with {} concurrent appenders in {:.1} s \
                 ({:.0} appends/s); CPU per leaf: sequencer thread {}, leaf-hash index threads {}.",
                human(target),
                human(size),
                human(target),
                settings.build_tasks,
                took.as_secs_f64(),
                f64::from(leaves) / took.as_secs_f64(),
                fmt_secs(sequencer.as_secs_f64()),
                fmt_secs(indexer.as_secs_f64()),
            );
            size = target;
        } else {
            println!("\n### {} leaves (the kept log has {size}: not built again)", human(target));
        }
        log.check_head(size)?;
        let bytes = std::fs::metadata(log.db_path())?.len();
        let index_bytes = dir_bytes(&ctlog::store::index_path(&log.db_path()))?;
        println!(
            "\nLog file {:.2} GiB ({:.0} B/leaf); leaf-hash index {:.2} GiB ({:.1} B/leaf).\n",
            bytes as f64 / f64::from(1u32 << 30),
            bytes as f64 / size as f64,
            index_bytes as f64 / f64::from(1u32 << 30),
            index_bytes as f64 / size as f64,
        );
        // The table walk reads the whole file: only up to 10M leaves (the shares do not change).
        if size <= 10_000_000 {
            println!("{}", log.store.space_report()?);
        }
        println!("{}\n", machine_load());
        // What the service does at start-up (`ctlog::warm`), done here before timing proofs.
        let memory = harden::physical_memory_bytes().unwrap_or(0);
        if ctlog::warm::worth_warming(size, memory) {
            let warmed = ctlog::warm::read_all_tiles(&log.store)?;
            println!(
                "Hash tiles preloaded as the service does at start-up: {:.2} GiB in {:.1} s ({}).\n",
                warmed.bytes as f64 / f64::from(1u32 << 30),
                warmed.took.as_secs_f64(),
                machine_load()
            );
        } else {
            println!("Hash tiles not preloaded: they take more than half of the memory (as the service decides).\n");
        }
        let mut runs = Vec::new();
        for run in 0..settings.runs {
            runs.push(proof_run(&log.store, size, settings.proofs, run as u64)?);
        }
        print_proof_table(&runs);
        let mut appends = Vec::new();
        for _ in 0..settings.runs {
            appends.push(throughput_on(&log, settings, appenders).await?);
        }
        size = log.size()?;
        let per_sec: Vec<f64> = appends.iter().map(|r| r.per_sec).collect();
        let median_of = |f: fn(&Throughput) -> Duration| {
            fmt_secs(median(&appends.iter().map(|r| f(r).as_secs_f64()).collect::<Vec<_>>()))
        };
        println!(
            "\nDurable appends at this size, {appenders} appenders ({:.1} s per run; {}): {}/s; CPU per append {} \
             (sequencer {}, index {}); {:.1} appends per STH; the log has {size} leaves after it. Target at 100M: \
             ≥ 30000/s.",
            settings.seconds,
            machine_load(),
            spread(&per_sec, |v| format!("{v:.0}")),
            median_of(|r| r.cpu_per_append),
            median_of(|r| r.sequencer_cpu_per_append),
            median_of(|r| r.indexer_cpu_per_append),
            median(&appends.iter().map(|r| r.mean_batch).collect::<Vec<_>>()),
        );
    }
    log.close();
    Ok(())
}

/// Appends leaves `from..to` through the sequencer with `tasks` concurrent appenders.
async fn build_to(log: &BenchLog, from: u64, to: u64, tasks: usize) -> Result<Duration> {
    let start = Instant::now();
    let next = Arc::new(AtomicU64::new(from));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (sequencer, next) = (log.sequencer.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= to {
                    return anyhow::Ok(());
                }
                sequencer.append(transfer(n)).await?;
            }
        }));
    }
    let progress = tokio::spawn(report_progress(next.clone(), from, to, start));
    for handle in handles {
        handle.await??;
    }
    progress.abort();
    Ok(start.elapsed())
}

async fn report_progress(next: Arc<AtomicU64>, from: u64, to: u64, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    tick.tick().await;
    let cpu = || [thread_cpu("sequencer").unwrap_or_default(), indexer_cpu().unwrap_or_default()];
    let (mut last_done, mut last_at, mut last_cpu) = (0, Instant::now(), cpu());
    loop {
        tick.tick().await;
        let done = next.load(Ordering::Relaxed).min(to) - from;
        let rate = done as f64 / start.elapsed().as_secs_f64();
        let recent = (done - last_done) as f64 / last_at.elapsed().as_secs_f64();
        let now_cpu = cpu();
        // CPU per leaf of the sequencer and indexer threads: what the tree size changes,
        // unlike wall-clock rates on a shared machine.
        let per_leaf = |i: usize| {
            let leaves = (done - last_done).max(1) as f64;
            fmt_secs(now_cpu[i].saturating_sub(last_cpu[i]).as_secs_f64() / leaves)
        };
        eprintln!(
            "  building: {} of {} leaves ({rate:.0}/s since {}, {recent:.0}/s in the last 15 s; CPU per leaf: \
             sequencer {}, indexer {}; load {})",
            from + done,
            to,
            human(from),
            per_leaf(0),
            per_leaf(1),
            machine_load_value()
        );
        (last_done, last_at, last_cpu) = (done, Instant::now(), now_cpu);
    }
}

struct ProofRun {
    inclusion: Percentiles,
    /// The whole `/v2/ct/proof` read path: snapshot, leaf, inclusion proof, root at size.
    served: Percentiles,
    consistency: Percentiles,
}

fn proof_run(store: &LogStore, size: u64, count: usize, run: u64) -> Result<ProofRun> {
    let snapshot = store.snapshot()?;
    let mut rng = SplitMix64(size ^ (run << 40) ^ 0x5eed);
    let root = snapshot.root_at(size)?;
    // One kind of proof at a time: the served path reads leaf rows, which at 100M leaves come
    // from the disk, and its reads would otherwise be timed into the proofs around them.
    let mut inclusion = Vec::with_capacity(count);
    for i in 0..count {
        let index = rng.below(size);
        let started = Instant::now();
        let proof = snapshot.inclusion_proof(index, size)?;
        inclusion.push(started.elapsed());
        if i % 1000 == 0 {
            check_inclusion(&snapshot, index, size, &proof, &root)?;
        }
    }
    let mut consistency = Vec::with_capacity(count);
    for i in 0..count {
        let old = 1 + rng.below(size);
        let started = Instant::now();
        let proof = snapshot.consistency_proof(old, size)?;
        consistency.push(started.elapsed());
        if i % 1000 == 0 {
            let old_root = snapshot.root_at(old)?;
            tlog::verify_consistency::<Sha3_256>(old, size, &proof, &old_root, &root)?;
        }
    }
    let mut served = Vec::with_capacity(count);
    for _ in 0..count {
        served.push(time_served_proof(store, rng.below(size), size)?);
    }
    Ok(ProofRun {
        inclusion: Percentiles::of(inclusion),
        served: Percentiles::of(served),
        consistency: Percentiles::of(consistency),
    })
}

/// What the service does per `/v2/ct/proof` request (without HTTP and JSON).
fn time_served_proof(store: &LogStore, index: u64, size: u64) -> Result<Duration> {
    let started = Instant::now();
    let snapshot = store.snapshot()?;
    let leaf = snapshot.leaf(index)?.context("leaf")?;
    let proof = snapshot.inclusion_proof(index, size)?;
    let root = snapshot.root_at(size)?;
    let took = started.elapsed();
    std::hint::black_box((leaf, proof, root));
    Ok(took)
}

/// Proofs are checked now and then, so the benchmark cannot time wrong answers.
fn check_inclusion(snapshot: &Snapshot, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<()> {
    let leaf = snapshot.leaf(index)?.context("leaf")?;
    tlog::verify_inclusion::<Sha3_256>(index, size, &leaf.leaf_hash, proof, root)?;
    Ok(())
}

fn print_proof_table(runs: &[ProofRun]) {
    print_latency_rows(
        "proof",
        runs,
        &[
            Row {
                name: "inclusion (`Snapshot::inclusion_proof`)",
                pick: |r| &r.inclusion,
                target: Some(TARGET_PROOF_P99),
            },
            Row { name: "inclusion as served (new snapshot + leaf + proof + root)", pick: |r| &r.served, target: None },
            Row { name: "consistency (`Snapshot::consistency_proof`)", pick: |r| &r.consistency, target: None },
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting

/// A row of a latency table: which percentiles of a run it shows, and the p99 target if the
/// row is judged against one.
struct Row<R> {
    name: &'static str,
    pick: fn(&R) -> &Percentiles,
    target: Option<Duration>,
}

/// Prints one row per `rows` entry: each percentile as the median of the runs [min–max].
fn print_latency_rows<R>(first_column: &str, runs: &[R], rows: &[Row<R>]) {
    println!("| {first_column} | p50 | p90 | p99 | p99.9 | max | target |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let of_runs = |f: fn(&Percentiles) -> Duration| -> Vec<f64> {
            runs.iter().map(|r| f((row.pick)(r)).as_secs_f64()).collect()
        };
        let stat = |f: fn(&Percentiles) -> Duration| spread(&of_runs(f), fmt_secs);
        let target = row.target.map_or(String::new(), |limit| {
            let met = median(&of_runs(|p| p.p99)) <= limit.as_secs_f64();
            format!("p99 ≤ {}: {}", fmt_secs(limit.as_secs_f64()), verdict(met))
        });
        println!(
            "| {} | {} | {} | {} | {} | {} | {target} |",
            row.name,
            stat(|p| p.p50),
            stat(|p| p.p90),
            stat(|p| p.p99),
            stat(|p| p.p999),
            stat(|p| p.max)
        );
    }
}

#[derive(Clone, Copy)]
struct Percentiles {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
            samples.get(i.min(samples.len().saturating_sub(1))).copied().unwrap_or_default()
        };
        Percentiles { p50: at(0.50), p90: at(0.90), p99: at(0.99), p999: at(0.999), max: at(1.0) }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `median [min–max]` of several runs, or the value alone for one run.
fn spread(values: &[f64], fmt: impl Fn(f64) -> String) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 {
        return fmt(median(values));
    }
    format!("{} [{}–{}]", fmt(median(values)), fmt(min), fmt(max))
}

fn fmt_secs(s: f64) -> String {
    if s >= 1e-3 { format!("{:.1} ms", s * 1e3) } else { format!("{:.1} µs", s * 1e6) }
}

fn human(n: u64) -> String {
    match n {
        0 => "0".into(),
        n if n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// A tiny deterministic PRNG (SplitMix64), so runs pick the same indices without a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for picking proof indices (n ≪ 2^64).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
