//! Typed model of the IPVS table: services, destinations, statistics,
//! timeouts, info and sync daemons. The conversions to and from the
//! netlink attributes of [`crate::codec`] are in `wire` (feature
//! `netlink`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

mod daemon;
mod name;
#[cfg(feature = "netlink")]
mod wire;
pub use daemon::{Daemon, DaemonState};
pub use name::KeyStyle;
#[cfg(feature = "netlink")]
pub use wire::ModelError;

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
    pub stats: Option<Box<Stats>>,
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

    /// The service without its counters: what a request sends, and what
    /// two tables are compared on to find the changes between them.
    pub fn without_counters(&self) -> Service {
        // Spelt out, so that a new field must be sorted into settings or
        // counters here.
        let Service {
            key,
            scheduler,
            flags,
            timeout,
            netmask,
            pe_name,
            stats: _,
        } = self;
        Service {
            key: *key,
            scheduler: scheduler.clone(),
            flags: *flags,
            timeout: *timeout,
            netmask: *netmask,
            pe_name: pe_name.clone(),
            stats: None,
        }
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
    pub stats: Option<Box<Stats>>,
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

    /// The destination without its counters (connections and traffic):
    /// what a request sends, and what two tables are compared on.
    pub fn without_counters(&self) -> Destination {
        // Spelt out, so that a new field must be sorted into settings or
        // counters here.
        let Destination {
            addr,
            port,
            forward,
            weight,
            upper_threshold,
            lower_threshold,
            tun_type,
            tun_port,
            tun_flags,
            active_conns: _,
            inact_conns: _,
            persist_conns: _,
            stats: _,
        } = self;
        Destination {
            addr: *addr,
            port: *port,
            forward: *forward,
            weight: *weight,
            upper_threshold: *upper_threshold,
            lower_threshold: *lower_threshold,
            tun_type: *tun_type,
            tun_port: *tun_port,
            tun_flags: *tun_flags,
            ..Destination::new(*addr, *port)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_counters_keeps_the_settings() {
        let stats = Some(Box::new(Stats {
            conns: 7,
            ..Stats::default()
        }));
        let mut s =
            Service::new(ServiceKey::udp("192.0.2.1".parse().unwrap(), 53), "sh").persistent(30);
        s.pe_name = Some("sip".into());
        let settings = s.clone();
        s.stats = stats.clone();
        assert_eq!(s.without_counters(), settings);

        let mut d = Destination::new("192.0.2.9".parse().unwrap(), 53);
        d.forward = Forward::Tunnel;
        d.weight = 3;
        d.upper_threshold = 9;
        d.lower_threshold = 2;
        d.tun_type = TunnelType::Gue;
        d.tun_port = 6080;
        d.tun_flags = TUN_FLAG_CSUM;
        let settings = d.clone();
        d.active_conns = 1;
        d.inact_conns = 2;
        d.persist_conns = 3;
        d.stats = stats;
        assert_eq!(d.without_counters(), settings);
    }
}
