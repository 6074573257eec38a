//! What one run of a check found (the spec of a check is the configuration's:
//! [`lvs_director_config::check`]).

use std::net::IpAddr;
use std::time::Duration;

/// The outcome of one run of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Up,
    /// The server asks for no new connections but is alive (agent `drain`).
    Drain,
    /// Failed, with the reason shown in logs and status
    /// (`connection refused`, `HTTP 503`, `timeout after 1.0s`,
    /// `exit status 2: <first line of stderr>`, agent `down`).
    Down(String),
    /// The director could not start the check: every permit of the
    /// [`Checker`](crate::check::Checker) stayed taken for a whole interval,
    /// or the director is out of descriptors (EMFILE, ENFILE), socket
    /// buffers or processes. This says nothing about the server: count it
    /// neither as a success
    /// nor as a failure (keep the server's state), and log the reason.
    Skipped(String),
}

/// One finished check of one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub address: IpAddr,
    pub outcome: CheckOutcome,
    /// How long the check took.
    pub duration: Duration,
}
