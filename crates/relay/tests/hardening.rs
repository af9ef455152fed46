//! The running relay's hardening: the landlock sandbox, capabilities and `no_new_privs` as
//! `/health` reports them and as `/proc` shows them from outside, the relay still doing its job
//! inside the sandbox (log appends, downloads, the outbox, SMTP to a host name), the refusal of
//! a required sandbox that a seccomp filter defeats, `check-config`, and the sd-notify
//! conversation with a service manager.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod hardening_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::Output;
use std::time::Duration;

use base64::Engine;
use harden::testkit::receive_until;
use hardening_support::*;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn assert_no_privileges_from_outside(relay: &Relay) {
    assert_eq!(proc_status(relay.pid(), "NoNewPrivs"), "1");
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(proc_status(relay.pid(), set), "0000000000000000", "{set} of the running relay");
    }
}

/// The refusal a kernel without landlock ABI 4 gives, where the full sandbox cannot run.
fn assert_refused(output: &Output) {
    assert!(!output.status.success(), "started although the sandbox is required");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("refusing to start") && stderr.contains("best-effort"), "{stderr}");
}

/// An Enterprise API key minted through the internal API.
fn mint_key(setup: &RelaySetup) -> String {
    let token = setup.internal_token();
    let (status, body) = post(
        &format!("{}/internal/keys", setup.internal),
        &json!({ "plan": "enterprise" }),
        &[("x-internal-auth", &token)],
    );
    assert_eq!(status, 200, "minting a key: {body}");
    body["key"].as_str().unwrap().to_owned()
}

/// Uploads `payload` and returns its hash (asserting 200: the log recorded the transfer).
fn upload(relay: &Relay, key: &str, payload: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(payload));
    let body = json!({ "hash": hash, "payload": base64::engine::general_purpose::STANDARD.encode(payload) });
    let (status, answer) = post(&format!("{}/v2/inbound", relay.public), &body, &[("x-api-key", key)]);
    assert_eq!(status, 200, "upload: {answer}");
    hash
}

fn expected_full_sandbox() -> Value {
    json!({ "landlock": "fully_enforced", "abi": harden::landlock_abi(), "net": true, "no_new_privs": true, "capabilities": "none" })
}

#[test]
fn the_running_relay_is_fully_sandboxed_and_still_serves_uploads_downloads_and_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path());
    let setup = RelaySetup::configure(dir.path(), &log, "");
    if !full_landlock_here() {
        return assert_refused(&setup.command("run").output().unwrap());
    }
    let relay = setup.start();
    let (status, health) = get(&format!("{}/health", relay.public), &[]);
    assert_eq!(status, 200);
    assert_eq!(health["sandbox"], expected_full_sandbox(), "{health}");
    assert_no_privileges_from_outside(&relay);

    // Inside the sandbox: the log's internal port (the upload is appended before the answer),
    // the burn-on-read download, and the read-write state directory (the trial outbox).
    let key = mint_key(&setup);
    let payload = b"a payload that crossed a sandboxed relay";
    let hash = upload(&relay, &key, payload);
    let (status, bytes) = get_bytes(&format!("{}/v2/outbound/{hash}", relay.public), &[("x-api-key", &key)]);
    assert_eq!((status, bytes), (200, payload.to_vec()));
    let trial = json!({ "name": "Ada", "email": "ada@example.org" });
    let (status, answer) = post(&format!("{}/v2/request-trial", relay.public), &trial, &[]);
    assert_eq!(status, 200, "trial request: {answer}");
    let mails = std::fs::read_dir(setup.state_dir.join("outbox")).unwrap().count();
    assert_eq!(mails, 1, "the trial mail lands in state_dir/outbox");
}

/// A one-message SMTP server on a free loopback port; the thread returns what DATA carried.
fn smtp_server() -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        writer.write_all(b"220 test ESMTP\r\n").unwrap();
        let (mut data, mut in_data) = (String::new(), false);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                return data;
            }
            let reply: &[u8] = match (in_data, line.get(..4).map(str::to_ascii_uppercase).as_deref()) {
                (true, _) if line == ".\r\n" => {
                    in_data = false;
                    b"250 queued\r\n"
                }
                (true, _) => {
                    data.push_str(&line);
                    continue;
                }
                (false, Some("DATA")) => {
                    in_data = true;
                    b"354 go ahead\r\n"
                }
                (false, Some("QUIT")) => {
                    writer.write_all(b"221 bye\r\n").unwrap();
                    return data;
                }
                _ => b"250 ok\r\n",
            };
            writer.write_all(reply).unwrap();
        }
    });
    (port, server)
}

#[test]
fn a_trial_mail_reaches_an_smtp_relay_named_by_host_name_from_inside_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path());
    let (smtp_port, smtp) = smtp_server();
    // "localhost" needs /etc/hosts (a resolver file) and the SMTP port's connect rule.
    let setup = RelaySetup::configure(dir.path(), &log, &format!("[trial]\nsmtp = \"localhost:{smtp_port}\"\n"));
    if !full_landlock_here() {
        return assert_refused(&setup.command("run").output().unwrap());
    }
    let relay = setup.start();
    let trial = json!({ "name": "Grace", "email": "grace@example.org" });
    let (status, answer) = post(&format!("{}/v2/request-trial", relay.public), &trial, &[]);
    assert_eq!(status, 200, "trial request: {answer}\n{}", relay.stderr());
    let mail = smtp.join().unwrap();
    assert!(mail.contains("Subject: Your paramant trial key") && mail.contains("pgp_"), "{mail}");
}

#[test]
fn a_required_sandbox_refuses_to_start_when_seccomp_blocks_landlock() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path());
    let setup = RelaySetup::configure(dir.path(), &log, "");
    let config = setup.config.clone();
    let output = with_landlock_blocked(move || relay_command(&config, "run").output().unwrap());
    assert!(!output.status.success(), "started although the sandbox is required");
    let stderr = text(&output.stderr);
    for needle in [
        "paramant-relay: refusing to start: landlock is not_enforced but the sandbox is required",
        "a seccomp filter blocks landlock_create_ruleset",
        "allow landlock_create_ruleset landlock_add_rule landlock_restrict_self in SystemCallFilter",
        &format!("set landlock = \"best-effort\" under [sandbox] in {}", setup.config.display()),
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing in:\n{stderr}");
    }
    assert!(try_get(&format!("{}/health", setup.public)).is_err(), "nothing may listen after a refusal");
}

#[test]
fn a_best_effort_sandbox_starts_without_landlock_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path());
    let setup = RelaySetup::configure(dir.path(), &log, "[sandbox]\nlandlock = \"best-effort\"\n");
    let relay = with_landlock_blocked(move || setup.start());
    let (_, health) = get(&format!("{}/health", relay.public), &[]);
    let expected =
        json!({ "landlock": "not_enforced", "abi": 0, "net": false, "no_new_privs": true, "capabilities": "none" });
    assert_eq!(health["sandbox"], expected, "{health}");
    assert_no_privileges_from_outside(&relay);
    assert!(relay.stderr().contains("sandbox is best effort only: a seccomp filter blocks"), "{}", relay.stderr());
}

#[test]
fn check_config_prints_the_landlock_abi_and_what_the_sandbox_allows() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path());
    let setup = RelaySetup::configure(dir.path(), &log, "");
    let output = setup.command("check-config").output().unwrap();
    let stdout = text(&output.stdout);
    assert!(stdout.contains(&format!("landlock ABI {} ", harden::landlock_abi())), "{stdout}");
    assert!(stdout.contains(&format!("read-only:   {} ", setup.config.display())), "{stdout}");
    assert!(stdout.contains(&log.token_file.display().to_string()), "the log's token file is readable: {stdout}");
    assert!(stdout.contains("/etc/resolv.conf"), "{stdout}");
    assert!(stdout.contains(&format!("read-write:  {}\n", setup.state_dir.display())), "{stdout}");
    assert!(stdout.contains(&format!("tcp bind:    {} {}\n", setup.public_port, setup.internal_port)), "{stdout}");
    let mut connect = [443, port_of(&log.public), port_of(&log.internal)];
    connect.sort_unstable();
    let connect: Vec<String> = connect.iter().map(u16::to_string).collect();
    assert!(stdout.contains(&format!("tcp connect: {}\n", connect.join(" "))), "{stdout}");
    assert_eq!(output.status.success(), full_landlock_here(), "{stdout}{}", text(&output.stderr));

    // Private webhook targets listen anywhere: the connect rules are lifted, and it says why.
    let danger_dir = dir.path().join("danger");
    std::fs::create_dir(&danger_dir).unwrap();
    let danger = RelaySetup::configure(&danger_dir, &log, "[webhook]\ndanger_allow_private_targets = true\n");
    let stdout = text(&danger.command("check-config").output().unwrap().stdout);
    assert!(stdout.contains("tcp connect: any port ([webhook] danger_allow_private_targets = true"), "{stdout}");

    // Where run would refuse, check-config fails too, and says why.
    let config = setup.config.clone();
    let blocked = with_landlock_blocked(move || relay_command(&config, "check-config").output().unwrap());
    assert!(!blocked.status.success());
    assert!(text(&blocked.stdout).contains("landlock ABI 0 "), "{}", text(&blocked.stdout));
    let stderr = text(&blocked.stderr);
    assert!(stderr.contains("refusing to start") && stderr.contains("seccomp"), "{stderr}");
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let log = start_log(dir.path());
    let setup = RelaySetup::configure(dir.path(), &log, "");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut command = setup.command("run");
    command.env("NOTIFY_SOCKET", &socket_path).env("WATCHDOG_USEC", "400000");
    let mut relay = setup.spawn(command);

    // READY=1 means serving: /health answers at once, without any retry.
    let ready = receive_until(&socket, "READY=1");
    assert!(ready.contains("STATUS=serving sector relay, 0 blobs held (0 bytes)\n"), "{ready:?}");
    let (status, health) = get(&format!("{}/health", relay.public), &[]);
    assert_eq!(status, 200, "{health}");
    assert_eq!(receive_until(&socket, "WATCHDOG=1"), "WATCHDOG=1\n");

    // The status line follows what the relay holds.
    upload(&relay, &mint_key(&setup), b"counted in the status line");
    let (_, health) = get(&format!("{}/health", relay.public), &[]);
    let held = format!("STATUS=serving sector relay, 1 blob held ({} bytes)\n", health["blob_bytes"]);
    assert_eq!(receive_until(&socket, "1 blob held"), held);

    // No reload: SIGHUP is answered with a status line and the relay keeps serving.
    relay.signal(Signal::SIGHUP);
    receive_until(&socket, "STATUS=reload is not supported");
    assert_eq!(get(&format!("{}/health", relay.public), &[]).0, 200);

    relay.signal(Signal::SIGTERM);
    let stopping = receive_until(&socket, "STOPPING=1");
    assert!(stopping.contains("STATUS=draining: refusing uploads, finishing downloads"), "{stopping:?}");
    let exit = relay.wait_for_exit();
    assert!(exit.success(), "{exit}\n{}", relay.stderr());
}
