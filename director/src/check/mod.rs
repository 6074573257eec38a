//! Running health checks of real servers, bounded in time, memory and file
//! descriptors ([`run_check`], [`Checker`]). What a check is comes from the
//! file ([`CheckSpec`], in `lvs-director-config`); what a run found is
//! [`CheckOutcome`]. Each kind has its module (`agent`, `exec`, `http` with
//! `tls`, `syn` for half-open TCP); `run` dispatches to them, and `reason`
//! words their failures (it imports none of them).

mod outcome;
mod reason;

// pub(crate) for the fuzz targets (crate::fuzz).
pub(crate) mod agent;
mod exec;
pub(crate) mod http;
mod run;
pub(crate) mod syn;
mod tls;

#[cfg(test)]
mod tests;

pub use lvs_director_config::check::{CheckKind, CheckSpec, HttpCheck};
pub use outcome::{CheckOutcome, CheckResult};
pub use run::{Checker, DEFAULT_MAX_IN_FLIGHT, run_check};
