//! Desired against actual, for `status`, `check` and the agent endpoint:
//! pure, from the configuration, one snapshot and the rollback record.
//! Renderings: [`text`] (people) and [`prometheus`] (node_exporter's
//! textfile collector); JSON is the serde form of [`Status`].

mod prometheus;
#[cfg(test)]
mod tests;
mod text;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::agent_check::{self, OnDrift};
use crate::config::{Config, Tunnel};
use crate::domain::{ArpKey, SysctlKey};
use crate::drain::Drain;
use crate::observe::Observed;
use crate::state::Record;
use crate::sysctl_d::Setting;

/// What a drift is about; `check --output prometheus` counts them by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// A VIP missing from lo or held elsewhere.
    Vip,
    /// A managed sysctl not at the wanted value.
    Sysctl,
    /// An interface answering ARP for the VIPs or announcing them.
    Arp,
    /// lo down.
    Link,
    /// The tunnel's receive side: device, FOU port, rp_filter in force.
    Tunnel,
    /// Something rs-agent added that is no longer configured.
    Stale,
}

impl DriftKind {
    pub const ALL: [DriftKind; 6] = [
        DriftKind::Vip,
        DriftKind::Sysctl,
        DriftKind::Arp,
        DriftKind::Link,
        DriftKind::Tunnel,
        DriftKind::Stale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DriftKind::Vip => "vip",
            DriftKind::Sysctl => "sysctl",
            DriftKind::Arp => "arp",
            DriftKind::Link => "link",
            DriftKind::Tunnel => "tunnel",
            DriftKind::Stale => "stale",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub in_sync: bool,
    /// Why the system is not in sync; empty when it is.
    pub drift: Vec<String>,
    /// How many of `drift` are of each kind (every kind listed).
    pub drift_by_kind: BTreeMap<DriftKind, usize>,
    /// Why this server would drop or steal traffic now (a VIP missing, ARP
    /// answered for a VIP, the tunnel's receive side broken): the agent
    /// endpoint then answers `down`. A subset of `drift`.
    pub broken: Vec<String>,
    pub warnings: Vec<String>,
    pub vips: Vec<VipStatus>,
    pub sysctls: Vec<SysctlStatus>,
    pub interfaces: Vec<InterfaceArp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelStatus>,
    /// The drain in force (`rs-agent drain`), null when none.
    pub drain: Option<Drain>,
    /// What `watch --agent-listen` answers in this state (with the default
    /// `--agent-on-drift up`): `up`, `drain` or `down`.
    pub agent_answer: &'static str,
}

#[derive(Debug, Serialize)]
pub struct VipStatus {
    pub address: String,
    pub configured: bool,
    /// Interfaces that hold the address (only `lo` is right).
    pub on: Vec<String>,
    /// "rs-agent" when the agent added it, "pre-existing" when it found it,
    /// "unknown" when the rollback record could not be read.
    pub origin: Option<&'static str>,
    pub deprecated: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct SysctlStatus {
    pub sysctl: String,
    pub wanted: i32,
    pub current: Option<i32>,
    /// The value before rs-agent first changed it, if it did.
    pub before_agent: Option<i32>,
}

/// The ARP behaviour in force on one interface: the kernel uses the larger of
/// conf/all and conf/IFACE for both sysctls.
#[derive(Debug, Serialize)]
pub struct InterfaceArp {
    pub interface: String,
    pub arp_ignore: i32,
    pub arp_announce: i32,
    /// arp_ignore in force is 0, 3 or reserved: a request for a VIP held on lo
    /// arriving here is answered.
    pub answers_arp_for_vips: bool,
    /// arp_announce in force below 2: the VIP may be used as the source of
    /// this interface's ARP requests.
    pub may_announce_vips: bool,
}

/// Tunnel mode's receive side.
#[derive(Debug, Serialize)]
pub struct TunnelStatus {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub device: String,
    pub present: bool,
    pub up: bool,
    /// The agent created the device (the namespace had no fallback device).
    pub created_by_agent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fou_port: Option<FouStatus>,
    /// rp_filter in force (max of conf/all and conf/IFACE) on the tunnel
    /// device and every other interface but lo.
    pub rp_filter: Vec<RpFilter>,
}

#[derive(Debug, Serialize)]
pub struct FouStatus {
    pub port: u16,
    pub present: bool,
    /// "rs-agent" when the agent added it.
    pub origin: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct RpFilter {
    pub interface: String,
    pub in_force: i32,
}

/// arp_ignore values under which a request for an address on another
/// interface (the VIP on lo) goes unanswered.
fn ignores_foreign_targets(arp_ignore: i32) -> bool {
    matches!(arp_ignore, 1 | 2 | 8)
}

/// Drift found so far, each with its kind and whether it breaks traffic.
#[derive(Default)]
struct Findings {
    drift: Vec<(DriftKind, String)>,
    broken: Vec<String>,
}

impl Findings {
    fn drift(&mut self, kind: DriftKind, message: String) {
        self.drift.push((kind, message));
    }

    /// Drift that makes this server drop or steal traffic.
    fn broken(&mut self, kind: DriftKind, message: String) {
        self.broken.push(message.clone());
        self.drift.push((kind, message));
    }
}

/// `boot_settings`: the conf lines of the sysctl.d files, in the order they apply.
pub fn status(
    config: &Config,
    observed: &Observed,
    record: &Record,
    boot_settings: &[Setting],
) -> Status {
    let mut found = Findings::default();
    let wanted_sysctls = crate::plan::wanted_sysctls(config, observed, record);
    let mut warnings = crate::sysctl_d::conflicts(&wanted_sysctls, boot_settings);
    let vips = vip_status(config, observed, record, &mut found);

    let mut sysctls = Vec::new();
    for setting in &wanted_sysctls {
        let (sysctl, wanted) = (&setting.key, setting.value);
        let current = observed.sysctl(sysctl);
        match current {
            None => found.drift(DriftKind::Sysctl, format!("{sysctl} does not exist")),
            Some(c) if c != wanted => found.drift(
                DriftKind::Sysctl,
                format!("{sysctl} is {c}, wanted {wanted}"),
            ),
            Some(_) => {}
        }
        sysctls.push(SysctlStatus {
            sysctl: sysctl.to_string(),
            wanted,
            current,
            before_agent: record.sysctl(sysctl).map(|e| e.original),
        });
    }

    let interfaces = arp_in_force(config, observed, &mut found);
    if observed.lo().is_some_and(|lo| !lo.up) && !config.vips.is_empty() {
        found.broken(
            DriftKind::Link,
            "lo is down: the VIPs receive nothing".to_string(),
        );
    }
    if config.arp.interfaces.is_empty() {
        warnings.push("[arp] interfaces is empty: rs-agent does not manage the ARP sysctls".into());
    }
    let tunnel = config
        .tunnel
        .as_ref()
        .map(|t| tunnel_status(t, observed, record, &mut found));

    let mut drift_by_kind: BTreeMap<DriftKind, usize> =
        DriftKind::ALL.iter().map(|k| (*k, 0)).collect();
    for (kind, _) in &found.drift {
        *drift_by_kind.entry(*kind).or_default() += 1;
    }
    let in_sync = found.drift.is_empty();
    let agent_answer = agent_check::answer(
        found.broken.first().map(String::as_str),
        in_sync,
        false,
        OnDrift::Up,
    )
    .word();
    Status {
        in_sync,
        drift: found.drift.into_iter().map(|(_, m)| m).collect(),
        drift_by_kind,
        broken: found.broken,
        warnings,
        vips,
        sysctls,
        interfaces,
        tunnel,
        drain: None,
        agent_answer,
    }
}

impl Status {
    /// Records the drain in force and what the endpoint answers with it.
    pub fn set_drain(&mut self, drain: Option<Drain>) {
        self.agent_answer = agent_check::answer(
            self.broken.first().map(String::as_str),
            self.in_sync,
            drain.is_some(),
            OnDrift::Up,
        )
        .word();
        self.drain = drain;
    }
}

fn vip_status(
    config: &Config,
    observed: &Observed,
    record: &Record,
    found: &mut Findings,
) -> Vec<VipStatus> {
    let lo_index = observed.lo().map(|l| l.index);
    let by_ip = observed.addresses_by_ip();
    let recorded: HashSet<IpAddr> = record.addresses.iter().map(|a| a.spec.address).collect();
    let configured: HashSet<IpAddr> = config.vips.iter().map(|v| v.address).collect();
    let mut vips = Vec::new();
    for vip in &config.vips {
        let found_at = by_ip
            .get(&vip.address)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let on: Vec<String> = found_at
            .iter()
            .map(|a| observed.link_name(a.index))
            .collect();
        let on_lo = found_at.iter().any(|a| Some(a.index) == lo_index);
        if !on_lo {
            found.broken(DriftKind::Vip, format!("VIP {} is not on lo", vip.address));
        }
        for a in found_at.iter().filter(|a| Some(a.index) != lo_index) {
            found.broken(
                DriftKind::Vip,
                format!(
                    "VIP {} is on {}: that interface answers ARP for it",
                    vip.address,
                    observed.link_name(a.index)
                ),
            );
        }
        let recorded = recorded.contains(&vip.address);
        vips.push(VipStatus {
            address: vip.address.to_string(),
            configured: true,
            on,
            origin: on_lo.then_some(if recorded { "rs-agent" } else { "pre-existing" }),
            deprecated: vip
                .address
                .is_ipv6()
                .then(|| found_at.iter().any(|a| a.deprecated)),
        });
    }
    for entry in &record.addresses {
        let spec = &entry.spec;
        if configured.contains(&spec.address) {
            continue;
        }
        let found_at = by_ip
            .get(&spec.address)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let holder = observed.link_by_name(&entry.interface).map(|l| l.index);
        if found_at.iter().any(|a| Some(a.index) == holder) {
            found.drift(
                DriftKind::Stale,
                format!(
                    "{} was added by rs-agent to {} and is no longer configured (start removes it)",
                    spec.address, entry.interface
                ),
            );
            vips.push(VipStatus {
                address: spec.address.to_string(),
                configured: false,
                on: found_at
                    .iter()
                    .map(|a| observed.link_name(a.index))
                    .collect(),
                origin: Some("rs-agent"),
                deprecated: spec
                    .address
                    .is_ipv6()
                    .then(|| found_at.iter().any(|a| a.deprecated)),
            });
        }
    }
    vips
}

fn arp_in_force(config: &Config, observed: &Observed, found: &mut Findings) -> Vec<InterfaceArp> {
    let mut interfaces = Vec::new();
    let value = |interface: &str, key| observed.sysctl(&SysctlKey::arp(interface, key));
    for link in observed.links.iter().filter(|l| !l.loopback && !l.noarp) {
        let (Some(ignore), Some(announce)) = (
            value(&link.name, ArpKey::Ignore),
            value(&link.name, ArpKey::Announce),
        ) else {
            continue;
        };
        let all_ignore = value("all", ArpKey::Ignore).unwrap_or(0);
        let all_announce = value("all", ArpKey::Announce).unwrap_or(0);
        let arp_ignore = ignore.max(all_ignore);
        let arp_announce = announce.max(all_announce);
        let entry = InterfaceArp {
            interface: link.name.clone(),
            arp_ignore,
            arp_announce,
            answers_arp_for_vips: !ignores_foreign_targets(arp_ignore),
            may_announce_vips: arp_announce < 2,
        };
        if !config.vips.is_empty() {
            if entry.answers_arp_for_vips {
                found.broken(
                    DriftKind::Arp,
                    format!(
                        "{} answers ARP for the VIPs (arp_ignore in force: {arp_ignore})",
                        link.name
                    ),
                );
            }
            if entry.may_announce_vips {
                found.drift(
                    DriftKind::Arp,
                    format!(
                        "{} may use a VIP as the source of its ARP requests (arp_announce in force: {arp_announce})",
                        link.name
                    ),
                );
            }
        }
        interfaces.push(entry);
    }
    interfaces
}

fn tunnel_status(
    tunnel: &Tunnel,
    observed: &Observed,
    record: &Record,
    found: &mut Findings,
) -> TunnelStatus {
    let device = tunnel.device();
    let link = observed.link_by_name(device);
    match link {
        None => found.broken(
            DriftKind::Tunnel,
            format!("tunnel device {device} does not exist: tunnelled packets are dropped"),
        ),
        Some(l) if !l.up => found.broken(
            DriftKind::Tunnel,
            format!("tunnel device {device} is down: tunnelled packets are dropped"),
        ),
        Some(_) => {}
    }
    let rp_filter_of = |interface: &str| observed.sysctl(&SysctlKey::ipv4(interface, "rp_filter"));
    let all = rp_filter_of("all").unwrap_or(0);
    let mut rp_filter = Vec::new();
    for l in observed.links.iter().filter(|l| !l.loopback) {
        let Some(own) = rp_filter_of(&l.name) else {
            continue;
        };
        let in_force = own.max(all);
        if l.name == device && in_force != 0 {
            found.broken(
                DriftKind::Tunnel,
                format!(
                    "rp_filter in force on {device} is {in_force}: decapsulated packets are dropped (it has no address: only 0 lets them in)"
                ),
            );
        }
        rp_filter.push(RpFilter {
            interface: l.name.clone(),
            in_force,
        });
    }
    let fou_port = tunnel.fou_port().map(|port| {
        let present = observed
            .fou
            .iter()
            .flatten()
            .any(|l| l.port == port.port && l.family == port.family);
        if !present {
            found.broken(
                DriftKind::Tunnel,
                format!(
                    "{port} is missing: GUE packets to UDP port {} are dropped",
                    port.port
                ),
            );
        }
        FouStatus {
            port: port.port,
            present,
            origin: present.then_some(if record.fou_ports.contains(&port) {
                "rs-agent"
            } else {
                "pre-existing"
            }),
        }
    });
    TunnelStatus {
        kind: tunnel.kind.name(),
        device: device.to_string(),
        present: link.is_some(),
        up: link.is_some_and(|l| l.up),
        created_by_agent: link.is_some() && record.links_created.iter().any(|l| l == device),
        fou_port,
        rp_filter,
    }
}
