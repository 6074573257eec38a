//! Root tests of the agent endpoint (`watch --agent-listen`): its answers
//! as the state changes (terse by default, in full with --agent-verbose),
//! its allow list, its bound under a flood and beside idle connections, its
//! refusal of a taken address. Connections are made from a thread inside
//! the test's namespace.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rs_agent::agent_check::{TERSE_DOWN, WORKERS};

use super::*;

const LISTEN: &str = "127.0.0.1:5555";

fn read_answer(mut stream: TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// One connection to the endpoint: its whole answer.
fn ask(ns: &Netns) -> String {
    ns.run(|| {
        let address: SocketAddr = LISTEN.parse().unwrap();
        read_answer(TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap())
    })
}

/// One connection to the endpoint from `source` (an address of the
/// namespace's lo, where all of 127/8 is local): its whole answer.
fn ask_from(ns: &Netns, source: &str) -> String {
    let source: SocketAddr = format!("{source}:0").parse().unwrap();
    ns.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(source).unwrap();
            let connect = socket.connect(LISTEN.parse().unwrap());
            tokio::time::timeout(Duration::from_secs(5), connect)
                .await
                .unwrap()
                .unwrap()
        });
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        read_answer(stream)
    })
}

/// Waits (bounded) until the endpoint answers `expected`.
fn wait_answer(ns: &Netns, watcher: &Watcher, expected: impl Fn(&str) -> bool, what: &str) {
    let mut last = String::new();
    let found = wait_for(EVENT_BOUND, || {
        last = ask(ns);
        expected(&last)
    });
    assert!(
        found.is_some(),
        "endpoint never answered {what} (last: {last:?}); log:\n{}",
        watcher.log()
    );
}

/// Listening TCP sockets of the namespace, as "address:port" in hex
/// (/proc/net/tcp and tcp6, state 0A).
fn listening(ns: &Netns) -> Vec<String> {
    let out = ns.exec(&["cat", "/proc/net/tcp", "/proc/net/tcp6"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(3) == Some(&"0A")).then(|| fields[1].to_string())
        })
        .collect()
}

/// A namespace started by rs-agent, with a veth pair whose ARP matters.
fn started(config: &ConfigFile) -> Netns {
    let ns = Netns::new(0, 0);
    ns.ip(&[
        "link", "add", "nic0", "type", "veth", "peer", "name", "nic1",
    ]);
    ns.ip(&["link", "set", "nic0", "up"]);
    ns.ip(&["link", "set", "nic1", "up"]);
    ns.start(&config.path).ok();
    ns
}

/// A namespace started with VIP4, watched with repair and the endpoint on
/// LISTEN; the full check is minutes away, so a repair comes from an event.
fn watched_with_repair() -> (ConfigFile, Netns, Watcher) {
    let config = ConfigFile::new(&vips(&[VIP4]));
    let ns = started(&config);
    let watcher = Watcher::start(
        &ns,
        &config,
        &["--interval", "30", "--agent-listen", LISTEN],
    );
    (config, ns, watcher)
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn the_endpoint_answers_up_drain_and_down_as_the_state_changes() {
    let config = ConfigFile::new(&vips(&[VIP4]));
    let ns = started(&config);
    let persist = tempfile::tempdir().unwrap();
    let p = persist.path().to_str().unwrap();
    // Only observing: nothing repairs what the test breaks.
    let watcher = Watcher::start(
        &ns,
        &config,
        &[
            "--interval",
            "0.2",
            "--agent-listen",
            LISTEN,
            "--no-repair",
            "--agent-verbose",
            "--persist-dir",
            p,
        ],
    );
    let started_at = Instant::now();
    assert_eq!(ask(&ns), "up\n");
    // A bound, not a speed claim: far above the milliseconds it takes.
    assert!(started_at.elapsed() < Duration::from_secs(5));
    // Bound where asked, and nowhere else (127.0.0.1:5555 is 0100007F:15B3).
    assert_eq!(listening(&ns), vec!["0100007F:15B3"]);

    // Drain counts at once: the endpoint reads the drain state per connection.
    ns.agent(&["--persist-dir", p, "drain", "--reason", "test"])
        .ok();
    assert_eq!(ask(&ns), "drain\n");
    ns.agent(&["--persist-dir", p, "undrain"]).ok();
    assert_eq!(ask(&ns), "up\n");

    // The VIP deleted by hand (and not repaired): down, on the event.
    ns.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"]);
    wait_answer(
        &ns,
        &watcher,
        |a| a == format!("down#VIP {VIP4} is not on lo\n"),
        "down for the missing VIP",
    );
    // Drained or not, a server that would drop traffic is down.
    ns.agent(&["--persist-dir", p, "drain"]).ok();
    assert!(ask(&ns).starts_with("down#"));
    ns.agent(&["--persist-dir", p, "undrain"]).ok();
    ns.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"]);
    wait_answer(&ns, &watcher, |a| a == "up\n", "up once the VIP is back");

    // ARP answered for the VIP (a sysctl: no event, seen on the interval).
    ns.write_sysctl("all", "arp_ignore", 0);
    wait_answer(
        &ns,
        &watcher,
        |a| a.starts_with("down#nic") && a.contains("answers ARP for the VIPs"),
        "down for ARP",
    );
    ns.write_sysctl("all", "arp_ignore", 1);
    wait_answer(&ns, &watcher, |a| a == "up\n", "up once ARP is right");

    // Out of sync without breaking anything: up by default.
    ns.write_sysctl("all", "arp_announce", 1);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(ask(&ns), "up\n");
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");

    // ... and drain with --agent-on-drift drain.
    let watcher = Watcher::start(
        &ns,
        &config,
        &[
            "--agent-listen",
            LISTEN,
            "--no-repair",
            "--agent-on-drift",
            "drain",
        ],
    );
    assert_eq!(ask(&ns), "drain\n");
    ns.write_sysctl("all", "arp_announce", 2);
    drop(watcher);
    // --no-repair changed nothing: stop still restores the priors.
    ns.stop().ok();
    assert_eq!(ns.sysctl("all", "arp_ignore"), 0);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn with_repair_a_deleted_vip_comes_back_and_the_answer_is_up() {
    let (_config, ns, watcher) = watched_with_repair();
    assert_eq!(ask(&ns), "up\n");
    ns.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"]);
    assert!(
        wait_for(EVENT_BOUND, || has(&ns, VIP4)).is_some(),
        "{}",
        watcher.log()
    );
    wait_answer(&ns, &watcher, |a| a == "up\n", "up after the repair");
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
    // Gone with the watch: nothing listens any more.
    assert!(listening(&ns).is_empty());
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
// Raising RLIMIT_NOFILE: libc, which std does not wrap.
#[allow(unsafe_code)]
fn the_endpoint_stays_bounded_under_1000_concurrent_connections() {
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 250;
    // 1,000 sockets held at once by this process.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max.min(8192);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(limit.rlim_cur >= 2048, "RLIMIT_NOFILE too low: {limit:?}");

    let (_config, ns, watcher) = watched_with_repair();
    let pid = watcher.child.id();
    assert_eq!(ask(&ns), "up\n");
    let (fds_before, threads_before) = (open_fds(pid), threads(pid));

    // Sample the agent's descriptors and threads while the flood lasts.
    let stop = Arc::new(AtomicBool::new(false));
    let max_fds = Arc::new(AtomicUsize::new(0));
    let max_threads = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, max_fds, max_threads) = (stop.clone(), max_fds.clone(), max_threads.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                max_fds.fetch_max(open_fds(pid), Ordering::SeqCst);
                max_threads.fetch_max(threads(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            ns.spawn(|| {
                let address: SocketAddr = LISTEN.parse().unwrap();
                // Every connection of this client is open before any is read.
                let streams: Vec<TcpStream> = (0..PER_CLIENT)
                    .map(|_| TcpStream::connect_timeout(&address, Duration::from_secs(20)).unwrap())
                    .collect();
                streams.into_iter().map(read_answer).collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let took = start.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();

    assert_eq!(answers.len(), CLIENTS * PER_CLIENT);
    let wrong: Vec<_> = answers.iter().filter(|a| *a != "up\n").collect();
    assert!(
        wrong.is_empty(),
        "{} wrong answers, e.g. {:?}",
        wrong.len(),
        wrong.first()
    );
    // At most WORKERS connections at a time: as many descriptors more at
    // most, and no thread beyond the pool started with the endpoint.
    let (fds, thr) = (
        max_fds.load(Ordering::SeqCst),
        max_threads.load(Ordering::SeqCst),
    );
    assert!(fds <= fds_before + WORKERS, "fds {fds_before} -> {fds}");
    assert_eq!(thr, threads_before, "threads {threads_before} -> {thr}");
    eprintln!("1,000 connections answered in {took:?}; agent fds {fds_before} -> max {fds}");
    assert!(took < Duration::from_secs(120), "{took:?}");
    // And it still answers.
    assert_eq!(ask(&ns), "up\n");
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn a_taken_endpoint_address_is_refused_before_anything_changes() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    // Bound inside the namespace, held here.
    let holder = ns.run(|| TcpListener::bind(LISTEN).unwrap());
    let before = ns.snapshot();
    let mut command = Watcher::command(&ns, &config, &["--agent-listen", LISTEN]);
    let run = common::Run::of(&mut command);
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.stderr
            .contains("agent endpoint 127.0.0.1:5555: Address already in use"),
        "{run:#?}"
    );
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty());
    drop(holder);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn by_default_a_down_names_no_vip_and_the_log_has_the_detail() {
    let config = ConfigFile::new(&vips(&[VIP4]));
    let ns = started(&config);
    let watcher = Watcher::start(
        &ns,
        &config,
        &["--interval", "0.2", "--agent-listen", LISTEN, "--no-repair"],
    );
    assert_eq!(ask(&ns), "up\n");
    ns.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"]);
    wait_answer(
        &ns,
        &watcher,
        |a| a == format!("down#{TERSE_DOWN}\n"),
        "a terse down for the missing VIP",
    );
    let answer = ask(&ns);
    assert!(
        !answer.contains(VIP4) && !answer.contains(" lo"),
        "{answer}"
    );
    assert!(
        wait_for(EVENT_BOUND, || watcher
            .log()
            .contains(&format!("answers down: VIP {VIP4} is not on lo")))
        .is_some(),
        "{}",
        watcher.log()
    );
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn only_allowed_clients_are_answered() {
    let config = ConfigFile::new(&vips(&[VIP4]));
    let ns = started(&config);
    let watcher = Watcher::start(
        &ns,
        &config,
        &[
            "--interval",
            "30",
            "--agent-listen",
            LISTEN,
            "--agent-allow",
            "127.0.0.1",
            "--agent-allow",
            "127.0.1.0/24",
            "--agent-allow",
            "2001:db8::/64",
        ],
    );
    assert_eq!(ask_from(&ns, "127.0.0.1"), "up\n");
    assert_eq!(ask_from(&ns, "127.0.1.9"), "up\n");
    // Closed without a word, at once (read_answer would fail on its
    // timeout, not return).
    assert_eq!(ask_from(&ns, "127.0.0.2"), "");
    assert_eq!(ask_from(&ns, "127.0.2.1"), "");
    assert_eq!(ask_from(&ns, "127.0.0.1"), "up\n");
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn idle_connections_do_not_delay_a_fresh_check() {
    /// lvs-director's agent check timeout in README.md's example.
    const CHECK_DEADLINE: Duration = Duration::from_secs(1);
    let (_config, ns, watcher) = watched_with_repair();
    let address: SocketAddr = LISTEN.parse().unwrap();
    // 200 connections opened and held, never read nor closed.
    let idle: Vec<TcpStream> = ns.run(|| {
        (0..200)
            .map(|_| TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap())
            .collect()
    });
    let answer = ns.run(|| {
        let began = Instant::now();
        let mut stream = TcpStream::connect_timeout(&address, CHECK_DEADLINE).unwrap();
        stream.set_read_timeout(Some(CHECK_DEADLINE)).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(began.elapsed() < CHECK_DEADLINE, "{:?}", began.elapsed());
        answer
    });
    assert_eq!(answer, "up\n");
    drop(idle);
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
}
