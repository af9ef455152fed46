//! For the other services' tests (feature `testkit`, dev-dependency only): a sector log started
//! inside the test process, on free loopback ports, without a sandbox.

use std::net::TcpListener;
use std::path::Path;

/// A log started by [`start_in_process`]; it runs until its runtime is dropped.
pub struct InProcessLog {
    /// Its public API, `http://127.0.0.1:PORT`.
    pub public_url: String,
    /// Its internal API, `http://127.0.0.1:PORT`.
    pub internal_url: String,
}

/// Starts a log (relay_id `relay.test`, sector `relay`) with its state in `dir/ctlog-state` and
/// its config in `dir/ctlog.toml`, served on `runtime`. Its internal token is on disk (`<state
/// dir>/internal-token`) when this returns. Ports are picked free and retried when another
/// process took one in between (up to 5 times).
///
/// # Panics
/// When the log cannot be opened or no ports could be bound.
#[allow(clippy::unwrap_used, clippy::missing_panics_doc)]
#[must_use]
pub fn start_in_process(runtime: &tokio::runtime::Runtime, dir: &Path) -> InProcessLog {
    let state = dir.join("ctlog-state");
    let free_port = || TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for _ in 0..5 {
        let (public_port, internal_port) = (free_port(), free_port());
        let text = format!(
            "relay_id = \"relay.test\"\nsector = \"relay\"\nstate_dir = \"{state}\"\n\
             public_listen = \"127.0.0.1:{public_port}\"\ninternal_listen = \"127.0.0.1:{internal_port}\"\n\
             signing_key_file = \"{state}/log-key\"\ninternal_token_file = \"{state}/internal-token\"\n",
            state = state.display()
        );
        let path = dir.join("ctlog.toml");
        std::fs::write(&path, text).unwrap();
        let opened = crate::open(crate::config::Config::load(&path).unwrap()).unwrap();
        let Ok(listeners) = crate::bind(&opened.config) else { continue };
        let shared = runtime.block_on(async { opened.start(harden::testkit::unsandboxed()) }).unwrap();
        runtime.spawn(async move {
            if let Err(e) = crate::serve(shared, listeners).await {
                eprintln!("in-process log stopped: {e:#}");
            }
        });
        return InProcessLog {
            public_url: format!("http://127.0.0.1:{public_port}"),
            internal_url: format!("http://127.0.0.1:{internal_port}"),
        };
    }
    panic!("no free ports for the log after 5 tries");
}
