//! Director-side LVS: the kernel's IPVS table over generic netlink, and
//! ipvsadm's text formats.
//!
//! Layout:
//! - [`codec`]: the wire format of the "IPVS" generic-netlink family
//!   (message and attribute enums, shaped like `netlink_packet_generic::ctrl`).
//! - [`model`]: typed services, destinations, statistics, timeouts, info and
//!   sync daemons, converted to and from codec attributes.
//! - [`handle`]: [`Handle`], the connection (long-lived netlink sockets,
//!   optionally in a named network namespace) with every table operation,
//!   and [`Op`] / [`Handle::apply_many`] for bulk work. Its methods are
//!   async but do blocking socket I/O on the calling thread (see README).
//! - [`rules`]: ipvsadm's rules text: parse every command line `ipvsadm -R`
//!   reads (-A -E -D -a -e -d -C -Z --set) and print what `ipvsadm -S -n`
//!   prints.
//! - [`listing`]: what `ipvsadm -L -n` prints (--stats, --rate, --exact,
//!   --thresholds, --persistent-conn, --tun-info, --timeout, --daemon), in
//!   ipvsadm's own (quirky) order.
//! - [`error`]: [`Error`], with typed kernel answers.
//!
//! ```no_run
//! use lvs_ipvs::{Destination, Handle, Service, ServiceKey};
//! # async fn demo() -> Result<(), lvs_ipvs::Error> {
//! let ipvs = Handle::in_netns("director").await?;
//! let vip = ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80);
//! ipvs.add_service(&Service::new(vip, "wrr")).await?;
//! let mut rs = Destination::new("198.51.100.12".parse().unwrap(), 80);
//! rs.weight = 2;
//! ipvs.add_destination(&vip, &rs).await?;
//! print!("{}", lvs_ipvs::rules::render_save(&ipvs.table().await?));
//! # Ok(()) }
//! ```
//!
//! Everything here speaks to the kernel of the calling process's network
//! namespace unless a handle is explicitly bound to another one.

pub mod codec;
pub mod error;
pub mod handle;
pub mod listing;
pub mod model;
pub mod rules;

pub use error::{Error, OpKind, Result};
pub use handle::{DEFAULT_CONCURRENCY, Handle, Op};

pub use model::{
    Daemon, DaemonState, Destination, Family, Forward, Info, Protocol, Service, ServiceFlags,
    ServiceKey, Stats, Timeouts, TunnelType,
};

/// The README's example compiles (checked by `cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
