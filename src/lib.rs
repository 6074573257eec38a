//! rs-agent: prepares a Linux real server for LVS direct routing.
//!
//! A real server must hold each virtual IP (VIP) on `lo` and must never answer
//! ARP for it. The agent converges a machine (or one network namespace) to a
//! small TOML configuration and can undo exactly what it did.
//!
//! The crate is split by concern, with the decisions kept free of system calls:
//!
//! - [`model`]: the domain types (links, addresses, address specs, sysctl
//!   keys) that everything else speaks; it depends on nothing in the crate.
//! - [`config`]: TOML into a validated [`config::Config`], errors with file:line:column.
//! - [`observe`]: one snapshot of the system (one link dump, one address dump,
//!   the sysctls).
//! - [`plan`]: pure: configuration + snapshot + rollback record -> changes,
//!   each naming the interface it applies to.
//! - [`apply`]: executes a plan, pipelining address requests, and undoes the
//!   run's changes if a step fails.
//! - [`state`]: the per-namespace rollback record, versioned, atomic and locked.
//! - [`status`]: desired against actual, for `status` and `check`.
//! - [`netlink`], [`sysctl`]: thin adapters over rtnetlink and /proc/sys/net.
//! - [`sysctl_d`]: finds sysctl.d entries that would undo the agent at boot.
//! - [`watch`]: the long-running mode that repairs drift.
//! - [`commands`]: the subcommands, tying the above together.
//!
//! Namespaces, the daemon kit (sd_notify, signals, rate limiting), the lock
//! and positioned configuration errors come from `lvs_common`.

pub mod apply;
pub mod commands;
pub mod config;
pub mod error;
pub mod model;
pub mod netlink;
pub mod observe;
pub mod plan;
pub mod state;
pub mod status;
pub mod sysctl;
pub mod sysctl_d;
pub mod watch;

pub use error::{Error, exit_code};
