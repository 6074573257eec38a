//! Health checks of real servers: what a check is ([`spec`]), and (with the
//! `runtime` feature) running them with bounded time, memory and file
//! descriptors ([`run_check`], [`Checker`]).

pub mod spec;

#[cfg(feature = "runtime")]
mod agent;
#[cfg(feature = "runtime")]
mod exec;
#[cfg(feature = "runtime")]
pub(crate) mod http;
#[cfg(feature = "runtime")]
mod run;
#[cfg(feature = "runtime")]
pub(crate) mod syn;
#[cfg(feature = "runtime")]
mod tls;

#[cfg(all(test, feature = "runtime"))]
mod tests;

#[cfg(feature = "runtime")]
pub use run::{Checker, DEFAULT_MAX_IN_FLIGHT, run_check};
pub use spec::{CheckKind, CheckOutcome, CheckResult, CheckSpec, HttpCheck};
