//! rs-agent: prepares a Linux real server for LVS direct routing.
//!
//! A real server must hold each virtual IP (VIP) on `lo` and must never answer
//! ARP for it. The agent converges a machine (or one network namespace) to a
//! small TOML configuration and can undo exactly what it did.
//!
//! The crate is split by concern, with the decisions kept free of system calls:
//!
//! - [`domain`]: the domain types (links, addresses, address specs, sysctl
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
//! - [`netlink`], [`sysctl`], [`fou`], [`kernel`]: thin adapters over
//!   rtnetlink, /proc/sys/net, the FOU generic-netlink family and the
//!   kernel's module lists and UDP table.
//! - [`sysctl_d`]: finds sysctl.d entries that would undo the agent at boot.
//! - [`watch`]: the long-running mode that repairs drift.
//! - [`agent_check`]: the agent endpoint of `watch` (HAProxy agent-check
//!   format: `up`, `drain`, `down`).
//! - [`drain`]: the drain state of a namespace (`drain`, `undrain`).
//! - [`commands`]: the subcommands, tying the above together.
//!
//! Namespaces, the daemon kit (sd_notify, signals, rate limiting), the lock
//! and positioned configuration errors come from `lvs_common`.

pub mod agent_check;
pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod drain;
pub mod error;
pub mod fou;
pub mod kernel;
pub mod netlink;
pub mod observe;
pub mod plan;
pub mod state;
pub mod status;
pub mod sysctl;
pub mod sysctl_d;
pub mod watch;

pub use error::{Error, exit_code};
