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
        tunnel: None,
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
