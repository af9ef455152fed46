//! `paramant-license`: see `license_service::cli`.

fn main() -> std::process::ExitCode {
    harden::exit_quietly_on_broken_pipe();
    let args: Vec<String> = std::env::args().skip(1).collect();
    license_service::cli::main_with_args(&args)
}
