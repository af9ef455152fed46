//! `paramant`: the operator, developer, user and auditor CLI. The service pass-through
//! subcommands come first (`up` runs every service of the appliance locally; `ctlog …` and
//! `relay …` run one service in this process, which is what `up` starts as a child); everything
//! else is the clap CLI of the `client` crate (`send`, `receive`, `verify-sth`, `monitor`, …,
//! `paramant --help`).
//!
//! Adding a pass-through: one match arm below in the existing style, plus one line in
//! `SERVICES` so `--help`, completions and man pages list it.

mod up;

use std::process::ExitCode;

/// The pass-through subcommands, for help, completions and man pages.
const SERVICES: &[(&str, &str)] = &[
    ("up", "Run the appliance's services locally: paramant up [--data DIR] (DIR defaults to ./paramant-data)"),
    ("ctlog", "Run the transparency log service: paramant ctlog run --config FILE"),
    ("relay", "Run the relay (data plane) service: paramant relay run --config FILE"),
    ("admin", "Run the accounts and admin panel service: paramant admin run --config FILE"),
    ("license", "Licenses: paramant license issue|show|status|telemetry-preview|run|server"),
    ("release", "Signed releases: paramant release keygen|sign|verify|show (paramant release for details)"),
];

/// The services and `up` keep Rust's ignored SIGPIPE (a closed stdout must not kill a daemon);
/// every other command ends quietly when its reader goes away (`paramant … | head -1`).
fn is_long_running(args: &[String]) -> bool {
    match args {
        [cmd, rest @ ..] if cmd == "up" => !matches!(rest, [flag] if flag == "--help" || flag == "-h"),
        [svc, sub, ..] if ["ctlog", "relay", "admin"].contains(&svc.as_str()) => sub == "run",
        [svc, rest @ ..] if svc == "license" => license_service::cli::is_long_running(rest),
        _ => false,
    }
}

fn main() -> ExitCode {
    if client::cli::alias_of_argv0().is_some() {
        return client::cli::main_as(None, SERVICES);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !is_long_running(&args) {
        harden::end_quietly_on_closed_stdout();
    }
    match args.split_first() {
        Some((cmd, rest)) if cmd == "up" && matches!(rest, [flag] if flag == "--help" || flag == "-h") => {
            println!("{}\n\nusage: paramant up [--data DIR]", SERVICES[0].1);
            ExitCode::SUCCESS
        }
        Some((cmd, rest)) if cmd == "up" => match up::parse_args(rest).and_then(up::run) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("paramant up: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some((cmd, rest)) if cmd == "ctlog" => ctlog::cli::main_with_args(rest),
        Some((cmd, rest)) if cmd == "relay" => relay::cli::main_with_args(rest),
        Some((cmd, rest)) if cmd == "admin" => admin::cli::main_with_args(rest),
        Some((cmd, rest)) if cmd == "license" => license_service::cli::main_with_args(rest),
        Some((cmd, rest)) if cmd == "release" => release::cli::main_with_args(rest),
        _ => client::cli::main_as(None, SERVICES),
    }
}

#[global_allocator]
static ALLOCATOR: harden::ServiceAllocator = harden::ServiceAllocator;
