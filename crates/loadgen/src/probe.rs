//! What `/proc` says about the machine and the processes under test: memory (VmRSS, VmHWM),
//! CPU time, CPU model and load.

use std::time::Instant;

/// Kernel clock ticks per second in `/proc/*/stat` (USER_HZ, fixed at 100 on Linux).
const USER_HZ: f64 = 100.0;

/// Resident and peak resident memory of a process, bytes.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    pub rss: u64,
    pub hwm: u64,
}

/// VmRSS and VmHWM of `pid` (None when the process is gone).
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    };
    Some(Memory { rss: field("VmRSS:")?, hwm: field("VmHWM:")? })
}

/// User + system CPU seconds `pid` has used so far (all threads).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// CPU time of several processes between two instants, as a share of one core each.
pub struct CpuMeter {
    pids: Vec<(&'static str, u32)>,
    start: Vec<f64>,
    at: Instant,
}

impl CpuMeter {
    pub fn start(pids: &[(&'static str, u32)]) -> Self {
        let start = pids.iter().map(|(_, pid)| cpu_seconds(*pid).unwrap_or(0.0)).collect();
        Self { pids: pids.to_vec(), start, at: Instant::now() }
    }

    /// (name, cores used on average) since `start`.
    pub fn finish(&self) -> Vec<(&'static str, f64)> {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        self.pids
            .iter()
            .zip(&self.start)
            .map(|((name, pid), start)| (*name, (cpu_seconds(*pid).unwrap_or(*start) - start) / wall))
            .collect()
    }
}

/// Logical CPUs this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The CPU model named in /proc/cpuinfo.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, model)| model.trim().to_owned())
}

/// The 1, 5 and 15 minute load averages, as /proc/loadavg prints them.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The running kernel's release.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |s| s.trim().to_owned())
}

/// Total memory of the machine, bytes.
pub fn mem_total() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}
