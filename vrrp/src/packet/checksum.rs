//! The Internet checksum (RFC 1071) of a VRRP message: over the message
//! alone in v2, over the IP pseudo-header and the message in v3 (RFC 5798
//! section 5.2.8, for IPv4 as for IPv6).

use std::net::IpAddr;

use super::{PROTOCOL, Version};

/// A running one's-complement sum of 16-bit big-endian words.
struct Sum(u64);

impl Sum {
    /// Adds `bytes`, an odd last byte padded with zero (only the last piece
    /// may have an odd length).
    fn add(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(2);
        for w in &mut words {
            self.0 += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            self.0 += u64::from(*last) << 8;
        }
    }

    fn fold(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        // `s` fits 16 bits after the fold.
        u16::try_from(s).unwrap_or(u16::MAX)
    }
}

/// The one's-complement of the sum over the pseudo-header (v3) and
/// `message`: the value of the checksum field when `message` holds zero
/// there, and 0 when `message` carries a correct checksum.
pub(super) fn compute(
    version: Version,
    source: IpAddr,
    destination: IpAddr,
    message: &[u8],
) -> u16 {
    let mut sum = Sum(0);
    if version == Version::V3 {
        match (source, destination) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum.add(&s.octets());
                sum.add(&d.octets());
                sum.add(&[0, PROTOCOL]);
                // An IPv4 payload is shorter than 64 KiB.
                let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
                sum.add(&len.to_be_bytes());
            }
            (s, d) => {
                sum.add(&ip_octets(s));
                sum.add(&ip_octets(d));
                let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
                sum.add(&len.to_be_bytes());
                sum.add(&[0, 0, 0, PROTOCOL]);
            }
        }
    }
    sum.add(message);
    !sum.fold()
}

fn ip_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}
