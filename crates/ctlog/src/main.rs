//! `paramant-ctlog`: the transparency log service binary (see `ctlog::cli`).

#[global_allocator]
static ALLOCATOR: harden::ServiceAllocator = harden::ServiceAllocator;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    ctlog::cli::main_with_args(&args)
}
