//! Encoding: the message a sender puts after its IP header, checksum
//! included (the v3 pseudo-header needs the IP source and destination).

use std::net::IpAddr;

use super::{Addresses, Advert, Auth, V3_MAX_INTERVAL, Version, checksum};

/// Why an advertisement cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Source and destination of different address families, or addresses
    /// of the other family.
    #[error(
        "source {from}, destination {to} and the virtual addresses are not of one address family"
    )]
    Family {
        /// The source address.
        from: IpAddr,
        /// The destination address.
        to: IpAddr,
    },
    /// VRRPv2 exists only over IPv4.
    #[error("VRRP version 2 over IPv6")]
    V2OverIpv6,
    /// VRRPv3 has no authentication.
    #[error("VRRP version 3 has no authentication")]
    AuthInV3,
    /// No virtual address, or more than the count field holds.
    #[error("{0} virtual addresses: 1 to 255 fit an advertisement")]
    AddressCount(usize),
    /// An interval of 0 or over the field's maximum (255 s in v2, 4095 cs
    /// in v3).
    #[error("advertisement interval {interval} out of range for version {version}")]
    Interval {
        /// The version.
        version: Version,
        /// The interval in the version's unit.
        interval: u16,
    },
}

impl Advert {
    /// The message for this advertisement sent from `source` to
    /// `destination` (the VRRP group, or a unicast peer).
    pub fn encode(&self, source: IpAddr, destination: IpAddr) -> Result<Vec<u8>, EncodeError> {
        let ipv6 = match (source, destination) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            (from, to) => return Err(EncodeError::Family { from, to }),
        };
        if ipv6 != self.addresses.is_ipv6() {
            return Err(EncodeError::Family {
                from: source,
                to: destination,
            });
        }
        if ipv6 && self.version == Version::V2 {
            return Err(EncodeError::V2OverIpv6);
        }
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(EncodeError::AuthInV3);
        }
        let count = u8::try_from(self.addresses.len())
            .ok()
            .filter(|&c| c > 0)
            .ok_or(EncodeError::AddressCount(self.addresses.len()))?;
        let max = match self.version {
            Version::V2 => u16::from(u8::MAX),
            Version::V3 => V3_MAX_INTERVAL,
        };
        if self.interval == 0 || self.interval > max {
            return Err(EncodeError::Interval {
                version: self.version,
                interval: self.interval,
            });
        }
        let mut out = Vec::with_capacity(8 + usize::from(count) * 16 + 8);
        out.extend([
            (self.version.number() << 4) | 1,
            self.vrid,
            self.priority,
            count,
        ]);
        match self.version {
            // Auth Type, Adver Int (the checks above keep it within a byte).
            Version::V2 => out.extend([self.auth.type_code(), self.interval.to_be_bytes()[1]]),
            // 4 reserved bits (zero), then Max Adver Int.
            Version::V3 => out.extend(self.interval.to_be_bytes()),
        }
        out.extend([0, 0]);
        match &self.addresses {
            Addresses::V4(list) => list.iter().for_each(|a| out.extend(a.octets())),
            Addresses::V6(list) => list.iter().for_each(|a| out.extend(a.octets())),
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::None => out.extend([0; 8]),
                Auth::Simple(password) => out.extend(password),
            }
        }
        let sum = checksum::compute(self.version, source, destination, &out);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }
}
