//! Closed-loop load: N clients, each issuing its next request as soon as the previous one is
//! answered, for a warm-up and then a measured window. Only requests that complete inside the
//! window count; each client keeps its own latency list (no shared state on the hot path).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::client::Failure;
use crate::probe::CpuMeter;

/// Warm-up and measured durations.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one scenario measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Requests (or cycles) that succeeded inside the window.
    pub completed: u64,
    /// Their latencies, sorted, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Failures inside the window, by kind.
    pub failures: BTreeMap<Failure, u64>,
    /// The measured window's length.
    pub seconds: f64,
    /// Average cores used per process during the window.
    pub cpu: Vec<(&'static str, f64)>,
}

impl Outcome {
    pub fn per_sec(&self) -> f64 {
        self.completed as f64 / self.seconds.max(1e-9)
    }

    /// The `q`-quantile latency in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.latencies_us.len() as f64).ceil() as usize).clamp(1, self.latencies_us.len());
        self.latencies_us[rank - 1] as f64 / 1000.0
    }
}

/// One client's share of the outcome.
#[derive(Default)]
struct ClientLog {
    latencies_us: Vec<u64>,
    failures: BTreeMap<Failure, u64>,
}

/// Runs `clients` loops of `op(client)` through `window`, measuring the CPU use of `pids`
/// during the measured part.
pub async fn drive<F, Fut>(clients: usize, window: Window, pids: &[(&'static str, u32)], op: F) -> Outcome
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let begin = Instant::now();
    let (from, until) = (begin + window.warmup, begin + window.warmup + window.measure);
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut log = ClientLog::default();
                while Instant::now() < until {
                    let started = Instant::now();
                    let result = op(client).await;
                    let done = Instant::now();
                    if done < from || done > until {
                        continue;
                    }
                    match result {
                        Ok(()) => log.latencies_us.push((done - started).as_micros() as u64),
                        Err(failure) => *log.failures.entry(failure).or_default() += 1,
                    }
                }
                log
            })
        })
        .collect();
    tokio::time::sleep_until(from.into()).await;
    let meter = CpuMeter::start(pids);
    tokio::time::sleep_until(until.into()).await;
    let cpu = meter.finish();
    let mut outcome = Outcome { seconds: window.measure.as_secs_f64(), cpu, ..Outcome::default() };
    for task in tasks {
        // A client task only panics on a bug in this program; its share is then missing.
        let Ok(log) = task.await else { continue };
        outcome.latencies_us.extend(log.latencies_us);
        for (failure, n) in log.failures {
            *outcome.failures.entry(failure).or_default() += n;
        }
    }
    outcome.completed = outcome.latencies_us.len() as u64;
    outcome.latencies_us.sort_unstable();
    outcome
}
