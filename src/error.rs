//! The agent's error type and the exit codes the binary maps it to.

use std::path::PathBuf;

use lvs_common::config_error::LoadError;
use lvs_common::lock::LockError;
use lvs_common::netns::NetnsError;

/// Exit codes of `rs-agent`, documented in README.md and `rs-agent --help`.
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
    /// Reading the system failed (a netlink dump, a sysctl, opening a
    /// netlink socket) before anything was changed. Nothing was changed.
    pub const READ_FAILED: u8 = 7;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be read or is invalid.
    #[error(transparent)]
    Config(#[from] LoadError),

    /// Entering `--netns`, or a missing capability.
    #[error(transparent)]
    Netns(#[from] NetnsError),

    /// The namespace's lock (held by another run for too long, or unusable).
    #[error("rollback record lock {0}")]
    Lock(#[from] LockError),

    /// The system's state forbids the run; nothing was changed.
    #[error("{0}")]
    Conflict(String),

    /// A sysctl could not be read or written.
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

    #[error("rollback record {}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: RecordError,
    },

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
            Error::Netns(e) if e.is_privilege() => exit_code::PRIVILEGES,
            Error::Netns(_) | Error::Lock(_) | Error::Conflict(_) | Error::State { .. } => {
                exit_code::CONFLICT
            }
            // Changes only happen inside `apply`, which wraps every failure
            // in RolledBack or RollbackFailed: a bare system-call error comes
            // from reading, before anything changed.
            Error::Sysctl { .. } | Error::Netlink { .. } => exit_code::READ_FAILED,
            Error::RolledBack { .. } => exit_code::ROLLED_BACK,
            Error::RollbackFailed { .. } => exit_code::ROLLBACK_FAILED,
        }
    }
}

impl From<lvs_common::config_error::ConfigError> for Error {
    fn from(e: lvs_common::config_error::ConfigError) -> Self {
        Error::Config(e.into())
    }
}

/// What can be wrong with the rollback record file (see `state`). Here
/// rather than in `state`, so this module depends on no other of the crate.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    #[error("unreadable ({0}); move it away to start afresh")]
    Parse(#[source] serde_json::Error),
    #[error("unreadable ({0}); move it away to start afresh")]
    Invalid(String),
    #[error("format version {found} is not supported (this rs-agent reads versions 1 to {newest})")]
    Version { found: u64, newest: u64 },
    #[error("cannot encode: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("cannot write: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot remove: {0}")]
    Remove(#[source] std::io::Error),
    #[error("cannot sync directory: {0}")]
    SyncDir(#[source] std::io::Error),
}
