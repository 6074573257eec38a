//! Network namespaces and the privilege to change the network.
//!
//! Netlink sockets and /proc/sys/net act on the network namespace of the
//! calling *thread*. A tool honours `--netns NAME` by moving a thread into
//! /run/netns/NAME (the `ip netns` convention) before it creates sockets:
//! the main thread before the runtime starts, or a dedicated thread that
//! opens a socket there and hands it back.
//!
//! This is the only module of the crate with `unsafe` code: three system
//! calls the standard library does not wrap (setns, getsockopt of the
//! namespace cookie, and setns between fork and exec).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `ip netns add NAME` mounts a namespace.
pub const RUN_DIR: &str = "/run/netns";

/// Why a namespace could not be entered or identified.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Not a name `ip netns` could have created.
    #[error("invalid network namespace name {name:?} (a name under /run/netns, without '/')")]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// The namespace file cannot be opened (usually: no such namespace).
    #[error("network namespace {}: {source}", path.display())]
    Open {
        /// /run/netns/NAME or the path given.
        path: PathBuf,
        /// The error of open(2).
        #[source]
        source: io::Error,
    },
    /// setns(2) refused for lack of privileges.
    #[error("entering network namespace {} needs root or CAP_SYS_ADMIN", path.display())]
    EnterDenied {
        /// The namespace.
        path: PathBuf,
        /// The error of setns(2) (EPERM).
        #[source]
        source: io::Error,
    },
    /// setns(2) failed otherwise (not a network namespace, ...).
    #[error("cannot enter network namespace {}: {source}", path.display())]
    Enter {
        /// The namespace.
        path: PathBuf,
        /// The error of setns(2).
        #[source]
        source: io::Error,
    },
    /// Neither the namespace cookie nor /proc/thread-self/ns/net is available.
    #[error("cannot identify the current network namespace: {source}")]
    Identify {
        /// The error of reading /proc/thread-self/ns/net.
        #[source]
        source: io::Error,
    },
    /// The process lacks CAP_NET_ADMIN in its namespace.
    #[error("this command needs root or CAP_NET_ADMIN")]
    NotNetAdmin,
}

impl NetnsError {
    /// True for the errors that more privileges would fix.
    pub fn is_privilege(&self) -> bool {
        matches!(
            self,
            NetnsError::EnterDenied { .. } | NetnsError::NotNetAdmin
        )
    }
}

/// Whether `name` can be a namespace of /run/netns: not empty, not `.` or
/// `..`, no `/` (which would reach outside the directory).
pub fn valid_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains('/'))
}

/// /run/netns/NAME, after checking the name.
pub fn path(name: &str) -> Result<PathBuf, NetnsError> {
    if valid_name(name) {
        Ok(Path::new(RUN_DIR).join(name))
    } else {
        Err(NetnsError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// Opens the namespace file of `path`, for [`enter_file`] or
/// [`spawn_inside`].
pub fn open(path: &Path) -> Result<File, NetnsError> {
    File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Moves the calling thread into the named namespace (/run/netns/NAME).
/// Other threads stay where they are: call it before starting any, or on a
/// thread dedicated to the namespace.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    enter_path(&path(name)?)
}

/// Moves the calling thread into the namespace behind `path` (a bind mount
/// such as /run/netns/NAME, or /proc/PID/ns/net).
pub fn enter_path(path: &Path) -> Result<(), NetnsError> {
    enter_file(path, &open(path)?)
}

/// Moves the calling thread into the namespace of an open namespace file;
/// `path` only names it in errors.
pub fn enter_file(path: &Path, file: &File) -> Result<(), NetnsError> {
    // SAFETY: setns(2) takes a file descriptor and a flag; `file` keeps the
    // descriptor open for the duration of the call, and no memory is shared
    // with the kernel. It changes only the calling thread's namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        return Ok(());
    }
    let source = io::Error::last_os_error();
    let path = path.to_path_buf();
    Err(if source.raw_os_error() == Some(libc::EPERM) {
        NetnsError::EnterDenied { path, source }
    } else {
        NetnsError::Enter { path, source }
    })
}

/// Makes `command` run inside the namespace of `netns` (a file from
/// [`open`]): the child enters it between fork and exec, the parent's
/// threads are untouched. The file is kept open until `command` is dropped.
pub fn spawn_inside(command: &mut Command, netns: File) {
    let hook = move || {
        // SAFETY: setns(2) on a descriptor owned by this closure, which
        // lives as long as the Command; no memory is shared.
        if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe functions may run: it calls setns(2) and reads
    // errno, and allocates nothing.
    unsafe {
        command.pre_exec(hook);
    }
}

/// The kernel's cookie of the calling thread's network namespace: a 64-bit
/// number never reused while the machine runs. `None` on kernels before 5.14
/// (no SO_NETNS_COOKIE).
pub fn cookie() -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    // Any socket reports the namespace it was created in: the caller's.
    let socket = UnixDatagram::unbound().ok()?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt(2) on an open socket, writing at most `len` bytes
    // into `cookie`, which is exactly `len` bytes long and outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
}

/// A stable identifier of the calling thread's network namespace, for files
/// kept per namespace (records, locks): `cookie-N`, or `inode-N` on kernels
/// without cookies (nsfs inode numbers can be reused once a namespace is
/// gone, cookies cannot, so the cookie is preferred).
pub fn current_id() -> Result<String, NetnsError> {
    if let Some(cookie) = cookie() {
        return Ok(format!("cookie-{cookie}"));
    }
    let meta = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(|source| NetnsError::Identify { source })?;
    Ok(format!("inode-{}", meta.ino()))
}

const CAP_NET_ADMIN: u32 = 12;

/// Fails unless the process holds CAP_NET_ADMIN (effective), the capability
/// to change addresses, links, IPVS and net sysctls. Check it before
/// changing anything, so a missing privilege never leaves half a run.
pub fn require_net_admin() -> Result<(), NetnsError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if effective_capabilities(&status) & (1 << CAP_NET_ADMIN) != 0 {
        Ok(())
    } else {
        Err(NetnsError::NotNetAdmin)
    }
}

/// The CapEff mask of a /proc/PID/status text (0 when absent).
fn effective_capabilities(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_run_netns_are_refused() {
        for bad in ["", ".", "..", "a/b", "/etc"] {
            assert!(!valid_name(bad), "{bad:?}");
            let e = path(bad).unwrap_err();
            assert!(matches!(e, NetnsError::InvalidName { .. }), "{e}");
        }
        for good in ["rsa-1", "blue", "a.b", "..."] {
            assert_eq!(path(good).unwrap(), Path::new(RUN_DIR).join(good));
        }
    }

    #[test]
    fn unknown_namespace_names_the_path() {
        let e = enter("rsa-no-such-namespace-for-sure").unwrap_err();
        assert!(matches!(e, NetnsError::Open { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("network namespace /run/netns/rsa-no-such-namespace-for-sure: "),
            "{text}"
        );
        assert!(!e.is_privilege());
    }

    #[test]
    fn entering_the_own_namespace_works_or_needs_privileges() {
        // /proc/self/ns/net is the namespace we are in: entering it changes
        // nothing, and tells whether setns is permitted here.
        match enter_path(Path::new("/proc/self/ns/net")) {
            Ok(()) => {}
            Err(e) => assert!(e.is_privilege(), "{e}"),
        }
    }

    #[test]
    fn current_id_is_stable_within_a_namespace() {
        let first = current_id().unwrap();
        assert!(
            first.starts_with("cookie-") || first.starts_with("inode-"),
            "{first}"
        );
        assert_eq!(current_id().unwrap(), first);
        // Another thread of the same process shares the namespace.
        let other = std::thread::spawn(|| current_id().unwrap()).join().unwrap();
        assert_eq!(other, first);
    }

    #[test]
    fn capability_mask_parsing() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000001000\n";
        assert_eq!(effective_capabilities(status), 1 << CAP_NET_ADMIN);
        assert_eq!(effective_capabilities("Name:\tx\n"), 0);
    }

    #[test]
    fn spawned_command_runs_in_the_given_namespace() {
        // The own namespace keeps the test harmless; it still exercises the
        // fork/exec hook and shows the descriptor stays valid.
        let mut command = Command::new("true");
        spawn_inside(&mut command, open(Path::new("/proc/self/ns/net")).unwrap());
        match command.status() {
            Ok(status) => assert!(status.success()),
            // Without CAP_SYS_ADMIN the hook's setns fails, and so does the spawn.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }
}
