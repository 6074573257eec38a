//! One look at the system: a link dump, an address dump and the ARP sysctls
//! of every /proc/sys/net/ipv4/conf entry. Everything the agent decides is
//! decided on this snapshot, never by querying per VIP.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::error::Error;
use crate::netlink::{Address, Link, Netlink};
use crate::sysctl::{self, ArpKey, SysctlKey};

#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    /// Entries of /proc/sys/net/ipv4/conf (interfaces, `all`, `default`).
    pub conf_entries: Vec<String>,
    pub sysctls: BTreeMap<SysctlKey, i32>,
}

impl Observed {
    pub async fn read(netlink: &Netlink) -> Result<Observed, Error> {
        let links = netlink.links().await?;
        let addresses = netlink.addresses().await?;
        let conf_entries = sysctl::conf_entries()?;
        let mut sysctls = BTreeMap::new();
        for entry in &conf_entries {
            for key in ArpKey::ALL {
                let key = SysctlKey::new(entry, key);
                match sysctl::read(&key) {
                    Ok(value) => {
                        sysctls.insert(key, value);
                    }
                    // An interface removed since the directory was listed.
                    Err(Error::Sysctl { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
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
