//! Test helpers shared by the services' hardening tests (feature `testkit`, dev-dependency
//! only): the seccomp filter systemd 252's `@system-service` applies, and reading sd-notify.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;

/// Runs `f` on a thread whose seccomp filter answers EPERM for the landlock system calls, as a
/// unit's `SystemCallFilter=@system-service` does on systemd 252; children it starts inherit it.
pub fn with_landlock_blocked<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
        let rules = [libc::SYS_landlock_create_ruleset, libc::SYS_landlock_add_rule, libc::SYS_landlock_restrict_self]
            .into_iter()
            .map(|nr| (nr, vec![]))
            .collect::<BTreeMap<_, _>>();
        let arch = std::env::consts::ARCH.try_into().expect("a seccomp-supported architecture");
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)
            .expect("a valid seccomp filter");
        let program: BpfProgram = filter.try_into().expect("a compilable seccomp filter");
        seccompiler::apply_filter(&program).expect("the seccomp filter applies");
        f()
    })
    .join()
    .expect("the filtered thread does not panic")
}

/// The notify socket's next message (fails after the socket's read timeout).
pub fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notify message within the read timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Receives until a message contains `needle`, skipping the periodic STATUS and WATCHDOG ones.
pub fn receive_until(socket: &UnixDatagram, needle: &str) -> String {
    loop {
        let message = receive(socket);
        if message.contains(needle) {
            return message;
        }
        assert!(
            message.lines().all(|l| l.starts_with("STATUS=") || l == "WATCHDOG=1"),
            "unexpected notify message before {needle:?}: {message:?}"
        );
    }
}

/// The hardening report of a service started inside a test process, which has no sandbox (its
/// landlock and capability drop would bind the whole test binary).
#[must_use]
pub fn unsandboxed() -> crate::Hardening {
    crate::Hardening {
        sandbox: crate::SandboxReport {
            landlock: crate::LandlockState::NotEnforced,
            abi: 0,
            net_rules: false,
            no_new_privs: false,
            skipped: Vec::new(),
            shortfall: Some("in-process test service: no sandbox".into()),
        },
        capabilities_dropped: false,
    }
}
