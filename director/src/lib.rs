//! The LVS director: a TOML file (services, port groups marked by nftables,
//! real servers) converged onto the kernel's IPVS table, and kept healthy.
//!
//! The crate is grouped by layer; each module's own documentation lists
//! what it holds (ARCHITECTURE.md at the repository's root draws the
//! whole map):
//!
//! - [`config`]: the file and its validation (`file:line:column` errors),
//!   the crate `lvs-director-config` (rs-agent reads the VIPs with it).
//! - [`check`]: running one health check of one address, bounded in time,
//!   memory and descriptors.
//! - [`cluster`]: the cluster as the daemon sees it, pure: checks shared
//!   across services, each check's health state machine, quorum and sorry
//!   servers, admin drains, the reload diff, and when each check runs.
//! - [`kernel`]: the IPVS table and nftables: read, plan, apply, and the
//!   thread that owns the changes.
//! - [`node`]: the director as a machine: VIP announcement, quorum file,
//!   IPVS sysctls, connection-sync daemons.
//! - [`daemon`]: `lvs-director run`'s event loop, its admin requests, the
//!   periodic re-read of the table, the metrics server's glue.
//! - [`status`]: the typed status snapshot that the control socket, the
//!   CLI's text and the metrics all come from.
//! - [`control`]: the control socket and its protocol.
//! - [`metrics`]: the Prometheus text and its HTTP endpoint.
//! - [`cli`]: the command line (also read by the man-page generator), and
//!   [`exit`], its exit codes.
//! - [`sys`]: the few C library calls behind safe functions.

pub mod check;
pub mod cli;
pub mod cluster;
pub mod control;
pub mod daemon;
pub mod exit;
/// The parsers of outside bytes, for the fuzz targets (`fuzz-targets/`).
#[doc(hidden)]
pub mod fuzz;
pub mod kernel;
pub mod metrics;
pub mod node;
pub mod status;
pub mod sys;

pub use lvs_director_config as config;

pub use config::{
    ConfigError, DEFAULT_DIRECTOR_CONFIG, DirectorConfig, OnFailure, PortGroup, ServiceConfig,
    load, parse, vips,
};
pub use kernel::apply::{
    ApplyError, ApplyOptions, ChangeError, NftAction, ReadError, Report, apply, desired_table,
};
pub use kernel::nft::{Nft, NftError};
pub use kernel::plan::{Plan, Step, plan, plan_removal, steps};
