//! Process hardening shared by every paramant daemon: a landlock sandbox (read-only config and
//! credentials, read-write state, TCP bind/connect only on configured ports), `no_new_privs`,
//! dropping every capability after binding, and the sd-notify protocol (`notify`).
//!
//! Call order in a daemon's `main`, all on the main thread before any other thread exists
//! (landlock and capabilities bind only the calling thread and the threads it starts later):
//! load config → open secrets and storage → bind listeners → [`apply`] → [`drop_capabilities`]
//! → build the async runtime → serve → [`notify::ready`].
//!
//! With [`Enforcement::Required`] (the default), [`apply`] fails with a message naming the
//! cause when the kernel or a seccomp filter keeps the sandbox from being fully in force; with
//! [`Enforcement::BestEffort`] it applies what it can and says what is missing.

mod error;
pub mod notify;
mod privileges;
mod probe;
mod sandbox;

pub use error::HardenError;
pub use privileges::drop_capabilities;
pub use probe::{LandlockSupport, landlock_abi, landlock_support};
pub use sandbox::{
    Enforcement, LandlockState, NET_RULES_ABI, Outlook, SandboxPolicy, SandboxReport, TESTED_ABI, apply, outlook,
};
