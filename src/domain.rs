//! The agent's domain types: what the planner, the rollback record and the
//! status report talk about. Plain data, no system calls and no imports from
//! the rest of the crate, so every other module can depend on it and it on
//! none of them (the adapters in `netlink` and `sysctl` convert to and from
//! these types).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A network interface as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub loopback: bool,
    /// IFF_NOARP: the interface neither sends nor answers ARP.
    pub noarp: bool,
}

impl Link {
    /// The reference a change carries.
    pub fn interface(&self) -> Interface {
        Interface {
            index: self.index,
            name: self.name.clone(),
        }
    }
}

/// The interface a change applies to: the index netlink needs and the name
/// people (and the record) use, both from the same observation. Serialized
/// as its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interface {
    pub index: u32,
    pub name: String,
}

impl Interface {
    /// An interface a change creates: its index is not known before, so
    /// changes to it are made by name (index 0).
    pub fn by_name(name: &str) -> Interface {
        Interface {
            index: 0,
            name: name.to_string(),
        }
    }
}

impl Serialize for Interface {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// An address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Index of the interface holding it.
    pub index: u32,
    pub spec: AddressSpec,
    /// IPv6: preferred lifetime 0, never chosen as a source address.
    pub deprecated: bool,
}

/// What the agent adds or removes: an address, its prefix and IPv4 label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressSpec {
    pub address: IpAddr,
    pub prefix_len: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl AddressSpec {
    /// A host address (/32 or /128), as a VIP is held.
    pub fn host(address: IpAddr, label: Option<String>) -> Self {
        AddressSpec {
            address,
            prefix_len: host_prefix(address),
            label,
        }
    }
}

impl fmt::Display for AddressSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)?;
        if let Some(label) = &self.label {
            write!(f, " label {label}")?;
        }
        Ok(())
    }
}

/// Host prefix: /32 for IPv4, /128 for IPv6.
pub fn host_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The protocol tree of a sysctl: net.ipv4 or net.ipv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    /// /proc/sys/net/ipv4/conf or /proc/sys/net/ipv6/conf.
    pub fn conf_dir(self) -> &'static str {
        match self {
            Family::Ipv4 => "/proc/sys/net/ipv4/conf",
            Family::Ipv6 => "/proc/sys/net/ipv6/conf",
        }
    }
}

/// A per-interface conf sysctl the agent may manage:
/// `net.<family>.conf.<interface>.<name>` (arp_ignore, arp_announce,
/// rp_filter, ...). `interface` may be `all` or `default`.
///
/// Deserialization checks both names, so a record cannot point a write
/// outside the conf directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawSysctlKey")]
pub struct SysctlKey {
    pub family: Family,
    pub interface: String,
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSysctlKey {
    family: Family,
    interface: String,
    name: String,
}

impl TryFrom<RawSysctlKey> for SysctlKey {
    type Error = String;

    fn try_from(raw: RawSysctlKey) -> Result<Self, String> {
        if !valid_interface_name(&raw.interface) {
            return Err(format!("{:?} is not an interface name", raw.interface));
        }
        if !valid_sysctl_name(&raw.name) {
            return Err(format!("{:?} is not a conf sysctl name", raw.name));
        }
        Ok(SysctlKey {
            family: raw.family,
            interface: raw.interface,
            name: raw.name,
        })
    }
}

impl SysctlKey {
    pub fn new(family: Family, interface: &str, name: &str) -> Self {
        SysctlKey {
            family,
            interface: interface.to_string(),
            name: name.to_string(),
        }
    }

    pub fn ipv4(interface: &str, name: &str) -> Self {
        SysctlKey::new(Family::Ipv4, interface, name)
    }

    /// One of the two ARP sysctls of an interface.
    pub fn arp(interface: &str, key: ArpKey) -> Self {
        SysctlKey::ipv4(interface, key.name())
    }

    /// The file under /proc/sys. Built from the interface name as is, so
    /// names with dots (eth0.100) need no escaping.
    pub fn path(&self) -> PathBuf {
        [self.family.conf_dir(), &self.interface, &self.name]
            .iter()
            .collect()
    }
}

impl fmt::Display for SysctlKey {
    /// sysctl(8) notation; a dot inside an interface name is written as `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "net.{}.conf.{}.{}",
            self.family.name(),
            self.interface.replace('.', "/"),
            self.name
        )
    }
}

/// A managed sysctl and the value the configuration wants for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlSetting {
    pub key: SysctlKey,
    pub value: i32,
}

/// The two ARP sysctls of DR: the kernel uses max(conf/all, conf/IFACE) of
/// each on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArpKey {
    Ignore,
    Announce,
}

impl ArpKey {
    pub const ALL: [ArpKey; 2] = [ArpKey::Ignore, ArpKey::Announce];

    /// The sysctl's name: `arp_ignore`, `arp_announce`.
    pub fn name(self) -> &'static str {
        match self {
            ArpKey::Ignore => "arp_ignore",
            ArpKey::Announce => "arp_announce",
        }
    }

    /// The key's name in the `[arp]` table of the configuration.
    pub fn config_name(self) -> &'static str {
        match self {
            ArpKey::Ignore => "ignore",
            ArpKey::Announce => "announce",
        }
    }

    /// The values the kernel defines.
    pub fn allowed_values(self) -> &'static [i32] {
        match self {
            ArpKey::Ignore => &[0, 1, 2, 3, 8],
            ArpKey::Announce => &[0, 1, 2],
        }
    }
}

/// The encapsulation a director uses to reach this real server in tunnel
/// mode (`ipvsadm -i --tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    /// IP in IP (`ipvsadm -i`, the default tunnel type).
    Ipip,
    /// Generic UDP Encapsulation: IP in UDP to a port (`--tun-type gue --tun-port P`).
    Gue,
    /// GRE (`--tun-type gre`).
    Gre,
}

/// The receive devices of every tunnel kind: a recorded link with one of
/// these names is a tunnel device of the agent's.
pub const TUNNEL_DEVICES: [&str; 2] = ["tunl0", "gre0"];

impl TunnelKind {
    pub const ALL: [TunnelKind; 3] = [TunnelKind::Ipip, TunnelKind::Gue, TunnelKind::Gre];

    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::Ipip => "ipip",
            TunnelKind::Gue => "gue",
            TunnelKind::Gre => "gre",
        }
    }

    /// The device that receives the decapsulated packets: the fallback
    /// device of the kernel module (GUE hands its inner IPv4 packet to the
    /// IPIP handler, so tunl0 as well).
    pub fn device(self) -> &'static str {
        match self {
            TunnelKind::Ipip | TunnelKind::Gue => "tunl0",
            TunnelKind::Gre => "gre0",
        }
    }

    /// The rtnetlink link kind of that device, which is also the name of
    /// the module the kernel loads for it (`rtnl-link-<kind>`).
    pub fn link_kind(self) -> LinkKind {
        match self {
            TunnelKind::Ipip | TunnelKind::Gue => LinkKind::Ipip,
            TunnelKind::Gre => LinkKind::Gre,
        }
    }
}

impl fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of device the agent may create (a catch-all tunnel device
/// where the module's fallback device is not made in this namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Ipip,
    Gre,
}

impl LinkKind {
    /// The rtnetlink kind name.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Ipip => "ipip",
            LinkKind::Gre => "gre",
        }
    }

    /// The kernel module providing the kind.
    pub fn module(self) -> &'static str {
        match self {
            LinkKind::Ipip => "ipip",
            LinkKind::Gre => "ip_gre",
        }
    }
}

/// A FOU receive port doing GUE: what the agent adds (`ip fou add port P
/// gue`) and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FouPort {
    pub port: u16,
    pub family: Family,
}

impl fmt::Display for FouPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FOU port {} gue ({})", self.port, self.family.name())
    }
}

/// A FOU listener as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FouListener {
    pub port: u16,
    pub family: Family,
    pub encap: FouEncap,
}

/// What a FOU listener does with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FouEncap {
    /// GUE: the header names the inner protocol.
    Gue,
    /// Plain FOU: the payload is always `ipproto`.
    Direct { ipproto: u8 },
    /// A type this agent does not know.
    Other(u8),
}

impl fmt::Display for FouEncap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FouEncap::Gue => f.write_str("gue"),
            FouEncap::Direct { ipproto } => write!(f, "ipproto {ipproto}"),
            FouEncap::Other(t) => write!(f, "type {t}"),
        }
    }
}

/// Whether the kernel can provide a feature that comes in a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelSupport {
    /// Loaded or built in.
    Loaded,
    /// Installed as a module: the kernel loads it on first use.
    Loadable,
    /// Neither built in nor installed: the feature is missing.
    Absent,
    /// Cannot tell (no module list for this kernel, as in some
    /// containers): the first use will say.
    #[default]
    Unknown,
}

/// Whether `name` can be an entry of /proc/sys/net/ipv{4,6}/conf: a kernel
/// interface name (1 to 15 bytes, no `/`, `:` or whitespace, not `.` or
/// `..`), or `all` / `default`.
pub fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// Whether `name` can be a conf sysctl (`arp_ignore`, `rp_filter`, ...):
/// lower-case letters, digits and underscores.
pub fn valid_sysctl_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_interface_names_map_to_exact_paths() {
        let key = SysctlKey::arp("eth0.100", ArpKey::Ignore);
        assert_eq!(
            key.path(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/arp_ignore")
        );
        assert_eq!(key.to_string(), "net.ipv4.conf.eth0/100.arp_ignore");
        assert_eq!(
            SysctlKey::arp("all", ArpKey::Announce).to_string(),
            "net.ipv4.conf.all.arp_announce"
        );
        let key = SysctlKey::new(Family::Ipv6, "tunl0", "disable_ipv6");
        assert_eq!(
            key.path(),
            PathBuf::from("/proc/sys/net/ipv6/conf/tunl0/disable_ipv6")
        );
        assert_eq!(key.to_string(), "net.ipv6.conf.tunl0.disable_ipv6");
    }

    #[test]
    fn name_rules() {
        for good in ["all", "default", "lo", "eth0.100", "enp0s31f6", "a-b_c@d"] {
            assert!(valid_interface_name(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "eth0:1", "sixteen-chars-xx"] {
            assert!(!valid_interface_name(bad), "{bad}");
        }
        for good in ["rp_filter", "arp_ignore", "accept_ra_rt_info_max_plen"] {
            assert!(valid_sysctl_name(good), "{good}");
        }
        for bad in ["", "../x", "Rp", "rp-filter", "a/b"] {
            assert!(!valid_sysctl_name(bad), "{bad}");
        }
    }

    #[test]
    fn sysctl_keys_from_json_are_checked() {
        let ok: SysctlKey =
            serde_json::from_str(r#"{"family":"ipv4","interface":"all","name":"rp_filter"}"#)
                .unwrap();
        assert_eq!(ok, SysctlKey::ipv4("all", "rp_filter"));
        for bad in [
            r#"{"family":"ipv4","interface":"../..","name":"x"}"#,
            r#"{"family":"ipv4","interface":"all","name":"../../kernel/x"}"#,
            r#"{"family":"ipv5","interface":"all","name":"x"}"#,
        ] {
            assert!(serde_json::from_str::<SysctlKey>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interfaces_serialize_as_their_name() {
        let lo = Interface {
            index: 1,
            name: "lo".into(),
        };
        assert_eq!(serde_json::to_string(&lo).unwrap(), r#""lo""#);
    }
}
