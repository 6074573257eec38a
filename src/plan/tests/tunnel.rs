//! Tunnel mode's plans: start, idempotence, stop back to the start, a
//! device the agent creates, FOU ports, refusals, configuration changes.

use super::*;
use crate::config::Tunnel;
use crate::domain::{Family, FouPort, KernelSupport, TunnelKind};

const TUNL0: u32 = 3;

fn tunnel_config(kind: TunnelKind, port: Option<u16>) -> Config {
    let mut cfg = config(&["203.0.113.10"]);
    cfg.tunnel = Some(Tunnel { kind, port });
    cfg
}

fn gue(port: u16) -> FouPort {
    FouPort {
        port,
        family: Family::Ipv4,
    }
}

/// The DR test system plus rp_filter strict everywhere (as some
/// distributions set it: all, default and eth0 1) and, if `tunl0`, the ipip
/// fallback device, down, with rp_filter 1 (conf/default's).
fn tunnel_system(tunl0: bool) -> Observed {
    let mut observed = system();
    for (entry, value) in [("all", 1), ("default", 1), ("eth0", 1), ("lo", 0)] {
        observed
            .sysctls
            .insert(SysctlKey::ipv4(entry, "rp_filter"), value);
    }
    if tunl0 {
        observed.links.push(Link {
            index: TUNL0,
            name: "tunl0".into(),
            up: false,
            loopback: false,
            noarp: true,
        });
        observed.conf_entries.push("tunl0".into());
        for key in ArpKey::ALL {
            observed.sysctls.insert(SysctlKey::arp("tunl0", key), 0);
        }
        observed
            .sysctls
            .insert(SysctlKey::ipv4("tunl0", "rp_filter"), 1);
    } else {
        observed
            .kernel
            .insert("ipip".into(), KernelSupport::Loadable);
    }
    observed
}

/// Start, then start again (nothing), then stop: back to the start.
fn start_again_stop(cfg: &Config, system0: Observed) -> (Plan, Plan) {
    let start = plan_start(cfg, &system0, &Record::default()).unwrap();
    let system1 = after(system0.clone(), &start);
    let again = plan_start(cfg, &system1, &start.record).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.record, start.record);
    let stop = plan_stop(&system1, &start.record);
    let system2 = after(system1, &stop);
    assert_eq!(system2.links, system0.links);
    assert_eq!(system2.sysctls, system0.sysctls);
    assert_eq!(system2.addresses, system0.addresses);
    assert_eq!(
        system2.fou.unwrap_or_default(),
        system0.fou.unwrap_or_default()
    );
    (start, stop)
}

#[test]
fn ipip_on_the_fallback_device() {
    let (start, stop) =
        start_again_stop(&tunnel_config(TunnelKind::Ipip, None), tunnel_system(true));
    assert_eq!(
        texts(&start),
        vec![
            "set net.ipv4.conf.all.arp_ignore = 1 (was 0)",
            "set net.ipv4.conf.all.arp_announce = 2 (was 0)",
            "set net.ipv4.conf.all.rp_filter = 0 (was 1)",
            "set net.ipv4.conf.tunl0.rp_filter = 0 (was 1)",
            // A strict NIC becomes loose.
            "set net.ipv4.conf.eth0.rp_filter = 2 (was 1)",
            "add 203.0.113.10/32 to lo",
            "set tunl0 up",
        ]
    );
    assert_eq!(start.record.links_brought_up, vec!["tunl0"]);
    assert!(start.record.links_created.is_empty());
    assert_eq!(
        texts(&stop),
        vec![
            "remove 203.0.113.10/32 from lo",
            "set net.ipv4.conf.all.arp_ignore = 0 (was 1)",
            "set net.ipv4.conf.all.arp_announce = 0 (was 2)",
            "set net.ipv4.conf.all.rp_filter = 1 (was 0)",
            "set net.ipv4.conf.tunl0.rp_filter = 1 (was 0)",
            "set net.ipv4.conf.eth0.rp_filter = 1 (was 2)",
            "set tunl0 down",
        ]
    );
}

#[test]
fn a_missing_device_is_created_first_and_deleted_by_stop() {
    let (start, stop) =
        start_again_stop(&tunnel_config(TunnelKind::Ipip, None), tunnel_system(false));
    assert_eq!(
        texts(&start),
        vec![
            "create tunl0 (ipip external)",
            "set net.ipv4.conf.all.arp_ignore = 1 (was 0)",
            "set net.ipv4.conf.all.arp_announce = 2 (was 0)",
            "set net.ipv4.conf.all.rp_filter = 0 (was 1)",
            // conf/default's value: what the new device starts with.
            "set net.ipv4.conf.tunl0.rp_filter = 0 (was 1)",
            "set net.ipv4.conf.eth0.rp_filter = 2 (was 1)",
            "add 203.0.113.10/32 to lo",
            "set tunl0 up",
        ]
    );
    assert!(matches!(&start.changes[7], Change::SetLinkUp { interface } if interface.index == 0));
    assert_eq!(start.record.links_created, vec!["tunl0"]);
    // Stop deletes it, with neither a sysctl write nor a "down" for it.
    assert_eq!(
        texts(&stop),
        vec![
            "remove 203.0.113.10/32 from lo",
            "set net.ipv4.conf.all.arp_ignore = 0 (was 1)",
            "set net.ipv4.conf.all.arp_announce = 0 (was 2)",
            "set net.ipv4.conf.all.rp_filter = 1 (was 0)",
            "set net.ipv4.conf.eth0.rp_filter = 1 (was 2)",
            "delete tunl0",
        ]
    );
}

#[test]
fn gue_adds_its_fou_port_and_stop_removes_it_first() {
    let mut system0 = tunnel_system(true);
    system0.fou = Some(Vec::new());
    let (start, stop) = start_again_stop(&tunnel_config(TunnelKind::Gue, Some(6080)), system0);
    assert_eq!(
        texts(&start)[5..],
        [
            "add 203.0.113.10/32 to lo",
            "set tunl0 up",
            "add FOU port 6080 gue (ipv4)"
        ]
    );
    assert_eq!(start.record.fou_ports, vec![gue(6080)]);
    assert_eq!(texts(&stop)[0], "remove FOU port 6080 gue (ipv4)");
}

#[test]
fn refusals_change_nothing_and_name_the_cause() {
    // No ipip in the kernel.
    let mut system0 = tunnel_system(false);
    system0.kernel.insert("ipip".into(), KernelSupport::Absent);
    let e = plan_start(
        &tunnel_config(TunnelKind::Ipip, None),
        &system0,
        &Record::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("this kernel has no ipip support"), "{e}");

    // Someone else's FOU listener on the port, GUE or not.
    let cfg = tunnel_config(TunnelKind::Gue, Some(6080));
    for encap in [FouEncap::Gue, FouEncap::Direct { ipproto: 4 }] {
        let mut system1 = tunnel_system(true);
        system1.fou = Some(vec![FouListener {
            port: 6080,
            family: Family::Ipv4,
            encap,
        }]);
        system1.udp_ports.insert((Family::Ipv4, 6080));
        let e = plan_start(&cfg, &system1, &Record::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("UDP port 6080 has a FOU listener rs-agent did not add"),
            "{e}"
        );
        assert!(e.contains("ip fou del port 6080"), "{e}");
    }

    // Another socket on the port.
    let mut system2 = tunnel_system(true);
    system2.udp_ports.insert((Family::Ipv6, 6080));
    let e = plan_start(&cfg, &system2, &Record::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("UDP port 6080 is in use by another socket"),
        "{e}"
    );

    // A listener of the agent's own (recorded) is no conflict.
    let mut system3 = tunnel_system(true);
    system3.fou = Some(vec![FouListener {
        port: 6080,
        family: Family::Ipv4,
        encap: FouEncap::Gue,
    }]);
    system3.udp_ports.insert((Family::Ipv4, 6080));
    let record = Record {
        fou_ports: vec![gue(6080)],
        ..Record::default()
    };
    let plan = plan_start(&cfg, &system3, &record).unwrap();
    assert!(!texts(&plan).iter().any(|t| t.contains("FOU")));
    assert_eq!(plan.record.fou_ports, vec![gue(6080)]);
}

#[test]
fn changing_the_tunnel_undoes_the_old_one() {
    let mut system0 = tunnel_system(true);
    system0.fou = Some(Vec::new());
    system0.links.push(Link {
        index: 4,
        name: "gre0".into(),
        up: false,
        loopback: false,
        noarp: true,
    });
    system0
        .sysctls
        .insert(SysctlKey::ipv4("gre0", "rp_filter"), 1);
    let gue_cfg = tunnel_config(TunnelKind::Gue, Some(6080));
    let first = plan_start(&gue_cfg, &system0, &Record::default()).unwrap();
    let system1 = after(system0.clone(), &first);

    // gue -> gre: the FOU port goes, tunl0 goes down, gre0 comes up.
    let gre = plan_start(
        &tunnel_config(TunnelKind::Gre, None),
        &system1,
        &first.record,
    )
    .unwrap();
    assert_eq!(
        texts(&gre),
        vec![
            "set net.ipv4.conf.gre0.rp_filter = 0 (was 1)",
            "set gre0 up",
            "remove FOU port 6080 gue (ipv4)",
            "set tunl0 down",
            "set net.ipv4.conf.tunl0.rp_filter = 1 (was 0)",
        ]
    );
    assert!(gre.record.fou_ports.is_empty());
    assert_eq!(gre.record.links_brought_up, vec!["gre0"]);

    // No tunnel any more: back to the state before the first start, but
    // for the DR part that stays.
    let system2 = after(system1, &gre);
    let dr = plan_start(&config(&["203.0.113.10"]), &system2, &gre.record).unwrap();
    let system3 = after(system2, &dr);
    assert_eq!(system3.links, system0.links);
    assert!(dr.record.links_brought_up.is_empty());
    assert!(
        dr.record
            .sysctls
            .iter()
            .all(|e| e.key.name.starts_with("arp_"))
    );
    let rp = |o: &Observed, i: &str| o.sysctl(&SysctlKey::ipv4(i, "rp_filter"));
    assert_eq!(rp(&system3, "all"), Some(1));
    assert_eq!(rp(&system3, "gre0"), Some(1));
    assert_eq!(rp(&system3, "eth0"), Some(1));
}

#[test]
fn a_created_device_no_longer_configured_is_deleted() {
    let first = plan_start(
        &tunnel_config(TunnelKind::Ipip, None),
        &tunnel_system(false),
        &Record::default(),
    )
    .unwrap();
    let system1 = after(tunnel_system(false), &first);
    let plan = plan_start(&config(&["203.0.113.10"]), &system1, &first.record).unwrap();
    assert_eq!(
        texts(&plan),
        vec![
            "delete tunl0",
            "set net.ipv4.conf.all.rp_filter = 1 (was 0)",
            "set net.ipv4.conf.eth0.rp_filter = 1 (was 2)",
        ]
    );
    assert!(plan.record.links_created.is_empty());
    assert!(plan.record.links_brought_up.is_empty());
}

#[test]
fn tunnel_changes_in_json() {
    let change = Change::AddFouPort { port: gue(6080) };
    assert_eq!(
        serde_json::to_string(&change).unwrap(),
        r#"{"action":"add_fou_port","port":6080,"family":"ipv4"}"#
    );
    let change = Change::CreateLink {
        interface: Interface::by_name("tunl0"),
        kind: crate::domain::LinkKind::Ipip,
    };
    assert_eq!(
        serde_json::to_string(&change).unwrap(),
        r#"{"action":"create_link","interface":"tunl0","kind":"ipip"}"#
    );
    assert_eq!(change.inverse().inverse(), change);
}

#[test]
fn nics_at_0_or_2_are_left_alone_and_a_reset_nic_is_drift_repaired() {
    let cfg = tunnel_config(TunnelKind::Ipip, None);
    for own in [0, 2] {
        let mut system0 = tunnel_system(true);
        system0
            .sysctls
            .insert(SysctlKey::ipv4("eth0", "rp_filter"), own);
        let plan = plan_start(&cfg, &system0, &Record::default()).unwrap();
        assert!(!texts(&plan).iter().any(|t| t.contains("eth0")), "{own}");
    }
    let first = plan_start(&cfg, &tunnel_system(true), &Record::default()).unwrap();
    let mut system1 = after(tunnel_system(true), &first);
    system1
        .sysctls
        .insert(SysctlKey::ipv4("eth0", "rp_filter"), 1);
    let repair = plan_start(&cfg, &system1, &first.record).unwrap();
    assert_eq!(
        texts(&repair),
        vec!["set net.ipv4.conf.eth0.rp_filter = 2 (was 1)"]
    );
    let entry = repair
        .record
        .sysctl(&SysctlKey::ipv4("eth0", "rp_filter"))
        .unwrap();
    assert_eq!((entry.original, entry.written), (1, 2));
}
