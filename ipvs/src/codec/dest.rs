//! The attributes of a nested DEST attribute.

use super::*;

/// Attribute of a nested DEST attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestAttr {
    Addr([u8; 16]),
    /// Port, host order here, big-endian on the wire.
    Port(u16),
    FwdMethod(u32),
    Weight(u32),
    UThresh(u32),
    LThresh(u32),
    ActiveConns(u32),
    InactConns(u32),
    PersistConns(u32),
    Stats(Vec<StatsAttr>),
    AddrFamily(u16),
    Stats64(Vec<StatsAttr>),
    TunType(u8),
    /// Tunnel port, host order here, big-endian on the wire.
    TunPort(u16),
    TunFlags(u16),
    Other(DefaultNla),
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            DestAttr::Addr(_) => 16,
            DestAttr::Port(_)
            | DestAttr::AddrFamily(_)
            | DestAttr::TunPort(_)
            | DestAttr::TunFlags(_) => 2,
            DestAttr::TunType(_) => 1,
            DestAttr::FwdMethod(_)
            | DestAttr::Weight(_)
            | DestAttr::UThresh(_)
            | DestAttr::LThresh(_)
            | DestAttr::ActiveConns(_)
            | DestAttr::InactConns(_)
            | DestAttr::PersistConns(_) => 4,
            DestAttr::Stats(v) => stats_len(v, false),
            DestAttr::Stats64(v) => stats_len(v, true),
            DestAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DestAttr::Addr(_) => IPVS_DEST_ATTR_ADDR,
            DestAttr::Port(_) => IPVS_DEST_ATTR_PORT,
            DestAttr::FwdMethod(_) => IPVS_DEST_ATTR_FWD_METHOD,
            DestAttr::Weight(_) => IPVS_DEST_ATTR_WEIGHT,
            DestAttr::UThresh(_) => IPVS_DEST_ATTR_U_THRESH,
            DestAttr::LThresh(_) => IPVS_DEST_ATTR_L_THRESH,
            DestAttr::ActiveConns(_) => IPVS_DEST_ATTR_ACTIVE_CONNS,
            DestAttr::InactConns(_) => IPVS_DEST_ATTR_INACT_CONNS,
            DestAttr::PersistConns(_) => IPVS_DEST_ATTR_PERSIST_CONNS,
            DestAttr::Stats(_) => IPVS_DEST_ATTR_STATS | NLA_F_NESTED,
            DestAttr::AddrFamily(_) => IPVS_DEST_ATTR_ADDR_FAMILY,
            DestAttr::Stats64(_) => IPVS_DEST_ATTR_STATS64 | NLA_F_NESTED,
            DestAttr::TunType(_) => IPVS_DEST_ATTR_TUN_TYPE,
            DestAttr::TunPort(_) => IPVS_DEST_ATTR_TUN_PORT,
            DestAttr::TunFlags(_) => IPVS_DEST_ATTR_TUN_FLAGS,
            DestAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            DestAttr::Addr(a) => buffer[..16].copy_from_slice(a),
            DestAttr::Port(v) | DestAttr::TunPort(v) => emit_u16_be(buffer, *v).unwrap(),
            DestAttr::AddrFamily(v) | DestAttr::TunFlags(v) => emit_u16(buffer, *v).unwrap(),
            DestAttr::TunType(v) => buffer[0] = *v,
            DestAttr::FwdMethod(v)
            | DestAttr::Weight(v)
            | DestAttr::UThresh(v)
            | DestAttr::LThresh(v)
            | DestAttr::ActiveConns(v)
            | DestAttr::InactConns(v)
            | DestAttr::PersistConns(v) => emit_u32(buffer, *v).unwrap(),
            DestAttr::Stats(v) => emit_stats(buffer, v, false),
            DestAttr::Stats64(v) => emit_stats(buffer, v, true),
            DestAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DestAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        let u32_of = |what: &str| parse_u32(p).context(format!("invalid DEST {what}"));
        Ok(match buf.kind() {
            IPVS_DEST_ATTR_ADDR => DestAttr::Addr(parse_addr(p).context("invalid DEST ADDR")?),
            IPVS_DEST_ATTR_PORT => DestAttr::Port(parse_u16_be(p).context("invalid DEST PORT")?),
            IPVS_DEST_ATTR_FWD_METHOD => DestAttr::FwdMethod(u32_of("FWD_METHOD")?),
            IPVS_DEST_ATTR_WEIGHT => DestAttr::Weight(u32_of("WEIGHT")?),
            IPVS_DEST_ATTR_U_THRESH => DestAttr::UThresh(u32_of("U_THRESH")?),
            IPVS_DEST_ATTR_L_THRESH => DestAttr::LThresh(u32_of("L_THRESH")?),
            IPVS_DEST_ATTR_ACTIVE_CONNS => DestAttr::ActiveConns(u32_of("ACTIVE_CONNS")?),
            IPVS_DEST_ATTR_INACT_CONNS => DestAttr::InactConns(u32_of("INACT_CONNS")?),
            IPVS_DEST_ATTR_PERSIST_CONNS => DestAttr::PersistConns(u32_of("PERSIST_CONNS")?),
            IPVS_DEST_ATTR_STATS => {
                DestAttr::Stats(parse_nested(p, "stats", |n| StatsAttr::parse(n))?)
            }
            IPVS_DEST_ATTR_ADDR_FAMILY => {
                DestAttr::AddrFamily(parse_u16(p).context("invalid DEST ADDR_FAMILY")?)
            }
            IPVS_DEST_ATTR_STATS64 => {
                DestAttr::Stats64(parse_nested(p, "stats64", |n| StatsAttr::parse(n))?)
            }
            IPVS_DEST_ATTR_TUN_TYPE => {
                DestAttr::TunType(parse_u8(p).context("invalid DEST TUN_TYPE")?)
            }
            IPVS_DEST_ATTR_TUN_PORT => {
                DestAttr::TunPort(parse_u16_be(p).context("invalid DEST TUN_PORT")?)
            }
            IPVS_DEST_ATTR_TUN_FLAGS => {
                DestAttr::TunFlags(parse_u16(p).context("invalid DEST TUN_FLAGS")?)
            }
            _ => DestAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
