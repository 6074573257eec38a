//! The one error type of this crate.
//!
//! Kernel answers that callers act on have their own variants, each with
//! the [`OpKind`] that got it (so that, say, ENOENT means "no such
//! destination" for a destination and "scheduler not found" for a
//! service); a failure underneath keeps its cause as a typed
//! [`std::error::Error::source`].

#[cfg(feature = "netlink")]
use crate::socket::NetlinkError;
#[cfg(feature = "netlink")]
use crate::table::ModelError;

/// What an IPVS operation can fail with. `what` describes the operation
/// (`add service tcp 203.0.113.10:80`) for messages; decisions use `op`
/// and the errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// EEXIST: the service, destination or sync daemon is already there.
    #[error("{what}: already exists")]
    AlreadyExists { op: OpKind, what: String },
    /// ESRCH: the service (or, stopping one, the sync daemon) does not exist.
    #[error("{what}: no such service")]
    NoSuchService { op: OpKind, what: String },
    /// ENOENT on a destination operation.
    #[error("{what}: no such destination")]
    NoSuchDestination { op: OpKind, what: String },
    /// ENOENT on a service add/edit: the kernel could not load the
    /// scheduler or the persistence engine by that name.
    #[error("{what}: scheduler or persistence engine not found")]
    SchedulerOrEngineNotFound { op: OpKind, what: String },
    /// EPERM / EACCES: IPVS needs CAP_NET_ADMIN in the initial user namespace.
    #[error("{what}: permission denied (IPVS needs CAP_NET_ADMIN in the initial user namespace)")]
    PermissionDenied { op: OpKind, what: String },
    /// The "IPVS" generic-netlink family is not registered (no ip_vs module).
    #[error("the IPVS generic netlink family is not available (is the ip_vs module loaded?)")]
    FamilyNotFound,
    /// Any other kernel error.
    #[error("{what}: {source}")]
    Kernel {
        op: OpKind,
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
    /// Not a usable network namespace name (empty, `.`, `..` or with a `/`).
    #[error("invalid network namespace name {0:?}")]
    InvalidNetnsName(String),
    /// The socket failed, or a reply did not decode as netlink.
    #[cfg(feature = "netlink")]
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: NetlinkError,
    },
    /// A change of a batch that the kernel may or may not have applied:
    /// the socket failed on an earlier change of the same
    /// [`crate::Handle::apply_many`] before it was acknowledged.
    #[cfg(feature = "netlink")]
    #[error("{what}: not confirmed (the netlink socket failed on an earlier change)")]
    Unconfirmed { what: String },
    /// A reply that decodes as netlink but not into the model.
    #[cfg(feature = "netlink")]
    #[error("{what}: unexpected kernel reply: {source}")]
    Model {
        what: String,
        #[source]
        source: ModelError,
    },
}

/// The kind of operation a kernel error answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    AddService,
    EditService,
    DeleteService,
    AddDestination,
    EditDestination,
    DeleteDestination,
    Flush,
    Zero,
    SetTimeouts,
    StartDaemon,
    StopDaemon,
    /// A read: a service, destinations, timeouts, info, daemons, the
    /// family id.
    Query,
}

impl OpKind {
    /// Add, edit or delete of a destination.
    pub fn is_destination(self) -> bool {
        matches!(
            self,
            OpKind::AddDestination | OpKind::EditDestination | OpKind::DeleteDestination
        )
    }
}

impl Error {
    /// Map a kernel errno (positive) for an operation of kind `op`,
    /// described by `what`.
    pub fn from_errno(errno: i32, op: OpKind, what: String) -> Error {
        match errno {
            libc::EEXIST => Error::AlreadyExists { op, what },
            libc::ESRCH => Error::NoSuchService { op, what },
            libc::ENOENT if op.is_destination() => Error::NoSuchDestination { op, what },
            libc::ENOENT if matches!(op, OpKind::AddService | OpKind::EditService) => {
                Error::SchedulerOrEngineNotFound { op, what }
            }
            libc::EPERM | libc::EACCES => Error::PermissionDenied { op, what },
            _ => Error::Kernel {
                op,
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

    /// The kind of operation the kernel refused, for kernel answers.
    pub fn op(&self) -> Option<OpKind> {
        match self {
            Error::AlreadyExists { op, .. }
            | Error::NoSuchService { op, .. }
            | Error::NoSuchDestination { op, .. }
            | Error::SchedulerOrEngineNotFound { op, .. }
            | Error::PermissionDenied { op, .. }
            | Error::Kernel { op, .. } => Some(*op),
            _ => None,
        }
    }

    /// ipvsadm's wording for the same kernel answer (its `ipvs_strerror`:
    /// by operation and errno), for tools that want to print what ipvsadm
    /// prints. Errors ipvsadm has no words for print as themselves.
    pub fn ipvsadm_message(&self) -> String {
        use OpKind::*;
        let (Some(op), Some(errno)) = (self.op(), self.errno()) else {
            return self.to_string();
        };
        let text = match (op, errno) {
            (AddDestination, libc::EEXIST) => "Destination already exists",
            (AddDestination, libc::ESRCH) => "Service not defined",
            (StartDaemon, libc::EEXIST) => "Daemon has already run",
            (StopDaemon, libc::ESRCH) => "No daemon is running",
            (_, libc::EEXIST) => "Service already exists",
            (_, libc::ESRCH) => "No such service",
            (AddService | EditService, libc::ENOENT) => "Scheduler or persistence engine not found",
            (EditDestination | DeleteDestination, libc::ENOENT) => "No such destination",
            (_, libc::EPERM) => "Permission denied (you must be root)",
            (_, libc::EINVAL) => {
                "Invalid operation.  Possibly wrong module version, address not unicast, ..."
            }
            (_, libc::ENOMEM) => "Memory allocation problem",
            _ => return self.to_string(),
        };
        text.into()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(errno: i32, op: OpKind) -> String {
        Error::from_errno(errno, op, "x".into()).ipvsadm_message()
    }

    #[test]
    fn ipvsadm_wording_by_operation_and_errno() {
        use OpKind::*;
        assert_eq!(msg(libc::EEXIST, AddService), "Service already exists");
        assert_eq!(
            msg(libc::EEXIST, AddDestination),
            "Destination already exists"
        );
        assert_eq!(msg(libc::ESRCH, AddDestination), "Service not defined");
        assert_eq!(msg(libc::ESRCH, EditDestination), "No such service");
        assert_eq!(msg(libc::ESRCH, DeleteService), "No such service");
        assert_eq!(msg(libc::ENOENT, DeleteDestination), "No such destination");
        assert_eq!(
            msg(libc::ENOENT, EditService),
            "Scheduler or persistence engine not found"
        );
        assert_eq!(msg(libc::EEXIST, StartDaemon), "Daemon has already run");
        assert_eq!(msg(libc::ESRCH, StopDaemon), "No daemon is running");
        assert_eq!(
            msg(libc::EPERM, Flush),
            "Permission denied (you must be root)"
        );
        // No ipvsadm wording: the error itself.
        assert_eq!(
            msg(libc::EINVAL, Flush),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
        assert_eq!(
            msg(libc::EBUSY, Flush),
            "x: Device or resource busy (os error 16)"
        );
    }

    #[test]
    fn the_description_does_not_decide() {
        // The old code matched on the text of `what`; a description that
        // starts like another operation must not change the wording.
        let e = Error::from_errno(
            libc::EEXIST,
            OpKind::AddService,
            "add destination lookalike".into(),
        );
        assert_eq!(e.ipvsadm_message(), "Service already exists");
        let e = Error::from_errno(libc::EEXIST, OpKind::AddDestination, String::new());
        assert_eq!(e.ipvsadm_message(), "Destination already exists");
    }

    #[test]
    fn enoent_by_operation() {
        let e = Error::from_errno(libc::ENOENT, OpKind::DeleteDestination, "d".into());
        assert!(matches!(e, Error::NoSuchDestination { .. }));
        let e = Error::from_errno(libc::ENOENT, OpKind::AddService, "s".into());
        assert!(matches!(e, Error::SchedulerOrEngineNotFound { .. }));
        let e = Error::from_errno(libc::ENOENT, OpKind::Query, "q".into());
        assert!(matches!(
            e,
            Error::Kernel {
                errno: libc::ENOENT,
                ..
            }
        ));
        assert_eq!(e.errno(), Some(libc::ENOENT));
    }
}
