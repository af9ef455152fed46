//! The sd-notify protocol (`Type=notify`, `WatchdogSec=`): `READY=1`, `STATUS=`, `STOPPING=1`
//! and `WATCHDOG=1` sent to `$NOTIFY_SOCKET`.
//!
//! Every function succeeds without doing anything when `NOTIFY_SOCKET` is unset (not started
//! by systemd), so callers cannot tell from the result that nobody listens; use
//! [`is_supervised`] for that. Configuration reload (`RELOADING=1`) is deliberately absent: the
//! daemons do not support it and must be restarted to apply a new configuration.

use std::io;
use std::time::Duration;

use sd_notify::NotifyState;

/// `NOTIFY_SOCKET` is set: a service manager listens for these messages.
pub fn is_supervised() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// `READY=1` with a status line. Send it only once listeners are bound and storage is open.
pub fn ready(status: &str) -> io::Result<()> {
    sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&one_line(status))])
}

/// `STATUS=…`: the line `systemctl status` shows.
pub fn status(status: &str) -> io::Result<()> {
    sd_notify::notify(&[NotifyState::Status(&one_line(status))])
}

/// `STOPPING=1` with a status line, when a graceful drain begins.
pub fn stopping(status: &str) -> io::Result<()> {
    sd_notify::notify(&[NotifyState::Stopping, NotifyState::Status(&one_line(status))])
}

/// The watchdog timeout from `WATCHDOG_USEC` (when `WATCHDOG_PID` is unset or names this
/// process); `None` when no watchdog is configured.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|interval| !interval.is_zero())
}

/// Sends `WATCHDOG=1` every half `interval`, forever, from the async runtime that runs it: a
/// wedged runtime stops pinging and the service manager restarts the service. Returns only
/// when a message cannot be sent.
pub async fn watchdog(interval: Duration) -> io::Error {
    let mut tick = tokio::time::interval(interval / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
            return e;
        }
    }
}

/// A status must be one line: a newline would start a new protocol field.
fn one_line(status: &str) -> String {
    status.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_cannot_inject_protocol_fields() {
        assert_eq!(one_line("serving\nREADY=1"), "serving READY=1");
    }
}
