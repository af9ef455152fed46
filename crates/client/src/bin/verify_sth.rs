//! `paramant-verify-sth`: the API reference's name for `paramant verify-sth`.

fn main() -> std::process::ExitCode {
    client::cli::main_as(Some("verify-sth"), &[])
}
