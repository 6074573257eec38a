//! Root tests of `rs-agent watch` against the real kernel, each in its own
//! network namespace, ignored unless run with `--ignored` as root (see
//! tests/root.rs for the gating).
//!
//! No assertion here depends on the machine being fast: each waits for an
//! event (a notification, a log line, an address) with a generous bound,
//! and counts are checked against bounds computed from measured time.
//! Speed is measured by the benchmarks (scripts/bench.sh), not here.

mod common;
// The agent endpoint (watch --agent-listen): tests/watch/agent.rs.
#[path = "watch/agent.rs"]
mod agent;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{ConfigFile, Netns, vips};
use lvs_common::daemon::RateLimiter;
use lvs_testkit::sh;
use rs_agent::watch::{REPAIR_BURST, REPAIR_REFILL};

const VIP4: &str = "203.0.113.20";
const VIP6: &str = "2001:db8::20";

/// Bound for anything the watch does in response to an event. Far above
/// the usual milliseconds, and far below the periodic full check of the
/// tests that prove a repair came from the event (`--interval 30`: 6 min).
const EVENT_BOUND: Duration = Duration::from_secs(20);

/// The sysctl each convergence reads after its address dump (every conf
/// entry's ARP sysctls are read; `default` exists in every namespace).
const DEFAULT_ARP_IGNORE: &str = "/proc/sys/net/ipv4/conf/default/arp_ignore";

/// A running `rs-agent watch`: its sd_notify socket and its log, collected
/// as it is written (debug level for the agent: one line per convergence
/// and per sysctl check, which the tests count).
struct Watcher {
    child: Child,
    notify: UnixDatagram,
    _notify_dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Watcher {
    /// `rs-agent --netns NS --state-dir DIR watch --config PATH EXTRA...`
    fn command(ns: &Netns, config: &ConfigFile, extra: &[&str]) -> Command {
        let mut command = Command::new(common::AGENT);
        command
            .args(["--netns", ns.name(), "--state-dir"])
            .arg(ns.state_dir())
            .args(["watch", "--config"])
            .arg(&config.path)
            .args(extra);
        command
    }

    /// Starts the watch and waits for READY=1.
    fn start(ns: &Netns, config: &ConfigFile, extra: &[&str]) -> Watcher {
        let watcher = Watcher::spawn(Watcher::command(ns, config, extra));
        watcher.wait_ready();
        watcher
    }

    /// Spawns `command` (a watch, possibly wrapped) with a notify socket of
    /// its own; does not wait for anything.
    fn spawn(mut command: Command) -> Watcher {
        let notify_dir = tempfile::tempdir().unwrap();
        let notify_path = notify_dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        let mut child = command
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RS_AGENT_LOG", "rs_agent=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let mut log = sink.lock().unwrap();
                log.push_str(&line.unwrap_or_default());
                log.push('\n');
            }
        });
        Watcher {
            child,
            notify,
            _notify_dir: notify_dir,
            log,
            reader: Some(reader),
        }
    }

    /// The next sd_notify message, if one comes within `limit`.
    fn notification(&self, limit: Duration) -> Option<String> {
        self.notify.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.notify.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Waits for READY=1 (skipping watchdog pings), then for the log line
    /// that follows it, so the log holds everything from before READY.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(message) =
            self.notification(deadline.saturating_duration_since(Instant::now()))
        {
            if message.contains("READY=1") {
                self.wait_for_log("watching ");
                return;
            }
        }
        panic!("no READY=1 within 60 s; log:\n{}", self.log());
    }

    /// Waits for `count` WATCHDOG=1 pings; fails on READY=1 meanwhile when
    /// `ready_allowed` is false.
    fn pings(&self, count: usize, ready_allowed: bool) {
        let deadline = Instant::now() + EVENT_BOUND;
        let mut seen = 0;
        while seen < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self.notification(left).unwrap_or_else(|| {
                panic!(
                    "{seen} of {count} watchdog pings within {EVENT_BOUND:?}; log:\n{}",
                    self.log()
                )
            });
            assert!(ready_allowed || !message.contains("READY=1"), "{message}");
            seen += usize::from(message == "WATCHDOG=1");
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_for_log(&self, needle: &str) {
        let found = wait_for(EVENT_BOUND, || self.log().contains(needle));
        assert!(found.is_some(), "no {needle:?} in the log:\n{}", self.log());
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit code and everything logged.
    fn terminate(mut self) -> (i32, String) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "watch did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The log is complete once stderr is closed.
        self.reader.take().unwrap().join().unwrap();
        (code, self.log())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `condition` holds; returns how long it took, or None after `limit`.
fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn has(ns: &Netns, address: &str) -> bool {
    ns.addresses("lo")
        .iter()
        .any(|a| a.split('/').next() == Some(address))
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// The namespace's lock file, from the record path `start` reports.
fn lock_path(ns: &Netns, config: &ConfigFile) -> PathBuf {
    let json = ns.json("start", &config.path);
    PathBuf::from(json["record"].as_str().unwrap()).with_extension("lock")
}

/// Opens the write end of `fifo` as soon as a reader has it open (an open
/// that does not block fails with ENXIO until then).
fn open_when_read(fifo: &Path, limit: Duration) -> Option<File> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(file) => return Some(file),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{}: {e}", fifo.display()),
        }
    }
    None
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn deleted_vips_come_back_on_the_event() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    // No periodic check within the bound: only the event can bring them back.
    let watcher = Watcher::start(&ns, &config, &["--interval", "30"]);
    assert!(has(&ns, VIP4) && has(&ns, VIP6));
    for (address, prefix) in [(VIP4, 32), (VIP6, 128)] {
        ns.ip(&["addr", "del", &format!("{address}/{prefix}"), "dev", "lo"]);
        let back = wait_for(EVENT_BOUND, || has(&ns, address));
        assert!(back.is_some(), "{address} not back:\n{}", watcher.log());
    }
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(&format!("drift repaired: add {VIP4}/32 to lo")),
        "{log}"
    );
    assert!(
        log.contains(&format!("drift repaired: add {VIP6}/128 to lo")),
        "{log}"
    );
    // The VIP re-added by the watch is still the agent's: stop removes it.
    ns.stop().ok();
    assert!(!has(&ns, VIP4) && !has(&ns, VIP6));
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn a_vip_removed_during_the_first_convergence_comes_back() {
    // The first convergence is held (deterministically, not by timing) just
    // after its address dump: a FIFO mounted over a sysctl it reads next.
    // The VIP is removed right then, so the snapshot still shows it; only a
    // subscription made before that convergence sees the removal.
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    ns.start(&config.path).ok();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("arp_ignore");
    sh("mkfifo", &[fifo.to_str().unwrap()]);
    let script = format!(
        "mount --bind {fifo} {DEFAULT_ARP_IGNORE} && exec {agent} --state-dir {state} watch --config {config} --interval 30",
        fifo = fifo.display(),
        agent = common::AGENT,
        state = ns.state_dir().display(),
        config = config.path.display(),
    );
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns.name(), "sh", "-c", &script]);
    let watcher = Watcher::spawn(command);

    let mut held = open_when_read(&fifo, Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "the watch never read {DEFAULT_ARP_IGNORE}:\n{}",
            watcher.log()
        )
    });
    ns.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"]);
    // Later reads go to the kernel again; then let this one finish.
    let pid = watcher.child.id().to_string();
    sh(
        "nsenter",
        &[
            "--target",
            &pid,
            "--mount",
            "--net",
            "umount",
            "-l",
            DEFAULT_ARP_IGNORE,
        ],
    );
    held.write_all(b"0\n").unwrap();
    drop(held);
    watcher.wait_ready();

    let back = wait_for(EVENT_BOUND, || has(&ns, VIP4));
    let (code, log) = watcher.terminate();
    assert!(
        back.is_some(),
        "{VIP4}, removed during the first convergence, was not restored:\n{log}"
    );
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(&format!("drift repaired: add {VIP4}/32 to lo")),
        "{log}"
    );
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn the_watchdog_keeps_pinging_while_another_run_holds_the_lock() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let lock_path = lock_path(&ns, &config);
    // The test is "another run": it holds the namespace's lock.
    let lock = File::open(&lock_path).unwrap();
    lock.try_lock().unwrap();
    let mut command = Watcher::command(&ns, &config, &["--interval", "30"]);
    command.env("WATCHDOG_USEC", "200000"); // a ping every 100 ms
    let watcher = Watcher::spawn(command);

    // The first convergence waits for the lock, and the runtime keeps
    // serving: pings, and no READY=1 while the lock is held.
    watcher.pings(3, false);
    lock.unlock().unwrap();
    watcher.wait_ready();

    // The same during a repair: the removal waits for the lock, pinging.
    lock.lock().unwrap();
    let attempts = count(&watcher.log(), "converge: locking");
    ns.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"]);
    let waiting = wait_for(EVENT_BOUND, || {
        count(&watcher.log(), "converge: locking") > attempts
    });
    assert!(waiting.is_some(), "no repair attempt:\n{}", watcher.log());
    watcher.pings(3, true);
    assert!(!has(&ns, VIP4), "repaired while the test held the lock");
    lock.unlock().unwrap();
    let back = wait_for(EVENT_BOUND, || has(&ns, VIP4));
    assert!(back.is_some(), "{VIP4} not back:\n{}", watcher.log());
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn lo_down_and_up_restores_the_vips() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    let watcher = Watcher::start(&ns, &config, &["--interval", "30"]);
    ns.ip(&["link", "set", "lo", "down"]);
    ns.ip(&["link", "set", "lo", "up"]);
    let back = wait_for(EVENT_BOUND, || has(&ns, VIP6) && has(&ns, VIP4));
    assert!(back.is_some(), "not restored:\n{}", watcher.log());
    assert!(ns.ip(&["link", "show", "lo"]).contains(",UP"));
    let (code, _) = watcher.terminate();
    assert_eq!(code, 0);
    // lo was up before the agent: stop leaves it up.
    ns.stop().ok();
    assert!(ns.ip(&["link", "show", "lo"]).contains(",UP"));
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn sysctl_changed_by_someone_else_is_repaired_and_stop_restores_the_original() {
    let ns = Netns::new(3, 1);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let watcher = Watcher::start(&ns, &config, &["--interval", "0.5"]);
    assert_eq!(ns.sysctl("all", "arp_ignore"), 1);
    ns.write_sysctl("all", "arp_ignore", 0);
    let repaired = wait_for(EVENT_BOUND, || ns.sysctl("all", "arp_ignore") == 1);
    assert!(repaired.is_some(), "not repaired:\n{}", watcher.log());
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0);
    assert!(
        log.contains("drift repaired: set net.ipv4.conf.all.arp_ignore = 1 (was 0)"),
        "{log}"
    );
    ns.stop().ok();
    assert_eq!(ns.sysctl("all", "arp_ignore"), 3);
    assert_eq!(ns.sysctl("all", "arp_announce"), 1);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn sighup_reloads_and_converges() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&["203.0.113.21", "203.0.113.22"]));
    let watcher = Watcher::start(&ns, &config, &["--interval", "30"]);
    config.set(&vips(&["203.0.113.22", "203.0.113.23"]));
    watcher.signal("HUP");
    let converged = wait_for(EVENT_BOUND, || {
        !has(&ns, "203.0.113.21") && has(&ns, "203.0.113.23")
    });
    assert!(converged.is_some(), "not converged after SIGHUP");
    assert!(has(&ns, "203.0.113.22"));
    // A broken config on SIGHUP is reported, and the running one stays in
    // force: a VIP of it removed now is repaired.
    config.set("[[vip]]\naddress = \"nope\"\n");
    watcher.signal("HUP");
    watcher.wait_for_log("SIGHUP: keeping the running configuration");
    ns.ip(&["addr", "del", "203.0.113.23/32", "dev", "lo"]);
    let back = wait_for(EVENT_BOUND, || has(&ns, "203.0.113.23"));
    assert!(back.is_some(), "{}", watcher.log());
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0);
    assert!(log.contains("config.toml:2:11"), "{log}");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn sigterm_exits_zero_and_leaves_the_vips() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let watcher = Watcher::start(&ns, &config, &[]);
    let (code, _) = watcher.terminate();
    assert_eq!(code, 0);
    assert!(has(&ns, VIP4));
    assert_eq!(ns.sysctl("all", "arp_ignore"), 1);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn rollback_on_exit_undoes_everything() {
    let ns = Netns::new(0, 0);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    let watcher = Watcher::start(&ns, &config, &["--rollback-on-exit"]);
    assert!(has(&ns, VIP4));
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0, "{log}");
    assert_eq!(ns.snapshot(), before);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn a_fight_is_rate_limited_not_a_spin() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let started = Instant::now();
    let watcher = Watcher::start(&ns, &config, &["--interval", "30"]);
    let converges_at_ready = count(&watcher.log(), "converge: observing");
    // Another "network manager" deletes the VIP whenever it sees it, until
    // the watch says it is rate-limiting, and for a while after.
    let mut deletions = 0;
    let mut limited_at: Option<Instant> = None;
    let fight_limit = Instant::now() + Duration::from_secs(60);
    while limited_at.is_none_or(|t| t.elapsed() < 2 * REPAIR_REFILL) {
        assert!(
            Instant::now() < fight_limit,
            "never rate-limited:\n{}",
            watcher.log()
        );
        let out = Command::new("ip")
            .args([
                "-n",
                ns.name(),
                "addr",
                "del",
                &format!("{VIP4}/32"),
                "dev",
                "lo",
            ])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        deletions += usize::from(out.success());
        if limited_at.is_none() && watcher.log().contains("repairs rate-limited") {
            limited_at = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, log) = watcher.terminate();
    let elapsed = started.elapsed();
    assert_eq!(code, 0);
    // The limiter's bound over the watch's whole life, from measured time.
    let bound = RateLimiter::max_allowed(REPAIR_BURST, REPAIR_REFILL, elapsed) as usize;
    let repairs = count(&log, "drift repaired: add");
    assert!(
        repairs >= 1 && repairs <= bound,
        "{repairs} repairs for {deletions} deletions in {elapsed:?} (bound {bound}):\n{log}"
    );
    // No spin: every convergence after the start is a rate-limited repair.
    let converges = count(&log, "converge: observing") - converges_at_ready;
    assert!(
        converges <= bound,
        "{converges} convergences (bound {bound}):\n{log}"
    );
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn an_idle_watch_only_reads_the_sysctls() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    let interval = Duration::from_millis(500);
    let watcher = Watcher::start(&ns, &config, &["--interval", "0.5"]);
    let at_ready = watcher.log();
    let ready = Instant::now();
    // Idle until a handful of sysctl checks have run (counted, not timed).
    let checks_wanted = 6;
    let idle = wait_for(Duration::from_secs(60), || {
        count(&watcher.log(), "sysctl check") - count(&at_ready, "sysctl check") >= checks_wanted
    });
    assert!(idle.is_some(), "{}", watcher.log());
    let (code, log) = watcher.terminate();
    let elapsed = ready.elapsed();
    assert_eq!(code, 0);
    let after = &log[at_ready.len()..];
    let intervals = (elapsed.as_nanos() / interval.as_nanos()) as usize;
    // One sysctl check per interval, one full convergence every 12, and
    // nothing else (the event that may follow the start aside).
    let checks = count(after, "sysctl check");
    let full = count(after, "full check");
    let converges = count(after, "converge: observing");
    assert!(
        checks + full <= intervals + 1,
        "{checks}+{full} checks in {intervals} intervals:\n{log}"
    );
    assert!(
        converges <= intervals / 12 + 1,
        "{converges} convergences in {intervals} intervals:\n{log}"
    );
    assert_eq!(count(after, "drift repaired"), 0, "{log}");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn status_warns_about_sysctl_d_files_that_undo_the_agent() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    ns.start(&config.path).ok();
    // A private mount namespace with an empty tmpfs over /etc/sysctl.d, so
    // the machine's own files are neither read nor touched.
    let script = format!(
        "mount -t tmpfs none /etc/sysctl.d && \
         printf '# vendor defaults\\nnet.ipv4.conf.all.arp_ignore = 0\\n' > /etc/sysctl.d/10-undo.conf && \
         {agent} --netns {ns} --state-dir {state} status --config {config}",
        agent = common::AGENT,
        ns = ns.name(),
        state = ns.state_dir().display(),
        config = config.path.display(),
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(
            "warning: /etc/sysctl.d/10-undo.conf:2 sets net.ipv4.conf.all.arp_ignore = 0"
        ),
        "{stdout}"
    );
    // A warning, not drift: the running system is right.
    assert!(stdout.ends_with("in sync\n"), "{stdout}");
}
