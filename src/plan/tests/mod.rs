use super::*;
use crate::config::{ArpPolicy, Vip};
use crate::domain::{Address, ArpKey, FouEncap, FouListener, Link};

const LO: u32 = 1;
const ETH0: u32 = 2;

fn vip(text: &str) -> Vip {
    Vip {
        address: text.parse().unwrap(),
        label: None,
    }
}

fn spec(text: &str) -> AddressSpec {
    AddressSpec::host(text.parse().unwrap(), None)
}

/// Record entries of addresses the agent added to lo.
fn on_lo(texts: &[&str]) -> Vec<AddressEntry> {
    texts
        .iter()
        .map(|t| AddressEntry {
            interface: "lo".into(),
            spec: spec(t),
        })
        .collect()
}

fn config(vips: &[&str]) -> Config {
    Config {
        arp: ArpPolicy::default(),
        vips: vips.iter().map(|v| vip(v)).collect(),
        tunnel: None,
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
            observed.sysctls.insert(SysctlKey::arp(&entry, key), 0);
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
        .insert(SysctlKey::arp(interface, key), value);
}

/// The system after the plan's changes, as the kernel would show it.
fn after(mut observed: Observed, plan: &Plan) -> Observed {
    for change in &plan.changes {
        match change {
            Change::SetSysctl { key, to, .. } => {
                observed.sysctls.insert(key.clone(), *to);
            }
            Change::AddAddress { spec, interface } => observed.addresses.push(Address {
                index: interface.index,
                spec: spec.clone(),
                deprecated: spec.address.is_ipv6(),
            }),
            Change::RemoveAddress { spec, interface } => observed
                .addresses
                .retain(|a| !(a.index == interface.index && a.spec.address == spec.address)),
            Change::SetLinkUp { interface } => link_mut(&mut observed, interface).up = true,
            Change::SetLinkDown { interface } => link_mut(&mut observed, interface).up = false,
            Change::CreateLink { interface, .. } => {
                let index = observed.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
                observed.links.push(Link {
                    index,
                    name: interface.name.clone(),
                    up: false,
                    loopback: false,
                    noarp: true,
                });
                observed.conf_entries.push(interface.name.clone());
                // A new device copies conf/default.
                let defaults: Vec<(SysctlKey, i32)> = observed
                    .sysctls
                    .iter()
                    .filter(|(k, _)| k.interface == "default")
                    .map(|(k, v)| (SysctlKey::new(k.family, &interface.name, &k.name), *v))
                    .collect();
                observed.sysctls.extend(defaults);
            }
            Change::DeleteLink { interface } => {
                observed.links.retain(|l| l.name != interface.name);
                observed.conf_entries.retain(|e| *e != interface.name);
                observed
                    .sysctls
                    .retain(|k, _| k.interface != interface.name);
            }
            Change::AddFouPort { port } => observed.fou.get_or_insert_default().push(FouListener {
                port: port.port,
                family: port.family,
                encap: FouEncap::Gue,
            }),
            Change::RemoveFouPort { port } => observed
                .fou
                .get_or_insert_default()
                .retain(|l| !(l.port == port.port && l.family == port.family)),
        }
    }
    observed
}

/// A change's interface, by index or (a device the plan created) by name.
fn link_mut<'a>(observed: &'a mut Observed, interface: &Interface) -> &'a mut Link {
    observed
        .links
        .iter_mut()
        .find(|l| {
            if interface.index == 0 {
                l.name == interface.name
            } else {
                l.index == interface.index
            }
        })
        .unwrap()
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
        on_lo(&["10.1.252.73", "2001:db8::73"])
    );
    assert!(plan.record.links_brought_up.is_empty());
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
    assert_eq!(plan.record.sysctls[0].key.name, "arp_announce");
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
    assert_eq!(plan.record.addresses, on_lo(&["10.0.0.2", "10.0.0.3"]));
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
        .sysctl(&SysctlKey::arp("all", ArpKey::Ignore))
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
        .sysctl(&SysctlKey::arp("all", ArpKey::Ignore))
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
    assert_eq!(plan.record.addresses, on_lo(&["10.0.0.1"]));
}

#[test]
fn lo_down_is_brought_up_and_stop_restores_it() {
    let mut system = system();
    system.links[0].up = false;
    let plan = plan_start(&config(&["10.0.0.1"]), &system, &Record::default()).unwrap();
    assert!(texts(&plan).contains(&"set lo up".to_string()));
    assert_eq!(plan.record.links_brought_up, vec!["lo"]);
    let system = after(system, &plan);
    let stop = plan_stop(&system, &plan.record);
    assert_eq!(texts(&stop).last().unwrap(), "set lo down");
    // lo taken down after the agent's first run is brought up again, but
    // stop leaves it up: it was up before the agent.
    let first = plan_start(&config(&["10.0.0.1"]), &self::system(), &Record::default()).unwrap();
    let mut system = after(self::system(), &first);
    system.links[0].up = false;
    let again = plan_start(&config(&["10.0.0.1"]), &system, &first.record).unwrap();
    assert!(texts(&again).contains(&"set lo up".to_string()));
    assert!(again.record.links_brought_up.is_empty());
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
    let change = Change::set_sysctl(&SysctlKey::arp("all", ArpKey::Ignore), 0, 1);
    assert_eq!(change.inverse().inverse(), change);
    assert_eq!(
        change.inverse().to_string(),
        "set net.ipv4.conf.all.arp_ignore = 0 (was 1)"
    );
}

#[test]
fn json_form_of_changes() {
    let change = Change::set_sysctl(&SysctlKey::arp("eth0.100", ArpKey::Ignore), 0, 1);
    assert_eq!(
        serde_json::to_string(&change).unwrap(),
        r#"{"action":"set_sysctl","sysctl":"net.ipv4.conf.eth0/100.arp_ignore","from":0,"to":1}"#
    );
    let change = Change::AddAddress {
        spec: spec("2001:db8::1"),
        interface: Interface {
            index: LO,
            name: "lo".into(),
        },
    };
    assert_eq!(
        serde_json::to_string(&change).unwrap(),
        r#"{"action":"add_address","address":"2001:db8::1","prefix_len":128,"interface":"lo"}"#
    );
}

#[test]
fn changes_name_the_interface_of_the_recorded_address() {
    // An address recorded on another interface (as tunnel mode will add to
    // a tunnel device) is removed from that interface, by its index.
    const DUMMY: u32 = 7;
    let mut system = system();
    system.links.push(Link {
        index: DUMMY,
        name: "dummy0".into(),
        up: true,
        loopback: false,
        noarp: true,
    });
    let system = with_address(system, DUMMY, "203.0.113.7");
    let record = Record {
        addresses: vec![AddressEntry {
            interface: "dummy0".into(),
            spec: spec("203.0.113.7"),
        }],
        ..Record::default()
    };
    let stop = plan_stop(&system, &record);
    assert_eq!(
        stop.changes,
        vec![Change::RemoveAddress {
            spec: spec("203.0.113.7"),
            interface: Interface {
                index: DUMMY,
                name: "dummy0".into(),
            },
        }]
    );
    // The same address on lo is not the one recorded: left alone.
    let mut moved = with_address(self::system(), LO, "203.0.113.7");
    moved.links.push(Link {
        index: DUMMY,
        name: "dummy0".into(),
        up: true,
        loopback: false,
        noarp: true,
    });
    assert!(plan_stop(&moved, &record).changes.is_empty());
    // No longer configured: start removes it from dummy0 too.
    let start = plan_start(&config(&[]), &system, &record).unwrap();
    assert!(
        texts(&start).contains(&"remove 203.0.113.7/32 from dummy0".to_string()),
        "{:?}",
        texts(&start)
    );
}

#[test]
fn any_recorded_conf_sysctl_is_put_back() {
    // rp_filter (IPv4) and an IPv6 key, recorded by a configuration that no
    // longer manages them: stop and start both restore the originals.
    let rp = SysctlKey::ipv4("all", "rp_filter");
    let v6 = SysctlKey::new(crate::domain::Family::Ipv6, "eth0", "accept_ra");
    let mut system = system();
    system.sysctls.insert(rp.clone(), 0);
    system.sysctls.insert(v6.clone(), 0);
    let record = Record {
        sysctls: vec![
            SysctlEntry {
                key: rp,
                original: 2,
                written: 0,
            },
            SysctlEntry {
                key: v6,
                original: 1,
                written: 0,
            },
        ],
        ..Record::default()
    };
    let expected = vec![
        "set net.ipv4.conf.all.rp_filter = 2 (was 0)",
        "set net.ipv6.conf.eth0.accept_ra = 1 (was 0)",
    ];
    assert_eq!(texts(&plan_stop(&system, &record)), expected);
    let mut cfg = config(&[]);
    cfg.arp.interfaces.clear();
    let start = plan_start(&cfg, &system, &record).unwrap();
    assert_eq!(texts(&start), expected);
    assert!(start.record.is_empty());
}

#[test]
fn a_brought_up_link_that_is_gone_is_skipped() {
    let record = Record {
        links_brought_up: vec!["tunl0".into()],
        ..Record::default()
    };
    assert!(plan_stop(&system(), &record).changes.is_empty());
}

mod tunnel;
