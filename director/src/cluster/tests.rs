use std::path::Path;
use std::time::Duration;

use lvs_ipvs::Op;
use lvs_ipvs::table::fmt_addr_port;

use super::*;
use crate::config::parse;
use crate::kernel::plan::plan;

fn cfg(text: &str) -> DirectorConfig {
    parse(Path::new("d.toml"), text).unwrap()
}

fn clock() -> impl Fn(u64) -> Instant {
    let start = Instant::now();
    move |n| start + Duration::from_secs(n)
}

const VIP: &str = "203.0.113.10";

/// The seed's service with a tcp check, rs1 weight 1, rs2 weight 2.
fn seed(extra: &str) -> String {
    format!(
        r#"
[[service]]
vip = "{VIP}"
port = 80
scheduler = "wrr"
{extra}
[service.check]
type = "tcp"
interval = 0.5
rise = 2
fall = 3

[[service.server]]
address = "198.51.100.11"
weight = 1

[[service.server]]
address = "198.51.100.12"
weight = 2
"#
    )
}

fn weights(t: &Table) -> Vec<(String, u32)> {
    t.iter()
        .flat_map(|(s, ds)| {
            ds.iter().map(move |d| {
                (
                    format!("{} {}", s.key, fmt_addr_port(&d.addr, d.port)),
                    d.weight,
                )
            })
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn up_all(m: &mut Cluster, id: CheckId, n: usize, now: Instant) -> Update {
    let mut last = Update::default();
    for _ in 0..n {
        let u = m.record(id, &CheckOutcome::Up, now);
        if !u.services.is_empty() {
            last = u;
        }
    }
    last
}

#[test]
fn fresh_start_servers_wait_for_rise() {
    let t = clock();
    let (mut m, events) = Cluster::new(cfg(&seed("")), &[], HashSet::new(), t(0));
    assert!(events.is_empty());
    assert_eq!(m.checks.len(), 2);
    assert_eq!(
        weights(&m.desired_table()),
        vec![
            (format!("tcp {VIP}:80 198.51.100.11:80"), 0),
            (format!("tcp {VIP}:80 198.51.100.12:80"), 0)
        ]
    );
    let u = m.record(0, &CheckOutcome::Up, t(1));
    assert!(u.services.is_empty(), "one success of two changes nothing");
    let u = m.record(0, &CheckOutcome::Up, t(2));
    assert_eq!(u.services, vec![0]);
    assert_eq!(
        u.events[0].to_string(),
        format!(
            "service tcp {VIP}:80 server 198.51.100.11:80: unchecked -> up (2 consecutive successes)"
        )
    );
    assert_eq!(weights(&m.desired_table())[0].1, 1);
    assert_eq!(weights(&m.desired_table())[1].1, 0);
}

#[test]
fn failure_drains_or_removes() {
    let t = clock();
    for (extra, want) in [("", Some(0)), ("on_failure = \"remove\"", None)] {
        let (mut m, _) = Cluster::new(cfg(&seed(extra)), &[], HashSet::new(), t(0));
        up_all(&mut m, 0, 2, t(1));
        up_all(&mut m, 1, 2, t(1));
        assert_eq!(m.server_weight(0, 1), Some(2));
        for n in 0..2 {
            assert!(
                m.record(
                    1,
                    &CheckOutcome::Down("connection refused".into()),
                    t(2 + n)
                )
                .services
                .is_empty()
            );
        }
        let u = m.record(1, &CheckOutcome::Down("connection refused".into()), t(5));
        assert_eq!(u.services, vec![0]);
        assert_eq!(
            u.events[0].to_string(),
            format!(
                "service tcp {VIP}:80 server 198.51.100.12:80: up -> down (connection refused)"
            )
        );
        assert_eq!(m.server_weight(0, 1), want, "{extra}");
        let (_, dests) = m.service_entry(0);
        assert_eq!(dests.len(), if want.is_some() { 2 } else { 1 });
        up_all(&mut m, 1, 2, t(6));
        assert_eq!(m.server_weight(0, 1), Some(2), "back after rise");
    }
}

#[test]
fn quorum_and_sorry_server_in_and_out() {
    let t = clock();
    let (mut m, events) = Cluster::new(
        cfg(&seed("quorum = 2\nsorry_server = \"198.51.100.80\"")),
        &[],
        HashSet::new(),
        t(0),
    );
    // Nothing is healthy yet: the sorry server serves from the start.
    assert_eq!(
        events.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![format!(
            "service tcp {VIP}:80: quorum lost, sorry server in (198.51.100.80; 0 healthy, quorum 2)"
        )]
    );
    let sorry = |m: &Cluster| {
        m.service_entry(0)
            .1
            .iter()
            .any(|d| d.addr == ip("198.51.100.80") && d.weight == 1)
    };
    assert!(sorry(&m));
    up_all(&mut m, 0, 2, t(1));
    assert!(sorry(&m), "1 of quorum 2");
    let u = up_all(&mut m, 1, 2, t(2));
    assert!(
        u.events
            .iter()
            .any(|e| e.to_string().contains("quorum back, sorry server out"))
    );
    assert!(!sorry(&m));
    for n in 0..3 {
        m.record(0, &CheckOutcome::Down("HTTP 503".into()), t(3 + n));
    }
    assert!(sorry(&m), "one down: below quorum 2");
    // An admin drain counts as not healthy too.
    let (mut m, _) = Cluster::new(
        cfg(&seed("sorry_server = \"198.51.100.80\"")),
        &[],
        HashSet::new(),
        t(0),
    );
    up_all(&mut m, 0, 2, t(1));
    up_all(&mut m, 1, 2, t(1));
    assert!(!sorry(&m));
    m.set_drain(None, ip("198.51.100.11"), None, true).unwrap();
    assert!(!sorry(&m), "rs2 still healthy");
    let u = m
        .set_drain(
            Some(ServiceKey::tcp(ip(VIP), 80)),
            ip("198.51.100.12"),
            Some(80),
            true,
        )
        .unwrap();
    assert_eq!(u.services, vec![0]);
    assert!(sorry(&m));
    assert_eq!(
        (m.server_weight(0, 0), m.server_weight(0, 1)),
        (Some(0), Some(0))
    );
    m.set_drain(None, ip("198.51.100.12"), None, false).unwrap();
    assert!(!sorry(&m));
    assert_eq!(m.server_weight(0, 1), Some(2));
    assert!(m.set_drain(None, ip("198.51.100.99"), None, true).is_err());
}

#[test]
fn restart_adopts_the_kernel_without_a_change() {
    let t = clock();
    let c = cfg(&seed(""));
    // The table a healthy cluster has, with rs2 edited by hand to 5.
    let (mut before, _) = Cluster::new(c.clone(), &[], HashSet::new(), t(0));
    up_all(&mut before, 0, 2, t(1));
    up_all(&mut before, 1, 2, t(1));
    let mut kernel = before.desired_table();
    kernel[0].1[1].weight = 5;
    let (mut m, events) = Cluster::new(c, &kernel, HashSet::new(), t(10));
    assert!(events.is_empty());
    assert!(
        m.checks
            .iter()
            .all(|c| c.state.assumed && c.state.serving())
    );
    let p = plan(&m.desired_table(), &kernel, false);
    assert!(p.is_empty(), "first convergence changes nothing: {p:?}");
    // The first result: a success applies the configured weight...
    let u = m.record(1, &CheckOutcome::Up, t(11));
    assert_eq!(u.services, vec![0]);
    assert!(u.events.is_empty(), "no state change to log");
    assert_eq!(m.server_weight(0, 1), Some(2));
    // ... a failure is the first of `fall`, the kernel's weight stays meanwhile.
    let u = m.record(0, &CheckOutcome::Down("timeout after 1.0s".into()), t(11));
    assert!(u.events.is_empty());
    assert_eq!(m.server_weight(0, 0), Some(1));
    // A server at weight 0 in the kernel (drained before the restart) must rise.
    kernel[0].1[1].weight = 0;
    let (m, _) = Cluster::new(cfg(&seed("")), &kernel, HashSet::new(), t(20));
    assert_eq!(m.checks[1].state.health, Health::Unchecked);
    assert_eq!(m.server_weight(0, 1), Some(0));
}

#[test]
fn identical_checks_run_once() {
    let text = format!(
        "{}\n[[service]]\nvip = \"{VIP}\"\nport = 443\n[service.check]\ntype = \"tcp\"\nport = 80\ninterval = 0.5\nrise = 2\nfall = 3\n[[service.server]]\naddress = \"198.51.100.11\"\n\n[[service]]\nvip = \"{VIP}\"\nport = 8080\n[service.check]\ntype = \"tcp\"\ninterval = 0.5\n[[service.server]]\naddress = \"198.51.100.11\"\n",
        seed("")
    );
    let t = clock();
    let (mut m, _) = Cluster::new(cfg(&text), &[], HashSet::new(), t(0));
    // rs1 port 80 (two services), rs2 port 80, rs1 port 8080.
    assert_eq!(m.checks.len(), 3);
    assert_eq!(
        m.checks[0].users.iter().collect::<Vec<_>>(),
        vec![(0, 0), (1, 0)]
    );
    let u = up_all(&mut m, 0, 2, t(1));
    assert_eq!(u.services, vec![0, 1]);
    assert_eq!(u.events.len(), 2, "one line per server");
}

#[test]
fn reload_keeps_state_adds_unchecked_retires_removed() {
    let t = clock();
    let three = seed("").replace(
        "weight = 2\n",
        "weight = 2\n\n[[service.server]]\naddress = \"198.51.100.13\"\n",
    );
    let (mut m, _) = Cluster::new(cfg(&three), &[], HashSet::new(), t(0));
    for id in 0..3 {
        up_all(&mut m, id, 2, t(1));
    }
    let kernel = m.desired_table();
    // Edit rs1's weight, drop rs3, add rs4, change rs2's check (fall).
    let new = seed("")
        .replace("weight = 1\n", "weight = 7\n")
        .replace("weight = 2\n", "weight = 2\n[service.server.check]\nfall = 5\n\n[[service.server]]\naddress = \"198.51.100.14\"\n");
    let present = |k: &ServiceKey, a: IpAddr, p: u16| {
        kernel
            .iter()
            .any(|(s, ds)| s.key == *k && ds.iter().any(|d| d.addr == a && d.port == p))
    };
    let (mut m2, diff) = m.reload(cfg(&new), present, t(5));
    assert_eq!((diff.changed, diff.added, diff.unchanged), (1, 0, 0));
    assert_eq!((diff.checks_kept, diff.checks_new), (1, 2));
    assert_eq!(diff.services, vec![0]);
    assert_eq!(diff.remap, vec![Some(0), None, None]);
    let p = plan(&m2.desired_table(), &kernel, false);
    let ops: Vec<String> = p.ops().map(Op::describe).collect();
    assert_eq!(
        ops,
        vec![
            format!("edit destination 198.51.100.11:80 of tcp {VIP}:80"),
            format!("add destination 198.51.100.14:80 to tcp {VIP}:80"),
            format!("edit destination 198.51.100.13:80 of tcp {VIP}:80"),
        ],
        "in place; rs2 keeps its weight while its new check has no result, rs4 starts unchecked (0), rs3 retires at 0"
    );
    let w = weights(&m2.desired_table());
    assert_eq!(w.iter().map(|x| x.1).collect::<Vec<_>>(), vec![7, 2, 0, 0]);
    assert!(m2.checks[m2.servers[0][1].check].state.assumed);
    // The new check's first failure is the first of fall = 5.
    let rs2 = m2.servers[0][1].check;
    m2.record(rs2, &CheckOutcome::Down("HTTP 503".into()), t(5));
    assert_eq!(m2.server_weight(0, 1), Some(2));
    assert_eq!(m2.retiring.len(), 1);
    // rs3 still has a connection: it stays; later it has none: it goes.
    let mut k2 = m2.desired_table();
    k2[0].1[3].active_conns = 1; // rs3 is last (retiring entries follow the servers)
    assert_eq!(k2[0].1[3].addr, ip("198.51.100.13"));
    assert!(m2.expire_retiring(&k2, t(6)).is_empty());
    assert_eq!(m2.retiring.len(), 1);
    k2[0].1[3].active_conns = 0;
    assert!(m2.expire_retiring(&k2, t(7)).is_empty());
    assert!(m2.retiring.is_empty());
    let p = plan(&m2.desired_table(), &k2, false);
    assert_eq!(
        p.ops().map(Op::describe).collect::<Vec<_>>(),
        vec![format!(
            "delete destination 198.51.100.13:80 of tcp {VIP}:80"
        )]
    );
}

#[test]
fn reload_of_one_weight_touches_one_service() {
    let t = clock();
    let mut text = String::new();
    for port in 1..=50 {
        text.push_str(&seed("").replace("port = 80\n", &format!("port = {port}\n")));
    }
    let (m, _) = Cluster::new(cfg(&text), &[], HashSet::new(), t(0));
    let kernel = m.desired_table();
    let edited = text.replacen("weight = 2\n", "weight = 3\n", 1);
    let (m2, diff) = m.reload(cfg(&edited), |_, _, _| true, t(1));
    assert_eq!(diff.services, vec![0]);
    assert_eq!((diff.changed, diff.unchanged), (1, 49));
    assert_eq!(diff.checks_new, 0, "the checks did not change");
    assert!(!diff.groups_changed);
    // Only the edited destination differs... at weight 0 (unchecked), so nothing.
    assert!(plan(&m2.desired_table(), &kernel, false).is_empty());

    // In place: the same diff, the same model, the checks' vector kept.
    let mut m3 = m.clone();
    let (mut m3_states, checks_at) = (m3.checks[1].state.clone(), m3.checks.as_ptr());
    let up = m3.record(1, &CheckOutcome::Up, t(1));
    assert!(up.events.is_empty());
    m3_states.record(&CheckOutcome::Up, 2, 3, t(1));
    let d3 = m3.reload_in_place(cfg(&edited), |_, _, _| true, t(1));
    assert!(d3.in_place && d3.remap.is_empty());
    assert_eq!(
        (
            d3.services,
            d3.changed,
            d3.unchanged,
            d3.checks_kept,
            d3.checks_new
        ),
        (
            diff.services,
            diff.changed,
            diff.unchanged,
            diff.checks_kept,
            0
        )
    );
    assert_eq!(m3.checks.as_ptr(), checks_at, "no second vector of checks");
    assert_eq!(m3.checks[1].state, m3_states, "the state carries on");
    assert_eq!(m3.desired_table(), m2.desired_table());
    assert_eq!(m3.config, m2.config);

    // A server added: not in place, as a full reload.
    let added = edited.replacen(
        "[[service.server]]",
        "[[service.server]]\naddress = \"198.51.100.30\"\n\n[[service.server]]",
        1,
    );
    let (m4, d4) = m2.reload(cfg(&added), |_, _, _| true, t(2));
    let mut m5 = m2.clone();
    let d5 = m5.reload_in_place(cfg(&added), |_, _, _| true, t(2));
    assert!(!d5.in_place && d5.checks_new == 1);
    assert_eq!((d5.services, d5.remap), (d4.services, d4.remap));
    assert_eq!(m5.desired_table(), m4.desired_table());
}

#[test]
fn reload_removing_a_service_retires_it() {
    let t = clock();
    let two = format!(
        "{}{}",
        seed(""),
        seed("").replace("port = 80\n", "port = 81\n")
    );
    let (m, _) = Cluster::new(cfg(&two), &[], HashSet::new(), t(0));
    let kernel = m.desired_table();
    let present = |k: &ServiceKey, a: IpAddr, p: u16| {
        kernel
            .iter()
            .any(|(s, ds)| s.key == *k && ds.iter().any(|d| d.addr == a && d.port == p))
    };
    let (mut m2, diff) = m.reload(cfg(&seed("")), present, t(1));
    assert_eq!(diff.retiring, vec![ServiceKey::tcp(ip(VIP), 81)]);
    assert_eq!(m2.desired_table().len(), 2, "still there, at weight 0");
    // No connections: the service is deleted at the next sync.
    let gone = m2.expire_retiring(&kernel, t(2));
    assert_eq!(gone, vec![ServiceKey::tcp(ip(VIP), 81)]);
    assert_eq!(m2.desired_table().len(), 1);
    // A service with nothing in the kernel is deleted at once.
    let (_, diff) = m.reload(cfg(&seed("")), |_, _, _| false, t(1));
    assert_eq!(diff.delete_now, vec![ServiceKey::tcp(ip(VIP), 81)]);
}

#[test]
fn none_checks_behave_like_apply() {
    let t = clock();
    let text = seed("").replace(
        "[service.check]\ntype = \"tcp\"\ninterval = 0.5\nrise = 2\nfall = 3\n",
        "",
    );
    let c = cfg(&text);
    let (m, _) = Cluster::new(c.clone(), &[], HashSet::new(), t(0));
    assert_eq!(m.desired_table(), crate::kernel::apply::desired_table(&c));
}

/// The size of the planned benchmark: 2,000 services x 10 servers with tcp
/// checks. A reload of one weight (parse, validate, diff, plan of the one
/// service changed) must take well under a second; printed with
/// `--nocapture`, asserted in optimised builds.
#[test]
fn reload_of_one_weight_at_2000_services() {
    let mut text = String::new();
    for s in 0..2000 {
        text.push_str(&format!(
            "[[service]]\nvip = \"203.0.113.{}\"\nport = {}\nscheduler = \"wrr\"\n[service.check]\ntype = \"tcp\"\ninterval = 5.0\n",
            s % 250 + 1,
            1000 + s / 250
        ));
        for r in 0..10 {
            text.push_str(&format!(
                "[[service.server]]\naddress = \"198.18.{}.{}\"\nweight = {}\n",
                r,
                s % 250 + 1,
                r + 1
            ));
        }
    }
    let t = clock();
    let start = Instant::now();
    let c = cfg(&text);
    let parsed = start.elapsed();
    let (m, _) = Cluster::new(c, &[], HashSet::new(), t(0));
    let kernel = m.desired_table();
    let edited = text.replacen("weight = 3\n", "weight = 30\n", 1);
    let start = Instant::now();
    let c2 = cfg(&edited);
    let (m2, diff) = m.reload(c2, |_, _, _| true, t(1));
    let entries: Table = diff.services.iter().map(|&i| m2.service_entry(i)).collect();
    let current: Table = entries
        .iter()
        .filter_map(|(s, _)| kernel.iter().find(|(k, _)| k.key == s.key).cloned())
        .collect();
    let p = plan(&entries, &current, false);
    let took = start.elapsed();
    println!(
        "parse of 20,000 servers: {parsed:?}; reload of one weight (parse + diff + plan): {took:?}"
    );
    assert_eq!(diff.services, vec![0]);
    assert_eq!((diff.checks_kept, diff.checks_new), (m.checks.len(), 0));
    assert_eq!(m.checks.len(), 20_000);
    // Unchecked servers are at weight 0 whatever the file says: no edit.
    assert!(p.is_empty());
    if !cfg!(debug_assertions) {
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
}
