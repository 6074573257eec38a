//! The attributes of a nested SERVICE attribute.

use super::*;

/// The `struct ip_vs_flags { u32 flags; u32 mask; }` carried by SVC_ATTR_FLAGS.
/// The kernel applies `(old & !mask) | (flags & mask)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlagsMask {
    pub flags: u32,
    pub mask: u32,
}

/// Attribute of a nested SERVICE attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceAttr {
    /// Address family (AF_INET = 2, AF_INET6 = 10).
    Af(u16),
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP).
    Protocol(u16),
    /// Virtual address, 16 bytes; IPv4 uses the first four.
    Addr([u8; 16]),
    /// Virtual port, host order here, big-endian on the wire.
    Port(u16),
    Fwmark(u32),
    SchedName(String),
    Flags(FlagsMask),
    /// Persistence timeout in seconds.
    Timeout(u32),
    /// Raw netmask field, native byte order as the kernel stores it.
    Netmask(u32),
    /// Legacy 32-bit statistics (some counters are 64-bit even here).
    Stats(Vec<StatsAttr>),
    PeName(String),
    Stats64(Vec<StatsAttr>),
    Other(DefaultNla),
}

impl Nla for ServiceAttr {
    fn value_len(&self) -> usize {
        match self {
            ServiceAttr::Af(_) | ServiceAttr::Protocol(_) | ServiceAttr::Port(_) => 2,
            ServiceAttr::Addr(_) => 16,
            ServiceAttr::Fwmark(_) | ServiceAttr::Timeout(_) | ServiceAttr::Netmask(_) => 4,
            ServiceAttr::SchedName(s) | ServiceAttr::PeName(s) => s.len() + 1,
            ServiceAttr::Flags(_) => 8,
            ServiceAttr::Stats(v) => stats_len(v, false),
            ServiceAttr::Stats64(v) => stats_len(v, true),
            ServiceAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            ServiceAttr::Af(_) => IPVS_SVC_ATTR_AF,
            ServiceAttr::Protocol(_) => IPVS_SVC_ATTR_PROTOCOL,
            ServiceAttr::Addr(_) => IPVS_SVC_ATTR_ADDR,
            ServiceAttr::Port(_) => IPVS_SVC_ATTR_PORT,
            ServiceAttr::Fwmark(_) => IPVS_SVC_ATTR_FWMARK,
            ServiceAttr::SchedName(_) => IPVS_SVC_ATTR_SCHED_NAME,
            ServiceAttr::Flags(_) => IPVS_SVC_ATTR_FLAGS,
            ServiceAttr::Timeout(_) => IPVS_SVC_ATTR_TIMEOUT,
            ServiceAttr::Netmask(_) => IPVS_SVC_ATTR_NETMASK,
            ServiceAttr::Stats(_) => IPVS_SVC_ATTR_STATS | NLA_F_NESTED,
            ServiceAttr::PeName(_) => IPVS_SVC_ATTR_PE_NAME,
            ServiceAttr::Stats64(_) => IPVS_SVC_ATTR_STATS64 | NLA_F_NESTED,
            ServiceAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            ServiceAttr::Af(v) | ServiceAttr::Protocol(v) => emit_u16(buffer, *v).unwrap(),
            ServiceAttr::Port(v) => emit_u16_be(buffer, *v).unwrap(),
            ServiceAttr::Addr(a) => buffer[..16].copy_from_slice(a),
            ServiceAttr::Fwmark(v) | ServiceAttr::Timeout(v) | ServiceAttr::Netmask(v) => {
                emit_u32(buffer, *v).unwrap()
            }
            ServiceAttr::SchedName(s) | ServiceAttr::PeName(s) => emit_string(buffer, s),
            ServiceAttr::Flags(f) => {
                emit_u32(&mut buffer[..4], f.flags).unwrap();
                emit_u32(&mut buffer[4..8], f.mask).unwrap();
            }
            ServiceAttr::Stats(v) => emit_stats(buffer, v, false),
            ServiceAttr::Stats64(v) => emit_stats(buffer, v, true),
            ServiceAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for ServiceAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match buf.kind() {
            IPVS_SVC_ATTR_AF => ServiceAttr::Af(parse_u16(p).context("invalid SVC AF")?),
            IPVS_SVC_ATTR_PROTOCOL => {
                ServiceAttr::Protocol(parse_u16(p).context("invalid SVC PROTOCOL")?)
            }
            IPVS_SVC_ATTR_ADDR => ServiceAttr::Addr(parse_addr(p).context("invalid SVC ADDR")?),
            IPVS_SVC_ATTR_PORT => ServiceAttr::Port(parse_u16_be(p).context("invalid SVC PORT")?),
            IPVS_SVC_ATTR_FWMARK => {
                ServiceAttr::Fwmark(parse_u32(p).context("invalid SVC FWMARK")?)
            }
            IPVS_SVC_ATTR_SCHED_NAME => {
                ServiceAttr::SchedName(parse_string(p).context("invalid SVC SCHED_NAME")?)
            }
            IPVS_SVC_ATTR_FLAGS => {
                if p.len() != 8 {
                    return Err(DecodeError::invalid_number(8, p.len()));
                }
                ServiceAttr::Flags(FlagsMask {
                    flags: parse_u32(&p[..4])?,
                    mask: parse_u32(&p[4..])?,
                })
            }
            IPVS_SVC_ATTR_TIMEOUT => {
                ServiceAttr::Timeout(parse_u32(p).context("invalid SVC TIMEOUT")?)
            }
            IPVS_SVC_ATTR_NETMASK => {
                ServiceAttr::Netmask(parse_u32(p).context("invalid SVC NETMASK")?)
            }
            IPVS_SVC_ATTR_STATS => {
                ServiceAttr::Stats(parse_nested(p, "stats", |n| StatsAttr::parse(n))?)
            }
            IPVS_SVC_ATTR_PE_NAME => {
                ServiceAttr::PeName(parse_string(p).context("invalid SVC PE_NAME")?)
            }
            IPVS_SVC_ATTR_STATS64 => {
                ServiceAttr::Stats64(parse_nested(p, "stats64", |n| StatsAttr::parse(n))?)
            }
            _ => ServiceAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
