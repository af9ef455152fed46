//! `paramant-verify-peers`: the API reference's name for `paramant verify-peers`.

fn main() -> std::process::ExitCode {
    client::cli::main_as(Some("verify-peers"), &[])
}
