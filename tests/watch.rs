//! Root tests of `rs-agent watch` against the real kernel, each in its own
//! network namespace, ignored unless run with `--ignored` as root (see
//! tests/root.rs for the gating).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ConfigFile, Netns, vips};

const VIP4: &str = "203.0.113.20";
const VIP6: &str = "2001:db8::20";

/// A running `rs-agent watch`, with its sd_notify socket.
struct Watcher {
    child: Child,
    notify: UnixDatagram,
    _notify_dir: tempfile::TempDir,
}

impl Watcher {
    fn start(ns: &Netns, config: &ConfigFile, extra: &[&str]) -> Watcher {
        let notify_dir = tempfile::tempdir().unwrap();
        let notify_path = notify_dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let child = Command::new(common::AGENT)
            .args(["--netns", &ns.name, "--state-dir"])
            .arg(ns.state_dir())
            .args(["-v", "watch", "--config"])
            .arg(&config.path)
            .args(extra)
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut watcher = Watcher {
            child,
            notify,
            _notify_dir: notify_dir,
        };
        let ready = watcher.next_notification();
        assert!(ready.contains("READY=1"), "{ready}");
        watcher
    }

    fn next_notification(&mut self) -> String {
        let mut buf = [0u8; 4096];
        let n = self
            .notify
            .recv(&mut buf)
            .expect("no sd_notify message within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
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
        let deadline = Instant::now() + Duration::from_secs(10);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "watch did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut log = String::new();
        let stderr = self.child.stderr.take().unwrap();
        for line in BufReader::new(stderr).lines() {
            log.push_str(&line.unwrap());
            log.push('\n');
        }
        (code, log)
    }

    /// User plus system CPU time of the process, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
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

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn deleted_vips_come_back_within_a_second() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    let watcher = Watcher::start(&ns, &config, &[]);
    assert!(has(&ns, VIP4) && has(&ns, VIP6));
    for (address, prefix) in [(VIP4, 32), (VIP6, 128)] {
        ns.ip(&["addr", "del", &format!("{address}/{prefix}"), "dev", "lo"]);
        let took = wait_for(Duration::from_secs(3), || has(&ns, address))
            .unwrap_or_else(|| panic!("{address} not back within 3 s"));
        assert!(
            took < Duration::from_secs(1),
            "{address} back after {took:?}"
        );
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
fn lo_down_and_up_restores_the_vips() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    let watcher = Watcher::start(&ns, &config, &[]);
    ns.ip(&["link", "set", "lo", "down"]);
    ns.ip(&["link", "set", "lo", "up"]);
    let took = wait_for(Duration::from_secs(3), || has(&ns, VIP6) && has(&ns, VIP4));
    assert!(took.is_some_and(|t| t < Duration::from_secs(1)), "{took:?}");
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
    let took = wait_for(Duration::from_secs(3), || {
        ns.sysctl("all", "arp_ignore") == 1
    })
    .expect("arp_ignore not repaired within 3 s");
    assert!(
        took < Duration::from_millis(1500),
        "repaired after {took:?}"
    );
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
    let watcher = Watcher::start(&ns, &config, &[]);
    config.set(&vips(&["203.0.113.22", "203.0.113.23"]));
    watcher.signal("HUP");
    let took = wait_for(Duration::from_secs(3), || {
        !has(&ns, "203.0.113.21") && has(&ns, "203.0.113.23")
    });
    assert!(took.is_some(), "not converged after SIGHUP");
    assert!(has(&ns, "203.0.113.22"));
    // A broken config on SIGHUP keeps the running one.
    config.set("[[vip]]\naddress = \"nope\"\n");
    watcher.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(has(&ns, "203.0.113.23"));
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0);
    assert!(
        log.contains("SIGHUP: keeping the running configuration"),
        "{log}"
    );
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
    let watcher = Watcher::start(&ns, &config, &[]);
    let cpu_before = watcher.cpu_ticks();
    // Another "network manager" deletes the VIP whenever it sees it, for 4 s.
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut deletions = 0;
    while Instant::now() < deadline {
        let out = Command::new("ip")
            .args([
                "-n",
                &ns.name,
                "addr",
                "del",
                &format!("{VIP4}/32"),
                "dev",
                "lo",
            ])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if out.success() {
            deletions += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu = watcher.cpu_ticks() - cpu_before;
    let (code, log) = watcher.terminate();
    assert_eq!(code, 0);
    let repairs = log.matches("drift repaired: add").count();
    // A burst of 5, then one every 2 s: about 7 in 4 s, never one per deletion.
    assert!(
        (5..=9).contains(&repairs),
        "{repairs} repairs for {deletions} deletions:\n{log}"
    );
    assert!(log.contains("repairs rate-limited"), "{log}");
    assert!(cpu < 100, "{cpu} ticks of CPU during the fight");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn idle_watch_uses_no_cpu() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    let watcher = Watcher::start(&ns, &config, &["--interval", "1"]);
    let before = watcher.cpu_ticks();
    std::thread::sleep(Duration::from_secs(10));
    let used = watcher.cpu_ticks() - before;
    // Ten sysctl checks in 10 s: well under 5 ticks (50 ms at 100 Hz).
    assert!(used <= 5, "idle watch used {used} ticks in 10 s");
    let (code, _) = watcher.terminate();
    assert_eq!(code, 0);
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
        ns = ns.name,
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
