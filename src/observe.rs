//! One look at the system: a link dump, an address dump, the ARP sysctls of
//! every /proc/sys/net/ipv4/conf entry (for the ARP in force per interface)
//! and any other managed sysctl asked for; in tunnel mode also rp_filter of
//! every entry, the FOU listeners, the bound UDP ports and whether the
//! kernel has the tunnel's module. Everything the agent decides is decided
//! on this snapshot, never by querying per VIP.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

use crate::config::Tunnel;
use crate::domain::{
    Address, ArpKey, Family, FouListener, KernelSupport, Link, SysctlKey, TunnelKind,
};
use crate::error::Error;
use crate::fou::Fou;
use crate::kernel;
use crate::netlink::Netlink;
use crate::sysctl;

/// What a snapshot covers beyond links, addresses and the ARP sysctls.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Managed sysctls (configured or recorded).
    pub sysctls: Vec<SysctlKey>,
    /// The configured tunnel, if any.
    pub tunnel: Option<Tunnel>,
    /// Whether the FOU listeners matter (GUE configured, or FOU ports recorded).
    pub fou: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    /// Entries of /proc/sys/net/ipv4/conf (interfaces, `all`, `default`).
    pub conf_entries: Vec<String>,
    /// Values read; a key missing here does not exist (or vanished).
    pub sysctls: BTreeMap<SysctlKey, i32>,
    /// Support of the modules the tunnel needs, by module name; only read
    /// when the tunnel's device or the FOU family is missing.
    pub kernel: BTreeMap<String, KernelSupport>,
    /// The FOU listeners; `None` when the kernel has no FOU family loaded
    /// (then there are none).
    pub fou: Option<Vec<FouListener>>,
    /// UDP ports bound in the namespace (tunnel mode with GUE only).
    pub udp_ports: BTreeSet<(Family, u16)>,
}

impl Observed {
    /// Reads the system: links, addresses, the ARP sysctls and what
    /// `scope` adds.
    pub async fn read(netlink: &Netlink, scope: &Scope) -> Result<Observed, Error> {
        let links = netlink.links().await?;
        let addresses = netlink.addresses().await?;
        let conf_entries = sysctl::conf_entries(Family::Ipv4)?;
        let tunnel_mode = scope.tunnel.is_some();
        let per_entry = conf_entries.iter().flat_map(|entry| {
            let rp_filter = tunnel_mode.then(|| SysctlKey::ipv4(entry, "rp_filter"));
            ArpKey::ALL
                .map(|key| SysctlKey::arp(entry, key))
                .into_iter()
                .chain(rp_filter)
        });
        let mut sysctls = BTreeMap::new();
        for key in per_entry.chain(scope.sysctls.iter().cloned()) {
            if sysctls.contains_key(&key) {
                continue;
            }
            match sysctl::read(&key) {
                Ok(value) => {
                    sysctls.insert(key, value);
                }
                // An interface removed since the directory was listed, or a
                // managed interface that does not exist (the planner says so).
                Err(Error::Sysctl { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut observed = Observed {
            links,
            addresses,
            conf_entries,
            sysctls,
            ..Observed::default()
        };
        observed.read_tunnel(scope)?;
        Ok(observed)
    }

    /// The tunnel's part: module support where the device is missing, FOU
    /// listeners, bound UDP ports.
    fn read_tunnel(&mut self, scope: &Scope) -> Result<(), Error> {
        let gue = scope.tunnel.is_some_and(|t| t.kind == TunnelKind::Gue);
        if let Some(tunnel) = scope.tunnel
            && self.link_by_name(tunnel.device()).is_none()
        {
            let module = tunnel.kind.link_kind().module();
            self.kernel
                .insert(module.to_string(), kernel::support(module));
        }
        if scope.fou || gue {
            // Only a loaded (or built-in, or absent) family is asked for:
            // asking for it makes the kernel load the module.
            let support = if Path::new("/sys/module/fou").exists() {
                KernelSupport::Loaded
            } else {
                kernel::support("fou")
            };
            if matches!(support, KernelSupport::Loaded | KernelSupport::Absent) {
                let fou = Fou::open().map_err(|e| Error::netlink("opening the fou family", e))?;
                self.fou = match fou {
                    Some(mut fou) => Some(
                        fou.listeners()
                            .map_err(|e| Error::netlink("dumping FOU ports", e))?,
                    ),
                    None => None,
                };
            }
            let support = if self.fou.is_some() {
                KernelSupport::Loaded
            } else {
                support
            };
            self.kernel.insert("fou".to_string(), support);
        }
        if gue {
            self.udp_ports = kernel::udp_ports().map_err(|source| Error::Sysctl {
                key: "/proc/net/udp".into(),
                action: "read",
                source,
            })?;
        }
        Ok(())
    }

    /// The loopback interface.
    pub fn lo(&self) -> Option<&Link> {
        self.links
            .iter()
            .find(|l| l.loopback && l.name == "lo")
            .or_else(|| self.links.iter().find(|l| l.loopback))
    }

    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub fn link_name(&self, index: u32) -> String {
        self.links
            .iter()
            .find(|l| l.index == index)
            .map_or_else(|| format!("#{index}"), |l| l.name.clone())
    }

    pub fn sysctl(&self, key: &SysctlKey) -> Option<i32> {
        self.sysctls.get(key).copied()
    }

    /// Addresses by value, for lookups that stay linear in the number of VIPs.
    pub fn addresses_by_ip(&self) -> HashMap<IpAddr, Vec<&Address>> {
        let mut map: HashMap<IpAddr, Vec<&Address>> = HashMap::with_capacity(self.addresses.len());
        for address in &self.addresses {
            map.entry(address.spec.address).or_default().push(address);
        }
        map
    }
}
