//! The decisions, free of system calls: from the configuration, one snapshot
//! of the system and the rollback record, compute the changes to make and the
//! record that describes the system once they are made. Tunnel mode's part
//! (device, FOU port, what an earlier tunnel left) is in [`tunnel`].

mod tunnel;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::Config;
use crate::domain::{
    Address, AddressSpec, FouPort, Interface, Link, LinkKind, SysctlKey, SysctlSetting,
};
use crate::error::Error;
use crate::observe::Observed;
use crate::state::{AddressEntry, Record, SysctlEntry};

/// One change to the system, naming what it applies to. Plans order them so
/// ARP is locked down before a VIP appears and VIPs are gone before ARP is
/// relaxed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    SetSysctl {
        sysctl: String,
        #[serde(skip)]
        key: SysctlKey,
        from: i32,
        to: i32,
    },
    AddAddress {
        #[serde(flatten)]
        spec: AddressSpec,
        interface: Interface,
    },
    RemoveAddress {
        #[serde(flatten)]
        spec: AddressSpec,
        interface: Interface,
    },
    SetLinkUp {
        interface: Interface,
    },
    SetLinkDown {
        interface: Interface,
    },
    /// A catch-all tunnel device; the kernel loads the kind's module on
    /// the way, and if that makes the module's fallback device of this
    /// name appear, nothing is created (apply reports it as found).
    CreateLink {
        interface: Interface,
        kind: LinkKind,
    },
    DeleteLink {
        interface: Interface,
    },
    AddFouPort {
        #[serde(flatten)]
        port: FouPort,
    },
    RemoveFouPort {
        #[serde(flatten)]
        port: FouPort,
    },
}

impl Change {
    pub fn set_sysctl(key: &SysctlKey, from: i32, to: i32) -> Change {
        Change::SetSysctl {
            sysctl: key.to_string(),
            key: key.clone(),
            from,
            to,
        }
    }

    /// The change that undoes this one.
    pub fn inverse(&self) -> Change {
        match self {
            Change::SetSysctl { key, from, to, .. } => Change::set_sysctl(key, *to, *from),
            Change::AddAddress { spec, interface } => Change::RemoveAddress {
                spec: spec.clone(),
                interface: interface.clone(),
            },
            Change::RemoveAddress { spec, interface } => Change::AddAddress {
                spec: spec.clone(),
                interface: interface.clone(),
            },
            Change::SetLinkUp { interface } => Change::SetLinkDown {
                interface: interface.clone(),
            },
            Change::SetLinkDown { interface } => Change::SetLinkUp {
                interface: interface.clone(),
            },
            Change::CreateLink { interface, .. } => Change::DeleteLink {
                interface: interface.clone(),
            },
            // Only devices the agent created are ever deleted, and those
            // are catch-all tunnel devices.
            Change::DeleteLink { interface } => Change::CreateLink {
                interface: interface.clone(),
                kind: if interface.name == "gre0" {
                    LinkKind::Gre
                } else {
                    LinkKind::Ipip
                },
            },
            Change::AddFouPort { port } => Change::RemoveFouPort { port: *port },
            Change::RemoveFouPort { port } => Change::AddFouPort { port: *port },
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::SetSysctl {
                sysctl, from, to, ..
            } => write!(f, "set {sysctl} = {to} (was {from})"),
            Change::AddAddress { spec, interface } => write!(f, "add {spec} to {interface}"),
            Change::RemoveAddress { spec, interface } => {
                write!(f, "remove {spec} from {interface}")
            }
            Change::SetLinkUp { interface } => write!(f, "set {interface} up"),
            Change::SetLinkDown { interface } => write!(f, "set {interface} down"),
            Change::CreateLink { interface, kind } => {
                write!(f, "create {interface} ({} external)", kind.name())
            }
            Change::DeleteLink { interface } => write!(f, "delete {interface}"),
            Change::AddFouPort { port } => write!(f, "add {port}"),
            Change::RemoveFouPort { port } => write!(f, "remove {port}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Things the operator should know that do not stop the run.
    pub warnings: Vec<String>,
    /// The rollback record once every change is made.
    pub record: Record,
}

/// `start`: converge to `config`.
pub fn plan_start(config: &Config, observed: &Observed, record: &Record) -> Result<Plan, Error> {
    let lo = observed.lo().ok_or_else(|| {
        Error::Conflict("this network namespace has no loopback interface".into())
    })?;
    let by_ip = observed.addresses_by_ip();

    // Refusals first, all of them at once, before anything changes.
    let mut conflicts = Vec::new();
    for vip in &config.vips {
        for address in by_ip.get(&vip.address).into_iter().flatten() {
            if address.index != lo.index {
                conflicts.push(format!(
                    "VIP {} is configured on {} (a VIP must only be on lo, or that interface answers ARP for it)",
                    vip.address,
                    observed.link_name(address.index)
                ));
            }
        }
    }
    for interface in &config.arp.interfaces {
        if !observed.conf_entries.contains(interface) {
            conflicts.push(format!(
                "interface {interface:?} of [arp] interfaces does not exist (no /proc/sys/net/ipv4/conf/{interface})"
            ));
        }
    }
    if let Some(t) = &config.tunnel {
        conflicts.extend(tunnel::conflicts(t, observed, record));
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflict(conflicts.join("; ")));
    }

    let mut plan = Plan::default();
    let mut sysctl_reverts = Vec::new();
    let steps = tunnel::plan(config.tunnel.as_ref(), observed, record);
    // A device this plan creates comes first: its sysctls are set next.
    plan.changes.extend(steps.create.iter().cloned());

    // Sysctls the configuration wants.
    let wanted_sysctls = wanted_sysctls(config, observed, record);
    for setting in &wanted_sysctls {
        let key = &setting.key;
        let current = observed
            .sysctl(key)
            .or_else(|| steps.predicted_sysctl(key, observed))
            .ok_or_else(|| Error::Conflict(format!("{key} cannot be read in this namespace")))?;
        let recorded = record.sysctl(key);
        if current != setting.value {
            plan.changes
                .push(Change::set_sysctl(key, current, setting.value));
        }
        if current != setting.value || recorded.is_some() {
            plan.record.sysctls.push(SysctlEntry {
                key: key.clone(),
                original: recorded.map_or(current, |r| r.original),
                written: setting.value,
            });
        }
    }
    // Sysctls the agent changed earlier that the configuration no longer names.
    let managed: HashSet<&SysctlKey> = wanted_sysctls.iter().map(|s| &s.key).collect();
    for entry in &record.sysctls {
        // A device deleted by this plan takes its sysctls along.
        if !managed.contains(&entry.key) && !steps.deleting(&entry.key.interface) {
            sysctl_reverts.extend(revert_sysctl(entry, observed, &mut plan.warnings));
        }
    }

    // lo must be up, or the kernel installs no local route for the VIPs.
    if !config.vips.is_empty() && !lo.up {
        plan.changes.push(Change::SetLinkUp {
            interface: lo.interface(),
        });
    }
    // Only a first run records lo as brought up: if lo goes down later, the
    // state from before the agent still had it up, and stop must keep it so.
    // Tunnel devices no longer configured leave the record (steps.stale).
    plan.record.links_brought_up = record
        .links_brought_up
        .iter()
        .filter(|name| !steps.dropped_links.contains(name))
        .cloned()
        .collect();
    let first_run = record.is_empty();
    if first_run && !config.vips.is_empty() && !lo.up {
        plan.record.links_brought_up.push(lo.name.clone());
    }

    // Addresses the agent added earlier that the configuration no longer names.
    let wanted: HashSet<IpAddr> = config.vips.iter().map(|v| v.address).collect();
    for entry in &record.addresses {
        if !wanted.contains(&entry.spec.address)
            && let Some(link) = holder(observed, &by_ip, entry)
        {
            plan.changes.push(Change::RemoveAddress {
                spec: entry.spec.clone(),
                interface: link.interface(),
            });
        }
    }

    // Addresses the configuration wants, on lo.
    let recorded: HashMap<IpAddr, &AddressEntry> = record
        .addresses
        .iter()
        .map(|a| (a.spec.address, a))
        .collect();
    for vip in &config.vips {
        let spec = AddressSpec::host(vip.address, vip.label.clone());
        let present: Vec<_> = by_ip.get(&vip.address).into_iter().flatten().collect();
        if present.is_empty() {
            plan.changes.push(Change::AddAddress {
                spec: spec.clone(),
                interface: lo.interface(),
            });
            plan.record.addresses.push(AddressEntry {
                interface: lo.name.clone(),
                spec,
            });
        } else if let Some(earlier) = recorded.get(&vip.address) {
            // Still ours: keep it under the spec it was added with.
            plan.record.addresses.push((*earlier).clone());
        } else if vip.address.is_ipv6() && !present.iter().any(|a| a.deprecated) {
            plan.warnings.push(format!(
                "{} was already on lo (not added by rs-agent, so stop keeps it) and is not deprecated: the kernel may pick it as a source address",
                vip.address
            ));
        }
    }

    // The receive side once the VIPs are held; then what an earlier tunnel
    // configuration left.
    plan.changes.extend(steps.bring_up.iter().cloned());
    plan.changes.extend(steps.stale.iter().cloned());
    steps.record_into(&mut plan.record);
    plan.warnings.extend(steps.warnings.iter().cloned());

    plan.changes.extend(sysctl_reverts);
    Ok(plan)
}

/// Every sysctl a start converges to, in the order they are written: the
/// configuration's (`Config::sysctls`), then in tunnel mode loose rp_filter
/// on each NIC that is strict (or that the agent made loose earlier).
pub fn wanted_sysctls(config: &Config, observed: &Observed, record: &Record) -> Vec<SysctlSetting> {
    let mut settings = config.sysctls();
    if let Some(t) = &config.tunnel {
        settings.extend(tunnel::nic_rp_filter(t, observed, record));
    }
    settings
}

/// `stop`: undo what the record says the agent did, and no more.
pub fn plan_stop(observed: &Observed, record: &Record) -> Plan {
    let mut plan = Plan::default();
    let by_ip = observed.addresses_by_ip();
    // Stop receiving first: the FOU ports the agent added.
    plan.changes
        .extend(tunnel::remove_fou_ports(&record.fou_ports, observed));
    let deleting: Vec<&Link> = record
        .links_created
        .iter()
        .filter_map(|name| observed.link_by_name(name))
        .collect();
    let deleted = |name: &str| deleting.iter().any(|l| l.name == name);
    for entry in &record.addresses {
        if let Some(link) = holder(observed, &by_ip, entry) {
            plan.changes.push(Change::RemoveAddress {
                spec: entry.spec.clone(),
                interface: link.interface(),
            });
        }
    }
    for entry in record.sysctls.iter().filter(|e| !deleted(&e.key.interface)) {
        plan.changes
            .extend(revert_sysctl(entry, observed, &mut plan.warnings));
    }
    for name in record.links_brought_up.iter().filter(|n| !deleted(n)) {
        if let Some(link) = observed.link_by_name(name).filter(|l| l.up) {
            plan.changes.push(Change::SetLinkDown {
                interface: link.interface(),
            });
        }
    }
    for link in deleting {
        plan.changes.push(Change::DeleteLink {
            interface: link.interface(),
        });
    }
    plan
}

/// The interface holding a recorded address, if it is still there: the one
/// it was added to, by name (indexes change when an interface is recreated).
fn holder<'a>(
    observed: &'a Observed,
    by_ip: &HashMap<IpAddr, Vec<&Address>>,
    entry: &AddressEntry,
) -> Option<&'a Link> {
    let link = observed.link_by_name(&entry.interface)?;
    by_ip
        .get(&entry.spec.address)
        .into_iter()
        .flatten()
        .any(|a| a.index == link.index)
        .then_some(link)
}

/// Puts a sysctl back to its value from before the agent, unless someone else
/// has changed it since the agent wrote it: then it is theirs, and left alone.
fn revert_sysctl(
    entry: &SysctlEntry,
    observed: &Observed,
    warnings: &mut Vec<String>,
) -> Option<Change> {
    let current = observed.sysctl(&entry.key)?;
    if current == entry.written && current != entry.original {
        Some(Change::set_sysctl(&entry.key, current, entry.original))
    } else {
        if current != entry.written && current != entry.original {
            warnings.push(format!(
                "{} left at {current}: rs-agent wrote {} but someone changed it since (the value before rs-agent was {})",
                entry.key, entry.written, entry.original
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests;
