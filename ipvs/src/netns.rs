//! Network namespaces, through lvs-common (the one crate with setns code):
//! running a closure inside one, and the lock that serializes changes to
//! one namespace's IPVS table.
//!
//! A netlink socket belongs to the namespace of the thread that created
//! it, and keeps working there from any thread. So a short-lived thread
//! enters the namespace, creates what it must, and exits; the calling
//! thread never changes namespace.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lvs_common::lock::{self, LockError, LockGuard};
use lvs_common::netns::{self as ns, NetnsError};

/// Where the table locks live (one file per namespace).
pub const LOCK_DIR: &str = "/run/lvs-ipvs";

/// How long a change waits for another run on the same table.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Run `f` on a new thread inside the network namespace behind `path`
/// (`/run/netns/NAME` or `/proc/PID/ns/net`) and return its result.
pub(crate) fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let file = ns::open(path).map_err(into_io)?;
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("ipvs-netns".into())
            .spawn_scoped(scope, move || -> io::Result<T> {
                // setns(2) on this thread only; the thread ends right after f.
                ns::enter_file(path, &file).map_err(into_io)?;
                Ok(f())
            })?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `/run/netns/NAME`, or an error naming the refused name.
pub(crate) fn named(name: &str) -> Option<PathBuf> {
    ns::path(name).ok()
}

/// Takes the exclusive lock on the IPVS table of `netns` (a name under
/// /run/netns, or the caller's namespace), so two runs that change one
/// table (`ipvsctl restore`, `lvs-director apply`, the director daemon's
/// edits) go one after the other instead of interleaving. The lock file is
/// named after the namespace's kernel cookie, so a namespace reached by its
/// name and from inside (`ip netns exec`) shares one lock. `dir` defaults to
/// [`LOCK_DIR`]; waits at most `timeout`.
pub fn lock_table(
    netns: Option<&str>,
    dir: Option<&Path>,
    timeout: Duration,
) -> Result<LockGuard, LockError> {
    let name = match netns {
        None => lock::netns_file_name("ipvs")?,
        Some(n) => {
            let path = ns::path(n)?;
            run_in(&path, || lock::netns_file_name("ipvs"))
                .map_err(|source| NetnsError::Open { path, source })??
        }
    };
    lock::acquire_blocking(dir.unwrap_or(Path::new(LOCK_DIR)), &name, timeout)
}

fn into_io(e: NetnsError) -> io::Error {
    match e {
        NetnsError::Open { source, .. }
        | NetnsError::EnterDenied { source, .. }
        | NetnsError::Enter { source, .. } => source,
        other => io::Error::other(other),
    }
}
