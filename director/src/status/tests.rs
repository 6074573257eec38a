use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lvs_ipvs::table::{Destination, Family, Service, ServiceKey, Stats};

use super::*;
use crate::check::CheckOutcome;
use crate::cluster::Cluster;
use crate::config::parse;
use crate::kernel::view::view_of;
use crate::node::VipSnapshot;

const FILE: &str = r#"
[[service]]
vip = "203.0.113.10"
port = 80
scheduler = "wrr"
quorum = 2
sorry_server = "198.51.100.80"
[service.check]
type = "tcp"
rise = 1
fall = 1

[[service.server]]
address = "198.51.100.11"
weight = 1

[[service.server]]
address = "198.51.100.12"
weight = 2
"#;

fn key() -> ServiceKey {
    ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80)
}

fn dest(last: u8, weight: u32) -> Destination {
    let mut d = Destination::new(format!("198.51.100.{last}").parse().unwrap(), 80);
    d.weight = weight;
    d
}

/// rs1 up, rs2 down (and drained by hand), the sorry server in; the view
/// holds rs1 at 1 and the sorry server at 1.
fn status(now: Instant, wall: SystemTime) -> Status {
    let config = parse(Path::new("d.toml"), FILE).unwrap();
    let drains = HashSet::from([(key(), "198.51.100.12".parse().unwrap(), 80)]);
    let (mut m, _) = Cluster::new(config, &[], drains, now - Duration::from_secs(60));
    m.record(0, &CheckOutcome::Up, now - Duration::from_secs(5));
    m.checks[0]
        .state
        .set_last_duration(Duration::from_millis(250));
    m.record(
        1,
        &CheckOutcome::Down("connection refused".into()),
        now - Duration::from_secs(2),
    );
    let view = view_of(vec![(
        Service::new(key(), "wrr"),
        vec![dest(11, 1), dest(80, 1)],
    )]);
    let counters = Counters {
        syncs: 3,
        reloads: 1,
        skipped: 4,
        last_load: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        ..Counters::default()
    };
    Status::at(
        Parts {
            config: Path::new("/etc/lvs-director/director.toml"),
            started: now - Duration::from_secs(60),
            cluster: &m,
            view: &view,
            counters: &counters,
            checks_in_flight: 1,
            quorum: Some(false),
            withdrawn_by_hand: false,
            vips: vec![VipSnapshot {
                vip: "203.0.113.10".into(),
                announced: false,
                announces: 1,
                withdrawals: 1,
            }],
        },
        now,
        wall,
    )
}

#[test]
fn built_from_the_daemons_parts() {
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let s = status(Instant::now(), wall);
    assert_eq!(s.started, 1_800_000_000.0 - 60.0);
    assert_eq!((s.checks, s.checks_in_flight, s.checks_skipped), (2, 1, 4));
    assert_eq!(s.last_load, Some(1_700_000_000.0));
    assert_eq!(s.quorum, Some(false));
    let svc = &s.services[0];
    assert_eq!(svc.service, key());
    assert_eq!((svc.healthy, svc.quorum, svc.sorry_active), (1, 2, true));
    assert_eq!(svc.on_failure, "drain");
    let [rs1, rs2] = &svc.servers[..] else {
        panic!("{svc:?}")
    };
    assert_eq!(rs1.health, HealthState::Up);
    assert_eq!(rs1.weight, Some(1), "the view's weight");
    assert_eq!(rs1.last_result.as_deref(), Some("ok"));
    assert_eq!(rs1.last_check, Some(1_800_000_000.0 - 5.0));
    assert_eq!(rs1.last_check_duration, Some(0.25));
    assert_eq!(rs1.check, "tcp port 80");
    assert_eq!(
        (rs2.health, rs2.state()),
        (HealthState::Down, HealthState::Drain)
    );
    assert_eq!(rs2.weight, None, "not in the view");
    assert!(rs2.admin_drained);
    assert_eq!(rs2.transitions, 1);
    let sorry = svc.sorry_destination.as_ref().unwrap();
    assert_eq!(sorry.server.to_string(), "198.51.100.80:80");
    assert_eq!((sorry.configured_weight, sorry.weight), (1, Some(1)));
    assert!(svc.ipvs.is_none() && rs1.ipvs.is_none());
}

#[test]
fn ipvs_counters_come_from_a_table_read() {
    let mut s = status(Instant::now(), SystemTime::now());
    let stats = |n| {
        Some(Box::new(Stats {
            conns: n,
            inbytes: n * 100,
            ..Stats::default()
        }))
    };
    let mut svc = Service::new(key(), "wrr");
    svc.stats = stats(9);
    let mut rs2 = dest(12, 0);
    (rs2.active_conns, rs2.inact_conns, rs2.stats) = (3, 4, stats(5));
    let mut sorry = dest(80, 1);
    sorry.stats = stats(4);
    s.add_ipvs_counters(&vec![(svc, vec![rs2, sorry])]);
    let svc = &s.services[0];
    assert_eq!(svc.ipvs.unwrap().connections, 9);
    assert_eq!(svc.servers[0].weight, None, "rs1 is not in the table read");
    assert_eq!(svc.servers[0].ipvs, None);
    assert_eq!(svc.servers[1].weight, Some(0));
    let rs2 = svc.servers[1].ipvs.unwrap();
    assert_eq!((rs2.active_connections, rs2.inactive_connections), (3, 4));
    assert_eq!(rs2.traffic.incoming_bytes, 500);
    let sorry = svc.sorry_destination.as_ref().unwrap();
    assert_eq!(sorry.ipvs.unwrap().traffic.connections, 4);

    // A service missing from the read has no counters and no weights.
    s.add_ipvs_counters(&Vec::new());
    assert!(s.services[0].ipvs.is_none());
    assert!(s.services[0].servers.iter().all(|r| r.weight.is_none()));
}

/// Scripts read `lvs-director status --output json`: its field names stay.
#[test]
fn json_field_names() {
    let s = status(Instant::now(), SystemTime::now());
    let v = serde_json::to_value(&s).unwrap();
    let keys = |v: &serde_json::Value| -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    };
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| n.to_string()).collect() };
    assert_eq!(
        keys(&v),
        set(&[
            "config",
            "started",
            "checks",
            "checks_in_flight",
            "checks_skipped",
            "syncs",
            "last_sync",
            "edits",
            "refused",
            "reloads",
            "reload_failures",
            "last_load",
            "services",
            "retiring",
            "quorum",
            "withdrawn_by_hand",
            "vips",
        ])
    );
    let svc = &v["services"][0];
    assert_eq!(
        keys(svc),
        set(&[
            "service",
            "scheduler",
            "quorum",
            "healthy",
            "on_failure",
            "sorry_server",
            "sorry_active",
            "servers",
            "sorry_destination",
        ])
    );
    assert_eq!(svc["service"], "tcp 203.0.113.10:80");
    assert_eq!(svc["sorry_server"], "198.51.100.80");
    assert_eq!(
        keys(&svc["servers"][0]),
        set(&[
            "server",
            "health",
            "weight",
            "configured_weight",
            "admin_drained",
            "adopted",
            "check",
            "last_result",
            "last_check",
            "since",
            "last_check_duration",
            "transitions",
        ])
    );
    assert_eq!(svc["servers"][1]["server"], "198.51.100.12:80");
    assert_eq!(svc["servers"][1]["health"], "down");
    assert_eq!(svc["servers"][1]["weight"], serde_json::Value::Null);
    assert_eq!(
        keys(&v["vips"][0]),
        set(&["vip", "announced", "announces", "withdrawals"])
    );
    let back: Status = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

/// A CLI newer than the daemon it asks still reads the reply.
#[test]
fn a_status_without_the_newer_fields_reads() {
    let old = r#"{"ok":true,"config":"d.toml","started":1.0,"checks":1,"checks_in_flight":0,
        "syncs":1,"last_sync":2.0,"edits":0,"refused":0,"reloads":0,"reload_failures":0,
        "services":[{"service":"fwmark 11 (IPv6)","scheduler":"wrr","quorum":1,"healthy":1,
          "on_failure":"drain","sorry_server":null,"sorry_active":false,
          "servers":[{"server":"[2001:db8::1]:0","health":"up","weight":1,"configured_weight":1,
            "admin_drained":false,"adopted":false,"check":"tcp port 80","last_result":"ok",
            "last_check":2.0,"since":1.0}]}],
        "retiring":[{"service":"udp 203.0.113.10:53","whole_service":true,"servers":["198.51.100.11:53"]}],
        "quorum":null,"withdrawn_by_hand":false,"vips":[]}"#;
    let s: Status = serde_json::from_str(old).unwrap();
    assert_eq!(s.services[0].service, ServiceKey::fwmark(Family::Inet6, 11));
    assert_eq!(s.services[0].servers[0].transitions, 0);
    assert_eq!(s.retiring[0].service.to_string(), "udp 203.0.113.10:53");
}

#[test]
fn service_keys_read_back_from_their_text() {
    let v4 = "203.0.113.10".parse().unwrap();
    let v6 = "2001:db8::1".parse().unwrap();
    for k in [
        ServiceKey::tcp(v4, 80),
        ServiceKey::udp(v6, 53),
        ServiceKey::sctp(v4, 9),
        ServiceKey::fwmark(Family::Inet, 11),
        ServiceKey::fwmark(Family::Inet6, 11),
    ] {
        assert_eq!(key_text::parse(&k.to_string()), Some(k), "{k}");
    }
    for bad in [
        "",
        "tcp",
        "tcp:203.0.113.10:80",
        "fwmark x",
        "icmp 203.0.113.10:80",
    ] {
        assert_eq!(key_text::parse(bad), None, "{bad}");
    }
}

#[test]
fn a_half_open_check_says_so() {
    let spec = CheckSpec {
        kind: CheckKind::TcpHalfOpen,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        rise: 2,
        fall: 3,
        port: 3306,
    };
    assert_eq!(check_text(&spec), "tcp half-open port 3306");
}

#[test]
fn text_of_a_status() {
    let now = 1_800_000_000.0;
    let server = |last: u8, health, weight, configured_weight| ServerStatus {
        server: format!("198.51.100.{last}:80").parse().unwrap(),
        health,
        weight,
        configured_weight,
        admin_drained: false,
        adopted: false,
        check: "tcp port 80".into(),
        last_result: None,
        last_check: None,
        since: now,
        last_check_duration: None,
        transitions: 0,
        ipvs: None,
    };
    let s = Status {
        vips: vec![VipStatus {
            vip: "203.0.113.10".into(),
            announced: true,
            ..VipStatus::default()
        }],
        services: vec![ServiceStatus {
            service: ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80),
            scheduler: "wrr".into(),
            quorum: 1,
            healthy: 1,
            on_failure: "drain".into(),
            sorry_server: Some("198.51.100.80".parse().unwrap()),
            sorry_active: false,
            servers: vec![
                ServerStatus {
                    last_result: Some("ok".into()),
                    last_check: Some(now - 1.0),
                    since: now - 125.0,
                    ..server(11, HealthState::Up, Some(1), 1)
                },
                ServerStatus {
                    last_result: Some("connection refused".into()),
                    last_check: Some(now),
                    admin_drained: true,
                    ..server(12, HealthState::Down, Some(0), 2)
                },
                ServerStatus {
                    adopted: true,
                    ..server(13, HealthState::Unchecked, None, 1)
                },
            ],
            sorry_destination: None,
            ipvs: None,
        }],
        retiring: vec![RetiringStatus {
            service: ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80),
            whole_service: false,
            servers: vec!["198.51.100.9:80".parse().unwrap()],
        }],
        ..Status::default()
    };
    let t = s.text_at(now);
    assert_eq!(
        t,
        "VIP 203.0.113.10  announced\n\
         tcp 203.0.113.10:80  wrr  healthy 1/3 (quorum 1)  sorry 198.51.100.80: out\n  \
         198.51.100.11:80       up        weight 1/1  tcp port 80  last \"ok\" 1s ago  since 2m05s ago\n  \
         198.51.100.12:80       down      weight 0/2  tcp port 80  last \"connection refused\" 0s ago  since 0s ago  [drained by hand]\n  \
         198.51.100.13:80       unchecked weight -/1  tcp port 80  no result yet  since 0s ago  [adopted]\n\
         retiring in tcp 203.0.113.10:80: 198.51.100.9:80\n"
    );
    let withdrawn = Status {
        withdrawn_by_hand: true,
        ..Status::default()
    };
    assert_eq!(
        withdrawn.text_at(now),
        "withdrawn by hand (lvs-director announce to undo)\n"
    );
}
