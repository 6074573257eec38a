//! Director-side LVS: the kernel's IPVS table over generic netlink, and
//! ipvsadm's text formats.
//!
//! Layout:
//! - [`codec`]: the wire format of the "IPVS" generic-netlink family
//!   (message and attribute enums, shaped like `netlink_packet_generic::ctrl`).
//! - [`model`]: typed services, destinations, statistics, timeouts, info and
//!   sync daemons, converted to and from codec attributes.
//!
//! Everything here speaks to the kernel of the calling process's network
//! namespace unless a handle is explicitly bound to another one.

pub mod codec;
pub mod model;

pub use model::{
    Daemon, DaemonState, Destination, Family, Forward, Info, Protocol, Service, ServiceFlags,
    ServiceKey, Stats, Timeouts, TunnelType,
};
