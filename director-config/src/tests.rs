use std::path::Path;

use lvs_ipvs::table::{Family, Forward, Protocol, ServiceFlags, ServiceKey};

use super::*;

fn parse_str(text: &str) -> Result<DirectorConfig, ConfigError> {
    parse(Path::new("d.toml"), text)
}

fn error_of(text: &str) -> String {
    parse_str(text).unwrap_err().to_string()
}

const SEED: &str = r#"
[[service]]
vip = "10.1.252.73"
port = 80
scheduler = "wrr"

[[service.server]]
address = "10.1.252.74"
weight = 1

[[service.server]]
address = "10.1.252.75"
weight = 2
forward = "dr"

[[service]]
vip = "10.1.252.76"
ports = [3306, 80]
mark = 11
persistence = 60

[[service.server]]
address = "10.1.252.74"

[[service.server]]
address = "10.1.252.75"
"#;

#[test]
fn seed_cluster() {
    let c = parse_str(SEED).unwrap();
    assert_eq!(c.services.len(), 2);
    let web = &c.services[0];
    assert_eq!(
        web.service.key,
        ServiceKey::tcp("10.1.252.73".parse().unwrap(), 80)
    );
    assert_eq!(web.service.scheduler, "wrr");
    assert!(!web.service.is_persistent());
    assert_eq!(web.service.netmask, u32::MAX);
    assert_eq!(web.line, 2);
    assert_eq!(web.servers.len(), 2);
    assert_eq!(web.servers[0].port, 80);
    assert_eq!(web.servers[0].forward, Forward::Route);
    assert_eq!((web.servers[0].weight, web.servers[1].weight), (1, 2));
    assert!(web.group.is_none());

    let g = &c.services[1];
    assert_eq!(g.service.key, ServiceKey::fwmark(Family::Inet, 11));
    assert_eq!(g.service.scheduler, "wlc");
    assert!(g.service.is_persistent());
    assert_eq!(g.service.timeout, 60);
    let group = g.group.as_ref().unwrap();
    assert_eq!(group.ports, vec![80, 3306]);
    assert_eq!(group.protocol, Protocol::Tcp);
    assert_eq!(group.mark, 11);
    // Real servers of a firewall-mark service keep the client's port.
    assert_eq!(g.servers[0].port, 0);

    let v: Vec<String> = vips(&c).iter().map(|a| a.to_string()).collect();
    assert_eq!(v, ["10.1.252.73", "10.1.252.76"]);
}

#[test]
fn the_shipped_example_is_valid() {
    let text = include_str!("../../config/director.toml");
    let c = parse_str(text).unwrap();
    assert!(c.services.iter().any(|s| s.group.is_some()));
    let v: Vec<String> = vips(&c).iter().map(|a| a.to_string()).collect();
    assert_eq!(v, ["10.1.252.73", "10.1.252.76"]);
}

#[test]
fn vips_are_unique_in_file_order() {
    let c = parse_str(
        r#"
[[service]]
vip = "203.0.113.20"
port = 443
[[service]]
vip = "2001:db8::10"
port = 80
[[service]]
vip = "203.0.113.20"
port = 80
[[service]]
vip = "203.0.113.10"
ports = [53]
protocol = "udp"
"#,
    )
    .unwrap();
    let v: Vec<String> = vips(&c).iter().map(|a| a.to_string()).collect();
    assert_eq!(v, ["203.0.113.20", "2001:db8::10", "203.0.113.10"]);
    assert!(vips(&DirectorConfig::default()).is_empty());
}

#[test]
fn empty_file_is_an_empty_config() {
    assert!(parse_str("").unwrap().services.is_empty());
}

#[test]
fn all_settings() {
    let c = parse_str(
        r#"
[[service]]
vip = "2001:db8::10"
protocol = "udp"
port = 53
scheduler = "sh"
scheduler_flags = ["sh-fallback", "sh-port"]
persistence = 300
persistence_netmask = 64
one_packet = true

[[service.server]]
address = "2001:db8::11"
forward = "nat"
port = 5353
weight = 0
upper_threshold = 100
lower_threshold = 50

[[service.server]]
address = "2001:db8::12"
forward = "tun"

[[service]]
vip = "203.0.113.10"
port = 0
persistence = 60
persistence_netmask = 24
"#,
    )
    .unwrap();
    let s = &c.services[0].service;
    assert_eq!(s.key, ServiceKey::udp("2001:db8::10".parse().unwrap(), 53));
    assert_eq!(
        s.flags.0,
        ServiceFlags::PERSISTENT
            | ServiceFlags::ONEPACKET
            | ServiceFlags::SCHED1
            | ServiceFlags::SCHED2
    );
    assert_eq!((s.timeout, s.netmask), (300, 64));
    let d = &c.services[0].servers;
    assert_eq!(d[0].forward, Forward::Masquerade);
    assert_eq!(
        (
            d[0].port,
            d[0].weight,
            d[0].upper_threshold,
            d[0].lower_threshold
        ),
        (5353, 0, 100, 50)
    );
    assert_eq!((d[1].forward, d[1].port), (Forward::Tunnel, 53));
    let s = &c.services[1].service;
    assert_eq!(s.key.port(), 0);
    assert_eq!(s.netmask, 0xffff_ff00);
}

#[test]
fn derived_marks_are_stable_and_in_range() {
    let text = |order: &str| {
        format!(
            "[[service]]\nvip = \"203.0.113.10\"\nports = [{order}]\n[[service]]\nvip = \"203.0.113.11\"\nports = [80]\n"
        )
    };
    let a = parse_str(&text("80, 443")).unwrap();
    let b = parse_str(&text("443, 80")).unwrap();
    let ma = a.services[0].group.as_ref().unwrap().mark;
    assert_eq!(ma, b.services[0].group.as_ref().unwrap().mark);
    assert!((AUTO_MARK_BASE..AUTO_MARK_BASE + AUTO_MARK_SPAN).contains(&ma));
    assert_eq!(
        a.services[0].service.key,
        ServiceKey::fwmark(Family::Inet, ma)
    );
    let mb = a.services[1].group.as_ref().unwrap().mark;
    assert_ne!(ma, mb);
    // Reordering the file keeps the marks.
    let swapped = parse_str(
        "[[service]]\nvip = \"203.0.113.11\"\nports = [80]\n[[service]]\nvip = \"203.0.113.10\"\nports = [443, 80]\n",
    )
    .unwrap();
    assert_eq!(swapped.services[0].group.as_ref().unwrap().mark, mb);
    assert_eq!(swapped.services[1].group.as_ref().unwrap().mark, ma);
}

/// The marks of released versions: a change here re-marks traffic of
/// groups without an explicit `mark` after an upgrade.
#[test]
fn derived_marks_are_pinned() {
    let group = |vip: &str, protocol, ports: &[u16]| PortGroup {
        vip: vip.parse().unwrap(),
        protocol,
        ports: ports.to_vec(),
        mark: 0,
    };
    // The seed's group (config/director.toml) without its explicit mark.
    let seed = group("10.1.252.76", Protocol::Tcp, &[80, 3306]);
    assert_eq!(
        derived_mark(&seed),
        AUTO_MARK_BASE + 632_593_870 % AUTO_MARK_SPAN
    );
    assert_eq!(derived_mark(&seed), 0x0001_0000 + 632_593_870 % 0x000f_0000);
    let v6 = group("2001:db8::76", Protocol::Udp, &[53]);
    assert_eq!(
        derived_mark(&v6),
        AUTO_MARK_BASE + 519_568_798 % AUTO_MARK_SPAN
    );
}

#[test]
fn derived_mark_clash_with_an_explicit_one() {
    let g = PortGroup {
        vip: "203.0.113.10".parse().unwrap(),
        protocol: Protocol::Tcp,
        ports: vec![80],
        mark: 0,
    };
    let m = derived_mark(&g);
    let e = error_of(&format!(
        "[[service]]\nvip = \"203.0.113.11\"\nports = [81]\nmark = {m}\n[[service]]\nvip = \"203.0.113.10\"\nports = [80]\n"
    ));
    assert!(
        e.starts_with("d.toml:7:9: the derived firewall mark"),
        "{e}"
    );
    assert!(e.contains("line 4"), "{e}");
}

#[test]
fn syntax_and_unknown_keys_have_positions() {
    let e = error_of("[[service]]\nvip = 10.0.0.1\n");
    assert!(e.starts_with("d.toml:2:11: invalid float"), "{e}");
    let e = error_of("[[service]]\nvip = \"10.0.0.1\"\nport = 80\nschedular = \"rr\"\n");
    assert!(
        e.starts_with("d.toml:4:1: unknown field `schedular`"),
        "{e}"
    );
    let e = error_of(
        "[[service]]\nvip = \"10.0.0.1\"\nport = 80\n[[service.server]]\naddress = \"10.0.0.2\"\nwieght = 2\n",
    );
    assert!(e.starts_with("d.toml:6:1: unknown field `wieght`"), "{e}");
    let e = error_of("[[services]]\n");
    assert!(e.starts_with("d.toml:1:3: unknown field `services`"), "{e}");
    let e = error_of("[[service]]\nvip = \"10.0.0.1\"\nport = \"80\"\n");
    assert!(e.starts_with("d.toml:3:8: invalid type"), "{e}");
}

#[test]
fn bad_values_name_line_and_column() {
    let svc = |extra: &str| format!("[[service]]\nvip = \"203.0.113.10\"\n{extra}\n");
    let cases: &[(&str, &str, &str)] = &[
        ("port = 80\nprotocol = \"icmp\"", "4:12", "is not one of"),
        ("port = 65536", "3:8", "out of range"),
        ("port = -1", "3:8", "out of range"),
        ("port = 0", "3:8", "needs persistence"),
        (
            "port = 80\nscheduler = \"\"",
            "4:13",
            "not a scheduler name",
        ),
        (
            "port = 80\nscheduler = \"w r r\"",
            "4:13",
            "not a scheduler name",
        ),
        (
            "port = 80\nscheduler = \"rr\"\nscheduler_flags = [\"sh-port\"]",
            "5:20",
            "scheduler flag",
        ),
        ("port = 80\npersistence = 0", "4:15", "out of range"),
        (
            "port = 80\npersistence_netmask = 24",
            "4:23",
            "needs persistence",
        ),
        (
            "port = 80\npersistence = 60\npersistence_netmask = 33",
            "5:23",
            "out of range",
        ),
        ("port = 80\nports = [81]", "4:9", "not both"),
        ("scheduler = \"rr\"", "1:1", "needs `port`"),
        ("ports = []", "3:9", "ports is empty"),
        ("ports = [80, 0]", "3:14", "out of range"),
        ("ports = [80, 80]", "3:14", "listed twice"),
        ("port = 80\nmark = 5", "4:8", "only for a port group"),
        ("ports = [80]\nmark = 0", "4:8", "out of range"),
    ];
    for (extra, pos, msg) in cases {
        let e = error_of(&svc(extra));
        assert!(e.starts_with(&format!("d.toml:{pos}: ")), "{extra}: {e}");
        assert!(e.contains(msg), "{extra}: {e}");
    }
    for bad in [
        "203.0.113.300",
        "203.0.113.0/24",
        "0.0.0.0",
        "127.0.0.1",
        "ff02::1",
        "fe80::1",
    ] {
        let e = error_of(&format!("[[service]]\nvip = \"{bad}\"\nport = 80\n"));
        assert!(e.starts_with("d.toml:2:7: "), "{bad}: {e}");
    }
}

#[test]
fn bad_servers_name_line_and_column() {
    let rs = |extra: &str| {
        format!("[[service]]\nvip = \"203.0.113.10\"\nport = 80\n[[service.server]]\n{extra}\n")
    };
    let cases: &[(&str, &str, &str)] = &[
        ("address = \"198.51.100.300\"", "5:11", "not an IP address"),
        ("address = \"2001:db8::1\"", "5:11", "address family"),
        ("address = \"0.0.0.0\"", "5:11", "cannot be a real server"),
        (
            "address = \"198.51.100.11\"\nforward = \"gre\"",
            "6:11",
            "is not one of",
        ),
        (
            "address = \"198.51.100.11\"\nport = 8080",
            "6:8",
            "only \"nat\"",
        ),
        (
            "address = \"198.51.100.11\"\nweight = -1",
            "6:10",
            "out of range",
        ),
        (
            "address = \"198.51.100.11\"\nweight = 2147483648",
            "6:10",
            "out of range",
        ),
        (
            "address = \"198.51.100.11\"\nupper_threshold = 10\nlower_threshold = 20",
            "7:19",
            "above upper_threshold",
        ),
        ("port = 80", "4:1", "missing field `address`"),
    ];
    for (extra, pos, msg) in cases {
        let e = error_of(&rs(extra));
        assert!(e.starts_with(&format!("d.toml:{pos}: ")), "{extra}: {e}");
        assert!(e.contains(msg), "{extra}: {e}");
    }
    let e = error_of(&format!(
        "{}[[service.server]]\naddress = \"198.51.100.11\"\n",
        rs("address = \"198.51.100.11\"")
    ));
    assert_eq!(
        e,
        "d.toml:6:1: real server 198.51.100.11:80 is listed twice in this service (first on line 4)"
    );
}

#[test]
fn duplicate_services_and_overlapping_ports() {
    let e = error_of(
        "[[service]]\nvip = \"203.0.113.10\"\nport = 80\n[[service]]\nvip = \"203.0.113.10\"\nport = 80\nscheduler = \"rr\"\n",
    );
    assert_eq!(
        e,
        "d.toml:6:8: tcp port 80 of 203.0.113.10 is already a service (line 3)"
    );
    // The same port over UDP is another service.
    assert!(
        parse_str(
            "[[service]]\nvip = \"203.0.113.10\"\nport = 80\n[[service]]\nvip = \"203.0.113.10\"\nport = 80\nprotocol = \"udp\"\n"
        )
        .is_ok()
    );
    // A grouped port cannot also be its own service.
    let e = error_of(
        "[[service]]\nvip = \"203.0.113.10\"\nport = 3306\n[[service]]\nvip = \"203.0.113.10\"\nports = [80, 3306]\n",
    );
    assert!(e.starts_with("d.toml:6:14: tcp port 3306"), "{e}");
    // Two groups with one mark.
    let e = error_of(
        "[[service]]\nvip = \"203.0.113.10\"\nports = [80]\nmark = 7\n[[service]]\nvip = \"203.0.113.11\"\nports = [80]\nmark = 7\n",
    );
    assert_eq!(
        e,
        "d.toml:8:8: service fwmark 7 is already defined on line 4"
    );
}

mod health_keys {
    use std::time::Duration;

    use super::*;
    use crate::check::{CheckKind, HttpCheck};

    const FULL: &str = r#"
[[service]]
vip = "10.1.252.73"
port = 80
scheduler = "wrr"
quorum = 1
sorry_server = "10.1.252.80"
on_failure = "remove"
[service.check]
type = "http"
interval = 2.0
timeout = 1.0
rise = 2
fall = 3
path = "/health"
expect_status = [200, "300-302"]
expect_body = "ok"
host = "www.example.org"

[[service.server]]
address = "10.1.252.74"
weight = 1

[[service.server]]
address = "10.1.252.75"
[service.server.check]
type = "exec"
command = ["/usr/local/libexec/check-mysql", "{address}", "{port}"]
"#;

    #[test]
    fn the_issue_example() {
        let c = parse_str(FULL).unwrap();
        let s = &c.services[0];
        assert_eq!(s.quorum, 1);
        assert_eq!(s.sorry_server, Some("10.1.252.80".parse().unwrap()));
        assert_eq!(s.on_failure, OnFailure::Remove);
        let a = &s.checks[0];
        assert_eq!(
            a.kind,
            CheckKind::Http(HttpCheck {
                tls: false,
                path: "/health".into(),
                expect_status: vec![(200, 200), (300, 302)],
                expect_body: Some("ok".into()),
                host: Some("www.example.org".into()),
                verify_tls: true,
                ca_file: None,
            })
        );
        assert_eq!(
            (a.interval, a.timeout),
            (Duration::from_secs(2), Duration::from_secs(1))
        );
        assert_eq!((a.rise, a.fall, a.port), (2, 3, 80));
        // The override changes the type; timing is inherited, http keys dropped.
        let b = &s.checks[1];
        assert_eq!(
            b.kind,
            CheckKind::Exec {
                command: vec![
                    "/usr/local/libexec/check-mysql".into(),
                    "{address}".into(),
                    "{port}".into()
                ]
            }
        );
        assert_eq!(b.interval, Duration::from_secs(2));
        let d = s.sorry_destination().unwrap();
        assert_eq!((d.port, d.weight), (80, 1));
    }

    #[test]
    fn defaults_none_for_apply_files() {
        let c = parse_str(SEED).unwrap();
        for s in &c.services {
            assert_eq!(s.quorum, 1);
            assert_eq!(s.on_failure, OnFailure::Drain);
            assert_eq!(s.sorry_server, None);
            assert!(s.checks.iter().all(|k| k.kind == CheckKind::None));
        }
        // A port group's check defaults to its lowest port.
        let text = SEED.replace(
            "persistence = 60\n",
            "persistence = 60\n[service.check]\ntype = \"tcp\"\n",
        );
        let c = parse_str(&text).unwrap();
        let k = &c.services[1].checks[0];
        assert_eq!((k.port, k.rise, k.fall), (80, 2, 3));
        assert_eq!(
            (k.interval, k.timeout),
            (Duration::from_secs(5), Duration::from_secs(2))
        );
    }

    #[test]
    fn half_open_tcp_checks() {
        let text = "[[service]]\nvip = \"10.1.252.73\"\nport = 80\n[service.check]\ntype = \"tcp\"\nhalf_open = true\n\
            [[service.server]]\naddress = \"10.1.252.74\"\n\
            [[service.server]]\naddress = \"10.1.252.75\"\n[service.server.check]\nhalf_open = false\n\
            [[service.server]]\naddress = \"10.1.252.76\"\n[service.server.check]\ntype = \"http\"\n";
        let c = parse_str(text).unwrap();
        let kinds: Vec<_> = c.services[0]
            .checks
            .iter()
            .map(|k| k.kind.clone())
            .collect();
        assert_eq!(kinds[0], CheckKind::TcpHalfOpen);
        // An override turns it off; a type change drops it.
        assert_eq!(kinds[1], CheckKind::Tcp);
        assert!(matches!(kinds[2], CheckKind::Http(_)), "{:?}", kinds[2]);
        // Off by default: the full connect, as keepalived's TCP_CHECK.
        let c = parse_str(&text.replace("half_open = true\n", "")).unwrap();
        assert_eq!(c.services[0].checks[0].kind, CheckKind::Tcp);
        // Two servers with the same half-open check of the same address
        // share it (CheckSpec is the dedupe key): equal and equal hashes.
        use std::hash::BuildHasher;
        let c = parse_str(text).unwrap();
        let (a, b) = (&c.services[0].checks[0], &c.services[0].checks[0].clone());
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(a), h.hash_one(b));
        assert_ne!(a, &c.services[0].checks[1]);
    }

    #[test]
    fn bad_check_keys_have_positions() {
        let base = "[[service]]\nvip = \"10.1.252.73\"\nport = 80\n";
        let cases = [
            (
                "[service.check]\ntype = \"ping\"\n",
                "d.toml:5:8: check type \"ping\"",
            ),
            (
                "[service.check]\ninterval = 1.0\n",
                "d.toml:4:1: a check needs `type`",
            ),
            (
                "[service.check]\ntype = \"tcp\"\npath = \"/\"\n",
                "d.toml:6:8: path is only for http and https checks",
            ),
            (
                "[service.check]\ntype = \"tcp\"\ninterval = 1\ntimeout = 2\n",
                "d.toml:7:11: timeout 2s is longer",
            ),
            (
                "[service.check]\ntype = \"tcp\"\nrise = 0\n",
                "d.toml:6:8: rise = 0 is out of range",
            ),
            (
                "[service.check]\ntype = \"http\"\nexpect_status = [99]\n",
                "d.toml:6:18: expect_status takes codes",
            ),
            (
                "[service.check]\ntype = \"exec\"\ncommand = [\"check\"]\n",
                "d.toml:6:12: the program \"check\" must be an absolute path",
            ),
            (
                "[service.check]\ntype = \"exec\"\n",
                "d.toml:5:8: an exec check needs `command`",
            ),
            (
                "[service.check]\ntype = \"tcp\"\nbogus = 1\n",
                "d.toml:6:1: unknown field `bogus`",
            ),
            (
                "on_failure = \"delete\"\n",
                "d.toml:4:14: on_failure \"delete\"",
            ),
            (
                "quorum = 2\n[[service.server]]\naddress = \"10.1.252.74\"\n",
                "d.toml:4:10: quorum 2 can never be reached",
            ),
            (
                "sorry_server = \"10.1.252.74\"\n[[service.server]]\naddress = \"10.1.252.74\"\n",
                "d.toml:4:16: sorry_server 10.1.252.74 is also a real server",
            ),
            (
                "[service.check]\ntype = \"agent\"\n",
                "d.toml:5:8: an agent check needs `port`",
            ),
            (
                "[service.check]\ntype = \"http\"\nhalf_open = true\n",
                "d.toml:6:13: half_open is only for tcp checks (this one is http)",
            ),
            (
                "[service.check]\ntype = \"exec\"\ncommand = [\"/bin/true\"]\nhalf_open = false\n",
                "d.toml:7:13: half_open is only for tcp checks (this one is exec)",
            ),
            (
                "[service.check]\ntype = \"tcp\"\nhalf_open = \"yes\"\n",
                "d.toml:6:13: invalid type",
            ),
            (
                "[service.check]\ntype = \"tcp\"\n[[service.server]]\naddress = \"10.1.252.74\"\n[service.server.check]\ntype = \"agent\"\nport = 9\nhalf_open = true\n",
                "d.toml:11:13: half_open is only for tcp checks (this one is agent)",
            ),
        ];
        for (extra, want) in cases {
            let err = error_of(&format!("{base}{extra}"));
            assert!(err.starts_with(want), "{extra:?}: got {err}, want {want}");
        }
        // A port-0 service's tcp check needs a port.
        let err = error_of(
            "[[service]]\nvip = \"10.1.252.73\"\nport = 0\npersistence = 60\n[service.check]\ntype = \"tcp\"\n[[service.server]]\naddress = \"10.1.252.74\"\n",
        );
        assert!(err.contains("its check needs `port`"), "{err}");
    }
}

const NODE: &str = r#"
health_file = "/run/lvs-director/healthy-a"

[announce]
interface = "lvs0"
hold_down = 3
withdraw_grace = 0.5

[sysctl]
sloppy_tcp = 1
expire_nodest_conn = 1

[sync]
role = "both"
interface = "eth0"
syncid = 51

[[service]]
vip = "203.0.113.10"
port = 9000
scheduler = "mh"
scheduler_flags = ["mh-fallback", "mh-port"]
"#;

#[test]
fn director_wide_keys() {
    let c = parse_str(NODE).unwrap();
    let a = c.node.announce.clone().unwrap();
    assert_eq!(a.interface, "lvs0");
    assert_eq!(a.hold_down, std::time::Duration::from_secs(3));
    assert_eq!(a.withdraw_grace, std::time::Duration::from_millis(500));
    assert_eq!(
        c.node.health_file,
        HealthFile::At("/run/lvs-director/healthy-a".into())
    );
    // In SYSCTLS order whatever the file's order.
    assert_eq!(
        c.node.sysctl,
        vec![("sloppy_tcp", 1), ("expire_nodest_conn", 1)]
    );
    let s = c.node.sync.unwrap();
    assert_eq!(
        (s.role, s.interface.as_str(), s.syncid),
        (SyncRole::Both, "eth0", 51)
    );
    // The defaults.
    let d = parse_str(SEED).unwrap().node;
    assert_eq!(d, NodeConfig::default());
    let beside = |c: &str| d.health_file.path(Path::new(c));
    assert_eq!(
        beside("/run/lvs-director/control.sock"),
        Some(DEFAULT_HEALTH_FILE.into())
    );
    assert_eq!(
        beside("/run/lvs-director/control-dir1.sock"),
        Some("/run/lvs-director/healthy-dir1".into())
    );
    assert_eq!(beside("/tmp/t/ctl.sock"), Some("/tmp/t/ctl.healthy".into()));
    let a = parse_str("[announce]\ninterface = \"lvs0\"\n")
        .unwrap()
        .node
        .announce
        .unwrap();
    assert_eq!(a.hold_down, std::time::Duration::from_secs(5));
    assert_eq!(a.withdraw_grace, std::time::Duration::from_secs(2));
    assert_eq!(
        parse_str("health_file = \"\"\n").unwrap().node.health_file,
        HealthFile::Off
    );
}

#[test]
fn director_wide_keys_errors_point_at_the_value() {
    let cases = [
        (
            "[announce]\ninterface = \"lvs/0\"\n",
            "d.toml:2:13: interface \"lvs/0\" is not a valid interface name",
        ),
        (
            "[announce]\ninterface = \"a-very-long-name0\"\n",
            "d.toml:2:13: interface \"a-very-long-name0\"",
        ),
        (
            "[announce]\ninterface = \"lvs0\"\nhold_down = -1\n",
            "d.toml:3:13: hold_down = -1 is out of range",
        ),
        (
            "[announce]\ninterface = \"lvs0\"\nwithdraw_grace = \"2s\"\n",
            "d.toml:3:18: withdraw_grace = \"2s\" is not a number of seconds",
        ),
        (
            "[announce]\nhold_down = 1\n",
            "d.toml:1:1: missing field `interface`",
        ),
        (
            "[announce]\ninterface = \"lvs0\"\nholddown = 1\n",
            "d.toml:3:1: unknown field `holddown`",
        ),
        (
            "[sysctl]\nsloppy_tcp = 1\nsloppy_udp = 1\n",
            "d.toml:3:1: [sysctl] \"sloppy_udp\" is not one of sloppy_tcp",
        ),
        (
            "[sysctl]\nconn_reuse_mode = 4\n",
            "d.toml:2:19: [sysctl] conn_reuse_mode = 4 is not an integer in 0..=3",
        ),
        (
            "[sysctl]\nsloppy_tcp = true\n",
            "d.toml:2:14: [sysctl] sloppy_tcp = true is not an integer in 0..=1",
        ),
        (
            "[sync]\nrole = \"primary\"\ninterface = \"eth0\"\n",
            "d.toml:2:8: [sync] role \"primary\" is not one of",
        ),
        (
            "[sync]\nrole = \"both\"\ninterface = \"eth0\"\nsyncid = 256\n",
            "d.toml:4:10: syncid = 256 is out of range (0..=255)",
        ),
        (
            "health_file = \"healthy\"\n",
            "d.toml:1:15: health_file \"healthy\" is not an absolute file path",
        ),
        (
            "[[service]]\nvip = \"203.0.113.10\"\nport = 80\nscheduler = \"mh\"\n",
            "d.toml:4:13: scheduler \"mh\" needs scheduler_flags = [\"mh-fallback\"]",
        ),
    ];
    for (text, want) in cases {
        let got = error_of(text);
        assert!(got.starts_with(want), "{text:?}:\n got {got}\nwant {want}");
    }
    let ok = "[[service]]\nvip = \"203.0.113.10\"\nport = 80\nscheduler = \"mh\"\nscheduler_flags = [\"mh-fallback\"]\n";
    parse_str(ok).unwrap();
}

const EXEC: &str = r#"script_user = "lvs-check"

[[service]]
vip = "10.1.252.73"
port = 80
[service.check]
type = "exec"
command = ["/usr/local/libexec/check-web", "{address}"]

[[service.server]]
address = "10.1.252.74"

[[service.server]]
address = "10.1.252.75"

[[service.server]]
address = "10.1.252.76"
[service.server.check]
type = "exec"
command = [  "/usr/local/libexec/check-db"]
"#;

/// Every exec program once, where the file names it: what lvs-director
/// needs to refuse an unsafe script at the right place.
#[test]
fn script_user_and_exec_programs_keep_their_positions() {
    let c = parse_str(EXEC).unwrap();
    let u = c.node.script_user.as_ref().unwrap();
    assert_eq!(
        (u.name.as_str(), u.at),
        (
            "lvs-check",
            Position {
                line: 1,
                column: 15
            }
        )
    );
    let s = &c.services[0];
    let found: Vec<(&str, Position)> = s
        .exec_programs
        .iter()
        .map(|p| (p.program.as_str(), p.position(s.line)))
        .collect();
    assert_eq!(
        found,
        [
            (
                "/usr/local/libexec/check-web",
                Position {
                    line: 8,
                    column: 12
                }
            ),
            (
                "/usr/local/libexec/check-db",
                Position {
                    line: 20,
                    column: 14
                }
            ),
        ]
    );
    assert_eq!(
        u.at.error(Path::new("d.toml"), "x").to_string(),
        "d.toml:1:15: x"
    );
    // No key: the director's default.
    assert_eq!(parse_str(SEED).unwrap().node.script_user, None);
    assert!(
        parse_str(SEED).unwrap().services[0]
            .exec_programs
            .is_empty()
    );
}

/// A reload takes the unchanged service over unparsed: its programs'
/// positions follow the lines added above it.
#[test]
fn exec_positions_follow_a_service_taken_over_by_a_reload() {
    let (mut c, reuse) = parse_reusing(Path::new("d.toml"), EXEC, None).unwrap();
    // Marks what a reuse carries over unseen.
    std::sync::Arc::make_mut(&mut c.services[0]).quorum = 7;
    let moved = format!("# one\n# two\n{EXEC}");
    let (c2, _) = parse_reusing(Path::new("d.toml"), &moved, Some((&reuse, &c.services))).unwrap();
    assert_eq!(c2.services[0].quorum, 7, "taken over, not parsed");
    let s = &c2.services[0];
    assert_eq!(
        s.exec_programs[1].position(s.line),
        Position {
            line: 22,
            column: 14
        }
    );
    assert_eq!(c2.node.script_user.as_ref().unwrap().at.line, 3);
}

#[test]
fn script_user_must_be_a_user_name() {
    for bad in ["", "a b", "-x", "root:0", "../etc", &"u".repeat(33)] {
        let text = format!("script_user = {bad:?}\n");
        let e = error_of(&text);
        assert!(
            e.starts_with("d.toml:1:15: script_user") && e.contains("is not a user name"),
            "{bad:?}: {e}"
        );
    }
    // A top-level key: after a [[service]] it would be the service's.
    let e = error_of("[[service]]\nvip = \"10.1.252.73\"\nport = 80\nscript_user = \"x\"\n");
    assert!(e.starts_with("d.toml:4:1:"), "{e}");
}
