//! The agent's error type and the exit codes the binary maps it to.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Exit codes of `rs-agent`, documented in README.md.
pub mod exit_code {
    /// Success; for `check`: the system matches the configuration.
    pub const OK: u8 = 0;
    /// `check` only: the system has drifted from the configuration.
    pub const DRIFT: u8 = 1;
    /// Bad command line or invalid configuration. Nothing was changed.
    pub const USAGE: u8 = 2;
    /// Missing privileges (root or CAP_NET_ADMIN). Nothing was changed.
    pub const PRIVILEGES: u8 = 3;
    /// The system's state forbids the change (a VIP on another interface, an
    /// interface that does not exist, an unreadable rollback record, a busy
    /// lock, an unknown network namespace). Nothing was changed.
    pub const CONFLICT: u8 = 4;
    /// A system call failed midway; what this run had changed was undone.
    pub const ROLLED_BACK: u8 = 5;
    /// A system call failed and undoing the run failed too: inspect by hand.
    pub const ROLLBACK_FAILED: u8 = 6;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigError),

    #[error("{0}")]
    Privileges(String),

    #[error("{0}")]
    Conflict(String),

    #[error("network namespace {name:?}: {source}")]
    Netns {
        name: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot {action} {key}: {source}")]
    Sysctl {
        key: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("netlink: {context}: {source}")]
    Netlink {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("rollback record {}: {message}", path.display())]
    State { path: PathBuf, message: String },

    #[error("{cause}; the changes of this run were undone")]
    RolledBack { cause: Box<Error> },

    #[error("{cause}; undoing this run failed too, inspect by hand: {}", failures.join("; "))]
    RollbackFailed {
        cause: Box<Error>,
        failures: Vec<String>,
    },
}

impl Error {
    pub fn netlink(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Netlink {
            context: context.into(),
            source,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => exit_code::USAGE,
            Error::Privileges(_) => exit_code::PRIVILEGES,
            Error::Conflict(_) | Error::Netns { .. } | Error::State { .. } => exit_code::CONFLICT,
            Error::Sysctl { .. } | Error::Netlink { .. } | Error::RolledBack { .. } => {
                exit_code::ROLLED_BACK
            }
            Error::RollbackFailed { .. } => exit_code::ROLLBACK_FAILED,
        }
    }
}
