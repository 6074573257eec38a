//! VRRP for the director (issue 22), the pure parts: the codec and the
//! state machine, no sockets, no runtime.
//!
//! Written here rather than taken from holo or failover_vr: we want a
//! library with a pure state machine and a codec, small, without an async
//! runtime, with our error style (one `thiserror` enum per boundary).
//!
//! - [`packet`]: VRRPv3 (RFC 5798, IPv4 and IPv6) and VRRPv2 (RFC 3768,
//!   IPv4, authentication none or simple password) advertisements: typed
//!   decode errors for every reason a receiver drops a packet, encoding
//!   with the checksum (the v3 pseudo-header included).
//! - [`machine`]: the RFC 5798 state machine (Initialize, Backup, Master,
//!   and our Fault), driven by events and a caller-supplied clock, with
//!   preemption, keepalived's `preempt_delay` and the director's
//!   warm-up gate; it returns actions, it performs none.
//!
//! Not here yet: the raw sockets, gratuitous ARP / unsolicited NA, and the
//! director's use of it (see README.md).

#![warn(missing_docs)]

pub mod machine;
pub mod packet;
