use super::*;
use crate::config::{ArpPolicy, Vip};
use crate::domain::{Address, AddressSpec, Link};
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

fn tunnel_observed(tunl0_up: bool, tunl0_rp: i32, all_rp: i32) -> Observed {
    let mut o = on_lo(observed((1, 2), (0, 0)));
    o.links.push(Link {
        index: 4,
        name: "tunl0".into(),
        up: tunl0_up,
        loopback: false,
        noarp: true,
    });
    for (name, v) in [("all", all_rp), ("eth0", 2), ("lo", 0), ("tunl0", tunl0_rp)] {
        o.sysctls.insert(SysctlKey::ipv4(name, "rp_filter"), v);
    }
    o
}

fn tunnel_config(kind: crate::domain::TunnelKind, port: Option<u16>) -> Config {
    Config {
        tunnel: Some(crate::config::Tunnel { kind, port }),
        ..config()
    }
}

#[test]
fn tunnel_in_sync_shows_device_and_rp_filter_in_force() {
    use crate::domain::TunnelKind;
    let s = status(
        &tunnel_config(TunnelKind::Ipip, None),
        &tunnel_observed(true, 0, 0),
        &Record::default(),
        &[],
    );
    assert!(s.in_sync, "{:?}", s.drift);
    assert_eq!(s.agent_answer, "up");
    let t = s.tunnel.as_ref().unwrap();
    assert!(t.present && t.up && !t.created_by_agent);
    let rp: Vec<(&str, i32)> = t
        .rp_filter
        .iter()
        .map(|r| (r.interface.as_str(), r.in_force))
        .collect();
    assert_eq!(rp, [("eth0", 2), ("tunl0", 0)]);
    let text = s.to_text();
    assert!(text.contains("Tunnel (ipip): device tunl0 up"), "{text}");
    assert!(text.contains("tunl0            rp_filter 0  off"), "{text}");
    assert!(
        text.contains("eth0             rp_filter 2  loose"),
        "{text}"
    );
    assert!(text.contains("Agent endpoint answers: up"), "{text}");
}

#[test]
fn broken_tunnel_is_drift_and_down() {
    use crate::domain::TunnelKind;
    // Device down, rp_filter loose in force on it, FOU port missing.
    let s = status(
        &tunnel_config(TunnelKind::Gue, Some(6080)),
        &tunnel_observed(false, 2, 0),
        &Record::default(),
        &[],
    );
    assert!(!s.in_sync);
    assert_eq!(s.agent_answer, "down");
    let broken = s.broken.join("\n");
    assert!(broken.contains("tunnel device tunl0 is down"), "{broken}");
    assert!(
        broken.contains("rp_filter in force on tunl0 is 2: decapsulated packets are dropped"),
        "{broken}"
    );
    assert!(
        broken.contains("FOU port 6080 gue (ipv4) is missing"),
        "{broken}"
    );
    assert_eq!(s.drift_by_kind[&DriftKind::Tunnel], 3);
    // The rp_filter sysctl of tunl0 is drift too.
    assert_eq!(s.drift_by_kind[&DriftKind::Sysctl], 1);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["tunnel"]["type"], "gue");
    assert_eq!(json["tunnel"]["fou_port"]["present"], false);
    assert_eq!(json["drift_by_kind"]["tunnel"], 3);
}

#[test]
fn agent_answer_follows_breakage_drift_and_drain() {
    // A missing VIP breaks traffic: down, drained or not.
    let mut s = status(
        &config(),
        &observed((1, 2), (0, 0)),
        &Record::default(),
        &[],
    );
    assert_eq!(s.agent_answer, "down");
    assert!(s.broken[0].contains("VIP 10.1.252.73 is not on lo"));
    let drain = crate::drain::Drain {
        reason: Some("maintenance".into()),
        since: 1,
        persistent: false,
    };
    s.set_drain(Some(drain.clone()));
    assert_eq!(s.agent_answer, "down");
    // In sync and drained: drain.
    let mut s = status(
        &config(),
        &on_lo(observed((1, 2), (0, 0))),
        &Record::default(),
        &[],
    );
    s.set_drain(Some(drain));
    assert_eq!(s.agent_answer, "drain");
    assert!(
        s.to_text()
            .contains("Drain: drained since 1 (unix time): maintenance")
    );
    // announce drift alone: out of sync, not broken: up.
    let s = status(
        &config(),
        &on_lo(observed((1, 0), (0, 0))),
        &Record::default(),
        &[],
    );
    assert!(!s.in_sync && s.broken.is_empty());
    assert_eq!(s.agent_answer, "up");
}

#[test]
fn prometheus_textfile_format() {
    let mut c = config();
    c.vips.push(Vip {
        address: "203.0.113.11".parse().unwrap(),
        label: None,
    });
    let mut s = status(
        &c,
        &on_lo(observed((1, 2), (0, 0))),
        &Record::default(),
        &[],
    );
    s.set_drain(Some(crate::drain::Drain {
        reason: None,
        since: 5,
        persistent: true,
    }));
    let text = s.to_prometheus();
    for line in [
        "# TYPE rs_agent_in_sync gauge",
        "rs_agent_in_sync 0",
        "rs_agent_check_error 0",
        "rs_agent_drift{kind=\"vip\"} 1",
        "rs_agent_drift{kind=\"sysctl\"} 0",
        "rs_agent_drift{kind=\"tunnel\"} 0",
        "rs_agent_vip_present{vip=\"10.1.252.73\"} 1",
        "rs_agent_vip_present{vip=\"203.0.113.11\"} 0",
        "rs_agent_drained 1",
        "rs_agent_traffic_broken 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    // Every sample's metric has HELP and TYPE lines before it, once.
    let mut declared = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(!declared.contains(&name.to_string()), "{name} twice");
            declared.push(name.to_string());
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
        }
    }
    assert!(!text.contains("rs_agent_tunnel"), "{text}");
}
