//! `paramant-receipt`: the API reference's name for `paramant receipt`.

fn main() -> std::process::ExitCode {
    client::cli::main_as(Some("receipt"), &[])
}
