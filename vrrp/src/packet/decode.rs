//! Decoding, with the receiver's checks in the order of RFC 5798 section
//! 7.1 and RFC 3768 section 7.1: TTL, version, type, length, checksum,
//! interval, authentication.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Addresses, Advert, Auth, Expect, IpHeader, TTL, Version, checksum};

/// The fixed part of the message before the addresses.
const HEADER_LEN: usize = 8;
/// The v2 authentication data after the addresses.
const AUTH_LEN: usize = 8;

/// Why a received packet is dropped (each a reason the RFCs give).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// TTL or hop limit other than 255: the packet crossed a router.
    #[error("TTL or hop limit {0}, not 255")]
    Ttl(u8),
    /// Shorter than the 8-byte fixed header.
    #[error("{len} bytes, shorter than the 8-byte VRRP header")]
    Truncated {
        /// The message's length.
        len: usize,
    },
    /// A version field other than 2 or 3.
    #[error("version {0} is not VRRP 2 or 3")]
    UnknownVersion(u8),
    /// The other VRRP version than the one configured.
    #[error("VRRP version {got} received, version {want} configured")]
    VersionMismatch {
        /// The version in the packet.
        got: u8,
        /// The version configured.
        want: u8,
    },
    /// A type other than 1 (ADVERTISEMENT).
    #[error("type {0}, not 1 (ADVERTISEMENT)")]
    Type(u8),
    /// Source and destination of different address families.
    #[error("source {from} and destination {to} are not of one address family")]
    MixedFamilies {
        /// The source address.
        from: IpAddr,
        /// The destination address.
        to: IpAddr,
    },
    /// VRRPv2 exists only over IPv4.
    #[error("VRRP version 2 over IPv6")]
    V2OverIpv6,
    /// The address count is 0 (its minimum is 1).
    #[error("the address count is 0")]
    NoAddresses,
    /// The length does not match the address count.
    #[error("{len} bytes for {count} addresses, {expected} expected")]
    Length {
        /// The message's length.
        len: usize,
        /// The address count field.
        count: u8,
        /// The length that count implies.
        expected: usize,
    },
    /// The checksum does not verify.
    #[error("checksum {got:#06x} does not verify (expected {expected:#06x})")]
    Checksum {
        /// The checksum field.
        got: u16,
        /// The checksum the message should carry.
        expected: u16,
    },
    /// An advertisement interval of 0.
    #[error("advertisement interval 0")]
    ZeroInterval,
    /// A v2 authentication type other than the one configured (type 2, IP
    /// AH, and unknown types included).
    #[error("authentication type {got} received, type {want} configured")]
    AuthType {
        /// The type in the packet.
        got: u8,
        /// The type configured.
        want: u8,
    },
    /// A v2 simple-text password other than the one configured.
    #[error("authentication password mismatch")]
    AuthPassword,
}

/// Decodes the VRRP message `message` (the IP payload) received with the
/// IP header facts `ip`, for a router configured as `expect`.
pub fn decode(message: &[u8], ip: &IpHeader, expect: &Expect) -> Result<Advert, DecodeError> {
    if ip.ttl != TTL {
        return Err(DecodeError::Ttl(ip.ttl));
    }
    let (&[ver_type, vrid, priority, count, b4, b5, c0, c1], rest) = message
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(DecodeError::Truncated { len: message.len() })?;
    let version = match ver_type >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        other => return Err(DecodeError::UnknownVersion(other)),
    };
    if version != expect.version {
        return Err(DecodeError::VersionMismatch {
            got: version.number(),
            want: expect.version.number(),
        });
    }
    if ver_type & 0x0f != 1 {
        return Err(DecodeError::Type(ver_type & 0x0f));
    }
    let ipv6 = match (ip.source, ip.destination) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        (from, to) => return Err(DecodeError::MixedFamilies { from, to }),
    };
    if ipv6 && version == Version::V2 {
        return Err(DecodeError::V2OverIpv6);
    }
    if count == 0 {
        return Err(DecodeError::NoAddresses);
    }
    let address_len = if ipv6 { 16 } else { 4 };
    let auth_len = if version == Version::V2 { AUTH_LEN } else { 0 };
    let expected = HEADER_LEN + usize::from(count) * address_len + auth_len;
    if message.len() != expected {
        return Err(DecodeError::Length {
            len: message.len(),
            count,
            expected,
        });
    }
    if checksum::compute(version, ip.source, ip.destination, message) != 0 {
        let mut zeroed = message.to_vec();
        zeroed[6..8].fill(0);
        let expected = checksum::compute(version, ip.source, ip.destination, &zeroed);
        return Err(DecodeError::Checksum {
            got: u16::from_be_bytes([c0, c1]),
            expected,
        });
    }
    let interval = match version {
        Version::V2 => u16::from(b5),
        Version::V3 => u16::from_be_bytes([b4, b5]) & super::V3_MAX_INTERVAL,
    };
    if interval == 0 {
        return Err(DecodeError::ZeroInterval);
    }
    let (list, auth_data) = rest.split_at(rest.len() - auth_len);
    let auth = match version {
        Version::V3 => Auth::None,
        Version::V2 => check_auth(b4, auth_data, &expect.auth)?,
    };
    let addresses = if ipv6 {
        Addresses::V6(
            list.chunks_exact(16)
                .filter_map(|c| <[u8; 16]>::try_from(c).ok())
                .map(Ipv6Addr::from)
                .collect(),
        )
    } else {
        Addresses::V4(
            list.chunks_exact(4)
                .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                .map(Ipv4Addr::from)
                .collect(),
        )
    };
    Ok(Advert {
        version,
        vrid,
        priority,
        interval,
        auth,
        addresses,
    })
}

/// RFC 3768 section 7.1: the type must be the one configured and, for a
/// simple-text password, the data the configured password.
fn check_auth(type_code: u8, data: &[u8], configured: &Auth) -> Result<Auth, DecodeError> {
    if type_code != configured.type_code() {
        return Err(DecodeError::AuthType {
            got: type_code,
            want: configured.type_code(),
        });
    }
    match configured {
        // Type 0: the data is ignored on receipt.
        Auth::None => Ok(Auth::None),
        Auth::Simple(password) if data == password.as_slice() => Ok(configured.clone()),
        Auth::Simple(_) => Err(DecodeError::AuthPassword),
    }
}
