//! Director-side LVS: the kernel's IPVS table over generic netlink, and
//! ipvsadm's text formats.
//!
//! Layout:
//! - [`table`]: typed services, destinations, statistics, timeouts, info
//!   and sync daemons; a service's name in each text ([`table::KeyStyle`]).
//! - [`op`]: [`Op`], one change to the table (what a rules line says, what
//!   the director plans, what the handle sends).
//! - [`rules`]: ipvsadm's rules text: parse every command line `ipvsadm -R`
//!   reads (-A -E -D -a -e -d -C -Z --set) into [`Op`]s and print what
//!   `ipvsadm -S -n` prints; with ipvsadm's option table
//!   ([`rules::options`]) and its popt splitting of argv ([`rules::argv`]),
//!   which ipvsctl's ipvsadm mode shares.
//! - [`listing`]: what `ipvsadm -L -n` prints (--stats, --rate, --exact,
//!   --thresholds, --persistent-conn, --tun-info, --timeout, --daemon), in
//!   ipvsadm's own (quirky) order.
//! - [`error`]: [`Error`], with typed kernel answers.
//!
//! With the default feature `netlink`, the kernel side too:
//! - [`codec`]: the wire format of the "IPVS" generic-netlink family
//!   (message and attribute enums, shaped like `netlink_packet_generic::ctrl`).
//! - `socket` (private): the blocking generic-netlink socket (netlink-sys)
//!   that sends many requests per system call; its failures are
//!   [`NetlinkError`].
//! - [`handle`]: [`Handle`], a synchronous connection (optionally in a
//!   named network namespace) with every table operation, and
//!   [`Handle::apply_many`] for bulk work.
//!
//! ```no_run
//! # #[cfg(feature = "netlink")]
//! # fn demo() -> Result<(), lvs_ipvs::Error> {
//! use lvs_ipvs::{Destination, Handle, Service, ServiceKey};
//!
//! let ipvs = Handle::in_netns("director")?;
//! let vip = ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80);
//! ipvs.add_service(&Service::new(vip, "wrr"))?;
//! let mut rs = Destination::new("198.51.100.12".parse().unwrap(), 80);
//! rs.weight = 2;
//! ipvs.add_destination(&vip, &rs)?;
//! print!("{}", lvs_ipvs::rules::render_save(&ipvs.table()?));
//! # Ok(()) }
//! ```
//!
//! Everything here speaks to the kernel of the calling thread's network
//! namespace unless a handle is explicitly bound to another one.

#[cfg(feature = "netlink")]
pub mod codec;
pub mod error;
#[cfg(feature = "netlink")]
pub mod handle;
pub mod listing;
#[cfg(feature = "netlink")]
pub mod netns;
pub mod op;
pub mod rules;
#[cfg(feature = "netlink")]
mod socket;
pub mod table;

pub use error::{Error, OpKind, Result};
#[cfg(feature = "netlink")]
pub use handle::Handle;
/// The lock of one namespace's table, from [`lock_table`].
#[cfg(feature = "netlink")]
pub use lvs_common::lock::{LockError, LockGuard};
#[cfg(feature = "netlink")]
pub use netns::lock_table;
pub use op::Op;
#[cfg(feature = "netlink")]
pub use socket::NetlinkError;

pub use table::{
    Daemon, DaemonState, Destination, Family, Forward, Info, Protocol, Service, ServiceFlags,
    ServiceKey, Stats, Timeouts, TunnelType,
};

/// The README's example compiles (checked by `cargo test --doc`).
#[cfg(all(doctest, feature = "netlink"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
