//! What the kernel knows about a TCP connection's send side: how many bytes the peer has not
//! acknowledged yet, and whether the connection is still one the peer can have read from.

use std::os::fd::{BorrowedFd, RawFd};

/// The send side of a TCP socket as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendQueue {
    /// Bytes written but not yet acknowledged by the peer (unsent + in flight).
    pub unacknowledged: usize,
    /// The connection was not reset: established, or closing in an orderly way. A reset
    /// connection (TCP_CLOSE) has its queue purged, so an empty queue proves nothing there.
    /// While a delivery is watched the server never starts closing (see `TrackedIo`), so
    /// TCP_CLOSE cannot come from an orderly close on our side.
    pub open: bool,
}

/// Asks the kernel about `fd`'s send queue (`SIOCOUTQ`) and TCP state (`TCP_INFO`).
/// None if `fd` is not a TCP socket.
#[allow(unsafe_code)]
pub(crate) fn send_queue(fd: BorrowedFd<'_>) -> Option<SendQueue> {
    let raw: RawFd = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let mut unacknowledged: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `tcp_info` is a C struct of u8/u32/u64 fields only, so all-zero is a valid value.
    // `fd` is a borrowed, open descriptor for the duration of both calls. SIOCOUTQ
    // (= TIOCOUTQ on Linux) writes one c_int through the pointer, which points at a live local
    // c_int. TCP_INFO writes at most `len` bytes into `info`, a live local of exactly that size,
    // and `len` is a live local the kernel updates.
    let (outq, state, info) = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        (
            libc::ioctl(raw, libc::TIOCOUTQ, &mut unacknowledged as *mut libc::c_int),
            libc::getsockopt(
                raw,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast::<libc::c_void>(),
                &mut len,
            ),
            info,
        )
    };
    if outq != 0 || state != 0 || len < 1 {
        return None;
    }
    // include/net/tcp_states.h: ESTABLISHED 1, FIN_WAIT1 4, FIN_WAIT2 5, TIME_WAIT 6,
    // CLOSE 7, CLOSE_WAIT 8, LAST_ACK 9, CLOSING 11.
    let open = matches!(info.tcpi_state, 1 | 4 | 5 | 6 | 8 | 9 | 11);
    Some(SendQueue { unacknowledged: usize::try_from(unacknowledged).unwrap_or(usize::MAX), open })
}
