//! The running service's hardening: the landlock sandbox, capabilities and `no_new_privs` as
//! `/health` reports them and as `/proc` shows them from outside, the refusal of a required
//! sandbox that a seccomp filter defeats, `check-config`, and the sd-notify conversation.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use harden::testkit::{receive_until, with_landlock_blocked};

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
fn full_landlock_here() -> bool {
    harden::landlock_abi() >= harden::NET_RULES_ABI
}

fn run_to_exit(log: &Log, command: &str) -> Output {
    Command::new(BIN).args([command, "--config"]).arg(&log.config).stdin(Stdio::null()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A field of `/proc/<pid>/status`, read from outside the sandboxed process.
fn proc_status(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    line[field.len() + 1..].trim().to_owned()
}

fn assert_no_privileges_from_outside(log: &Log) {
    let pid = log.child.as_ref().unwrap().id();
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(proc_status(pid, set), "0000000000000000", "{set} of the running service");
    }
}

#[test]
fn the_running_service_is_fully_sandboxed_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "");
    if !full_landlock_here() {
        // The documented refusal on a kernel without landlock ABI 4.
        let output = run_to_exit(&log, "run");
        assert!(!output.status.success());
        let stderr = text(&output.stderr);
        assert!(stderr.contains("refusing to start") && stderr.contains("best-effort"), "{stderr}");
        return;
    }
    let log = log.start();
    let (status, health) = log.get("/health");
    assert_eq!(status, 200);
    let expected = serde_json::json!({
        "landlock": "fully_enforced",
        "abi": harden::landlock_abi(),
        "net": true,
        "no_new_privs": true,
        "capabilities": "none",
    });
    assert_eq!(health["sandbox"], expected, "{health}");
    assert_no_privileges_from_outside(&log);
    // The sandboxed log still does its job: appends are durable in the read-write state dir.
    log.append_transfer(&blob_hash(1));
    assert_eq!(log.get("/v2/sth").1["sth"]["tree_size"], 1);
}

#[test]
fn a_required_sandbox_refuses_to_start_when_seccomp_blocks_landlock() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "");
    let config = log.config.clone();
    let output = with_landlock_blocked(move || {
        Command::new(BIN).args(["run", "--config"]).arg(config).stdin(Stdio::null()).output().unwrap()
    });
    assert!(!output.status.success(), "started although the sandbox is required");
    let stderr = text(&output.stderr);
    for needle in [
        "refusing to start: landlock is not_enforced but the sandbox is required",
        "a seccomp filter blocks landlock_create_ruleset",
        "allow landlock_create_ruleset landlock_add_rule landlock_restrict_self in SystemCallFilter",
        "set landlock = \"best-effort\" under [sandbox]",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing in:\n{stderr}");
    }
    let (health, _) = try_get(&format!("{}/health", log.public)).map_or((0, String::new()), |r| r);
    assert_eq!(health, 0, "nothing may listen after a refusal");
}

#[test]
fn a_best_effort_sandbox_starts_without_landlock_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "[sandbox]\nlandlock = \"best-effort\"\n");
    let log = with_landlock_blocked(move || log.start());
    let (_, health) = log.get("/health");
    let expected = serde_json::json!({
        "landlock": "not_enforced", "abi": 0, "net": false, "no_new_privs": true, "capabilities": "none",
    });
    assert_eq!(health["sandbox"], expected, "{health}");
    assert_no_privileges_from_outside(&log);
}

#[test]
fn check_config_prints_the_landlock_abi_and_what_the_sandbox_allows() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::configure(dir.path(), "health.example", "");
    let output = run_to_exit(&log, "check-config");
    let stdout = text(&output.stdout);
    let abi = harden::landlock_abi();
    assert!(stdout.contains(&format!("landlock ABI {abi} ")), "{stdout}");
    assert!(stdout.contains(&format!("read-write:  {}", dir.path().join("state").display())), "{stdout}");
    assert!(stdout.contains(&format!("read-only:   {}", log.config.display())), "{stdout}");
    let ports = |url: &str| url.rsplit(':').next().unwrap().to_owned();
    assert!(stdout.contains(&format!("tcp bind:    {} {}", ports(&log.public), ports(&log.internal))), "{stdout}");
    assert!(stdout.contains("tcp connect: (none)"), "{stdout}");
    assert_eq!(output.status.success(), full_landlock_here(), "{stdout}{}", text(&output.stderr));

    // Where run would refuse, check-config fails too, and says why.
    let config = log.config.clone();
    let blocked = with_landlock_blocked(move || {
        Command::new(BIN).args(["check-config", "--config"]).arg(config).output().unwrap()
    });
    assert!(!blocked.status.success());
    assert!(text(&blocked.stdout).contains("landlock ABI 0 "), "{}", text(&blocked.stdout));
    assert!(text(&blocked.stderr).contains("seccomp"), "{}", text(&blocked.stderr));
}

#[test]
fn a_gossip_peer_named_by_host_name_is_reached_from_inside_the_sandbox() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Log::configure(dir_a.path(), "relay.example", "").start();
    let (_, a_key) = a.get("/v2/pubkey");
    let a_port = a.public.rsplit(':').next().unwrap().to_owned();
    // "localhost" needs /etc/hosts, which the sandbox grants only because a peer has a host name.
    let peer = format!(
        "[gossip]\npush_interval_secs = 1\n[[gossip.peer]]\nrelay_id = \"relay.example\"\npublic_key = \"{}\"\nurl = \"http://localhost:{a_port}\"\n",
        a_key["public_key"].as_str().unwrap()
    );
    let b = Log::configure(dir_b.path(), "legal.example", &peer).start();
    b.append_transfer(&blob_hash(7));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, peers) = a.get("/v2/sth/peers");
        if peers["peers"].as_array().is_some_and(|p| p.iter().any(|p| p["latest_tree_size"] == 1)) {
            break;
        }
        assert!(Instant::now() < deadline, "B's pushes never reached A by host name: {peers}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::configure(dir.path(), "health.example", "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&log.config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    log.child = Some(child);

    // READY=1 means serving: /health answers at once, without any retry.
    let ready = receive_until(&socket, "READY=1");
    assert!(ready.contains("STATUS=serving health.example, tree size 0\n"), "{ready:?}");
    let (status, health) = get(&format!("{}/health", log.public));
    assert_eq!(status, 200, "{health}");
    let watchdog = receive_until(&socket, "WATCHDOG=1");
    assert_eq!(watchdog, "WATCHDOG=1\n");

    // No reload: SIGHUP is answered with a status line and the service keeps serving.
    let pid = nix::unistd::Pid::from_raw(log.child.as_ref().unwrap().id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    receive_until(&socket, "STATUS=reload is not supported");
    assert_eq!(get(&format!("{}/health", log.public)).0, 200);

    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let stopping = receive_until(&socket, "STOPPING=1");
    assert!(stopping.contains("STATUS=draining"), "{stopping:?}");
    let exit = log.child.take().unwrap().wait().unwrap();
    assert!(exit.success(), "{exit}");
}
