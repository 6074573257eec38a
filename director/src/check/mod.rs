//! Health checks of real servers: what a check is ([`spec`]), and (with the
//! `runtime` feature) running them with bounded time, memory and file
//! descriptors.

pub mod spec;

pub use spec::{CheckKind, CheckOutcome, CheckResult, CheckSpec, HttpCheck};
