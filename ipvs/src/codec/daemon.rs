//! The attributes of a nested DAEMON attribute.

use super::*;

/// Attribute of a nested DAEMON attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DaemonAttr {
    /// 1 = master, 2 = backup.
    State(u32),
    McastIfn(String),
    SyncId(u32),
    SyncMaxLen(u16),
    /// IPv4 multicast group, network order bytes.
    McastGroup([u8; 4]),
    McastGroup6([u8; 16]),
    McastPort(u16),
    McastTtl(u8),
    Other(DefaultNla),
}

impl Nla for DaemonAttr {
    fn value_len(&self) -> usize {
        match self {
            DaemonAttr::State(_) | DaemonAttr::SyncId(_) | DaemonAttr::McastGroup(_) => 4,
            DaemonAttr::McastIfn(s) => s.len() + 1,
            DaemonAttr::SyncMaxLen(_) | DaemonAttr::McastPort(_) => 2,
            DaemonAttr::McastGroup6(_) => 16,
            DaemonAttr::McastTtl(_) => 1,
            DaemonAttr::Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            DaemonAttr::State(_) => IPVS_DAEMON_ATTR_STATE,
            DaemonAttr::McastIfn(_) => IPVS_DAEMON_ATTR_MCAST_IFN,
            DaemonAttr::SyncId(_) => IPVS_DAEMON_ATTR_SYNC_ID,
            DaemonAttr::SyncMaxLen(_) => IPVS_DAEMON_ATTR_SYNC_MAXLEN,
            DaemonAttr::McastGroup(_) => IPVS_DAEMON_ATTR_MCAST_GROUP,
            DaemonAttr::McastGroup6(_) => IPVS_DAEMON_ATTR_MCAST_GROUP6,
            DaemonAttr::McastPort(_) => IPVS_DAEMON_ATTR_MCAST_PORT,
            DaemonAttr::McastTtl(_) => IPVS_DAEMON_ATTR_MCAST_TTL,
            DaemonAttr::Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            DaemonAttr::State(v) | DaemonAttr::SyncId(v) => emit_u32(buffer, *v).unwrap(),
            DaemonAttr::McastIfn(s) => emit_string(buffer, s),
            DaemonAttr::SyncMaxLen(v) => emit_u16(buffer, *v).unwrap(),
            // The kernel reads the port with nla_get_u16 (host order).
            DaemonAttr::McastPort(v) => emit_u16(buffer, *v).unwrap(),
            DaemonAttr::McastGroup(a) => buffer[..4].copy_from_slice(a),
            DaemonAttr::McastGroup6(a) => buffer[..16].copy_from_slice(a),
            DaemonAttr::McastTtl(v) => buffer[0] = *v,
            DaemonAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for DaemonAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        let p = buf.value();
        Ok(match buf.kind() {
            IPVS_DAEMON_ATTR_STATE => DaemonAttr::State(parse_u32(p).context("invalid STATE")?),
            IPVS_DAEMON_ATTR_MCAST_IFN => {
                DaemonAttr::McastIfn(parse_string(p).context("invalid MCAST_IFN")?)
            }
            IPVS_DAEMON_ATTR_SYNC_ID => {
                DaemonAttr::SyncId(parse_u32(p).context("invalid SYNC_ID")?)
            }
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => {
                DaemonAttr::SyncMaxLen(parse_u16(p).context("invalid SYNC_MAXLEN")?)
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP => {
                if p.len() != 4 {
                    return Err(DecodeError::invalid_ip_address(p.len()));
                }
                DaemonAttr::McastGroup([p[0], p[1], p[2], p[3]])
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => {
                if p.len() != 16 {
                    return Err(DecodeError::invalid_ip_address(p.len()));
                }
                DaemonAttr::McastGroup6(parse_addr(p)?)
            }
            IPVS_DAEMON_ATTR_MCAST_PORT => {
                DaemonAttr::McastPort(parse_u16(p).context("invalid MCAST_PORT")?)
            }
            IPVS_DAEMON_ATTR_MCAST_TTL => {
                DaemonAttr::McastTtl(parse_u8(p).context("invalid MCAST_TTL")?)
            }
            _ => DaemonAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}
