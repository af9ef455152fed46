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

/// The services' global allocator: mimalloc for allocations under [`LARGE_ALLOCATION_BYTES`]
/// (what requests are made of: JSON, headers, tasks, proofs), glibc's `malloc` for larger ones
/// (payload buffers), which [`return_large_allocations`] has unmapped when freed and the relay's
/// payload pool reuses. Measured on 1 KiB uploads and cycles, mimalloc alone cut the relay's CPU
/// by 20–25 %, but it brought 5 MiB payloads back as fresh pages (11.97 instead of 8.81 ms of
/// relay CPU per upload); the split keeps each allocator where it was faster. Each service
/// binary declares it with `#[global_allocator]`.
pub struct ServiceAllocator;

/// Hands memory that mimalloc holds freed back to the kernel, for a thread about to sleep: a
/// tokio worker's `on_thread_park` hook. mimalloc returns freed pages only when the thread that
/// freed them allocates or frees again, so workers gone idle after a burst of traffic would keep
/// it resident. At most once a second per thread (a park happens after every burst of work).
pub fn release_freed_memory() {
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    if LAST.get().is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
        return;
    }
    LAST.set(Some(now));
    #[allow(unsafe_code)]
    // SAFETY: `mi_collect` only walks this thread's heap and the abandoned segments under
    // mimalloc's own locks; it takes no pointer from us.
    unsafe {
        libmimalloc_sys::mi_collect(false);
    }
}

/// The multi-threaded tokio runtime a service serves on, built after its sandbox is in place:
/// idle workers hand freed memory back ([`release_freed_memory`] as the park hook).
///
/// # Errors
/// When the runtime's threads or I/O driver cannot be created.
pub fn service_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().on_thread_park(release_freed_memory).build()
}

/// Whether an allocation of `size` bytes goes to glibc's `malloc` (else mimalloc).
const fn is_large(size: usize) -> bool {
    size >= LARGE_ALLOCATION_BYTES
}

// SAFETY: every block is freed (and resized in place) by the allocator that made it: which one
// follows from the size in the layout, and `GlobalAlloc`'s contract has `dealloc` and `realloc`
// called with the layout the block was allocated (or last reallocated) with. A `realloc` across
// the threshold allocates from the other allocator, copies and frees the old block.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for ServiceAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract (non-zero size) is passed on unchanged.
        unsafe {
            if is_large(layout.size()) { std::alloc::System.alloc(layout) } else { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if is_large(layout.size()) {
                std::alloc::System.alloc_zeroed(layout)
            } else {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from the allocator `layout.size()` selects (see above).
        unsafe {
            if is_large(layout.size()) {
                std::alloc::System.dealloc(ptr, layout)
            } else {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: on the same side of the threshold the owning allocator resizes its own block;
        // across it, a new block of the caller-valid `new_size` (same alignment) is allocated,
        // the bytes both blocks hold are copied and the old block is freed by its owner.
        unsafe {
            match (is_large(layout.size()), is_large(new_size)) {
                (true, true) => std::alloc::System.realloc(ptr, layout, new_size),
                (false, false) => mimalloc::MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    let new_layout = std::alloc::Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::{LARGE_ALLOCATION_BYTES, ServiceAllocator};

    #[test]
    #[allow(unsafe_code)]
    fn the_split_allocator_keeps_bytes_across_the_threshold_both_ways() {
        let allocator = ServiceAllocator;
        let small = 4096;
        let large = LARGE_ALLOCATION_BYTES + 12_345;
        // SAFETY: every pointer is checked for null, written and read within its layout's size,
        // and freed once with the layout of its last (re)allocation.
        unsafe {
            let layout = Layout::from_size_align(small, 16).unwrap();
            let ptr = allocator.alloc(layout);
            assert!(!ptr.is_null());
            for i in 0..small {
                *ptr.add(i) = (i % 251) as u8;
            }
            // Small → large (mimalloc → glibc): the bytes move with the block.
            let grown = allocator.realloc(ptr, layout, large);
            assert!(!grown.is_null());
            assert!((0..small).all(|i| *grown.add(i) == (i % 251) as u8));
            *grown.add(large - 1) = 7;
            // Large → large (glibc resizes its own block).
            let larger = allocator.realloc(grown, Layout::from_size_align(large, 16).unwrap(), 2 * large);
            assert!(!larger.is_null());
            assert!((0..small).all(|i| *larger.add(i) == (i % 251) as u8));
            assert_eq!(*larger.add(large - 1), 7);
            // Large → small (glibc → mimalloc): the prefix survives.
            let shrunk = allocator.realloc(larger, Layout::from_size_align(2 * large, 16).unwrap(), 100);
            assert!(!shrunk.is_null());
            assert!((0..100).all(|i| *shrunk.add(i) == (i % 251) as u8));
            allocator.dealloc(shrunk, Layout::from_size_align(100, 16).unwrap());

            for size in [64, large] {
                let layout = Layout::from_size_align(size, 4096).unwrap();
                let zeroed = allocator.alloc_zeroed(layout);
                assert!(!zeroed.is_null());
                assert_eq!(zeroed as usize % 4096, 0, "alignment kept");
                assert!((0..size).all(|i| *zeroed.add(i) == 0));
                allocator.dealloc(zeroed, layout);
            }
        }
    }
}
