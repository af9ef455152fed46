//! Process hardening shared by every paramant daemon: a landlock sandbox (read-only config and
//! credentials, read-write state, TCP bind/connect only on configured ports), `no_new_privs`,
//! dropping every capability after binding, and the sd-notify protocol (`notify`).
//!
//! Call order in a daemon's `main`, all on the main thread before any other thread exists
//! (landlock and capabilities bind only the calling thread and the threads it starts later):
//! load config → open secrets and storage → bind listeners → [`apply`] → [`drop_capabilities`]
//! → build the async runtime → serve → [`notify::ready`]. [`Daemon`] is that sequence in the
//! words every paramant daemon shares: [`Daemon::lock_down`] (apply, log, drop capabilities),
//! [`Daemon::check_config`], and the service-manager choreography — [`Daemon::ready`] (with the
//! watchdog), [`Daemon::spawn_status_updates`], [`Daemon::stop_requested`] (SIGTERM/SIGINT,
//! `STOPPING=1`; SIGHUP answered "reload is not supported") and a [`Drain`] for the servers.
//!
//! With [`Enforcement::Required`] (the default), [`apply`] fails with a message naming the
//! cause when the kernel or a seccomp filter keeps the sandbox from being fully in force; with
//! [`Enforcement::BestEffort`] it applies what it can and says what is missing.
#![deny(missing_docs)]

mod daemon;
mod error;
mod lifecycle;
pub mod notify;
mod privileges;
mod probe;
mod sandbox;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use daemon::{Daemon, Hardening, SandboxHealth};
pub use error::HardenError;
pub use lifecycle::Drain;
pub use privileges::drop_capabilities;
pub use probe::{LandlockSupport, landlock_abi, landlock_support};
pub use sandbox::{
    Enforcement, LandlockState, NET_RULES_ABI, Outlook, RESOLVER_FILES, SandboxConfig, SandboxPolicy, SandboxReport,
    TESTED_ABI, TcpConnect, apply, http_port, outlook, smtp_port,
};

/// For short-lived command-line commands (never a service): output to a standard output whose
/// reader has gone (`paramant license show … | head -1`) ends the process quietly, by SIGPIPE,
/// as any Unix filter ends (a shell shows status 141) — instead of Rust's default of ignoring
/// the signal and panicking in `println!`. Call it first in `main`, before any thread starts.
/// Sockets are unaffected (std and tokio send with MSG_NOSIGNAL).
#[allow(unsafe_code)]
pub fn end_quietly_on_closed_stdout() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no Rust handler, so no code runs in signal context; called at the
    // start of `main`, before any thread that could race on the disposition exists.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// The machine's physical memory in bytes (`sysinfo(2)`; no file is read, so it works inside
/// the sandbox), or `None` if the call is refused.
pub fn physical_memory_bytes() -> Option<u64> {
    nix::sys::sysinfo::sysinfo().ok().map(|info| info.ram_total())
}

/// Tells the kernel that `file` is read at scattered places (`POSIX_FADV_RANDOM`), so that a
/// read brings in only the pages asked for, with no readahead around them. For the log, whose
/// proofs read hash tiles spread through a file larger than memory, readahead filled the page
/// cache with the leaf rows next to each tile and pushed the tiles themselves out. It applies
/// to this open file only. Returns whether the kernel took the advice.
pub fn advise_random_access(file: &std::fs::File) -> bool {
    nix::fcntl::posix_fadvise(file, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_RANDOM).is_ok()
}

/// Allocations of at least this many bytes get their own mapping from glibc's `malloc` and are
/// unmapped when freed (see [`return_large_allocations`]).
pub const LARGE_ALLOCATION_BYTES: usize = 1 << 20;

/// For a service that holds large, short-lived buffers (the relay's payloads): every allocation
/// of [`LARGE_ALLOCATION_BYTES`] or more is served by its own `mmap` and returned to the kernel
/// when freed. glibc's default raises its mmap threshold each time such a chunk is freed (up to
/// 32 MiB), after which multi-MiB buffers come from the heap arenas, whose freed memory mostly
/// stays resident: a relay that had churned through 5 MiB uploads kept ~1.5 GiB with 30 MiB
/// stored. Setting the threshold fixes it and turns that adjustment off (the trim threshold
/// stays glibc's 128 KiB). Returns false when `mallopt` refused (not glibc, or a value it does
/// not take). Call it early in `main`: chunks allocated before keep their old placement.
#[allow(unsafe_code)]
pub fn return_large_allocations() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets allocator parameters from plain integers, under glibc's
        // arena lock, so it is sound at any time; no pointer is involved.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES as libc::c_int) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
