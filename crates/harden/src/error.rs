//! The one error type of this crate; every variant says what to change.

use std::path::PathBuf;

/// Why the process could not be hardened as asked.
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    /// Required enforcement, but the sandbox would not be fully in force.
    #[error("landlock is {state} but the sandbox is required: {cause}")]
    NotEnforced {
        /// What landlock's state would be.
        state: &'static str,
        /// Why it would not be fully in force.
        cause: String,
    },
    /// Landlock and capabilities bind only the calling thread, so other threads would escape.
    #[error(
        "{threads} threads are running: the sandbox must be applied before any other thread \
         (the async runtime included) is started"
    )]
    ThreadsRunning {
        /// How many threads the process has.
        threads: u32,
    },
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
    /// A policy path exists but cannot be opened for its rule.
    #[error("cannot open {path} for a landlock rule: {source}")]
    Path {
        /// The path.
        path: PathBuf,
        /// Why it cannot be opened.
        source: landlock::PathFdError,
    },
    /// The kernel refused the ruleset.
    #[error("landlock refused the ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    /// Dropping capabilities failed.
    #[error("cannot drop capabilities: {0}")]
    Capabilities(#[from] caps::errors::CapsError),
    /// A capability set is not empty after dropping.
    #[error("capabilities remain after dropping them: {set} = {remaining}")]
    CapabilitiesRemain {
        /// Which set.
        set: &'static str,
        /// What remains in it.
        remaining: String,
    },
    /// A daemon's refusal to start: [`HardenError::NotEnforced`] and the setting that relaxes it.
    #[error(
        "refusing to start: {refused}\n(to start without the full sandbox, set landlock = \"best-effort\" \
         under [sandbox] in {})",
        config_file.display()
    )]
    Refused {
        /// The underlying refusal.
        refused: Box<HardenError>,
        /// The configuration file with the `[sandbox]` setting.
        config_file: PathBuf,
    },
}

impl HardenError {
    /// A sandbox that is required but would not be in force becomes [`HardenError::Refused`],
    /// naming where to change the enforcement; every other error stays as it is.
    pub fn refusal(self, config_file: &std::path::Path) -> Self {
        match self {
            Self::NotEnforced { .. } => Self::Refused { refused: Box::new(self), config_file: config_file.into() },
            other => other,
        }
    }
}
