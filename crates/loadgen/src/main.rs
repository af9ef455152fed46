//! `paramant-loadgen`: starts a throwaway log and relay on loopback and measures, with N
//! concurrent clients, 1 KiB and 5 MiB uploads per second with p50/p99 latency, upload+download
//! cycles per second, and the relay's RSS with 1 GiB of blobs stored; prints a markdown report
//! with each number next to its target. `bench/relay.sh` builds and runs it.

mod body;
mod bound;
mod client;
mod drive;
mod probe;
mod report;
mod scenario;
mod services;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use drive::Window;
use scenario::Settings;

const USAGE: &str = "usage: paramant-loadgen [--runs N] [--duration SECS] [--warmup SECS]
                        [--small-clients N] [--large-clients N] [--store-mib MIB] [--paramant PATH]
                        [--only small-uploads]
  --runs N            repeat every measurement N times with fresh services (default 1)
  --duration SECS     measured window per throughput scenario (default 10)
  --warmup SECS       unmeasured warm-up before each window (default 2)
  --small-clients N   concurrent clients for 1 KiB uploads and cycles (default 64)
  --large-clients N   concurrent clients for 5 MiB uploads, cycles and storing (default 8)
  --store-mib MIB     payload stored for the memory measurement (default 1024)
  --paramant PATH     the `paramant` binary (default: $PARAMANT_BIN, else next to this program,
                      else target/release/paramant)
  --only small-uploads  measure only the 1 KiB uploads (for before/after comparisons)";

struct Options {
    runs: usize,
    settings: Settings,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paramant-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("{}", report::machine(&options.settings));
    for index in 1..=options.runs {
        let measured = runtime.block_on(scenario::run(&options.settings))?;
        println!("{}", report::run(index, options.runs, &options.settings, &measured));
    }
    Ok(())
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        runs: 1,
        settings: Settings {
            paramant: default_paramant(),
            window: Window { warmup: Duration::from_secs(2), measure: Duration::from_secs(10) },
            small_clients: 64,
            large_clients: 8,
            store_bytes: 1 << 30,
            only_small_uploads: false,
        },
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = rest.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || value.parse::<u64>().with_context(|| format!("{flag} {value}: not a whole number"));
        let s = &mut options.settings;
        match flag.as_str() {
            "--runs" => options.runs = number()? as usize,
            "--duration" => s.window.measure = Duration::from_secs(number()?),
            "--warmup" => s.window.warmup = Duration::from_secs(number()?),
            "--small-clients" => s.small_clients = number()? as usize,
            "--large-clients" => s.large_clients = number()? as usize,
            "--store-mib" => s.store_bytes = number()? << 20,
            "--paramant" => s.paramant = PathBuf::from(value),
            "--only" if value == "small-uploads" => s.only_small_uploads = true,
            "--only" => bail!("--only {value}: only small-uploads is known\n{USAGE}"),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    let s = &options.settings;
    if options.runs == 0 || s.small_clients == 0 || s.large_clients == 0 || s.window.measure.is_zero() {
        bail!("--runs, --duration and client counts must be at least 1");
    }
    if !s.paramant.is_file() {
        bail!(
            "{} not found: build it (cargo build --release --bins -p paramant) or set PARAMANT_BIN",
            s.paramant.display()
        );
    }
    Ok(options)
}

/// `$PARAMANT_BIN`, else `paramant` next to this binary (same target dir), else
/// `target/release/paramant`.
fn default_paramant() -> PathBuf {
    if let Some(path) = std::env::var_os("PARAMANT_BIN") {
        return PathBuf::from(path);
    }
    let sibling = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join("paramant")));
    sibling.filter(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("target/release/paramant"))
}
