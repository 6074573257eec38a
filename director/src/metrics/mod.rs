//! Prometheus metrics of the director: a [`Status`](crate::status::Status)
//! [`render`]ed in the Prometheus text format (version 0.0.4, through
//! `prometheus-client`), and served over HTTP by [`serve`] from a snapshot
//! at most [`MAX_AGE`] old ([`Scrapes`]).
//!
//! Why a snapshot rather than live metric objects: the numbers live
//! elsewhere (IPVS counters in the kernel, health in the state machine), so
//! each snapshot builds a fresh registry from one consistent copy. A server
//! removed from the file vanishes from the next snapshot, with no stale
//! series to forget.

// pub(crate) for the fuzz targets (crate::fuzz).
pub(crate) mod http;
mod render;
mod scrapes;
#[cfg(test)]
mod tests;

pub use http::{Limits, MetricsError, MetricsServer, serve};
pub use render::{CONTENT_TYPE, render, server_label, service_label};
pub use scrapes::{MAX_AGE, Scrapes};
