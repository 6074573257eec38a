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
    let Some((mut soft, hard)) = crate::sys::nofile_limit() else {
        return max_in_flight;
    };
    if soft < hard && crate::sys::set_nofile_limit(hard, hard) {
        soft = hard;
    }
    let room = soft.saturating_sub(FD_RESERVE).max(16);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if room < max_in_flight {
        warn!(
            "open files limited to {}: at most {room} checks in flight instead of {max_in_flight}",
            soft
        );
        room
    } else {
        max_in_flight
    }
}
