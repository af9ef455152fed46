//! `paramant-relay`: the data-plane service binary (see `relay::cli`).

/// mimalloc, not glibc malloc: see README "Relay benchmark" (allocation was a fifth of the
/// relay's CPU per 1 KiB upload).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    relay::cli::main_with_args(&args)
}
