//! The one error type of this crate.

use crate::model::ModelError;

/// What an IPVS operation can fail with. The kernel's answers that callers
/// act on get their own variants; any other errno keeps its context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// EEXIST: the service or destination is already there.
    #[error("{what}: already exists")]
    AlreadyExists { what: String },
    /// ESRCH: the service does not exist.
    #[error("{what}: no such service")]
    NoSuchService { what: String },
    /// ENOENT on a destination operation.
    #[error("{what}: no such destination")]
    NoSuchDestination { what: String },
    /// ENOENT on a service add/edit: the kernel could not load the
    /// scheduler or the persistence engine by that name.
    #[error("{what}: scheduler or persistence engine not found")]
    SchedulerOrEngineNotFound { what: String },
    /// EPERM / EACCES: IPVS needs CAP_NET_ADMIN in the initial user namespace.
    #[error("{what}: permission denied (IPVS needs CAP_NET_ADMIN in the initial user namespace)")]
    PermissionDenied { what: String },
    /// The "IPVS" generic-netlink family is not registered (no ip_vs module).
    #[error("the IPVS generic netlink family is not available (is the ip_vs module loaded?)")]
    FamilyNotFound,
    /// Any other kernel error.
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        errno: i32,
        #[source]
        source: std::io::Error,
    },
    /// The network namespace could not be entered.
    #[error("network namespace {name}: {source}")]
    Netns {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// Socket or protocol failure.
    #[error("netlink: {0}")]
    Netlink(String),
    /// A kernel reply that does not decode into the model.
    #[error("unexpected kernel reply: {0}")]
    Decode(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Invalid input rejected before reaching the kernel.
    #[error("{0}")]
    Invalid(String),
}

/// The kind of operation an errno answers, to give ENOENT its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Service add/edit: ENOENT means scheduler or engine not found.
    Service,
    /// Destination operations: ENOENT means no such destination.
    Destination,
    Other,
}

impl Error {
    /// Map a kernel errno (positive) for an operation described by `what`.
    pub fn from_errno(errno: i32, kind: OpKind, what: String) -> Error {
        match errno {
            libc::EEXIST => Error::AlreadyExists { what },
            libc::ESRCH => Error::NoSuchService { what },
            libc::ENOENT if kind == OpKind::Destination => Error::NoSuchDestination { what },
            libc::ENOENT if kind == OpKind::Service => Error::SchedulerOrEngineNotFound { what },
            libc::EPERM | libc::EACCES => Error::PermissionDenied { what },
            _ => Error::Kernel {
                what,
                errno,
                source: std::io::Error::from_raw_os_error(errno),
            },
        }
    }

    /// The kernel errno behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        Some(match self {
            Error::AlreadyExists { .. } => libc::EEXIST,
            Error::NoSuchService { .. } => libc::ESRCH,
            Error::NoSuchDestination { .. } | Error::SchedulerOrEngineNotFound { .. } => {
                libc::ENOENT
            }
            Error::PermissionDenied { .. } => libc::EPERM,
            Error::Kernel { errno, .. } => *errno,
            _ => return None,
        })
    }

    /// ipvsadm's wording for the same kernel answer (its `ipvs_strerror`),
    /// for tools that want to print what ipvsadm prints.
    pub fn ipvsadm_message(&self) -> String {
        match self {
            Error::AlreadyExists { what } if what.starts_with("add destination") => {
                "Destination already exists".into()
            }
            Error::AlreadyExists { .. } => "Service already exists".into(),
            Error::NoSuchService { what } if what.starts_with("add destination") => {
                "Service not defined".into()
            }
            Error::NoSuchService { .. } => "No such service".into(),
            Error::NoSuchDestination { .. } => "No such destination".into(),
            Error::SchedulerOrEngineNotFound { .. } => {
                "Scheduler or persistence engine not found".into()
            }
            Error::PermissionDenied { .. } => "Permission denied (you must be root)".into(),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
