//! `paramant-license`: the license client of an appliance and the reference license server.
//!
//! - [`service`]: one check-in (ADR R013) — journal and log first, then send, then log every
//!   remote action, then store and publish the state the relay re-verifies.
//! - [`client`]: HTTPS with rustls (aws-lc-rs, X25519MLKEM768 only, TLS 1.3).
//! - [`log`]: the sector's log (relay identity, license-event appends).
//! - [`server`]: the reference license server.
//! - [`cli`]: `paramant license …`.
//!
//! Invariant: the service's only outbound connections are the license server and the local log
//! and relay (the sandbox allows no other port); nothing it writes can grant more than
//! Community Edition unless a trusted key signed it, because every reader re-verifies.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod config;
pub mod log;
pub mod server;
pub mod service;

/// How this service names itself in its log lines.
pub const DAEMON: harden::Daemon = harden::Daemon::new("paramant-license");
