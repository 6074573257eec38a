//! Typed model of the IPVS table: services, destinations, statistics,
//! timeouts, info and sync daemons, with conversions to and from the
//! netlink attributes of [`crate::codec`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::codec::{DaemonAttr, DestAttr, FlagsMask, ServiceAttr, StatsAttr};

pub const AF_INET: u16 = libc::AF_INET as u16;
pub const AF_INET6: u16 = libc::AF_INET6 as u16;

/// Address family of a service or destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Family {
    #[serde(rename = "inet")]
    Inet,
    #[serde(rename = "inet6")]
    Inet6,
}

impl Family {
    pub fn raw(self) -> u16 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }
    pub fn from_raw(v: u16) -> Option<Family> {
        match v {
            AF_INET => Some(Family::Inet),
            AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::Inet
        } else {
            Family::Inet6
        }
    }
}

/// Transport protocol of an address/port service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn raw(self) -> u16 {
        match self {
            Protocol::Tcp => libc::IPPROTO_TCP as u16,
            Protocol::Udp => libc::IPPROTO_UDP as u16,
            Protocol::Sctp => libc::IPPROTO_SCTP as u16,
        }
    }
    pub fn from_raw(v: u16) -> Option<Protocol> {
        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
            .into_iter()
            .find(|p| p.raw() == v)
    }
}

/// What identifies a virtual service: an address, protocol and port, or a
/// firewall mark (with its address family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        family: Family,
        mark: u32,
    },
}

impl ServiceKey {
    pub fn tcp(addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr,
            port,
        }
    }
    pub fn udp(addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr,
            port,
        }
    }
    pub fn sctp(addr: IpAddr, port: u16) -> Self {
        ServiceKey::Addr {
            protocol: Protocol::Sctp,
            addr,
            port,
        }
    }
    pub fn fwmark(family: Family, mark: u32) -> Self {
        ServiceKey::Fwmark { family, mark }
    }
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
    /// The service port (0 for firewall-mark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }

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

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let p = match protocol {
                    Protocol::Tcp => "tcp",
                    Protocol::Udp => "udp",
                    Protocol::Sctp => "sctp",
                };
                write!(f, "{p} {}", fmt_addr_port(addr, *port))
            }
            ServiceKey::Fwmark {
                family: Family::Inet,
                mark,
            } => write!(f, "fwmark {mark}"),
            ServiceKey::Fwmark {
                family: Family::Inet6,
                mark,
            } => write!(f, "fwmark {mark} (IPv6)"),
        }
    }
}

/// `addr:port`, with IPv6 addresses in brackets.
pub fn fmt_addr_port(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Service flags (`IP_VS_SVC_F_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    pub const PERSISTENT: u32 = 0x1;
    pub const HASHED: u32 = 0x2;
    pub const ONEPACKET: u32 = 0x4;
    pub const SCHED1: u32 = 0x8;
    pub const SCHED2: u32 = 0x10;
    pub const SCHED3: u32 = 0x20;
    /// The bits a user sets (HASHED is kernel-internal).
    pub const USER_MASK: u32 =
        Self::PERSISTENT | Self::ONEPACKET | Self::SCHED1 | Self::SCHED2 | Self::SCHED3;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    pub fn set(&mut self, bit: u32, on: bool) {
        if on { self.0 |= bit } else { self.0 &= !bit }
    }
    /// Scheduler flag bits (SCHED1..3) only.
    pub fn sched_bits(self) -> u32 {
        self.0 & (Self::SCHED1 | Self::SCHED2 | Self::SCHED3)
    }
}

/// 64-bit statistics of a service or destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
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

/// A virtual service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    pub key: ServiceKey,
    /// Scheduler name (the kernel loads `ip_vs_<name>` on demand).
    pub scheduler: String,
    /// Flags as set by the user; HASHED from dumps is dropped.
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (meaningful with PERSISTENT).
    pub timeout: u32,
    /// Persistence granularity. IPv4: the mask as a host-order integer
    /// (`0xffff_ffff` is /32); IPv6: a prefix length 1..=128.
    pub netmask: u32,
    /// Persistence engine (e.g. "sip").
    pub pe_name: Option<String>,
    /// Statistics (dumps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

impl Service {
    /// A service with ipvsadm's defaults: no flags, full netmask.
    pub fn new(key: ServiceKey, scheduler: impl Into<String>) -> Service {
        let netmask = match key.family() {
            Family::Inet => 0xffff_ffff,
            Family::Inet6 => 128,
        };
        Service {
            key,
            scheduler: scheduler.into(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask,
            pe_name: None,
            stats: None,
        }
    }

    pub fn is_persistent(&self) -> bool {
        self.flags.has(ServiceFlags::PERSISTENT)
    }

    /// Make the service persistent with this timeout in seconds.
    pub fn persistent(mut self, timeout: u32) -> Service {
        self.flags.set(ServiceFlags::PERSISTENT, true);
        self.timeout = timeout;
        self
    }

    /// Whether the netmask is the family's full mask (/32 or /128).
    pub fn has_full_netmask(&self) -> bool {
        match self.key.family() {
            Family::Inet => self.netmask == 0xffff_ffff,
            Family::Inet6 => self.netmask == 128,
        }
    }

    /// The netmask value as it travels on the wire (native-order u32).
    pub fn raw_netmask(&self) -> u32 {
        match self.key.family() {
            Family::Inet => u32::from_ne_bytes(self.netmask.to_be_bytes()),
            Family::Inet6 => self.netmask,
        }
    }

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
                ServiceAttr::Stats64(v) => stats = Some(Stats::from_attrs(v)),
                ServiceAttr::Stats(v) => stats32 = Some(Stats::from_attrs(v)),
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

/// Forwarding method of a destination (`IP_VS_CONN_F_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    Masquerade,
    Local,
    Tunnel,
    Route,
    Bypass,
}

impl Forward {
    pub fn raw(self) -> u32 {
        match self {
            Forward::Masquerade => 0,
            Forward::Local => 1,
            Forward::Tunnel => 2,
            Forward::Route => 3,
            Forward::Bypass => 4,
        }
    }
    pub fn from_raw(v: u32) -> Option<Forward> {
        Some(match v & 0x7 {
            0 => Forward::Masquerade,
            1 => Forward::Local,
            2 => Forward::Tunnel,
            3 => Forward::Route,
            4 => Forward::Bypass,
            _ => return None,
        })
    }
}

/// Tunnel encapsulation of a tunnel destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

impl TunnelType {
    pub fn raw(self) -> u8 {
        match self {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        }
    }
    pub fn from_raw(v: u8) -> Option<TunnelType> {
        Some(match v {
            0 => TunnelType::Ipip,
            1 => TunnelType::Gue,
            2 => TunnelType::Gre,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            TunnelType::Ipip => "ipip",
            TunnelType::Gue => "gue",
            TunnelType::Gre => "gre",
        }
    }
}

/// Tunnel checksum flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`).
pub const TUN_FLAG_CSUM: u16 = 0x1;
pub const TUN_FLAG_REMCSUM: u16 = 0x2;

/// A real server behind a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Destination {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub tun_type: TunnelType,
    /// Tunnel (GUE) destination port.
    pub tun_port: u16,
    /// Tunnel checksum flags (TUN_FLAG_*).
    pub tun_flags: u16,
    /// Counters (dumps only).
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

impl Destination {
    /// A destination with ipvsadm's defaults: direct routing, weight 1.
    pub fn new(addr: IpAddr, port: u16) -> Destination {
        Destination {
            addr,
            port,
            forward: Forward::Route,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
            tun_flags: 0,
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            stats: None,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

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
                DestAttr::Stats(v) => stats32 = Some(Stats::from_attrs(v)),
                DestAttr::Stats64(v) => d.stats = Some(Stats::from_attrs(v)),
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

/// Connection timeouts in seconds (0 in a request leaves a value unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// Version and connection-table size of the kernel's IPVS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Info {
    /// Encoded as 0x00MMmmpp (1.2.1 is 0x010201).
    pub version: u32,
    pub conn_tab_size: u32,
}

impl Info {
    /// The version as "major.minor.patch".
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// Role of a connection-sync daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonState {
    Master,
    Backup,
}

impl DaemonState {
    pub fn raw(self) -> u32 {
        match self {
            DaemonState::Master => 1,
            DaemonState::Backup => 2,
        }
    }
}

/// A connection-synchronisation daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Daemon {
    pub state: DaemonState,
    pub mcast_ifn: String,
    pub sync_id: u32,
    pub sync_maxlen: Option<u16>,
    pub mcast_group: Option<IpAddr>,
    pub mcast_port: Option<u16>,
    pub mcast_ttl: Option<u8>,
}

impl Daemon {
    pub fn new(state: DaemonState, mcast_ifn: impl Into<String>, sync_id: u32) -> Daemon {
        Daemon {
            state,
            mcast_ifn: mcast_ifn.into(),
            sync_id,
            sync_maxlen: None,
            mcast_group: None,
            mcast_port: None,
            mcast_ttl: None,
        }
    }

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

/// The 16-byte `union nf_inet_addr` form of an address.
pub fn addr_bytes(addr: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out.copy_from_slice(&a.octets()),
    }
    out
}

pub fn ip_from_bytes(family: Family, b: &[u8; 16]) -> IpAddr {
    match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::from(*b)),
    }
}
