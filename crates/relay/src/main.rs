//! `paramant-relay`: the data-plane service binary (see `relay::cli`).

#[global_allocator]
static ALLOCATOR: harden::ServiceAllocator = harden::ServiceAllocator;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    relay::cli::main_with_args(&args)
}
