//! Desired against actual, for `status` and `check`: pure, from the
//! configuration, one snapshot and the rollback record.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::Config;
use crate::model::{ArpKey, SysctlKey};
use crate::observe::Observed;
use crate::state::Record;
use crate::sysctl_d::Setting;

#[derive(Debug, Serialize)]
pub struct Status {
    pub in_sync: bool,
    /// Why the system is not in sync; empty when it is.
    pub drift: Vec<String>,
    pub warnings: Vec<String>,
    pub vips: Vec<VipStatus>,
    pub sysctls: Vec<SysctlStatus>,
    pub interfaces: Vec<InterfaceArp>,
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

/// arp_ignore values under which a request for an address on another
/// interface (the VIP on lo) goes unanswered.
fn ignores_foreign_targets(arp_ignore: i32) -> bool {
    matches!(arp_ignore, 1 | 2 | 8)
}

/// `boot_settings`: the ARP lines of the sysctl.d files, in the order they apply.
pub fn status(
    config: &Config,
    observed: &Observed,
    record: &Record,
    boot_settings: &[Setting],
) -> Status {
    let mut drift = Vec::new();
    let wanted_sysctls = config.sysctls();
    let mut warnings = crate::sysctl_d::conflicts(&wanted_sysctls, boot_settings);
    let lo_index = observed.lo().map(|l| l.index);
    let by_ip = observed.addresses_by_ip();

    let recorded: HashSet<IpAddr> = record.addresses.iter().map(|a| a.spec.address).collect();
    let configured: HashSet<IpAddr> = config.vips.iter().map(|v| v.address).collect();
    let mut vips = Vec::new();
    for vip in &config.vips {
        let found = by_ip
            .get(&vip.address)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let on: Vec<String> = found.iter().map(|a| observed.link_name(a.index)).collect();
        let on_lo = found.iter().any(|a| Some(a.index) == lo_index);
        if !on_lo {
            drift.push(format!("VIP {} is not on lo", vip.address));
        }
        for a in found.iter().filter(|a| Some(a.index) != lo_index) {
            drift.push(format!(
                "VIP {} is on {}: that interface answers ARP for it",
                vip.address,
                observed.link_name(a.index)
            ));
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
                .then(|| found.iter().any(|a| a.deprecated)),
        });
    }
    for entry in &record.addresses {
        let spec = &entry.spec;
        if configured.contains(&spec.address) {
            continue;
        }
        let found = by_ip
            .get(&spec.address)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let holder = observed.link_by_name(&entry.interface).map(|l| l.index);
        if found.iter().any(|a| Some(a.index) == holder) {
            drift.push(format!(
                "{} was added by rs-agent to {} and is no longer configured (start removes it)",
                spec.address, entry.interface
            ));
            vips.push(VipStatus {
                address: spec.address.to_string(),
                configured: false,
                on: found.iter().map(|a| observed.link_name(a.index)).collect(),
                origin: Some("rs-agent"),
                deprecated: spec
                    .address
                    .is_ipv6()
                    .then(|| found.iter().any(|a| a.deprecated)),
            });
        }
    }

    let mut sysctls = Vec::new();
    for setting in &wanted_sysctls {
        let (sysctl, wanted) = (&setting.key, setting.value);
        let current = observed.sysctl(sysctl);
        match current {
            None => drift.push(format!("{sysctl} does not exist")),
            Some(c) if c != wanted => drift.push(format!("{sysctl} is {c}, wanted {wanted}")),
            Some(_) => {}
        }
        sysctls.push(SysctlStatus {
            sysctl: sysctl.to_string(),
            wanted,
            current,
            before_agent: record.sysctl(sysctl).map(|e| e.original),
        });
    }

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
                drift.push(format!(
                    "{} answers ARP for the VIPs (arp_ignore in force: {arp_ignore})",
                    link.name
                ));
            }
            if entry.may_announce_vips {
                drift.push(format!(
                    "{} may use a VIP as the source of its ARP requests (arp_announce in force: {arp_announce})",
                    link.name
                ));
            }
        }
        interfaces.push(entry);
    }
    if observed.lo().is_some_and(|lo| !lo.up) && !config.vips.is_empty() {
        drift.push("lo is down: the VIPs receive nothing".to_string());
    }
    if config.arp.interfaces.is_empty() {
        warnings.push("[arp] interfaces is empty: rs-agent does not manage the ARP sysctls".into());
    }

    Status {
        in_sync: drift.is_empty(),
        drift,
        warnings,
        vips,
        sysctls,
        interfaces,
    }
}

impl Status {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "VIPs:");
        if self.vips.is_empty() {
            let _ = writeln!(out, "  (none configured)");
        }
        for vip in &self.vips {
            let place = if vip.on.is_empty() {
                "absent".to_string()
            } else {
                format!("on {}", vip.on.join(", "))
            };
            let mut notes = Vec::new();
            if let Some(origin) = vip.origin {
                notes.push(match origin {
                    "rs-agent" => "added by rs-agent",
                    "pre-existing" => "pre-existing",
                    _ => "origin unknown",
                });
            }
            if !vip.configured {
                notes.push("no longer configured");
            }
            if vip.deprecated == Some(true) {
                notes.push("deprecated");
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            let _ = writeln!(out, "  {:<40} {place}{notes}", vip.address);
        }
        let _ = writeln!(out, "Sysctls:");
        for s in &self.sysctls {
            let current = s.current.map_or("missing".to_string(), |c| c.to_string());
            let mark = if s.current == Some(s.wanted) {
                "ok"
            } else {
                "DRIFT"
            };
            let before = s
                .before_agent
                .map_or(String::new(), |b| format!("  (before rs-agent: {b})"));
            let _ = writeln!(
                out,
                "  {:<40} wanted {}  current {current:<7} {mark}{before}",
                s.sysctl, s.wanted
            );
        }
        let _ = writeln!(
            out,
            "ARP in force per interface (max of conf/all and conf/IFACE):"
        );
        for i in &self.interfaces {
            let mut flags = Vec::new();
            if i.answers_arp_for_vips {
                flags.push("ANSWERS ARP FOR VIPs");
            }
            if i.may_announce_vips {
                flags.push("MAY ANNOUNCE VIPs");
            }
            let flags = if flags.is_empty() {
                "ok".to_string()
            } else {
                flags.join(", ")
            };
            let _ = writeln!(
                out,
                "  {:<16} arp_ignore {}  arp_announce {}  {flags}",
                i.interface, i.arp_ignore, i.arp_announce
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        if self.in_sync {
            let _ = writeln!(out, "in sync");
        } else {
            for d in &self.drift {
                let _ = writeln!(out, "drift: {d}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ArpPolicy, Vip};
    use crate::model::{Address, AddressSpec, Link};
    use crate::state::AddressEntry;

    fn observed(all: (i32, i32), eth0: (i32, i32)) -> Observed {
        let mut o = Observed {
            links: vec![
                Link {
                    index: 1,
                    name: "lo".into(),
                    up: true,
                    loopback: true,
                    noarp: true,
                },
                Link {
                    index: 2,
                    name: "eth0".into(),
                    up: true,
                    loopback: false,
                    noarp: false,
                },
                Link {
                    index: 3,
                    name: "wg0".into(),
                    up: true,
                    loopback: false,
                    noarp: true,
                },
            ],
            conf_entries: vec!["all".into(), "eth0".into(), "lo".into(), "wg0".into()],
            ..Observed::default()
        };
        for (name, (i, a)) in [
            ("all", all),
            ("eth0", eth0),
            ("lo", (0, 0)),
            ("wg0", (0, 0)),
        ] {
            o.sysctls.insert(SysctlKey::arp(name, ArpKey::Ignore), i);
            o.sysctls.insert(SysctlKey::arp(name, ArpKey::Announce), a);
        }
        o
    }

    fn config() -> Config {
        Config {
            arp: ArpPolicy::default(),
            vips: vec![Vip {
                address: "10.1.252.73".parse().unwrap(),
                label: None,
            }],
        }
    }

    fn on_lo(mut o: Observed) -> Observed {
        o.addresses.push(Address {
            index: 1,
            spec: AddressSpec {
                address: "10.1.252.73".parse().unwrap(),
                prefix_len: 32,
                label: None,
            },
            deprecated: false,
        });
        o
    }

    #[test]
    fn in_sync_when_vip_on_lo_and_arp_locked_down() {
        let s = status(
            &config(),
            &on_lo(observed((1, 2), (0, 0))),
            &Record::default(),
            &[],
        );
        assert!(s.in_sync, "{:?}", s.drift);
        assert_eq!(s.vips[0].origin, Some("pre-existing"));
        // Effective values are the max; NOARP interfaces are not listed.
        assert_eq!(s.interfaces.len(), 1);
        assert_eq!(
            (s.interfaces[0].arp_ignore, s.interfaces[0].arp_announce),
            (1, 2)
        );
        assert!(s.to_text().ends_with("in sync\n"));
    }

    #[test]
    fn per_interface_value_counts_through_the_max() {
        let mut c = config();
        c.arp.interfaces = vec!["eth0".into()];
        let s = status(
            &c,
            &on_lo(observed((0, 0), (1, 2))),
            &Record::default(),
            &[],
        );
        assert!(s.in_sync, "{:?}", s.drift);
        assert_eq!(
            (s.interfaces[0].arp_ignore, s.interfaces[0].arp_announce),
            (1, 2)
        );
    }

    #[test]
    fn drift_is_explained() {
        let s = status(
            &config(),
            &observed((0, 2), (3, 0)),
            &Record::default(),
            &[],
        );
        assert!(!s.in_sync);
        let text = s.drift.join("\n");
        assert!(text.contains("VIP 10.1.252.73 is not on lo"), "{text}");
        assert!(
            text.contains("net.ipv4.conf.all.arp_ignore is 0, wanted 1"),
            "{text}"
        );
        assert!(
            text.contains("eth0 answers ARP for the VIPs (arp_ignore in force: 3)"),
            "{text}"
        );
        assert!(!text.contains("may use a VIP"), "{text}");
        assert!(s.interfaces[0].answers_arp_for_vips);
    }

    #[test]
    fn stale_agent_vip_is_drift() {
        let record = Record {
            addresses: vec![AddressEntry {
                interface: "lo".into(),
                spec: AddressSpec::host("10.1.252.73".parse().unwrap(), None),
            }],
            ..Record::default()
        };
        let c = Config {
            vips: vec![],
            ..config()
        };
        let s = status(&c, &on_lo(observed((1, 2), (0, 0))), &record, &[]);
        assert!(!s.in_sync);
        assert!(s.drift[0].contains("no longer configured"), "{:?}", s.drift);
    }
}
