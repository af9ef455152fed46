//! `paramant`: the operator and developer CLI. `up` runs every service of the appliance locally;
//! `ctlog …` runs the log service in this process (what `up` starts as a child).

mod up;

use std::process::ExitCode;

const USAGE: &str = "usage: paramant up [--data DIR]     run the services locally (DIR defaults to ./paramant-data)
       paramant ctlog run --config FILE   run the transparency log service
       paramant relay run --config FILE   run the relay (data plane) service
       paramant license …                 licenses: issue, show, status, telemetry-preview, run, server";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "up" => match up::parse_args(rest).and_then(up::run) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("paramant up: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some((cmd, rest)) if cmd == "ctlog" => ctlog::cli::main_with_args(rest),
        Some((cmd, rest)) if cmd == "relay" => relay::cli::main_with_args(rest),
        Some((cmd, rest)) if cmd == "license" => license_service::cli::main_with_args(rest),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
