//! The LVS director: a TOML file (services, port groups marked by nftables,
//! real servers) converged onto the kernel's IPVS table.
//!
//! - [`config`]: the file format, validated with `file:line:column` errors,
//!   and [`vips`] (the VIPs the real servers must hold). Built alone (without
//!   the default `runtime` feature) it is all rs-agent needs.
//! - [`plan`]: the pure diff of the file against the kernel's table
//!   (edits in place, never delete-and-add).
//! - [`nft`]: the firewall marks of port groups in `table inet ipvsctl`,
//!   replaced in one nftables transaction.
//! - [`apply`]: reads the kernel, plans, applies, and on a failure midway
//!   converges back to the table read before.
//! - [`check`]: what a health check is, and (runtime) running one, bounded.
//! - [`metrics`]: the Prometheus metrics and their HTTP endpoint.
//! - `lvs-director run` (the daemon): [`health`] (one check's state
//!   machine, pure), [`model`] (the cluster: checks shared across services,
//!   quorum and sorry servers, admin drains, reload diff; pure), [`sched`]
//!   (when each check runs), [`kernel`] (the thread that owns IPVS and nft),
//!   [`control`] (the control socket), [`status`], [`daemon`] (the loop),
//!   [`node`] (the director as a whole: VIP announcement, quorum file,
//!   IPVS sysctls, sync daemons).

#[cfg(feature = "runtime")]
pub mod apply;
pub mod check;
#[cfg(feature = "runtime")]
pub mod cli;
pub mod config;
#[cfg(feature = "runtime")]
pub mod control;
#[cfg(feature = "runtime")]
pub mod daemon;
#[cfg(feature = "runtime")]
mod daemon_metrics;
#[cfg(feature = "runtime")]
pub mod health;
#[cfg(feature = "runtime")]
pub mod kernel;
#[cfg(feature = "runtime")]
pub mod metrics;
#[cfg(feature = "runtime")]
pub mod model;
#[cfg(feature = "runtime")]
pub mod nft;
#[cfg(feature = "runtime")]
pub mod node;
#[cfg(feature = "runtime")]
pub mod plan;
#[cfg(feature = "runtime")]
pub mod sched;
#[cfg(feature = "runtime")]
pub mod status;
#[cfg(feature = "runtime")]
pub mod view;

#[cfg(feature = "runtime")]
pub use apply::{
    ApplyError, ApplyOptions, ChangeError, NftAction, ReadError, Report, apply, desired_table,
};
pub use config::{
    ConfigError, DEFAULT_DIRECTOR_CONFIG, DirectorConfig, OnFailure, PortGroup, ServiceConfig,
    load, parse, vips,
};
#[cfg(feature = "runtime")]
pub use nft::{Nft, NftError};
#[cfg(feature = "runtime")]
pub use plan::{Plan, Step, plan, plan_removal, steps};
