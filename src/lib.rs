//! rs-agent: prepares a Linux real server for LVS direct routing.
//!
//! A real server must hold each virtual IP (VIP) on `lo` and must never answer
//! ARP for it. The agent converges a machine (or one network namespace) to a
//! small TOML configuration and can undo exactly what it did.
//!
//! The crate is split by concern, with the decisions kept free of system calls:
//!
//! - [`config`]: TOML into a validated [`config::Config`], errors with file:line:column.
//! - [`observe`]: one snapshot of the system (one link dump, one address dump,
//!   the ARP sysctls).
//! - [`plan`]: pure: configuration + snapshot + rollback record -> changes.
//! - [`apply`]: executes a plan, pipelining address requests, and undoes the
//!   run's changes if a step fails.
//! - [`state`]: the per-namespace rollback record, atomic and locked.
//! - [`status`]: desired against actual, for `status` and `check`.
//! - [`netlink`], [`sysctl`], [`netns`]: thin adapters over rtnetlink,
//!   /proc/sys/net and setns.
//! - [`sysctl_d`]: finds sysctl.d entries that would undo the agent at boot.
//! - [`watch`]: the long-running mode that repairs drift.
//! - [`commands`]: the subcommands, tying the above together.

pub mod apply;
pub mod commands;
pub mod config;
pub mod error;
pub mod netlink;
pub mod netns;
pub mod observe;
pub mod plan;
pub mod state;
pub mod status;
pub mod sysctl;
pub mod sysctl_d;
pub mod watch;

pub use error::{Error, exit_code};
