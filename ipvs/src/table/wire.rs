//! The model to and from the netlink attributes of [`crate::codec`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    Daemon, DaemonState, Destination, Family, Forward, Protocol, Service, ServiceFlags, ServiceKey,
    Stats, TunnelType, addr_bytes, ip_from_bytes,
};
use crate::codec::{DaemonAttr, DestAttr, FlagsMask, ServiceAttr, StatsAttr};

impl ServiceKey {
    /// The identifying attributes, as the kernel expects them.
    pub fn to_attrs(&self) -> Vec<ServiceAttr> {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => vec![
                ServiceAttr::Af(Family::of(addr).raw()),
                ServiceAttr::Protocol(protocol.raw()),
                ServiceAttr::Addr(addr_bytes(addr)),
                ServiceAttr::Port(*port),
            ],
            ServiceKey::Fwmark { family, mark } => {
                vec![ServiceAttr::Af(family.raw()), ServiceAttr::Fwmark(*mark)]
            }
        }
    }
}

impl Stats {
    pub fn from_attrs(attrs: &[StatsAttr]) -> Stats {
        let mut s = Stats::default();
        for a in attrs {
            match a {
                StatsAttr::Conns(v) => s.conns = *v,
                StatsAttr::InPkts(v) => s.inpkts = *v,
                StatsAttr::OutPkts(v) => s.outpkts = *v,
                StatsAttr::InBytes(v) => s.inbytes = *v,
                StatsAttr::OutBytes(v) => s.outbytes = *v,
                StatsAttr::Cps(v) => s.cps = *v,
                StatsAttr::InPps(v) => s.inpps = *v,
                StatsAttr::OutPps(v) => s.outpps = *v,
                StatsAttr::InBps(v) => s.inbps = *v,
                StatsAttr::OutBps(v) => s.outbps = *v,
                StatsAttr::Other(_) => {}
            }
        }
        s
    }
    pub fn to_attrs(&self) -> Vec<StatsAttr> {
        vec![
            StatsAttr::Conns(self.conns),
            StatsAttr::InPkts(self.inpkts),
            StatsAttr::OutPkts(self.outpkts),
            StatsAttr::InBytes(self.inbytes),
            StatsAttr::OutBytes(self.outbytes),
            StatsAttr::Cps(self.cps),
            StatsAttr::InPps(self.inpps),
            StatsAttr::OutPps(self.outpps),
            StatsAttr::InBps(self.inbps),
            StatsAttr::OutBps(self.outbps),
        ]
    }
}

impl Service {
    /// Attributes for NEW_SERVICE / SET_SERVICE (which need them all).
    pub fn to_attrs(&self) -> Vec<ServiceAttr> {
        let mut v = self.key.to_attrs();
        v.push(ServiceAttr::SchedName(self.scheduler.clone()));
        if let Some(pe) = &self.pe_name {
            v.push(ServiceAttr::PeName(pe.clone()));
        }
        v.push(ServiceAttr::Flags(FlagsMask {
            flags: self.flags.0 & ServiceFlags::USER_MASK,
            mask: u32::MAX,
        }));
        v.push(ServiceAttr::Timeout(self.timeout));
        v.push(ServiceAttr::Netmask(self.raw_netmask()));
        v
    }

    /// Decode a service from the attributes of a dump entry.
    pub fn from_attrs(attrs: &[ServiceAttr]) -> Result<Service, ModelError> {
        let mut af = None;
        let mut protocol = None;
        let mut addr = None;
        let mut port = None;
        let mut fwmark = None;
        let mut sched = None;
        let mut flags = 0;
        let mut timeout = 0;
        let mut netmask = None;
        let mut pe = None;
        let mut stats = None;
        let mut stats32 = None;
        for a in attrs {
            match a {
                ServiceAttr::Af(v) => af = Some(*v),
                ServiceAttr::Protocol(v) => protocol = Some(*v),
                ServiceAttr::Addr(v) => addr = Some(*v),
                ServiceAttr::Port(v) => port = Some(*v),
                ServiceAttr::Fwmark(v) => fwmark = Some(*v),
                ServiceAttr::SchedName(v) => sched = Some(v.clone()),
                ServiceAttr::Flags(f) => flags = f.flags & f.mask,
                ServiceAttr::Timeout(v) => timeout = *v,
                ServiceAttr::Netmask(v) => netmask = Some(*v),
                ServiceAttr::PeName(v) => pe = Some(v.clone()),
                ServiceAttr::Stats64(v) => stats = Some(Box::new(Stats::from_attrs(v))),
                ServiceAttr::Stats(v) => stats32 = Some(Box::new(Stats::from_attrs(v))),
                ServiceAttr::Other(_) => {}
            }
        }
        let af = af.ok_or(ModelError::Missing("service address family"))?;
        let family = Family::from_raw(af).ok_or(ModelError::BadFamily(af))?;
        let key = match fwmark {
            Some(mark) if mark != 0 => ServiceKey::Fwmark { family, mark },
            _ => {
                let p = protocol.ok_or(ModelError::Missing("service protocol"))?;
                let protocol = Protocol::from_raw(p).ok_or(ModelError::BadProtocol(p))?;
                let addr = addr.ok_or(ModelError::Missing("service address"))?;
                ServiceKey::Addr {
                    protocol,
                    addr: ip_from_bytes(family, &addr),
                    port: port.unwrap_or(0),
                }
            }
        };
        let raw_mask = netmask.unwrap_or(match family {
            Family::Inet => u32::MAX,
            Family::Inet6 => 128,
        });
        let netmask = match family {
            Family::Inet => u32::from_be_bytes(raw_mask.to_ne_bytes()),
            Family::Inet6 => raw_mask,
        };
        Ok(Service {
            key,
            scheduler: sched.unwrap_or_default(),
            flags: ServiceFlags(flags & !ServiceFlags::HASHED),
            timeout,
            netmask,
            pe_name: pe.filter(|p| !p.is_empty()),
            stats: stats.or(stats32),
        })
    }
}

impl Destination {
    /// Identifying attributes (for DEL_DEST).
    pub fn key_attrs(&self) -> Vec<DestAttr> {
        vec![
            DestAttr::AddrFamily(self.family().raw()),
            DestAttr::Addr(addr_bytes(&self.addr)),
            DestAttr::Port(self.port),
        ]
    }

    /// Attributes for NEW_DEST / SET_DEST.
    pub fn to_attrs(&self) -> Vec<DestAttr> {
        let mut v = self.key_attrs();
        v.extend([
            DestAttr::FwdMethod(self.forward.raw()),
            DestAttr::Weight(self.weight),
            DestAttr::TunType(self.tun_type.raw()),
            DestAttr::TunPort(self.tun_port),
            DestAttr::TunFlags(self.tun_flags),
            DestAttr::UThresh(self.upper_threshold),
            DestAttr::LThresh(self.lower_threshold),
        ]);
        v
    }

    /// Decode a destination; `svc_family` is used when the kernel omits
    /// ADDR_FAMILY (before 3.18).
    pub fn from_attrs(attrs: &[DestAttr], svc_family: Family) -> Result<Destination, ModelError> {
        let mut d = Destination::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let mut family = svc_family;
        let mut addr = None;
        let mut fwd = None;
        let mut stats32 = None;
        for a in attrs {
            match a {
                DestAttr::Addr(v) => addr = Some(*v),
                DestAttr::Port(v) => d.port = *v,
                DestAttr::FwdMethod(v) => fwd = Some(*v),
                DestAttr::Weight(v) => d.weight = *v,
                DestAttr::UThresh(v) => d.upper_threshold = *v,
                DestAttr::LThresh(v) => d.lower_threshold = *v,
                DestAttr::ActiveConns(v) => d.active_conns = *v,
                DestAttr::InactConns(v) => d.inact_conns = *v,
                DestAttr::PersistConns(v) => d.persist_conns = *v,
                DestAttr::Stats(v) => stats32 = Some(Box::new(Stats::from_attrs(v))),
                DestAttr::Stats64(v) => d.stats = Some(Box::new(Stats::from_attrs(v))),
                DestAttr::AddrFamily(v) => {
                    family = Family::from_raw(*v).ok_or(ModelError::BadFamily(*v))?
                }
                DestAttr::TunType(v) => {
                    d.tun_type = TunnelType::from_raw(*v).ok_or(ModelError::BadTunnel(*v))?
                }
                DestAttr::TunPort(v) => d.tun_port = *v,
                DestAttr::TunFlags(v) => d.tun_flags = *v,
                DestAttr::Other(_) => {}
            }
        }
        let addr = addr.ok_or(ModelError::Missing("destination address"))?;
        d.addr = ip_from_bytes(family, &addr);
        let fwd = fwd.ok_or(ModelError::Missing("forwarding method"))?;
        d.forward = Forward::from_raw(fwd).ok_or(ModelError::BadForward(fwd))?;
        if d.stats.is_none() {
            d.stats = stats32;
        }
        Ok(d)
    }
}

impl Daemon {
    pub fn to_attrs(&self) -> Vec<DaemonAttr> {
        let mut v = vec![
            DaemonAttr::State(self.state.raw()),
            DaemonAttr::McastIfn(self.mcast_ifn.clone()),
            DaemonAttr::SyncId(self.sync_id),
        ];
        if let Some(m) = self.sync_maxlen {
            v.push(DaemonAttr::SyncMaxLen(m));
        }
        match self.mcast_group {
            Some(IpAddr::V4(a)) => v.push(DaemonAttr::McastGroup(a.octets())),
            Some(IpAddr::V6(a)) => v.push(DaemonAttr::McastGroup6(a.octets())),
            None => {}
        }
        if let Some(p) = self.mcast_port {
            v.push(DaemonAttr::McastPort(p));
        }
        if let Some(t) = self.mcast_ttl {
            v.push(DaemonAttr::McastTtl(t));
        }
        v
    }

    pub fn from_attrs(attrs: &[DaemonAttr]) -> Result<Daemon, ModelError> {
        let mut state = None;
        let mut d = Daemon::new(DaemonState::Master, "", 0);
        for a in attrs {
            match a {
                DaemonAttr::State(1) => state = Some(DaemonState::Master),
                DaemonAttr::State(2) => state = Some(DaemonState::Backup),
                DaemonAttr::State(s) => return Err(ModelError::BadDaemonState(*s)),
                DaemonAttr::McastIfn(s) => d.mcast_ifn = s.clone(),
                DaemonAttr::SyncId(v) => d.sync_id = *v,
                DaemonAttr::SyncMaxLen(v) => d.sync_maxlen = Some(*v),
                DaemonAttr::McastGroup(a) => d.mcast_group = Some(IpAddr::V4(Ipv4Addr::from(*a))),
                DaemonAttr::McastGroup6(a) => d.mcast_group = Some(IpAddr::V6(Ipv6Addr::from(*a))),
                DaemonAttr::McastPort(v) => d.mcast_port = Some(*v),
                DaemonAttr::McastTtl(v) => d.mcast_ttl = Some(*v),
                DaemonAttr::Other(_) => {}
            }
        }
        d.state = state.ok_or(ModelError::Missing("daemon state"))?;
        Ok(d)
    }
}

/// A malformed kernel answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("unknown address family {0}")]
    BadFamily(u16),
    #[error("unknown protocol {0}")]
    BadProtocol(u16),
    #[error("unknown forwarding method {0}")]
    BadForward(u32),
    #[error("unknown tunnel type {0}")]
    BadTunnel(u8),
    #[error("unknown daemon state {0}")]
    BadDaemonState(u32),
}
