//! `paramant-admin`: the accounts and admin panel service binary (see `admin::cli`).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    admin::cli::main_with_args(&args)
}
