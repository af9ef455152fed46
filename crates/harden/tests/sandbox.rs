//! The sandbox against the real kernel. Every test re-runs this binary as a child process with
//! `HARDEN_TEST_CHILD=<scenario>`: the child hardens itself, checks what it can still do and
//! exits 0, or panics (non-zero, the reason on stderr). Landlock cannot be undone and binds only
//! the calling thread, so it never runs in the parent, and this file has its own `main` (libtest
//! would start threads). Kernels without landlock ABI 4 take the documented refusal path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use harden::{Enforcement, LandlockState, SandboxPolicy, TcpConnect};

const CHILD: &str = "HARDEN_TEST_CHILD";
const DIR: &str = "HARDEN_TEST_DIR";
const PORTS: &str = "HARDEN_TEST_PORTS";

type Test = (&'static str, fn());

const TESTS: &[Test] = &[
    ("landlock_allows_only_policy_paths", landlock_allows_only_policy_paths),
    ("landlock_allows_only_configured_tcp_ports", landlock_allows_only_configured_tcp_ports),
    ("connect_to_any_port_still_restricts_bind", connect_to_any_port_still_restricts_bind),
    ("required_sandbox_refuses_when_seccomp_blocks_landlock_with_eperm", seccomp_eperm_is_refused),
    ("required_sandbox_refuses_when_seccomp_answers_enosys", seccomp_enosys_is_refused),
    ("best_effort_starts_without_landlock_and_says_why", best_effort_without_landlock),
    ("drop_capabilities_leaves_no_capability", drop_capabilities_leaves_none),
    ("sandbox_refuses_once_other_threads_run", refuses_with_other_threads),
    ("watchdog_pings_at_half_the_interval_after_ready", watchdog_pings),
    ("wedged_runtime_stops_watchdog_pings", wedged_runtime_stops_pinging),
];

fn main() {
    if let Ok(scenario) = std::env::var(CHILD) {
        child(&scenario);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        TESTS.iter().for_each(|(name, _)| println!("{name}: test"));
        return;
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let plural = if selected.len() == 1 { "" } else { "s" };
    println!("\nrunning {} test{plural}", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let outcome = std::panic::catch_unwind(test);
        println!("test {name} ... {}", if outcome.is_ok() { "ok" } else { "FAILED" });
        if outcome.is_err() {
            failed.push(*name);
        }
    }
    let passed = selected.len() - failed.len();
    let verdict = if failed.is_empty() { "ok" } else { "FAILED" };
    let filtered = TESTS.len() - selected.len();
    println!(
        "\ntest result: {verdict}. {passed} passed; {} failed; 0 ignored; 0 measured; {filtered} filtered out\n",
        failed.len()
    );
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(101);
    }
}

// ---------------------------------------------------------------- parent side

fn full_landlock_here() -> bool {
    harden::landlock_abi() >= harden::NET_RULES_ABI
}

fn run_child(scenario: &str, dir: &Path, ports: &[u16], env: &[(&str, &str)]) -> Output {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env(CHILD, scenario).env(DIR, dir).env(PORTS, ports.join(","));
    command.env_remove("NOTIFY_SOCKET").env_remove("WATCHDOG_USEC").env_remove("WATCHDOG_PID");
    command.envs(env.iter().copied()).output().unwrap()
}

fn assert_child_ok(output: &Output) {
    assert!(
        output.status.success(),
        "child failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The refusal a kernel without (network-capable) landlock must give in required mode.
fn assert_refused_for_this_kernel(scenario: &str, dir: &Path) {
    let output = run_child(scenario, dir, &[], &[("HARDEN_EXPECT_REFUSAL", "1")]);
    assert_child_ok(&output);
}

fn landlock_allows_only_policy_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ro")).unwrap();
    std::fs::create_dir_all(dir.path().join("rw")).unwrap();
    std::fs::create_dir_all(dir.path().join("outside")).unwrap();
    std::fs::write(dir.path().join("ro/config"), "allowed").unwrap();
    std::fs::write(dir.path().join("config.toml"), "allowed file").unwrap();
    std::fs::write(dir.path().join("outside/secret"), "denied").unwrap();
    if !full_landlock_here() {
        return assert_refused_for_this_kernel("fs", dir.path());
    }
    assert_child_ok(&run_child("fs", dir.path(), &[], &[]));
}

fn landlock_allows_only_configured_tcp_ports() {
    let dir = tempfile::tempdir().unwrap();
    // Listening sockets accept connections into their backlog without accept().
    let allowed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let denied = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let ports = [port(&allowed), port(&denied), free_port(), free_port()];
    if !full_landlock_here() {
        return assert_refused_for_this_kernel("net", dir.path());
    }
    assert_child_ok(&run_child("net", dir.path(), &ports, &[]));
}

fn connect_to_any_port_still_restricts_bind() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let ports = [port(&listener), free_port(), free_port()];
    if !full_landlock_here() {
        return assert_refused_for_this_kernel("net-any", dir.path());
    }
    assert_child_ok(&run_child("net-any", dir.path(), &ports, &[]));
}

fn seccomp_eperm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_child_ok(&run_child("seccomp-eperm", dir.path(), &[], &[]));
}

fn seccomp_enosys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_child_ok(&run_child("seccomp-enosys", dir.path(), &[], &[]));
}

fn best_effort_without_landlock() {
    let dir = tempfile::tempdir().unwrap();
    assert_child_ok(&run_child("seccomp-best-effort", dir.path(), &[], &[]));
}

fn drop_capabilities_leaves_none() {
    let dir = tempfile::tempdir().unwrap();
    assert_child_ok(&run_child("caps", dir.path(), &[], &[]));
}

fn refuses_with_other_threads() {
    let dir = tempfile::tempdir().unwrap();
    assert_child_ok(&run_child("threads", dir.path(), &[], &[]));
}

/// A notify socket in `dir`, and the child started with it and a 200 ms watchdog.
fn notify_child(scenario: &str, dir: &Path) -> (UnixDatagram, std::process::Child) {
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, scenario)
        .env(DIR, dir)
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .spawn()
        .unwrap();
    (socket, child)
}

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notify message before the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, mut child) = notify_child("watchdog", dir.path());
    let first = receive(&socket);
    assert!(first.contains("READY=1\n") && first.contains("STATUS=watching\n"), "{first:?}");
    for _ in 0..3 {
        assert_eq!(receive(&socket), "WATCHDOG=1\n");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

fn wedged_runtime_stops_pinging() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, mut child) = notify_child("wedged", dir.path());
    assert!(receive(&socket).contains("READY=1\n"));
    assert_eq!(receive(&socket), "WATCHDOG=1\n");
    // The child's runtime thread sends this marker and then blocks; datagrams keep their order.
    loop {
        let message = receive(&socket);
        if message == "TEST_WEDGED=1\n" {
            break;
        }
        assert_eq!(message, "WATCHDOG=1\n");
    }
    // Absence can only be shown by waiting: five watchdog periods (100 ms each) of silence.
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 64];
    let silence = socket.recv(&mut buf).map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
    assert!(
        matches!(&silence, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a wedged runtime still pinged: {silence:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().unwrap().port()
}

fn free_port() -> u16 {
    port(&TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
}

// ---------------------------------------------------------------- child side

fn child(scenario: &str) {
    let dir = PathBuf::from(std::env::var_os(DIR).expect("test dir"));
    let ports: Vec<u16> = std::env::var(PORTS)
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap())
        .collect();
    if std::env::var_os("HARDEN_EXPECT_REFUSAL").is_some() {
        return child_expect_refusal(&dir);
    }
    match scenario {
        "fs" => child_fs(&dir),
        "net" => child_net(&ports),
        "net-any" => child_net_any(&ports),
        "seccomp-eperm" => child_seccomp_refused(libc::EPERM as u32, &["seccomp", "EPERM"]),
        "seccomp-enosys" => child_seccomp_refused(libc::ENOSYS as u32, &["ENOSYS", "seccomp filter(s) are in force"]),
        "seccomp-best-effort" => child_seccomp_best_effort(),
        "caps" => child_caps(),
        "threads" => child_threads(),
        "watchdog" => child_watchdog(false),
        "wedged" => child_watchdog(true),
        other => panic!("unknown scenario {other}"),
    }
}

fn required(read_only: Vec<PathBuf>, read_write: Vec<PathBuf>) -> SandboxPolicy {
    SandboxPolicy { read_only, read_write, enforcement: Enforcement::Required, ..SandboxPolicy::default() }
}

fn assert_denied<T: std::fmt::Debug>(result: std::io::Result<T>, what: &str) {
    match result {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {}
        other => panic!("{what}: expected EACCES under the sandbox, got {other:?}"),
    }
}

/// On a kernel without full landlock, a required sandbox must refuse and say why.
fn child_expect_refusal(dir: &Path) {
    let error = harden::apply(&required(vec![], vec![dir.to_path_buf()])).expect_err("required must refuse");
    let message = error.to_string();
    assert!(message.contains("landlock") && message.contains("required"), "{message}");
    assert_eq!(
        Some(message),
        harden::outlook().shortfall.map(|cause| {
            let state = harden::outlook().landlock;
            format!("landlock is {state} but the sandbox is required: {cause}")
        })
    );
}

fn child_fs(dir: &Path) {
    let mut policy = required(vec![dir.join("ro"), dir.join("config.toml")], vec![dir.join("rw")]);
    policy.read_only.push(dir.join("does-not-exist"));
    let report = harden::apply(&policy).unwrap();
    assert_eq!(report.landlock, LandlockState::FullyEnforced);
    assert!(report.net_rules && report.no_new_privs && report.shortfall.is_none(), "{report:?}");
    assert_eq!(report.skipped, vec![dir.join("does-not-exist")]);
    // Read-only paths: readable, not writable; a single file works as well as a directory.
    assert_eq!(std::fs::read_to_string(dir.join("ro/config")).unwrap(), "allowed");
    assert_eq!(std::fs::read_to_string(dir.join("config.toml")).unwrap(), "allowed file");
    assert_denied(std::fs::write(dir.join("ro/config"), "changed"), "write a read-only file");
    assert_denied(std::fs::write(dir.join("ro/new"), "x"), "create in a read-only dir");
    // The read-write directory: create, rename, read back, remove.
    std::fs::create_dir(dir.join("rw/sub")).unwrap();
    std::fs::write(dir.join("rw/sub/tmp"), "state").unwrap();
    std::fs::rename(dir.join("rw/sub/tmp"), dir.join("rw/sub/final")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("rw/sub/final")).unwrap(), "state");
    std::fs::remove_dir_all(dir.join("rw/sub")).unwrap();
    // Everything else, even next door, even for root.
    assert_denied(std::fs::read_to_string(dir.join("outside/secret")), "read a file outside the policy");
    assert_denied(std::fs::read_to_string("/etc/passwd"), "read /etc/passwd");
    assert_denied(std::fs::read_dir("/"), "list /");
    assert_denied(std::fs::write(dir.join("escape"), "x"), "create next to the state dir");
    assert_denied(Command::new("/bin/sh").arg("-c").arg("true").status(), "execute /bin/sh");
}

fn child_net(ports: &[u16]) {
    let [allowed, denied, bind_ok, bind_denied] = ports else { panic!("four ports expected") };
    // Bound before the sandbox, like a daemon's listeners: keeps accepting afterwards.
    let early = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let policy = SandboxPolicy {
        bind_tcp: vec![*bind_ok],
        connect_tcp: TcpConnect::Ports(vec![*allowed, port(&early)]),
        enforcement: Enforcement::Required,
        ..SandboxPolicy::default()
    };
    let report = harden::apply(&policy).unwrap();
    assert!(report.net_rules, "{report:?}");
    TcpStream::connect((Ipv4Addr::LOCALHOST, *allowed)).expect("connect to an allowed port");
    assert_denied(TcpStream::connect((Ipv4Addr::LOCALHOST, *denied)), "connect to a port not in the policy");
    TcpListener::bind((Ipv4Addr::LOCALHOST, *bind_ok)).expect("bind an allowed port");
    assert_denied(TcpListener::bind((Ipv4Addr::LOCALHOST, *bind_denied)), "bind a port not in the policy");
    let _client = TcpStream::connect(early.local_addr().unwrap()).unwrap();
    early.accept().expect("a listener bound before the sandbox still accepts");
}

fn child_net_any(ports: &[u16]) {
    let [listening, bind_ok, bind_denied] = ports else { panic!("three ports expected") };
    let policy = SandboxPolicy {
        bind_tcp: vec![*bind_ok],
        connect_tcp: TcpConnect::AnyPort { reason: "test".into() },
        enforcement: Enforcement::Required,
        ..SandboxPolicy::default()
    };
    let report = harden::apply(&policy).unwrap();
    assert_eq!(report.landlock, LandlockState::FullyEnforced, "{report:?}");
    TcpStream::connect((Ipv4Addr::LOCALHOST, *listening)).expect("connect to a port no rule names");
    TcpListener::bind((Ipv4Addr::LOCALHOST, *bind_ok)).expect("bind an allowed port");
    assert_denied(TcpListener::bind((Ipv4Addr::LOCALHOST, *bind_denied)), "bind a port not in the policy");
    assert_denied(std::fs::read_to_string("/etc/passwd"), "the filesystem rules still hold");
}

/// Installs a seccomp filter answering `errno` for the three landlock system calls, as a
/// service manager's SystemCallFilter without them does.
fn deny_landlock_syscalls(errno: u32) {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
    let rules = [libc::SYS_landlock_create_ruleset, libc::SYS_landlock_add_rule, libc::SYS_landlock_restrict_self]
        .into_iter()
        .map(|nr| (nr, vec![]))
        .collect::<BTreeMap<_, _>>();
    let arch = std::env::consts::ARCH.try_into().unwrap();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno), arch).unwrap();
    let program: BpfProgram = filter.try_into().unwrap();
    seccompiler::apply_filter(&program).unwrap();
}

fn child_seccomp_refused(errno: u32, needles: &[&str]) {
    deny_landlock_syscalls(errno);
    assert_eq!(harden::landlock_abi(), 0);
    let message = harden::apply(&required(vec![], vec![])).expect_err("must refuse").to_string();
    assert!(message.contains("landlock is not_enforced but the sandbox is required"), "{message}");
    assert!(message.contains("landlock_create_ruleset landlock_add_rule landlock_restrict_self"), "{message}");
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} missing in: {message}");
    }
}

fn child_seccomp_best_effort() {
    deny_landlock_syscalls(libc::EPERM as u32);
    let policy = SandboxPolicy { enforcement: Enforcement::BestEffort, ..SandboxPolicy::default() };
    let report = harden::apply(&policy).unwrap();
    assert_eq!(report.landlock, LandlockState::NotEnforced);
    assert_eq!((report.abi, report.net_rules, report.no_new_privs), (0, false, true));
    assert!(report.shortfall.as_deref().unwrap_or_default().contains("seccomp"), "{report:?}");
    // Honest about it: nothing is restricted.
    std::fs::read_to_string("/etc/passwd").expect("no landlock, so reads are not restricted");
}

fn status_field(name: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap();
    line[name.len() + 1..].trim().to_owned()
}

fn child_caps() {
    const CAP_SETPCAP: u64 = 1 << 8;
    let effective = u64::from_str_radix(&status_field("CapEff"), 16).unwrap();
    harden::drop_capabilities().unwrap();
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(set), "0000000000000000", "{set} after dropping");
    }
    if effective & CAP_SETPCAP != 0 {
        assert_eq!(status_field("CapBnd"), "0000000000000000", "the bounding set is cleared too");
    }
}

fn child_threads() {
    let _other = std::thread::spawn(std::thread::park);
    let message = harden::apply(&required(vec![], vec![])).expect_err("must refuse").to_string();
    assert!(message.contains("2 threads are running"), "{message}");
    assert!(harden::drop_capabilities().is_err());
}

fn child_watchdog(wedge: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let interval = harden::notify::watchdog_interval().expect("WATCHDOG_USEC is set");
        assert_eq!(interval, Duration::from_millis(200));
        tokio::spawn(harden::notify::watchdog(interval));
        harden::notify::ready("watching").unwrap();
        if wedge {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let socket = UnixDatagram::unbound().unwrap();
            socket.send_to(b"TEST_WEDGED=1\n", std::env::var_os("NOTIFY_SOCKET").unwrap()).unwrap();
            // Blocks the only runtime thread: what a deadlock or a blocking call in async looks like.
            loop {
                std::thread::park();
            }
        }
        std::future::pending::<()>().await;
    });
}
