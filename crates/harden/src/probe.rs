//! What the running kernel and process allow: the landlock ABI (with the errno that explains its
//! absence), the seccomp filters in force, and the thread count.
//!
//! The landlock crate folds every failure of the version query into "not implemented", but the
//! errno is what tells an old kernel (ENOSYS), a boot-time disabled LSM (EOPNOTSUPP) and a
//! seccomp filter (EPERM, the default of systemd's and nspawn's filters) apart, so this module
//! asks the kernel itself.

/// Landlock as this process can use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LandlockSupport {
    /// The kernel answers with this ABI version (1 = Linux 5.13, 4 = 6.7 adds TCP rules).
    Available {
        /// The ABI version.
        abi: u8,
    },
    /// `EOPNOTSUPP`: built into the kernel but not enabled at boot.
    DisabledAtBoot,
    /// `ENOSYS`: a kernel without landlock, or a seccomp filter answering ENOSYS.
    Missing {
        /// Seccomp filters on this process (`Seccomp_filters` in `/proc/self/status`).
        seccomp_filters: u32,
        /// The kernel release.
        kernel: String,
    },
    /// Any other errno (EPERM in practice): a seccomp filter blocks the system call.
    Blocked {
        /// The errno the system call returned.
        errno: i32,
        /// Seccomp filters on this process.
        seccomp_filters: u32,
    },
}

/// The three system calls a seccomp allow-list must contain for landlock to work.
pub const LANDLOCK_SYSCALLS: &str = "landlock_create_ruleset landlock_add_rule landlock_restrict_self";

impl LandlockSupport {
    /// The ABI version, 0 when landlock cannot be used.
    pub fn abi(&self) -> u8 {
        match self {
            Self::Available { abi } => *abi,
            _ => 0,
        }
    }

    /// Why landlock cannot be used and how to fix it; `None` when it can.
    pub fn cause(&self) -> Option<String> {
        Some(match self {
            Self::Available { .. } => return None,
            Self::DisabledAtBoot => "the kernel has landlock but it is not enabled (landlock_create_ruleset: \
                 EOPNOTSUPP): add \"landlock\" to the lsm= kernel parameter"
                .into(),
            Self::Missing { seccomp_filters: 0, kernel } => format!(
                "the kernel has no landlock (ABI 0; landlock_create_ruleset: ENOSYS on Linux {kernel}): \
                 landlock needs Linux 5.13 built with CONFIG_SECURITY_LANDLOCK=y, TCP rules Linux 6.7"
            ),
            Self::Missing { seccomp_filters, kernel } => format!(
                "landlock_create_ruleset failed with ENOSYS while {seccomp_filters} seccomp filter(s) are \
                 in force: either a seccomp filter answers ENOSYS for it — allow {LANDLOCK_SYSCALLS} in \
                 SystemCallFilter (systemd 252's @system-service does not include them) — or the kernel \
                 (Linux {kernel}) has no landlock"
            ),
            Self::Blocked { errno, seccomp_filters } => format!(
                "a seccomp filter blocks landlock_create_ruleset ({errno:?}, {seccomp_filters} seccomp \
                 filter(s) in force): allow {LANDLOCK_SYSCALLS} in SystemCallFilter (systemd 252's \
                 @system-service does not include them; systemd-nspawn needs \
                 --system-call-filter='{LANDLOCK_SYSCALLS}')",
                errno = nix::errno::Errno::from_raw(*errno)
            ),
        })
    }
}

/// Asks the kernel which landlock ABI this process gets.
pub fn landlock_support() -> LandlockSupport {
    match landlock_version() {
        Ok(abi) => LandlockSupport::Available { abi: u8::try_from(abi).unwrap_or(u8::MAX) },
        Err(libc::EOPNOTSUPP) => LandlockSupport::DisabledAtBoot,
        Err(libc::ENOSYS) => LandlockSupport::Missing { seccomp_filters: seccomp_filters(), kernel: kernel_release() },
        Err(errno) => LandlockSupport::Blocked { errno, seccomp_filters: seccomp_filters() },
    }
}

/// The landlock ABI version this process gets, 0 when it has none (what `check-config` prints).
pub fn landlock_abi() -> u8 {
    landlock_support().abi()
}

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`: the ABI or the errno.
#[allow(unsafe_code)]
fn landlock_version() -> Result<i64, i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with the VERSION flag the kernel reads no memory (attr must be NULL, size 0); the
    // call creates nothing and only returns an integer.
    let result = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if result < 0 { Err(nix::errno::Errno::last_raw()) } else { Ok(result) }
}

/// A numeric field of `/proc/self/status`, `None` when /proc is not mounted.
fn proc_status_number(field: &str) -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

/// How many seccomp filters are stacked on this thread (0 when unknown).
pub(crate) fn seccomp_filters() -> u32 {
    proc_status_number("Seccomp_filters").unwrap_or(0)
}

/// Threads of this process (1 when /proc cannot tell, so the check never blocks a start).
pub(crate) fn thread_count() -> u32 {
    proc_status_number("Threads").unwrap_or(1)
}

/// Landlock and capabilities bind only the calling thread: refuse when others already run.
pub(crate) fn ensure_single_threaded() -> Result<(), crate::HardenError> {
    match thread_count() {
        1 => Ok(()),
        threads => Err(crate::HardenError::ThreadsRunning { threads }),
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_names_its_fix() {
        let eperm = LandlockSupport::Blocked { errno: libc::EPERM, seccomp_filters: 2 }.cause().unwrap_or_default();
        assert!(eperm.contains("seccomp") && eperm.contains(LANDLOCK_SYSCALLS), "{eperm}");
        let filtered = LandlockSupport::Missing { seccomp_filters: 1, kernel: "6.1.0".into() };
        let filtered = filtered.cause().unwrap_or_default();
        assert!(filtered.contains("ENOSYS") && filtered.contains(LANDLOCK_SYSCALLS) && filtered.contains("6.1.0"));
        let old = LandlockSupport::Missing { seccomp_filters: 0, kernel: "5.10.0".into() }.cause().unwrap_or_default();
        assert!(old.contains("no landlock (ABI 0") && old.contains("5.10.0"), "{old}");
        let off = LandlockSupport::DisabledAtBoot.cause().unwrap_or_default();
        assert!(off.contains("lsm="), "{off}");
        assert_eq!(LandlockSupport::Available { abi: 7 }.cause(), None);
    }

    #[test]
    fn abi_is_zero_unless_available() {
        assert_eq!(LandlockSupport::Available { abi: 4 }.abi(), 4);
        assert_eq!(LandlockSupport::DisabledAtBoot.abi(), 0);
    }

    #[test]
    fn proc_status_is_readable_here() {
        // The test harness runs several threads; the count must see more than one.
        let _other = std::thread::spawn(std::thread::park);
        assert!(thread_count() >= 2);
    }
}
