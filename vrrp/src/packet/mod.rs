//! The VRRP advertisement on the wire: VRRPv3 (RFC 5798) over IPv4 and
//! IPv6, VRRPv2 (RFC 3768) over IPv4 with authentication type 0 (none) or
//! 1 (simple text password, keepalived's `auth_type PASS`).
//!
//! The codec sees the VRRP message (the bytes after the IP header) and the
//! few IP header facts a receiver needs ([`IpHeader`]: source, destination,
//! TTL or hop limit). It decodes any VRID: which router a packet is for is
//! the state machine's business. Every reason RFC 3768 / RFC 5798 give a
//! receiver to drop a packet is a [`DecodeError`] variant; decoding checks
//! every bound and never panics.
//!
//! - `checksum.rs`: the Internet checksum, with the v3 pseudo-header.
//! - `decode.rs`: [`decode`] and its checks, in the RFC's order.
//! - `encode.rs`: [`Advert::encode`].

mod checksum;
mod decode;
mod encode;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub use decode::{DecodeError, decode};
pub use encode::EncodeError;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The TTL (IPv4) or hop limit (IPv6) every advertisement is sent with; a
/// receiver drops anything else.
pub const TTL: u8 = 255;
/// The IPv4 multicast group of VRRP.
pub const IPV4_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP.
pub const IPV6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Largest v3 interval, in centiseconds (a 12-bit field).
pub const V3_MAX_INTERVAL: u16 = 0x0fff;

/// The protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, an authentication field.
    V2,
    /// RFC 5798: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The number in the packet's version field.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// One unit of the advertisement interval field: a second (v2) or a
    /// centisecond (v3).
    pub fn interval_unit(self) -> Duration {
        match self {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => Duration::from_millis(10),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// VRRPv2 authentication (RFC 3768 section 5.3.6). Type 2 (IP AH) was
/// removed by RFC 3768 and is refused like any unknown type.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Type 0: no authentication (the only choice in v3).
    None,
    /// Type 1: a clear-text password of up to 8 bytes, zero-padded.
    Simple([u8; 8]),
}

impl Auth {
    /// A simple-text password (keepalived's `auth_pass`), zero-padded to 8
    /// bytes; `None` when it is longer than 8 bytes.
    pub fn simple(password: &[u8]) -> Option<Auth> {
        let mut data = [0; 8];
        data.get_mut(..password.len())?.copy_from_slice(password);
        Some(Auth::Simple(data))
    }

    /// The Auth Type field.
    pub fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Simple(_) => 1,
        }
    }
}

// The password stays out of logs.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Simple(_) => f.write_str("Simple(..)"),
        }
    }
}

/// The virtual addresses an advertisement carries, all of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addresses {
    /// IPv4 addresses (v2, or v3 over IPv4).
    V4(Vec<Ipv4Addr>),
    /// IPv6 addresses (v3 over IPv6).
    V6(Vec<Ipv6Addr>),
}

impl Addresses {
    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Addresses::V4(a) => a.len(),
            Addresses::V6(a) => a.len(),
        }
    }

    /// Whether there are none (an advertisement carries at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether these are IPv6 addresses.
    pub fn is_ipv6(&self) -> bool {
        matches!(self, Addresses::V6(_))
    }
}

/// One advertisement, decoded or to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// The protocol version.
    pub version: Version,
    /// The virtual router (1..=255 in a valid configuration; any value decodes).
    pub vrid: u8,
    /// The sender's priority: 255 the address owner, 0 a master that leaves.
    pub priority: u8,
    /// The advertisement interval in the version's unit: seconds (v2,
    /// 1..=255), centiseconds (v3, 1..=4095).
    pub interval: u16,
    /// The authentication (v2 only; always [`Auth::None`] in v3).
    pub auth: Auth,
    /// The virtual addresses.
    pub addresses: Addresses,
}

impl Advert {
    /// The advertisement interval as a duration.
    pub fn interval_duration(&self) -> Duration {
        self.version.interval_unit() * u32::from(self.interval)
    }
}

/// What the receiver knows of the IP header around a VRRP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpHeader {
    /// The sender's (primary) address.
    pub source: IpAddr,
    /// The multicast group, or this node's address for unicast peers.
    pub destination: IpAddr,
    /// The TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
}

/// What the receiving virtual router is configured to speak: packets of
/// another version or authentication are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The version configured.
    pub version: Version,
    /// The v2 authentication configured (ignored for v3).
    pub auth: Auth,
}

#[cfg(test)]
mod tests;
