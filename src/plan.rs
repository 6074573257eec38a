//! The decisions, free of system calls: from the configuration, one snapshot
//! of the system and the rollback record, compute the changes to make and the
//! record that describes the system once they are made.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::Config;
use crate::error::Error;
use crate::netlink::AddressSpec;
use crate::observe::Observed;
use crate::state::{Record, SysctlEntry};
use crate::sysctl::{ArpKey, SysctlKey};

/// One change to the system. Plans order them so ARP is locked down before a
/// VIP appears and VIPs are gone before ARP is relaxed.
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
        interface: String,
    },
    RemoveAddress {
        #[serde(flatten)]
        spec: AddressSpec,
        interface: String,
    },
    SetLinkUp {
        interface: String,
        #[serde(skip)]
        index: u32,
    },
    SetLinkDown {
        interface: String,
        #[serde(skip)]
        index: u32,
    },
}

impl Change {
    fn set_sysctl(key: &SysctlKey, from: i32, to: i32) -> Change {
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
            Change::SetLinkUp { interface, index } => Change::SetLinkDown {
                interface: interface.clone(),
                index: *index,
            },
            Change::SetLinkDown { interface, index } => Change::SetLinkUp {
                interface: interface.clone(),
                index: *index,
            },
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
            Change::SetLinkUp { interface, .. } => write!(f, "set {interface} up"),
            Change::SetLinkDown { interface, .. } => write!(f, "set {interface} down"),
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
    if !conflicts.is_empty() {
        return Err(Error::Conflict(conflicts.join("; ")));
    }

    let mut plan = Plan::default();
    plan.record.version = record.version;
    let mut sysctl_reverts = Vec::new();

    // Sysctls the configuration wants.
    for interface in &config.arp.interfaces {
        for arp_key in ArpKey::ALL {
            let key = SysctlKey::new(interface, arp_key);
            let wanted = config.arp.desired(arp_key);
            let current = observed.sysctl(&key).ok_or_else(|| {
                Error::Conflict(format!("{key} cannot be read in this namespace"))
            })?;
            let recorded = record.sysctl(&key);
            if current != wanted {
                plan.changes.push(Change::set_sysctl(&key, current, wanted));
            }
            if current != wanted || recorded.is_some() {
                plan.record.sysctls.push(SysctlEntry {
                    key,
                    original: recorded.map_or(current, |r| r.original),
                    written: wanted,
                });
            }
        }
    }
    // Sysctls the agent changed earlier that the configuration no longer names.
    for entry in &record.sysctls {
        let still_wanted = config.arp.interfaces.contains(&entry.key.interface);
        if !still_wanted {
            sysctl_reverts.extend(revert_sysctl(entry, observed, &mut plan.warnings));
        }
    }

    // lo must be up, or the kernel installs no local route for the VIPs.
    if !config.vips.is_empty() && !lo.up {
        plan.changes.push(Change::SetLinkUp {
            interface: lo.name.clone(),
            index: lo.index,
        });
    }
    // Only a first run records lo as brought up: if lo goes down later, the
    // state from before the agent still had it up, and stop must keep it so.
    let first_run = record.is_empty();
    plan.record.lo_brought_up =
        record.lo_brought_up || (first_run && !config.vips.is_empty() && !lo.up);

    // Addresses the agent added earlier that the configuration no longer names.
    let wanted: HashSet<IpAddr> = config.vips.iter().map(|v| v.address).collect();
    let on_lo = |ip: &IpAddr| {
        by_ip
            .get(ip)
            .into_iter()
            .flatten()
            .any(|a| a.index == lo.index)
    };
    for spec in &record.addresses {
        if !wanted.contains(&spec.address) && on_lo(&spec.address) {
            plan.changes.push(Change::RemoveAddress {
                spec: spec.clone(),
                interface: lo.name.clone(),
            });
        }
    }

    // Addresses the configuration wants.
    let recorded: HashMap<IpAddr, &AddressSpec> =
        record.addresses.iter().map(|s| (s.address, s)).collect();
    for vip in &config.vips {
        let spec = AddressSpec {
            address: vip.address,
            prefix_len: vip.prefix_len(),
            label: vip.label.clone(),
        };
        let present: Vec<_> = by_ip.get(&vip.address).into_iter().flatten().collect();
        if present.is_empty() {
            plan.changes.push(Change::AddAddress {
                spec: spec.clone(),
                interface: lo.name.clone(),
            });
            plan.record.addresses.push(spec);
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

    plan.changes.extend(sysctl_reverts);
    Ok(plan)
}

/// `stop`: undo what the record says the agent did, and no more.
pub fn plan_stop(observed: &Observed, record: &Record) -> Plan {
    let mut plan = Plan::default();
    let lo = observed.lo();
    let by_ip = observed.addresses_by_ip();
    if let Some(lo) = lo {
        for spec in &record.addresses {
            let present = by_ip
                .get(&spec.address)
                .into_iter()
                .flatten()
                .any(|a| a.index == lo.index);
            if present {
                plan.changes.push(Change::RemoveAddress {
                    spec: spec.clone(),
                    interface: lo.name.clone(),
                });
            }
        }
    }
    for entry in &record.sysctls {
        plan.changes
            .extend(revert_sysctl(entry, observed, &mut plan.warnings));
    }
    if record.lo_brought_up
        && let Some(lo) = lo.filter(|lo| lo.up)
    {
        plan.changes.push(Change::SetLinkDown {
            interface: lo.name.clone(),
            index: lo.index,
        });
    }
    plan
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
mod tests {
    use super::*;
    use crate::config::{ArpPolicy, Vip};
    use crate::netlink::{Address, Link};

    const LO: u32 = 1;
    const ETH0: u32 = 2;

    fn vip(text: &str) -> Vip {
        Vip {
            address: text.parse().unwrap(),
            label: None,
        }
    }

    fn spec(text: &str) -> AddressSpec {
        let address: IpAddr = text.parse().unwrap();
        AddressSpec {
            address,
            prefix_len: crate::config::host_prefix(address),
            label: None,
        }
    }

    fn config(vips: &[&str]) -> Config {
        Config {
            arp: ArpPolicy::default(),
            vips: vips.iter().map(|v| vip(v)).collect(),
        }
    }

    /// A namespace with lo (up) and eth0, ARP sysctls at the kernel defaults.
    fn system() -> Observed {
        let mut observed = Observed {
            links: vec![
                Link {
                    index: LO,
                    name: "lo".into(),
                    up: true,
                    loopback: true,
                    noarp: true,
                },
                Link {
                    index: ETH0,
                    name: "eth0".into(),
                    up: true,
                    loopback: false,
                    noarp: false,
                },
            ],
            addresses: vec![Address {
                index: ETH0,
                spec: AddressSpec {
                    address: "198.51.100.2".parse().unwrap(),
                    prefix_len: 24,
                    label: None,
                },
                deprecated: false,
            }],
            conf_entries: vec!["all".into(), "default".into(), "eth0".into(), "lo".into()],
            ..Observed::default()
        };
        for entry in observed.conf_entries.clone() {
            for key in ArpKey::ALL {
                observed.sysctls.insert(SysctlKey::new(&entry, key), 0);
            }
        }
        observed
    }

    fn with_address(mut observed: Observed, index: u32, text: &str) -> Observed {
        observed.addresses.push(Address {
            index,
            spec: spec(text),
            deprecated: false,
        });
        observed
    }

    fn set(observed: &mut Observed, interface: &str, key: ArpKey, value: i32) {
        observed
            .sysctls
            .insert(SysctlKey::new(interface, key), value);
    }

    /// The system after the plan's changes, as the kernel would show it.
    fn after(mut observed: Observed, plan: &Plan) -> Observed {
        for change in &plan.changes {
            match change {
                Change::SetSysctl { key, to, .. } => {
                    observed.sysctls.insert(key.clone(), *to);
                }
                Change::AddAddress { spec, .. } => observed.addresses.push(Address {
                    index: LO,
                    spec: spec.clone(),
                    deprecated: spec.address.is_ipv6(),
                }),
                Change::RemoveAddress { spec, .. } => observed
                    .addresses
                    .retain(|a| !(a.index == LO && a.spec.address == spec.address)),
                Change::SetLinkUp { index, .. } => {
                    observed
                        .links
                        .iter_mut()
                        .find(|l| l.index == *index)
                        .unwrap()
                        .up = true
                }
                Change::SetLinkDown { index, .. } => {
                    observed
                        .links
                        .iter_mut()
                        .find(|l| l.index == *index)
                        .unwrap()
                        .up = false
                }
            }
        }
        observed
    }

    fn texts(plan: &Plan) -> Vec<String> {
        plan.changes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn fresh_start_sets_arp_first_then_adds_vips() {
        let plan = plan_start(
            &config(&["10.1.252.73", "2001:db8::73"]),
            &system(),
            &Record::default(),
        )
        .unwrap();
        assert_eq!(
            texts(&plan),
            vec![
                "set net.ipv4.conf.all.arp_ignore = 1 (was 0)",
                "set net.ipv4.conf.all.arp_announce = 2 (was 0)",
                "add 10.1.252.73/32 to lo",
                "add 2001:db8::73/128 to lo",
            ]
        );
        assert_eq!(plan.record.sysctls.len(), 2);
        assert!(plan.record.sysctls.iter().all(|e| e.original == 0));
        assert_eq!(
            plan.record.addresses,
            vec![spec("10.1.252.73"), spec("2001:db8::73")]
        );
        assert!(!plan.record.lo_brought_up);
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn second_start_changes_nothing() {
        let cfg = config(&["10.1.252.73"]);
        let first = plan_start(&cfg, &system(), &Record::default()).unwrap();
        let system = after(system(), &first);
        let second = plan_start(&cfg, &system, &first.record).unwrap();
        assert!(second.changes.is_empty(), "{:?}", second.changes);
        assert_eq!(second.record, first.record);
    }

    #[test]
    fn values_already_right_are_not_recorded() {
        let mut system = system();
        set(&mut system, "all", ArpKey::Ignore, 1);
        let plan = plan_start(&config(&[]), &system, &Record::default()).unwrap();
        assert_eq!(
            texts(&plan),
            vec!["set net.ipv4.conf.all.arp_announce = 2 (was 0)"]
        );
        assert_eq!(plan.record.sysctls.len(), 1);
        assert_eq!(plan.record.sysctls[0].key.key, ArpKey::Announce);
    }

    #[test]
    fn converge_after_config_change() {
        let first = plan_start(
            &config(&["10.0.0.1", "10.0.0.2"]),
            &system(),
            &Record::default(),
        )
        .unwrap();
        let system = after(system(), &first);
        let plan = plan_start(&config(&["10.0.0.2", "10.0.0.3"]), &system, &first.record).unwrap();
        assert_eq!(
            texts(&plan),
            vec!["remove 10.0.0.1/32 from lo", "add 10.0.0.3/32 to lo"]
        );
        assert_eq!(
            plan.record.addresses,
            vec![spec("10.0.0.2"), spec("10.0.0.3")]
        );
    }

    #[test]
    fn changed_arp_value_keeps_the_original() {
        let first = plan_start(&config(&[]), &system(), &Record::default()).unwrap();
        let system = after(system(), &first);
        let mut cfg = config(&[]);
        cfg.arp.ignore = 2;
        let plan = plan_start(&cfg, &system, &first.record).unwrap();
        assert_eq!(
            texts(&plan),
            vec!["set net.ipv4.conf.all.arp_ignore = 2 (was 1)"]
        );
        let entry = plan
            .record
            .sysctl(&SysctlKey::new("all", ArpKey::Ignore))
            .unwrap();
        assert_eq!((entry.original, entry.written), (0, 2));
    }

    #[test]
    fn interface_dropped_from_config_is_reverted() {
        let mut cfg = config(&[]);
        cfg.arp.interfaces = vec!["all".into(), "eth0".into()];
        let first = plan_start(&cfg, &system(), &Record::default()).unwrap();
        let system = after(system(), &first);
        cfg.arp.interfaces = vec!["all".into()];
        let plan = plan_start(&cfg, &system, &first.record).unwrap();
        assert_eq!(
            texts(&plan),
            vec![
                "set net.ipv4.conf.eth0.arp_ignore = 0 (was 1)",
                "set net.ipv4.conf.eth0.arp_announce = 0 (was 2)",
            ]
        );
        assert!(plan.record.sysctls.iter().all(|e| e.key.interface == "all"));
    }

    #[test]
    fn repair_keeps_original_from_before_the_agent() {
        let mut system0 = system();
        set(&mut system0, "all", ArpKey::Ignore, 3);
        let first = plan_start(&config(&[]), &system0, &Record::default()).unwrap();
        let mut system1 = after(system0, &first);
        set(&mut system1, "all", ArpKey::Ignore, 0); // someone else
        let plan = plan_start(&config(&[]), &system1, &first.record).unwrap();
        assert_eq!(
            texts(&plan),
            vec!["set net.ipv4.conf.all.arp_ignore = 1 (was 0)"]
        );
        let entry = plan
            .record
            .sysctl(&SysctlKey::new("all", ArpKey::Ignore))
            .unwrap();
        assert_eq!((entry.original, entry.written), (3, 1));
    }

    #[test]
    fn preexisting_vip_is_kept_out_of_the_record() {
        let system = with_address(system(), LO, "10.1.252.73");
        let plan = plan_start(&config(&["10.1.252.73"]), &system, &Record::default()).unwrap();
        assert!(
            plan.changes
                .iter()
                .all(|c| !matches!(c, Change::AddAddress { .. }))
        );
        assert!(plan.record.addresses.is_empty());
        let stop = plan_stop(&after(system, &plan), &plan.record);
        assert!(
            stop.changes
                .iter()
                .all(|c| !matches!(c, Change::RemoveAddress { .. }))
        );
    }

    #[test]
    fn preexisting_ipv6_vip_not_deprecated_is_warned_about() {
        let system = with_address(system(), LO, "2001:db8::73");
        let plan = plan_start(&config(&["2001:db8::73"]), &system, &Record::default()).unwrap();
        assert_eq!(plan.warnings.len(), 1);
        assert!(
            plan.warnings[0].contains("not deprecated"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn vip_on_a_nic_is_refused() {
        let system = with_address(system(), ETH0, "10.1.252.73");
        let e = plan_start(
            &config(&["10.0.0.9", "10.1.252.73"]),
            &system,
            &Record::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Conflict(_)));
        assert!(
            e.to_string()
                .contains("VIP 10.1.252.73 is configured on eth0"),
            "{e}"
        );
    }

    #[test]
    fn unknown_interface_is_refused() {
        let mut cfg = config(&["10.0.0.1"]);
        cfg.arp.interfaces = vec!["eth9".into()];
        let e = plan_start(&cfg, &system(), &Record::default()).unwrap_err();
        assert!(e.to_string().contains("\"eth9\""), "{e}");
    }

    #[test]
    fn removed_vip_is_re_added_and_stays_recorded() {
        let cfg = config(&["10.0.0.1"]);
        let first = plan_start(&cfg, &system(), &Record::default()).unwrap();
        let mut system = after(system(), &first);
        system.addresses.retain(|a| a.index != LO); // someone deletes the VIP
        let plan = plan_start(&cfg, &system, &first.record).unwrap();
        assert_eq!(texts(&plan), vec!["add 10.0.0.1/32 to lo"]);
        assert_eq!(plan.record.addresses, vec![spec("10.0.0.1")]);
    }

    #[test]
    fn lo_down_is_brought_up_and_stop_restores_it() {
        let mut system = system();
        system.links[0].up = false;
        let plan = plan_start(&config(&["10.0.0.1"]), &system, &Record::default()).unwrap();
        assert!(texts(&plan).contains(&"set lo up".to_string()));
        assert!(plan.record.lo_brought_up);
        let system = after(system, &plan);
        let stop = plan_stop(&system, &plan.record);
        assert_eq!(texts(&stop).last().unwrap(), "set lo down");
        // lo taken down after the agent's first run is brought up again, but
        // stop leaves it up: it was up before the agent.
        let first =
            plan_start(&config(&["10.0.0.1"]), &self::system(), &Record::default()).unwrap();
        let mut system = after(self::system(), &first);
        system.links[0].up = false;
        let again = plan_start(&config(&["10.0.0.1"]), &system, &first.record).unwrap();
        assert!(texts(&again).contains(&"set lo up".to_string()));
        assert!(!again.record.lo_brought_up);
        // Without VIPs there is no reason to touch lo.
        let mut system = self::system();
        system.links[0].up = false;
        let plan = plan_start(&config(&[]), &system, &Record::default()).unwrap();
        assert!(!texts(&plan).contains(&"set lo up".to_string()));
    }

    #[test]
    fn stop_undoes_exactly_in_safe_order() {
        let mut system0 = system();
        set(&mut system0, "all", ArpKey::Announce, 1);
        let start = plan_start(
            &config(&["10.0.0.1", "2001:db8::1"]),
            &system0,
            &Record::default(),
        )
        .unwrap();
        let system1 = after(system0.clone(), &start);
        let stop = plan_stop(&system1, &start.record);
        assert_eq!(
            texts(&stop),
            vec![
                "remove 10.0.0.1/32 from lo",
                "remove 2001:db8::1/128 from lo",
                "set net.ipv4.conf.all.arp_ignore = 0 (was 1)",
                "set net.ipv4.conf.all.arp_announce = 1 (was 2)",
            ]
        );
        let system2 = after(system1, &stop);
        assert_eq!(system2.sysctls, system0.sysctls);
        assert_eq!(system2.addresses, system0.addresses);
        // A second stop, with the record gone, does nothing.
        assert!(plan_stop(&system2, &Record::default()).changes.is_empty());
    }

    #[test]
    fn stop_leaves_values_someone_else_changed() {
        let start = plan_start(&config(&[]), &system(), &Record::default()).unwrap();
        let mut system = after(system(), &start);
        set(&mut system, "all", ArpKey::Ignore, 2);
        let stop = plan_stop(&system, &start.record);
        assert_eq!(
            texts(&stop),
            vec!["set net.ipv4.conf.all.arp_announce = 0 (was 2)"]
        );
        assert_eq!(stop.warnings.len(), 1);
        assert!(
            stop.warnings[0].contains("net.ipv4.conf.all.arp_ignore left at 2"),
            "{:?}",
            stop.warnings
        );
    }

    #[test]
    fn stop_skips_addresses_already_gone() {
        let start = plan_start(&config(&["10.0.0.1"]), &system(), &Record::default()).unwrap();
        let stop = plan_stop(&system(), &start.record);
        assert!(texts(&stop).iter().all(|t| !t.contains("remove")));
    }

    #[test]
    fn inverse_round_trips() {
        let change = Change::set_sysctl(&SysctlKey::new("all", ArpKey::Ignore), 0, 1);
        assert_eq!(change.inverse().inverse(), change);
        assert_eq!(
            change.inverse().to_string(),
            "set net.ipv4.conf.all.arp_ignore = 0 (was 1)"
        );
    }

    #[test]
    fn json_form_of_changes() {
        let change = Change::set_sysctl(&SysctlKey::new("eth0.100", ArpKey::Ignore), 0, 1);
        assert_eq!(
            serde_json::to_string(&change).unwrap(),
            r#"{"action":"set_sysctl","sysctl":"net.ipv4.conf.eth0/100.arp_ignore","from":0,"to":1}"#
        );
        let change = Change::AddAddress {
            spec: spec("2001:db8::1"),
            interface: "lo".into(),
        };
        assert_eq!(
            serde_json::to_string(&change).unwrap(),
            r#"{"action":"add_address","address":"2001:db8::1","prefix_len":128,"interface":"lo"}"#
        );
    }
}
