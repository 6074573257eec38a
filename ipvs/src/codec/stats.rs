//! The counters of a nested STATS or STATS64 attribute.

use super::*;

/// One counter of a STATS or STATS64 nested attribute.
///
/// Values are widened to `u64`; the enclosing attribute decides the width on
/// the wire (STATS64: all 8 bytes; STATS: 8 bytes for the byte counters,
/// 4 bytes for the rest). Parsing accepts either width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsAttr {
    Conns(u64),
    InPkts(u64),
    OutPkts(u64),
    InBytes(u64),
    OutBytes(u64),
    Cps(u64),
    InPps(u64),
    OutPps(u64),
    InBps(u64),
    OutBps(u64),
    Other(DefaultNla),
}

impl StatsAttr {
    fn kind_value(&self) -> Option<(u16, u64)> {
        Some(match self {
            StatsAttr::Conns(v) => (IPVS_STATS_ATTR_CONNS, *v),
            StatsAttr::InPkts(v) => (IPVS_STATS_ATTR_INPKTS, *v),
            StatsAttr::OutPkts(v) => (IPVS_STATS_ATTR_OUTPKTS, *v),
            StatsAttr::InBytes(v) => (IPVS_STATS_ATTR_INBYTES, *v),
            StatsAttr::OutBytes(v) => (IPVS_STATS_ATTR_OUTBYTES, *v),
            StatsAttr::Cps(v) => (IPVS_STATS_ATTR_CPS, *v),
            StatsAttr::InPps(v) => (IPVS_STATS_ATTR_INPPS, *v),
            StatsAttr::OutPps(v) => (IPVS_STATS_ATTR_OUTPPS, *v),
            StatsAttr::InBps(v) => (IPVS_STATS_ATTR_INBPS, *v),
            StatsAttr::OutBps(v) => (IPVS_STATS_ATTR_OUTBPS, *v),
            StatsAttr::Other(_) => return None,
        })
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for StatsAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        let v = match p.len() {
            4 => u64::from(parse_u32(p)?),
            8 => parse_u64(p)?,
            _ => return Ok(StatsAttr::Other(DefaultNla::parse(buf)?)),
        };
        Ok(match buf.kind() {
            IPVS_STATS_ATTR_CONNS => StatsAttr::Conns(v),
            IPVS_STATS_ATTR_INPKTS => StatsAttr::InPkts(v),
            IPVS_STATS_ATTR_OUTPKTS => StatsAttr::OutPkts(v),
            IPVS_STATS_ATTR_INBYTES => StatsAttr::InBytes(v),
            IPVS_STATS_ATTR_OUTBYTES => StatsAttr::OutBytes(v),
            IPVS_STATS_ATTR_CPS => StatsAttr::Cps(v),
            IPVS_STATS_ATTR_INPPS => StatsAttr::InPps(v),
            IPVS_STATS_ATTR_OUTPPS => StatsAttr::OutPps(v),
            IPVS_STATS_ATTR_INBPS => StatsAttr::InBps(v),
            IPVS_STATS_ATTR_OUTBPS => StatsAttr::OutBps(v),
            _ => StatsAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// A statistics counter bound to its wire width, for emission.
struct StatsNla<'a> {
    attr: &'a StatsAttr,
    wide: bool,
}

impl StatsNla<'_> {
    fn width(&self) -> usize {
        match self.attr.kind_value() {
            Some((k, _))
                if self.wide || k == IPVS_STATS_ATTR_INBYTES || k == IPVS_STATS_ATTR_OUTBYTES =>
            {
                8
            }
            Some(_) => 4,
            None => 0,
        }
    }
}

impl Nla for StatsNla<'_> {
    fn value_len(&self) -> usize {
        match self.attr {
            StatsAttr::Other(n) => n.value_len(),
            _ => self.width(),
        }
    }
    fn kind(&self) -> u16 {
        match self.attr.kind_value() {
            Some((k, _)) => k,
            None => match self.attr {
                StatsAttr::Other(n) => n.kind(),
                _ => unreachable!(),
            },
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self.attr.kind_value() {
            Some((_, v)) if self.width() == 8 => emit_u64(buffer, v).unwrap(),
            Some((_, v)) => emit_u32(buffer, v as u32).unwrap(),
            None => {
                if let StatsAttr::Other(n) = self.attr {
                    n.emit_value(buffer)
                }
            }
        }
    }
}

fn stats_nlas(v: &[StatsAttr], wide: bool) -> Vec<StatsNla<'_>> {
    v.iter().map(|attr| StatsNla { attr, wide }).collect()
}

pub(super) fn stats_len(v: &[StatsAttr], wide: bool) -> usize {
    stats_nlas(v, wide).as_slice().buffer_len()
}

pub(super) fn emit_stats(buffer: &mut [u8], v: &[StatsAttr], wide: bool) {
    stats_nlas(v, wide).as_slice().emit(buffer)
}
