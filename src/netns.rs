//! Network namespace and privilege plumbing.
//!
//! Netlink sockets and /proc/sys/net writes act on the network namespace of
//! the calling thread, so `--netns` is honoured by switching the main thread
//! before any runtime thread or socket exists: everything created afterwards
//! lives in that namespace.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use crate::error::Error;

const NETNS_RUN_DIR: &str = "/run/netns";

/// Moves the calling thread into the named namespace (`ip netns` convention:
/// /run/netns/NAME). Call it before starting threads.
pub fn enter(name: &str) -> Result<(), Error> {
    let bad_name = name.is_empty() || name == "." || name == ".." || name.contains('/');
    if bad_name {
        return Err(Error::Netns {
            name: name.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid name"),
        });
    }
    let path = format!("{NETNS_RUN_DIR}/{name}");
    let file = File::open(&path).map_err(|source| Error::Netns {
        name: name.to_string(),
        source: std::io::Error::new(source.kind(), format!("{path}: {source}")),
    })?;
    // SAFETY: setns on a valid, open file descriptor; no memory is shared.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        let source = std::io::Error::last_os_error();
        return Err(if source.raw_os_error() == Some(libc::EPERM) {
            Error::Privileges(format!(
                "entering network namespace {name:?} needs root or CAP_SYS_ADMIN"
            ))
        } else {
            Error::Netns {
                name: name.to_string(),
                source,
            }
        });
    }
    Ok(())
}

/// A stable identifier of the current thread's network namespace, used to keep
/// one rollback record per namespace. The kernel's namespace cookie is never
/// reused while the machine runs (unlike nsfs inode numbers, which are); older
/// kernels without SO_NETNS_COOKIE fall back to the inode number.
pub fn current_id() -> Result<String, Error> {
    if let Some(cookie) = netns_cookie() {
        return Ok(format!("cookie-{cookie}"));
    }
    let meta = std::fs::metadata("/proc/thread-self/ns/net").map_err(|source| Error::Netns {
        name: "(current)".to_string(),
        source,
    })?;
    Ok(format!("inode-{}", meta.ino()))
}

fn netns_cookie() -> Option<u64> {
    const SO_NETNS_COOKIE: libc::c_int = 71;
    // SAFETY: plain socket/getsockopt/close calls with a correctly sized buffer.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        );
        libc::close(fd);
        (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
    }
}

const CAP_NET_ADMIN: u32 = 12;

/// Fails unless the process can change addresses and net sysctls. Checked
/// before anything is changed, so a missing privilege never leaves half a run.
pub fn require_net_admin() -> Result<(), Error> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    if effective & (1 << CAP_NET_ADMIN) != 0 {
        Ok(())
    } else {
        Err(Error::Privileges(
            "this command needs root or CAP_NET_ADMIN (nothing was changed)".to_string(),
        ))
    }
}
