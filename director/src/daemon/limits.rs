//! The process's limits, set at start.

use tracing::warn;

/// Descriptors kept for everything but the checks (netlink sockets, the
/// control and metrics sockets and their clients, nft pipes, logs).
const FD_RESERVE: u64 = 256;

/// Raises the soft limit on open files to the hard one (checks in flight
/// hold a socket or a pipe each; a soft limit of 1024 would fail checks
/// with "too many open files" at the default of 1024 in flight), and caps
/// the checks in flight to what the limit leaves.
pub(super) fn fd_budget(max_in_flight: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit fill or read the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return max_in_flight;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    let room = lim.rlim_cur.saturating_sub(FD_RESERVE).max(16);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if room < max_in_flight {
        warn!(
            "open files limited to {}: at most {room} checks in flight instead of {max_in_flight}",
            lim.rlim_cur
        );
        room
    } else {
        max_in_flight
    }
}
