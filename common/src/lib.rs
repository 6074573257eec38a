//! Foundations shared by the LVS tools (the real-server agent `rs-agent` and
//! the director tools), one module per concern:
//!
//! - [`config_error`]: configuration errors that name `file:line:column`,
//!   with a line index so positions cost a binary search, not a rescan.
//! - [`netns`]: network namespaces (enter one, identify the current one)
//!   and the CAP_NET_ADMIN check. The only module with `unsafe` code.
//! - [`daemon`]: what a long-running service needs: sd_notify (ready,
//!   status, watchdog) without libsystemd, the SIGHUP/SIGTERM/SIGINT
//!   stream, and a token-bucket rate limiter.
//! - [`file`]: files replaced atomically (temporary file, fsync, rename)
//!   without following a link planted at their name.
//! - [`lock`]: an advisory file lock (flock) per network namespace, taken
//!   from async code without blocking the runtime.
//! - [`logging`] (feature `logging`): the binaries' one logging setup,
//!   tracing to stderr filtered by an environment variable.
//! - [`rtnl`] (feature `rtnetlink`): rtnetlink's errors as io errors that
//!   keep the kernel's errno.

// Unsafe code is confined to `netns`, where every block carries a
// `// SAFETY:` comment; the workspace's lints deny it everywhere else.
#![warn(missing_docs)]

pub mod config_error;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod file;
pub mod lock;
#[cfg(feature = "logging")]
pub mod logging;
#[allow(unsafe_code)]
pub mod netns;
#[cfg(feature = "rtnetlink")]
pub mod rtnl;
