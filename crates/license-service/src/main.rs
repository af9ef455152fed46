//! `paramant-license`: see `license_service::cli`.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !license_service::cli::is_long_running(&args) {
        harden::end_quietly_on_closed_stdout();
    }
    license_service::cli::main_with_args(&args)
}
