//! The markdown report: machine, load, and each number next to its target.

use std::fmt::Write;

use crate::drive::Outcome;
use crate::probe::{self, Memory};
use crate::scenario::{MIB, MemoryReport, RunReport, Settings};

/// Targets on 2 cores (the numbers).
const SMALL_UPLOADS_PER_SEC: f64 = 10_000.0;
const LARGE_SHARE_OF_BOUND: f64 = 0.80;
const RSS_FACTOR: f64 = 1.1;
const RSS_SLACK: u64 = 64 << 20;

/// The machine, once per report.
pub fn machine(settings: &Settings) -> String {
    format!(
        "Machine: {} × {}, {:.1} GiB RAM, Linux {}. Services: `{}` (ctlog + relay, plain HTTP on \
         loopback); the load generator shares the same cores. Window: {} s warm-up, {} s measured; \
         closed loop (each client sends its next request when the previous one is answered).\n",
        probe::cores(),
        probe::cpu_model(),
        probe::mem_total() as f64 / (1u64 << 30) as f64,
        probe::kernel(),
        settings.paramant.display(),
        settings.window.warmup.as_secs(),
        settings.window.measure.as_secs(),
    )
}

/// One run's table.
pub fn run(index: usize, runs: usize, settings: &Settings, report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### Run {index} of {runs} — {}\n", wire::iso8601_ms(report.started_ms));
    let _ = writeln!(out, "Load average (1/5/15 min) before: {}; after: {}.\n", report.load_before, report.load_after);
    out += "| Measurement | Clients | Result | p50 | p99 | Target | Met | Cores busy: relay / ctlog / loadgen | Failures |\n";
    out += "|---|---:|---|---:|---:|---|---|---|---|\n";
    if let Some(small) = &report.small_uploads {
        out += &row(
            "1 KiB uploads",
            settings.small_clients,
            small,
            &format!("{} /s", thousands(small.per_sec())),
            &target(small.per_sec() >= SMALL_UPLOADS_PER_SEC, "≥ 10,000 /s"),
        );
    }
    if let (Some(bound), Some(large)) = (&report.bound, &report.large_uploads) {
        let share = large.per_sec() / bound.uploads_per_sec();
        let result = format!(
            "{} /s ({:.2} GB/s of payload) = {:.0} % of bound",
            dec1(large.per_sec()),
            large.per_sec() * 5.0 * MIB as f64 / 1e9,
            share * 100.0
        );
        out += &row(
            "5 MiB uploads",
            settings.large_clients,
            large,
            &result,
            &target(share >= LARGE_SHARE_OF_BOUND, "≥ 80 % of bound"),
        );
        let bound_row = |name: &str, rate: f64, decoder: &str, decode_secs: f64, note: String| {
            format!(
                "| {name} | – | {} /s = {} cores ÷ ({decoder} decode {:.2} ms + SHA-256 {:.2} ms per upload on one core, wall){note} | | | | | | |\n",
                dec1(rate),
                bound.cores,
                decode_secs * 1e3,
                bound.hash_secs * 1e3,
            )
        };
        out += &bound_row(
            "machine bound, 5 MiB",
            bound.uploads_per_sec(),
            "SIMD base64",
            bound.decode_secs,
            format!("; {:.2} ms CPU", bound.cpu_secs * 1e3),
        );
        out += &bound_row(
            "the same with the scalar decoder of the issue's first bound",
            bound.scalar_uploads_per_sec(),
            "the `base64` crate's scalar",
            bound.scalar_decode_secs,
            format!("; the uploads are {:.0} % of it", 100.0 * large.per_sec() / bound.scalar_uploads_per_sec()),
        );
    }
    if let Some(cycles) = &report.small_cycles {
        out += &row(
            "1 KiB upload+download cycles",
            settings.small_clients,
            cycles,
            &format!("{} /s", thousands(cycles.per_sec())),
            "(none) | ",
        );
    }
    if let Some(cycles) = &report.large_cycles {
        out += &row(
            "5 MiB upload+download cycles",
            settings.large_clients,
            cycles,
            &format!("{} /s", dec1(cycles.per_sec())),
            "(none) | ",
        );
    }
    if let Some(memory) = &report.memory {
        out += &memory_rows(settings, report, memory);
    }
    out += &cpu_table(report);
    out
}

/// CPU time per operation, which the machine's other tenants disturb far less than throughput
/// and latency, and the rate the cores could sustain at that cost if they were all ours.
fn cpu_table(report: &RunReport) -> String {
    let mut out = String::from(
        "\n| CPU per operation | relay | ctlog | loadgen | all cores could sustain at this cost |\n|---|---:|---:|---:|---:|\n",
    );
    let cores = probe::cores() as f64;
    for (name, o) in [
        ("1 KiB upload", &report.small_uploads),
        ("5 MiB upload", &report.large_uploads),
        ("1 KiB upload+download cycle", &report.small_cycles),
        ("5 MiB upload+download cycle", &report.large_cycles),
    ] {
        let Some(o) = o else { continue };
        let per_op: Vec<f64> = o.cpu.iter().map(|(_, busy)| busy / o.per_sec().max(1e-9)).collect();
        let total: f64 = per_op.iter().sum();
        let cells: Vec<String> = per_op.iter().map(|secs| duration(*secs)).collect();
        let _ = writeln!(out, "| {name} | {} | {} /s |", cells.join(" | "), thousands(cores / total.max(1e-9)));
    }
    if let (Some(b), Some(large)) = (&report.bound, &report.large_uploads) {
        let relay_large = large.cpu.first().map_or(0.0, |(_, busy)| busy / large.per_sec().max(1e-9));
        let _ = writeln!(
            out,
            "\nThe relay spent {} of CPU per 5 MiB upload; its SIMD base64 decode + SHA-256 alone take {} of CPU \
             ({:.0} % of the relay's cost); with the scalar decoder of the issue's first bound, {} ({:.0} %).",
            duration(relay_large),
            duration(b.cpu_secs),
            100.0 * b.cpu_secs / relay_large.max(1e-9),
            duration(b.scalar_cpu_secs()),
            100.0 * b.scalar_cpu_secs() / relay_large.max(1e-9)
        );
        if let Some(floor) = b.floor_cpu_secs {
            let _ = writeln!(
                out,
                "Receiving the upload's text from a loopback socket as well (the relay's read size), \
                 then decoding and hashing it, takes {} of CPU on one thread with nothing else: \
                 the least a relay here could spend ({:.0} % of the relay's cost).",
                duration(floor),
                100.0 * floor / relay_large.max(1e-9)
            );
        }
    }
    out
}

/// Seconds as µs or ms, whichever reads better.
fn duration(secs: f64) -> String {
    if secs < 1e-3 { format!("{:.0} µs", secs * 1e6) } else { format!("{:.2} ms", secs * 1e3) }
}

/// `target` is the two cells "target | met".
fn row(name: &str, clients: usize, o: &Outcome, result: &str, target: &str) -> String {
    let cpu: Vec<String> = o.cpu.iter().map(|(_, cores)| format!("{cores:.2}")).collect();
    let failures = if o.failures.is_empty() {
        "0".to_owned()
    } else {
        o.failures.iter().map(|(f, n)| format!("{n} × {f}")).collect::<Vec<_>>().join("; ")
    };
    format!(
        "| {name} | {clients} | {result} | {:.1} ms | {:.1} ms | {target} | {} | {failures} |\n",
        o.quantile_ms(0.50),
        o.quantile_ms(0.99),
        cpu.join(" / ")
    )
}

fn memory_rows(settings: &Settings, report: &RunReport, m: &MemoryReport) -> String {
    let limit = (m.stored_bytes as f64 * RSS_FACTOR) as u64 + RSS_SLACK;
    let mut out = String::new();
    let stored = format!(
        "{} for {} MiB stored ({} blobs{})",
        mem(m.with_blobs),
        m.stored_bytes >> 20,
        m.blobs,
        if m.store_failures > 0 { format!(", {} uploads failed", m.store_failures) } else { String::new() }
    );
    let met = m.with_blobs.is_some_and(|w| w.rss <= limit);
    let _ = writeln!(
        out,
        "| relay RSS, 1 GiB of 5 MiB blobs stored (fresh relay) | {} | {stored} | | | {} | | |",
        settings.large_clients,
        target(met, &format!("≤ 1.1 × stored + 64 MiB = {} MiB", limit >> 20))
    );
    let _ = writeln!(out, "| relay RSS, fresh relay before storing | – | {} | | | | | | |", mem(m.idle));
    let _ = writeln!(
        out,
        "| relay RSS after all stored blobs were downloaded (burned) | – | {} 2 s after; {} 15 s after | | | (none) | | | |",
        mem(m.after_burn),
        mem(m.after_burn_later)
    );
    let _ = writeln!(
        out,
        "| relay RSS after the throughput runs, once the 5 MiB blobs expired | – | {} with {} MiB of 1 KiB blobs still stored | | | (none) | | | |",
        mem(report.after_churn),
        report.after_churn_stored >> 20
    );
    out
}

fn target(met: bool, what: &str) -> String {
    format!("{what} | {}", if met { "yes" } else { "**no**" })
}

fn mem(m: Option<Memory>) -> String {
    m.map_or_else(|| "unknown (process gone)".into(), |m| format!("RSS {} MiB (peak {} MiB)", m.rss >> 20, m.hwm >> 20))
}

fn dec1(v: f64) -> String {
    format!("{v:.1}")
}

/// 5432.1 → "5,432".
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated_by_commas() {
        assert_eq!(thousands(5432.4), "5,432");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
