//! Tunnel mode's part of a plan: the receive device (the kernel module's
//! fallback device, or a catch-all device the agent creates where the
//! namespace has none), the FOU port of GUE, and undoing what an earlier
//! tunnel configuration left. rp_filter is an ordinary managed sysctl
//! (`Config::sysctls` for `all` and the device, [`nic_rp_filter`] for the
//! NICs); only its starting value on a device this plan creates is
//! predicted here (a new device copies conf/default).

use super::Change;
use crate::config::{NIC_RP_FILTER, Tunnel};
use crate::domain::{
    FouEncap, FouPort, Interface, KernelSupport, SysctlKey, SysctlSetting, TUNNEL_DEVICES,
    TunnelKind,
};
use crate::observe::Observed;
use crate::state::Record;

/// The tunnel's changes, in three groups the planner places, and what the
/// record says about the tunnel afterwards.
#[derive(Debug, Default)]
pub(super) struct Steps {
    /// Devices to create: first of all, so their sysctls can be set.
    pub create: Vec<Change>,
    /// Device up, FOU port: once the VIPs are held.
    pub bring_up: Vec<Change>,
    /// What an earlier configuration left (ports, devices): last.
    pub stale: Vec<Change>,
    /// Recorded links that leave the record.
    pub dropped_links: Vec<String>,
    pub warnings: Vec<String>,
    /// Devices this plan deletes: their sysctls go with them.
    deleted: Vec<String>,
    /// The device this plan creates.
    pending_device: Option<&'static str>,
    /// The record's tunnel entries after the plan.
    brought_up: Option<&'static str>,
    created: Vec<String>,
    fou_ports: Vec<FouPort>,
}

impl Steps {
    /// The value a sysctl of a device this plan creates starts with: the
    /// namespace's conf/default, which a new device copies (the kernel's
    /// fallback device too, when the module loads).
    pub fn predicted_sysctl(&self, key: &SysctlKey, observed: &Observed) -> Option<i32> {
        (self.pending_device == Some(key.interface.as_str()))
            .then(|| observed.sysctl(&SysctlKey::new(key.family, "default", &key.name)))
            .flatten()
    }

    pub fn deleting(&self, interface: &str) -> bool {
        self.deleted.iter().any(|d| d == interface)
    }

    /// Puts the tunnel entries into the plan's record.
    pub fn record_into(&self, record: &mut Record) {
        if let Some(device) = self.brought_up
            && !record.links_brought_up.iter().any(|l| l == device)
        {
            record.links_brought_up.push(device.to_string());
        }
        record.links_created = self.created.clone();
        record.fou_ports = self.fou_ports.clone();
    }
}

/// Fallback devices of the kernel's tunnel modules: never NICs.
const FALLBACK_DEVICES: [&str; 9] = [
    "tunl0", "gre0", "gretap0", "erspan0", "ip_vti0", "sit0", "ip6tnl0", "ip6gre0", "ip6_vti0",
];

/// Loose rp_filter on every NIC (an interface other than lo and the
/// tunnel devices) that is strict, and on those the agent made loose
/// before (so a reset to strict is drift, and stop puts them back).
pub(super) fn nic_rp_filter(
    tunnel: &Tunnel,
    observed: &Observed,
    record: &Record,
) -> Vec<SysctlSetting> {
    observed
        .links
        .iter()
        .filter(|l| {
            !l.loopback && l.name != tunnel.device() && !FALLBACK_DEVICES.contains(&l.name.as_str())
        })
        .filter_map(|l| {
            let key = SysctlKey::ipv4(&l.name, "rp_filter");
            let own = observed.sysctl(&key)?;
            (own == 1 || record.sysctl(&key).is_some()).then_some(SysctlSetting {
                key,
                value: NIC_RP_FILTER,
            })
        })
        .collect()
}

/// Why the tunnel cannot be set up here, if it cannot: the kernel lacks
/// the module, or the FOU port is taken by someone else's listener or
/// another socket.
pub(super) fn conflicts(tunnel: &Tunnel, observed: &Observed, record: &Record) -> Vec<String> {
    let mut conflicts = Vec::new();
    let kind = tunnel.kind.link_kind();
    if observed.link_by_name(tunnel.device()).is_none()
        && observed.kernel.get(kind.module()) == Some(&KernelSupport::Absent)
    {
        conflicts.push(format!(
            "this kernel has no {} support (module {} is neither built in nor installed), which tunnel type {:?} needs for {}",
            kind.name(),
            kind.module(),
            tunnel.kind.name(),
            tunnel.device()
        ));
    }
    let Some(port) = tunnel.fou_port() else {
        return conflicts;
    };
    if observed.fou.is_none() && observed.kernel.get("fou") == Some(&KernelSupport::Absent) {
        conflicts.push(
            "this kernel has no FOU support (module fou is neither built in nor installed), which tunnel type \"gue\" needs".into(),
        );
    }
    let listeners = observed.fou.as_deref().unwrap_or_default();
    let ours = record.fou_ports.contains(&port);
    for listener in listeners.iter().filter(|l| l.port == port.port) {
        if listener.family == port.family && ours && listener.encap == FouEncap::Gue {
            continue;
        }
        if listener.family != port.family {
            continue;
        }
        conflicts.push(format!(
            "UDP port {} has a FOU listener rs-agent did not add ({}, {}): remove it (ip fou del port {}) or choose another port",
            port.port,
            listener.encap,
            listener.family.name(),
            port.port
        ));
    }
    let fou_on_port = listeners.iter().any(|l| l.port == port.port);
    if !fou_on_port
        && observed
            .udp_ports
            .iter()
            .any(|(_, bound)| *bound == port.port)
    {
        conflicts.push(format!(
            "UDP port {} is in use by another socket (ss -ulpn shows which): GUE needs it for its FOU port",
            port.port
        ));
    }
    conflicts
}

/// The tunnel's changes. `tunnel` None: only undoing what the record says
/// an earlier tunnel configuration did.
pub(super) fn plan(tunnel: Option<&Tunnel>, observed: &Observed, record: &Record) -> Steps {
    let mut steps = Steps::default();
    let wanted_device = tunnel.map(Tunnel::device);
    let wanted_port = tunnel.and_then(Tunnel::fou_port);
    if let Some(tunnel) = tunnel {
        let device = tunnel.device();
        match observed.link_by_name(device) {
            Some(link) => {
                if !link.up {
                    steps.bring_up.push(Change::SetLinkUp {
                        interface: link.interface(),
                    });
                    steps.brought_up = Some(device);
                }
                if record.links_created.iter().any(|l| l == device) {
                    steps.created.push(device.to_string());
                }
            }
            None => {
                let interface = Interface::by_name(device);
                steps.create.push(Change::CreateLink {
                    interface: interface.clone(),
                    kind: tunnel.kind.link_kind(),
                });
                steps.bring_up.push(Change::SetLinkUp { interface });
                steps.pending_device = Some(device);
                steps.brought_up = Some(device);
                steps.created.push(device.to_string());
            }
        }
        if let Some(port) = wanted_port {
            let present = fou_present(observed, port);
            if !present {
                steps.bring_up.push(Change::AddFouPort { port });
            }
            if !present || record.fou_ports.contains(&port) {
                steps.fou_ports.push(port);
            }
        }
        if tunnel.kind == TunnelKind::Gue && observed.fou.is_none() {
            steps.warnings.push(
                "the kernel loads the fou module for the FOU port (modules are left loaded)".into(),
            );
        }
    }

    let stale_ports: Vec<FouPort> = record
        .fou_ports
        .iter()
        .filter(|p| Some(**p) != wanted_port)
        .copied()
        .collect();
    steps.stale.extend(remove_fou_ports(&stale_ports, observed));
    for name in &record.links_created {
        if Some(name.as_str()) == wanted_device {
            continue;
        }
        if let Some(link) = observed.link_by_name(name) {
            steps.stale.push(Change::DeleteLink {
                interface: link.interface(),
            });
            steps.deleted.push(name.clone());
        }
        steps.dropped_links.push(name.clone());
    }
    for name in &record.links_brought_up {
        let tunnel_device = TUNNEL_DEVICES.contains(&name.as_str());
        if !tunnel_device || Some(name.as_str()) == wanted_device || steps.deleting(name) {
            continue;
        }
        if let Some(link) = observed.link_by_name(name).filter(|l| l.up) {
            steps.stale.push(Change::SetLinkDown {
                interface: link.interface(),
            });
        }
        steps.dropped_links.push(name.clone());
    }
    steps
}

/// Removal of the recorded FOU ports that are still there.
pub(super) fn remove_fou_ports(ports: &[FouPort], observed: &Observed) -> Vec<Change> {
    ports
        .iter()
        .filter(|p| fou_present(observed, **p))
        .map(|p| Change::RemoveFouPort { port: *p })
        .collect()
}

fn fou_present(observed: &Observed, port: FouPort) -> bool {
    observed
        .fou
        .iter()
        .flatten()
        .any(|l| l.port == port.port && l.family == port.family)
}
