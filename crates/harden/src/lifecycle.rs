//! A daemon's life as the service manager sees it, the same for every paramant daemon:
//! `READY=1` once it serves, `WATCHDOG=1` from the async runtime, `STATUS=` when the status line
//! changes, SIGHUP answered with "reload is not supported", and on SIGTERM or SIGINT
//! `STOPPING=1` followed by a [`Drain`] of the servers. sd-notify failures are logged, never
//! fatal: a daemon works without a service manager.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::{Daemon, notify};

impl Daemon {
    /// `READY=1` with `status`, and the watchdog task when the service manager asked for one
    /// (`WatchdogSec=`). Call it inside the async runtime, once every listener serves.
    pub fn ready(&self, status: &str) {
        self.notified(notify::ready(status));
        if let Some(interval) = notify::watchdog_interval() {
            let daemon = *self;
            tokio::spawn(async move {
                let error = notify::watchdog(interval).await;
                daemon.log(format_args!("cannot ping the service manager's watchdog: {error}"));
            });
        }
    }

    /// `STATUS=…`.
    pub fn status(&self, status: &str) {
        self.notified(notify::status(status));
    }

    /// Checks `line` every `every` and sends it as `STATUS=` whenever it differs from the one
    /// before (the first call gives the line already sent with [`Daemon::ready`]). Runs as a
    /// task of the current async runtime.
    pub fn spawn_status_updates(&self, every: Duration, mut line: impl FnMut() -> String + Send + 'static) {
        let daemon = *self;
        let mut last = line();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = line();
                if now != last {
                    daemon.status(&now);
                    last = now;
                }
            }
        });
    }

    /// Waits for SIGTERM or SIGINT, then says `STOPPING=1` with the `draining` status and logs
    /// it. SIGHUP, a reload request elsewhere, is answered with a log line and a `STATUS=`:
    /// no paramant daemon reloads its configuration; it must be restarted.
    pub async fn stop_requested(&self, draining: &str) {
        self.signalled_to_stop().await;
        self.log(format_args!("stopping: {draining}"));
        self.notified(notify::stopping(draining));
    }

    async fn signalled_to_stop(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hangup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = tokio::signal::ctrl_c() => return,
                _ = hangup.recv() => {
                    self.log("SIGHUP ignored: configuration reload is not supported; restart the service to apply a changed configuration");
                    self.status("reload is not supported: restart to apply a changed configuration");
                }
            }
        }
    }

    fn notified(&self, result: std::io::Result<()>) {
        if let Err(e) = result {
            self.log(format_args!("cannot notify the service manager: {e}"));
        }
    }
}

/// Tells a daemon's servers to stop accepting and to finish what is in flight: every future from
/// [`Drain::started`] (what `axum::serve(…).with_graceful_shutdown` takes) resolves once
/// [`Drain::start`] ran, however many servers share it.
#[derive(Debug)]
pub struct Drain {
    started: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        Self { started: watch::Sender::new(false) }
    }
}

impl Drain {
    /// A drain not started yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Begins the drain; idempotent.
    pub fn start(&self) {
        self.started.send_replace(true);
    }

    /// Resolves once the drain has started (at once if it already has).
    pub fn started(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.receiver();
        async move {
            // An error means the Drain was dropped: nobody can start it any more, so stop too.
            let _ = receiver.wait_for(|started| *started).await;
        }
    }

    /// The channel itself, for a server that selects on it in its own accept loop.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.started.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_server_sees_the_drain_start_even_when_it_asks_late() {
        let drain = Drain::new();
        let early = tokio::spawn(drain.started());
        assert!(!early.is_finished());
        drain.start();
        early.await.expect("the early waiter resolves");
        tokio::time::timeout(Duration::from_secs(5), drain.started()).await.expect("a late waiter resolves at once");
        assert!(*drain.receiver().borrow());
    }
}
