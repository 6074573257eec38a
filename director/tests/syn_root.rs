//! Half-open (SYN) checks against the real kernel, in network namespaces
//! the tests create (198.51.100.0/24, 198.18.0.0/15, 2001:db8::/32 only).
//! They need root (raw sockets, `ip netns`): `#[ignore]`d, run with
//! `--ignored` by the root-tests step of scripts/test-all.sh.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lvs_director::check::{CheckKind, CheckOutcome, CheckSpec, Checker};

const HOST4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// Routed out of `sink4` / `sink6`, where nothing answers: SYNs to these
/// are lost.
const SILENT4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);
const SILENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);

/// A namespace (lvs-testkit's: unique name, lo up, deleted on drop) with
/// 198.51.100.1 and 2001:db8::1 on lo, the sinks above (veth pairs), and
/// 198.18.0.0/16 local (any address in it reaches a listener on 0.0.0.0).
/// Derefs to the kit's namespace (`name()`, `ip`, `sh`, `spawn`).
struct Netns(lvs_testkit::Netns);

impl std::ops::Deref for Netns {
    type Target = lvs_testkit::Netns;

    fn deref(&self) -> &lvs_testkit::Netns {
        &self.0
    }
}

impl Netns {
    fn new() -> Netns {
        let ns = lvs_testkit::Netns::new("lvsd-syn");
        ns.ip_lines(
            "addr add 198.51.100.1/32 dev lo
             addr add 2001:db8::1/128 dev lo
             link add sink4 type veth peer name sink4p
             link add sink6 type veth peer name sink6p",
        );
        // IPv6 off on sink4 and its peer: nothing but our SYNs leaves
        // sink4 (no router or listener reports), so its counter counts them.
        for dev in ["sink4", "sink4p"] {
            ns.sh(&[
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ]);
        }
        ns.ip_lines(
            "link set sink4 up
             link set sink4p up
             link set sink6 up
             link set sink6p up
             route add 198.51.100.0/24 dev sink4
             route add 2001:db8:ffff::/48 dev sink6",
        );
        // A neighbour that never answers, known for good: the SYNs go
        // out (to the peer, which drops them: not its address).
        ns.ip_lines(
            "neigh add 198.51.100.200 lladdr 02:00:00:00:00:01 dev sink4 nud permanent
             neigh add 2001:db8:ffff::1 lladdr 02:00:00:00:00:01 dev sink6 nud permanent
             route add local 198.18.0.0/16 dev lo",
        );
        Netns(ns)
    }

    /// Runs `f` on a thread inside the namespace, on a tokio runtime of
    /// its own; every socket it opens lives in the namespace.
    fn run<T: Send>(&self, f: impl AsyncFnOnce() -> T + Send) -> T {
        self.0.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
    }

    /// TCP's OutRsts counter of the namespace (/proc/net/snmp).
    fn tcp_out_rsts(&self) -> u64 {
        let snmp = self.sh(&["cat", "/proc/net/snmp"]);
        let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
        let at = names.split(' ').position(|n| n == "OutRsts").unwrap();
        values.split(' ').nth(at).unwrap().parse().unwrap()
    }

    /// Connections the server side holds half-open (SYN_RECV).
    fn syn_recv(&self) -> usize {
        self.sh(&["ss", "-Htn", "state", "syn-recv"])
            .lines()
            .count()
    }

    fn tx_packets(&self, dev: &str) -> u64 {
        let path = format!("/sys/class/net/{dev}/statistics/tx_packets");
        self.sh(&["cat", &path]).trim().parse().unwrap()
    }
}

fn spec(port: u16, timeout: Duration) -> CheckSpec {
    CheckSpec {
        kind: CheckKind::TcpHalfOpen,
        interval: Duration::from_secs(30),
        timeout,
        rise: 1,
        fall: 1,
        port,
    }
}

/// A listener (the application) and a port nobody listens on.
fn listener_and_closed_port(host: IpAddr) -> (TcpListener, u16) {
    let listener = TcpListener::bind((host, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let closed = TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (listener, closed)
}

fn assert_accept_queue_empty(listener: &TcpListener) {
    match listener.accept() {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        other => panic!("the application saw a connection: {other:?}"),
    }
}

fn down(reason: &str) -> CheckOutcome {
    CheckOutcome::Down(reason.into())
}

#[test]
#[ignore = "needs root (raw sockets, ip netns): scripts/test-all.sh root-tests"]
fn ipv4_up_refused_and_lost() {
    let ns = Netns::new();
    let sink_before = ns.tx_packets("sink4");
    let rsts_before = ns.tcp_out_rsts();
    ns.run(async || {
        let (listener, closed) = listener_and_closed_port(HOST4.into());
        let port = listener.local_addr().unwrap().port();
        let checker = Checker::new(64);
        let two = Duration::from_secs(2);
        for _ in 0..20 {
            let r = checker.run(&spec(port, two), HOST4.into()).await;
            assert_eq!(r.outcome, CheckOutcome::Up);
        }
        let r = checker.run(&spec(closed, two), HOST4.into()).await;
        assert_eq!(r.outcome, down("connection refused"));
        // The director's kernel reset every SYN-ACK: the application never
        // had a connection to accept.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_accept_queue_empty(&listener);

        let started = Instant::now();
        let r = checker
            .run(&spec(port, Duration::from_millis(1500)), SILENT4.into())
            .await;
        assert_eq!(r.outcome, down("timeout after 1.5s"));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(3),
            "{took:?}"
        );
    });
    // The SYN and its one retransmission.
    assert_eq!(ns.tx_packets("sink4") - sink_before, 2);
    // The director's kernel reset each of the 20 SYN-ACKs (the refused
    // probe's RST is the 21st), so the server holds no half-open
    // connection.
    assert!(ns.tcp_out_rsts() - rsts_before >= 21);
    assert_eq!(ns.syn_recv(), 0);
}

#[test]
#[ignore = "needs root (raw sockets, ip netns): scripts/test-all.sh root-tests"]
fn ipv6_up_refused_and_lost() {
    let ns = Netns::new();
    ns.run(async || {
        let (listener, closed) = listener_and_closed_port(HOST6.into());
        let port = listener.local_addr().unwrap().port();
        let checker = Checker::new(64);
        let two = Duration::from_secs(2);
        for _ in 0..20 {
            let r = checker.run(&spec(port, two), HOST6.into()).await;
            assert_eq!(r.outcome, CheckOutcome::Up);
        }
        let r = checker.run(&spec(closed, two), HOST6.into()).await;
        assert_eq!(r.outcome, down("connection refused"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_accept_queue_empty(&listener);
        let r = checker
            .run(&spec(port, Duration::from_millis(700)), SILENT6.into())
            .await;
        assert_eq!(r.outcome, down("timeout after 0.7s"));
    });
}

/// `n` checks of `kind` spawned at once, half against `up_port` and half
/// against `closed_port` on distinct addresses of 198.18.0.0/16; returns
/// (up, refused) counts once all have reported.
async fn flood(
    checker: &Arc<Checker>,
    kind: CheckKind,
    n: usize,
    up_port: u16,
    closed_port: Option<u16>,
) -> (usize, usize) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let closed = closed_port.filter(|_| i % 2 == 1);
        let mut s = spec(closed.unwrap_or(up_port), Duration::from_secs(5));
        s.kind = kind.clone();
        let address = Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8);
        let tx = tx.clone();
        checker.spawn(Arc::new(s), address.into(), move |outcome, _, _| {
            let _ = tx.send(outcome);
        });
    }
    drop(tx);
    let (mut up, mut refused) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(CheckOutcome::Up)) => up += 1,
            Ok(Some(CheckOutcome::Down(r))) if r == "connection refused" => refused += 1,
            other => panic!("unexpected {other:?} after {up} up, {refused} refused"),
        }
    }
    (up, refused)
}

#[test]
#[ignore = "needs root (raw sockets, ip netns): scripts/test-all.sh root-tests"]
fn a_thousand_probes_in_flight_complete() {
    let ns = Netns::new();
    ns.run(async || {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let closed = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let checker = Arc::new(Checker::new(1024));
        let (up, refused) = flood(&checker, CheckKind::TcpHalfOpen, 1000, port, Some(closed)).await;
        assert_eq!((up, refused), (500, 500));
        assert_eq!(checker.in_flight(), 0);
        assert_accept_queue_empty(&listener);
    });
}

// The one libc call of the tests without a safe wrapper in std.
#[allow(unsafe_code)]
fn cpu_time() -> Duration {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()), 0);
        u.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Not an assertion on speed (a shared machine): the numbers for
/// BENCHMARKS.md. 20,000 checks of each kind against one listener in the
/// namespace, 1,000 in flight; the application accepts (and closes) what
/// the connect checks open, as a real server would, in both runs.
#[test]
#[ignore = "needs root (raw sockets, ip netns): scripts/test-all.sh root-tests"]
fn cpu_of_half_open_against_connect_checks() {
    const N: usize = 20_000;
    let ns = Netns::new();
    ns.run(async || {
        // A backlog above the checks in flight: no connect check is
        // established on our side and dropped on the full queue.
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener
            .bind(&std::net::SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())
            .unwrap();
        listener.listen(4096).unwrap();
        let listener: TcpListener = listener.into();
        let port = listener.local_addr().unwrap().port();
        // The application: accepts and drops, on a thread in the namespace.
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let app = {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            let listener = listener.try_clone().unwrap();
            std::thread::spawn(move || {
                for c in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if c.is_ok() {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        let checker = Arc::new(Checker::new(1000));
        // Warm up both paths (raw socket creation, caches).
        flood(&checker, CheckKind::TcpHalfOpen, 1000, port, None).await;
        flood(&checker, CheckKind::Tcp, 1000, port, None).await;
        let mut connects = 1000;
        let mut report = Vec::new();
        for kind in [CheckKind::TcpHalfOpen, CheckKind::Tcp, CheckKind::TcpHalfOpen, CheckKind::Tcp] {
            // The application accepts behind the checks: let it take the
            // connections of the batches before (all of them, or as many
            // as come within a second of the last).
            let mut last = (accepted.load(Ordering::Relaxed), Instant::now());
            while last.0 < connects && last.1.elapsed() < Duration::from_secs(1) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let now = accepted.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                }
            }
            let before_accepts = accepted.load(Ordering::Relaxed);
            let (cpu, wall) = (cpu_time(), Instant::now());
            let (up, _) = flood(&checker, kind.clone(), N, port, None).await;
            let (cpu, wall) = (cpu_time() - cpu, wall.elapsed());
            assert_eq!(up, N);
            let accepts = accepted.load(Ordering::Relaxed) - before_accepts;
            report.push(format!(
                "{kind:?}: {N} checks, CPU {:.3}s ({:.1} us/check), wall {:.3}s, accepted by the application {accepts}",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / N as f64,
                wall.as_secs_f64()
            ));
            if kind == CheckKind::TcpHalfOpen {
                assert_eq!(accepts, 0);
            } else {
                connects += N;
            }
        }
        eprintln!("{}", report.join("\n"));
        // Wake the application's accept() so that its thread ends.
        stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port));
        app.join().unwrap();
    });
}

/// Without CAP_NET_RAW a half-open check runs as a connect check: the
/// test runs itself again in the namespace with the capability dropped
/// from the bounding set (root without it cannot open a raw socket).
#[test]
#[ignore = "needs root (raw sockets, ip netns): scripts/test-all.sh root-tests"]
fn without_cap_net_raw_it_falls_back_to_connect() {
    if std::env::var_os("LVSD_SYN_NO_RAW").is_some() {
        return fallback_child();
    }
    let ns = Netns::new();
    let me = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "setpriv",
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
        ])
        .arg(&me)
        .args([
            "--ignored",
            "--exact",
            "without_cap_net_raw_it_falls_back_to_connect",
            "--nocapture",
        ])
        .env("LVSD_SYN_NO_RAW", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(text.contains("fallback checked"), "{text}");
}

fn fallback_child() {
    let raw = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::TCP),
    );
    assert_eq!(
        raw.err().and_then(|e| e.raw_os_error()),
        Some(libc::EPERM),
        "the child still has CAP_NET_RAW"
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (listener, closed) = listener_and_closed_port(HOST4.into());
            let port = listener.local_addr().unwrap().port();
            let checker = Checker::new(4);
            let two = Duration::from_secs(2);
            let r = checker.run(&spec(port, two), HOST4.into()).await;
            assert_eq!(r.outcome, CheckOutcome::Up);
            let r = checker.run(&spec(closed, two), HOST4.into()).await;
            assert_eq!(r.outcome, down("connection refused"));
            // A connect check: the application accepted a connection.
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                listener.accept().is_ok(),
                "no connection: not a connect check"
            );
        });
    eprintln!("fallback checked");
}

/// The IPv4 checksum covers the source address, cached per server: when
/// the route's source changes, the next probe goes out with a checksum the
/// server drops and times out, and the one after looks the source up again.
#[test]
#[ignore = "needs root (raw sockets, ip netns): scripts/test-all.sh root-tests"]
fn a_changed_source_address_costs_one_probe() {
    let ns = Netns::new();
    ns.ip_lines(
        "addr add 198.51.100.3/32 dev lo
         route add local 203.0.113.0/24 dev lo src 198.51.100.1",
    );
    // The namespace's thread runs the checks; this one changes the route
    // between them (a message from the checks says when).
    let (to_main, from_checks) = std::sync::mpsc::channel::<()>();
    let (to_checks, from_main) = std::sync::mpsc::channel::<()>();
    let checks = ns.spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
                let port = listener.local_addr().unwrap().port();
                let checker = Checker::new(4);
                let server = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
                let s = spec(port, Duration::from_millis(400));
                let first = checker.run(&s, server).await.outcome;
                to_main.send(()).unwrap();
                from_main.recv().unwrap();
                let second = checker.run(&s, server).await.outcome;
                let third = checker.run(&s, server).await.outcome;
                (first, second, third)
            })
    });
    from_checks.recv().unwrap();
    ns.ip_lines("route replace local 203.0.113.0/24 dev lo src 198.51.100.3");
    to_checks.send(()).unwrap();
    let (first, second, third) = checks.join().unwrap();
    assert_eq!(first, CheckOutcome::Up);
    assert_eq!(second, down("timeout after 0.4s"));
    assert_eq!(third, CheckOutcome::Up);
}
