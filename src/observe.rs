//! One look at the system: a link dump, an address dump, the ARP sysctls of
//! every /proc/sys/net/ipv4/conf entry (for the ARP in force per interface)
//! and any other managed sysctl asked for. Everything the agent decides is
//! decided on this snapshot, never by querying per VIP.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::error::Error;
use crate::model::{Address, ArpKey, Family, Link, SysctlKey};
use crate::netlink::Netlink;
use crate::sysctl;

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    /// Entries of /proc/sys/net/ipv4/conf (interfaces, `all`, `default`).
    pub conf_entries: Vec<String>,
    /// Values read; a key missing here does not exist (or vanished).
    pub sysctls: BTreeMap<SysctlKey, i32>,
}

impl Observed {
    /// Reads the system; `managed` are the sysctls the caller manages
    /// (configured or recorded) beyond the ARP ones always read.
    pub async fn read<'a>(
        netlink: &Netlink,
        managed: impl IntoIterator<Item = &'a SysctlKey>,
    ) -> Result<Observed, Error> {
        let links = netlink.links().await?;
        let addresses = netlink.addresses().await?;
        let conf_entries = sysctl::conf_entries(Family::Ipv4)?;
        let arp_keys = conf_entries
            .iter()
            .flat_map(|entry| ArpKey::ALL.map(|key| SysctlKey::arp(entry, key)));
        let mut sysctls = BTreeMap::new();
        for key in arp_keys.chain(managed.into_iter().cloned()) {
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
        Ok(Observed {
            links,
            addresses,
            conf_entries,
            sysctls,
        })
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
