//! Real-kernel tests of `Handle`. They need root and a kernel with IPVS, which
//! the machines' own kernel lacks, so they are `#[ignore]`d (reported as
//! ignored, never as passed) and the VM scenario
//! tests/vm/scenarios/50-ipvs-handle.sh runs them with `--ignored`. Every
//! test works in network namespaces of its own.
//!
//! The handle is synchronous: these are plain `#[test]`s.

use std::net::IpAddr;

use lvs_ipvs::table::{TUN_FLAG_CSUM, TUN_FLAG_REMCSUM};
use lvs_ipvs::{
    Daemon, DaemonState, Destination, Error, Family, Forward, Handle, Op, OpKind, Service,
    ServiceFlags, ServiceKey, Timeouts, TunnelType,
};
use lvs_testkit::Netns;

/// A namespace of the test's own (lvs-testkit's: unique name, lo up,
/// deleted on drop) with a dummy link carrying the test networks, so
/// destinations are routable.
fn netns() -> Netns {
    let ns = Netns::new("ipvs");
    ns.ip_lines(
        "link add d0 type dummy
         link set d0 up
         addr add 198.51.100.1/24 dev d0
         addr add 2001:db8::1/64 dev d0 nodad",
    );
    ns
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sample_services() -> Vec<(Service, Vec<Destination>)> {
    let mut out = Vec::new();
    let s = Service::new(ServiceKey::tcp(ip("203.0.113.10"), 80), "wrr");
    let mut d1 = Destination::new(ip("198.51.100.11"), 80);
    d1.weight = 1;
    let mut d2 = Destination::new(ip("198.51.100.12"), 80);
    d2.weight = 2;
    d2.upper_threshold = 100;
    d2.lower_threshold = 10;
    out.push((s, vec![d1, d2]));

    let mut s = Service::new(ServiceKey::udp(ip("203.0.113.10"), 53), "rr");
    s.flags.set(ServiceFlags::ONEPACKET, true);
    let mut d = Destination::new(ip("198.51.100.13"), 5353);
    d.forward = Forward::Masquerade;
    d.weight = 3;
    out.push((s, vec![d]));

    let mut s = Service::new(ServiceKey::tcp(ip("203.0.113.11"), 443), "sh").persistent(60);
    s.netmask = 0xffff_ff00;
    s.flags
        .set(ServiceFlags::SCHED1 | ServiceFlags::SCHED2, true);
    let mut g = Destination::new(ip("198.51.100.14"), 443);
    g.forward = Forward::Tunnel;
    g.tun_type = TunnelType::Gue;
    g.tun_port = 6080;
    g.tun_flags = TUN_FLAG_CSUM;
    let mut r = Destination::new(ip("198.51.100.15"), 443);
    r.forward = Forward::Tunnel;
    r.tun_type = TunnelType::Gre;
    r.tun_flags = TUN_FLAG_REMCSUM;
    let mut i = Destination::new(ip("198.51.100.16"), 443);
    i.forward = Forward::Tunnel;
    out.push((s, vec![g, r, i]));

    let s = Service::new(ServiceKey::fwmark(Family::Inet, 11), "wrr").persistent(600);
    let mut d = Destination::new(ip("198.51.100.11"), 0);
    d.weight = 5;
    out.push((s, vec![d]));

    let mut s = Service::new(ServiceKey::tcp(ip("2001:db8::10"), 80), "lc").persistent(100);
    s.netmask = 64;
    let d = Destination::new(ip("2001:db8::2"), 80);
    let mut m = Destination::new(ip("2001:db8::3"), 8080);
    m.forward = Forward::Masquerade;
    m.weight = 0;
    out.push((s, vec![d, m]));

    let s = Service::new(ServiceKey::fwmark(Family::Inet6, 12), "rr");
    out.push((s, vec![Destination::new(ip("2001:db8::2"), 0)]));

    let mut s = Service::new(ServiceKey::sctp(ip("203.0.113.12"), 9999), "mh");
    s.flags.set(ServiceFlags::SCHED1, true);
    out.push((s, vec![Destination::new(ip("198.51.100.17"), 9999)]));

    let mut s = Service::new(ServiceKey::udp(ip("203.0.113.13"), 5060), "rr").persistent(30);
    s.pe_name = Some("sip".into());
    out.push((s, vec![Destination::new(ip("198.51.100.18"), 5060)]));
    out
}

/// Compare what the kernel reports with what was asked, ignoring counters.
fn strip(mut t: Vec<(Service, Vec<Destination>)>) -> Vec<(Service, Vec<Destination>)> {
    for (s, ds) in t.iter_mut() {
        s.stats = None;
        for d in ds.iter_mut() {
            d.stats = None;
            d.active_conns = 0;
            d.inact_conns = 0;
            d.persist_conns = 0;
        }
        ds.sort_by_key(|d| (d.addr, d.port));
    }
    t.sort_by_key(|(s, _)| format!("{:?}", s.key));
    t
}

#[test]
#[ignore = "needs an IPVS kernel: run in the VM (tests/vm)"]
fn table_round_trip_in_a_named_namespace() {
    let ns = netns();
    let h = Handle::in_netns(ns.name()).unwrap();
    h.flush().unwrap();
    let want = sample_services();
    for (s, ds) in &want {
        h.add_service(s).unwrap();
        for d in ds {
            h.add_destination(&s.key, d).unwrap();
        }
    }
    let got = h.table().unwrap();
    assert!(
        got.iter()
            .all(|(s, ds)| s.stats.is_some() && ds.iter().all(|d| d.stats.is_some()))
    );
    let lean = h.table_without_stats().unwrap();
    assert!(
        lean.iter()
            .all(|(s, ds)| s.stats.is_none() && ds.iter().all(|d| d.stats.is_none()))
    );
    assert_eq!(strip(lean), strip(got.clone()));
    assert_eq!(strip(got), strip(want.clone()));

    // One service by key; edit it and read it back.
    let (mut s, _) = want[0].clone();
    assert_eq!(h.service(&s.key).unwrap().scheduler, "wrr");
    s.scheduler = "rr".into();
    h.edit_service(&s).unwrap();
    assert_eq!(h.service(&s.key).unwrap().scheduler, "rr");
    // Edit a destination, then delete it.
    let mut d = want[0].1[0].clone();
    d.weight = 9;
    h.edit_destination(&s.key, &d).unwrap();
    let ds = h.destinations(&s.key).unwrap();
    assert!(ds.iter().any(|x| x.addr == d.addr && x.weight == 9));
    h.delete_destination(&s.key, &d).unwrap();
    assert_eq!(h.destinations(&s.key).unwrap().len(), 1);
    h.delete_service(&s.key).unwrap();
    assert_eq!(h.services().unwrap().len(), want.len() - 1);

    h.zero(None).unwrap();
    h.zero(Some(&want[1].0.key)).unwrap();
    h.flush().unwrap();
    assert!(h.services().unwrap().is_empty());
}

#[test]
#[ignore = "needs an IPVS kernel: run in the VM (tests/vm)"]
fn typed_kernel_errors() {
    let ns = netns();
    let h = Handle::in_netns(ns.name()).unwrap();
    let s = Service::new(ServiceKey::tcp(ip("203.0.113.10"), 80), "wrr");
    h.add_service(&s).unwrap();
    let e = h.add_service(&s).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");

    let missing = ServiceKey::tcp(ip("203.0.113.99"), 80);
    let e = h.delete_service(&missing).unwrap_err();
    assert!(matches!(e, Error::NoSuchService { .. }), "{e}");
    let e = h.service(&missing).unwrap_err();
    assert!(matches!(e, Error::NoSuchService { .. }), "{e}");
    let d = Destination::new(ip("198.51.100.11"), 80);
    let e = h.add_destination(&missing, &d).unwrap_err();
    assert!(matches!(e, Error::NoSuchService { .. }), "{e}");
    // ipvsadm's words come from the operation and the errno.
    assert_eq!(e.op(), Some(OpKind::AddDestination));
    assert_eq!(e.ipvsadm_message(), "Service not defined");

    let e = h.delete_destination(&s.key, &d).unwrap_err();
    assert!(matches!(e, Error::NoSuchDestination { .. }), "{e}");
    h.add_destination(&s.key, &d).unwrap();
    let e = h.add_destination(&s.key, &d).unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    assert_eq!(e.ipvsadm_message(), "Destination already exists");

    let bad = Service::new(ServiceKey::tcp(ip("203.0.113.20"), 80), "nosuchsched");
    let e = h.add_service(&bad).unwrap_err();
    assert!(matches!(e, Error::SchedulerOrEngineNotFound { .. }), "{e}");
    let mut bad = Service::new(ServiceKey::tcp(ip("203.0.113.21"), 80), "rr").persistent(10);
    bad.pe_name = Some("nosuchpe".into());
    let e = h.add_service(&bad).unwrap_err();
    assert!(matches!(e, Error::SchedulerOrEngineNotFound { .. }), "{e}");
    assert_eq!(e.errno(), Some(libc::ENOENT));
}

#[test]
#[ignore = "needs an IPVS kernel: run in the VM (tests/vm)"]
fn namespaces_stay_separate() {
    let ns_a = netns();
    let ns_b = netns();
    let a = Handle::in_netns(ns_a.name()).unwrap();
    let b = Handle::in_netns(ns_b.name()).unwrap();
    let s = Service::new(ServiceKey::tcp(ip("203.0.113.10"), 80), "wrr");
    a.add_service(&s).unwrap();
    assert_eq!(a.services().unwrap().len(), 1);
    assert!(b.services().unwrap().is_empty());
    b.add_service(&s).unwrap();
    b.flush().unwrap();
    assert_eq!(a.services().unwrap().len(), 1);
    let e = Handle::in_netns("no-such-ns").unwrap_err();
    assert!(matches!(e, Error::Netns { .. }), "{e}");
}

#[test]
#[ignore = "needs an IPVS kernel: run in the VM (tests/vm)"]
fn bulk_apply_many_in_flight() {
    let ns = netns();
    let h = Handle::in_netns(ns.name()).unwrap();
    let n = 1000u16;
    let ops: Vec<Op> = (0..n)
        .map(|i| {
            Op::AddService(Service::new(
                ServiceKey::tcp(ip("203.0.113.10"), 1000 + i),
                "rr",
            ))
        })
        .collect();
    let res = h.apply_many(&ops);
    assert!(res.iter().all(|r| r.is_ok()));
    let dests: Vec<Op> = (0..n)
        .map(|i| {
            Op::AddDestination(
                ServiceKey::tcp(ip("203.0.113.10"), 1000 + i),
                Destination::new(ip("198.51.100.11"), 1000 + i),
            )
        })
        .collect();
    let res = h.apply_many(&dests);
    assert!(res.iter().all(|r| r.is_ok()));
    let t = h.table().unwrap();
    assert_eq!(t.len(), usize::from(n));
    assert!(t.iter().all(|(_, d)| d.len() == 1));
    // Re-applying reports each duplicate, in input order.
    let res = h.apply_many(&ops[..10]);
    assert!(
        res.iter()
            .all(|r| matches!(r, Err(Error::AlreadyExists { .. })))
    );
    h.flush().unwrap();
}

#[test]
#[ignore = "needs an IPVS kernel: run in the VM (tests/vm)"]
fn timeouts_info_and_daemons() {
    let ns = netns();
    let h = Handle::in_netns(ns.name()).unwrap();
    let info = h.info().unwrap();
    assert_eq!(info.version_string(), "1.2.1");
    assert!(info.conn_tab_size > 0);
    h.set_timeouts(&Timeouts {
        tcp: 901,
        tcp_fin: 121,
        udp: 301,
    })
    .unwrap();
    assert_eq!(
        h.timeouts().unwrap(),
        Timeouts {
            tcp: 901,
            tcp_fin: 121,
            udp: 301
        }
    );
    assert!(h.daemons().unwrap().is_empty());
    let d = Daemon::new(DaemonState::Master, "d0", 7);
    h.start_daemon(&d).unwrap();
    let ds = h.daemons().unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(
        (ds[0].state, ds[0].mcast_ifn.as_str(), ds[0].sync_id),
        (DaemonState::Master, "d0", 7)
    );
    h.stop_daemon(DaemonState::Master).unwrap();
    assert!(h.daemons().unwrap().is_empty());
}

#[test]
#[ignore = "needs an IPVS kernel: run in the VM (tests/vm)"]
fn daemon_stopped_right_after_its_start() {
    // The kernel sends no ack for a stop whose thread had not run yet
    // (EINTR from kthread_stop): a stop right after the start, with every
    // CPU busy so that the new thread waits for one, must still return.
    use std::sync::atomic::{AtomicBool, Ordering};
    let ns = netns();
    let h = Handle::in_netns(ns.name()).unwrap();
    let done = AtomicBool::new(false);
    let spinners = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..spinners {
            scope.spawn(|| {
                let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while !done.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            });
        }
        for state in [DaemonState::Master, DaemonState::Backup] {
            for _ in 0..25 {
                h.start_daemon(&Daemon::new(state, "d0", 9)).unwrap();
                h.stop_daemon(state).unwrap();
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(h.daemons().unwrap().is_empty());
}

#[test]
#[ignore = "needs an IPVS kernel: run in the VM (tests/vm)"]
fn one_handle_shared_by_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let ns = netns();
    // connect(): the namespace by name, loading ip_vs first if needed.
    let h = Handle::connect(Some(ns.name())).unwrap();
    send_sync(&h);
    std::thread::scope(|scope| {
        for t in 0..4u16 {
            let h = h.clone();
            scope.spawn(move || {
                for i in 0..50u16 {
                    let key = ServiceKey::tcp(ip("203.0.113.10"), 2000 + t * 100 + i);
                    h.add_service(&Service::new(key, "rr")).unwrap();
                    h.add_destination(&key, &Destination::new(ip("198.51.100.11"), key.port()))
                        .unwrap();
                }
                // Dumps interleave with the other threads' changes.
                assert!(!h.table().unwrap().is_empty());
            });
        }
    });
    let t = h.table().unwrap();
    assert_eq!(t.len(), 200);
    assert!(t.iter().all(|(_, d)| d.len() == 1));
    h.flush().unwrap();
}
