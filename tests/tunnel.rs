//! Root tests of tunnel mode against a kernel with ipip, fou and ip_gre:
//! the VM's (this machine's kernel has none of them). Each test creates its
//! own namespaces. They are `#[ignore]`d like the other root tests, and run
//! with `--ignored` inside the VM by tests/vm/scenarios/43-tunnel-root-tests.sh
//! and 44-tunnel-root-tests-failures.sh (`VM_SUITE_GUEST=1` there): some
//! change settings of the whole (throwaway) machine, so they refuse to run
//! anywhere else.

mod common;

use std::time::{Duration, Instant};

use common::{ConfigFile, Netns, Run, vips};
use lvs_testkit::sh;

const VIP: &str = "203.0.113.40";
const VM_ONLY: &str = "runs only in the VM suite (VM_SUITE_GUEST=1): it loads and unloads modules and changes machine-wide settings";

fn in_vm() {
    assert_eq!(
        std::env::var("VM_SUITE_GUEST").as_deref(),
        Ok("1"),
        "{VM_ONLY}"
    );
}

fn config(kind: &str, port: Option<u16>) -> ConfigFile {
    let port = port.map_or(String::new(), |p| format!("port = {p}\n"));
    ConfigFile::new(&format!(
        "[tunnel]\ntype = \"{kind}\"\n{port}{}",
        vips(&[VIP])
    ))
}

/// A namespace with rp_filter strict on `all` (what a distribution may
/// ship), so the agent has something to change and put back.
fn strict_netns() -> Netns {
    let ns = Netns::new(0, 0);
    ns.write_sysctl("all", "rp_filter", 1);
    ns.write_sysctl("default", "rp_filter", 1);
    ns
}

/// The namespace's snapshot, but for the qdisc of the tunnel devices:
/// bringing a device up attaches its default qdisc (noqueue), which stays
/// when it goes down again (the kernel never detaches it); it holds no
/// state and changes nothing for a down device.
fn snapshot(ns: &Netns) -> String {
    ns.snapshot()
        .lines()
        .map(|line| {
            if line.contains(": tunl0@") || line.contains(": gre0@") {
                line.replace("qdisc noqueue", "qdisc noop")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `dev` is up; None if it does not exist. From a dump of every
/// link: asking for one by name (`ip link show dev gre0`) makes the kernel
/// load the module that provides that name (SIOCGIFINDEX -> netdev-gre0).
fn link_up(ns: &Netns, dev: &str) -> Option<bool> {
    let links: serde_json::Value = serde_json::from_str(&ns.ip(&["-j", "link", "show"])).unwrap();
    let link = links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == dev)?;
    let flags = link["flags"].as_array().unwrap();
    Some(flags.iter().any(|f| f == "UP"))
}

fn fou_ports(ns: &Netns) -> String {
    ns.ip(&["fou", "show"])
}

fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Start twice (the second changes nothing), check the receive side, stop:
/// the namespace is exactly as before.
fn start_check_stop(ns: &Netns, config: &ConfigFile, device: &str) -> serde_json::Value {
    let before = snapshot(ns);
    ns.start(&config.path).ok();
    assert_eq!(link_up(ns, device), Some(true));
    assert_eq!(ns.sysctl("all", "rp_filter"), 0);
    assert_eq!(ns.sysctl(device, "rp_filter"), 0);
    assert!(ns.addresses("lo").contains(&format!("{VIP}/32")));
    let run = ns.start(&config.path).ok();
    assert_eq!(run.stdout, "start: no changes needed\n");
    let json = ns.json("status", &config.path);
    assert_eq!(json["in_sync"], true, "{json}");
    assert_eq!(json["agent_answer"], "up", "{json}");
    assert_eq!(json["tunnel"]["device"], device);
    assert_eq!(json["tunnel"]["up"], true);
    let rp = json["tunnel"]["rp_filter"].as_array().unwrap();
    assert!(
        rp.iter()
            .any(|r| r["interface"] == device && r["in_force"] == 0),
        "{json}"
    );
    ns.agent(&["check", "--config", config.path.to_str().unwrap()])
        .ok();
    ns.stop().ok();
    assert_eq!(snapshot(ns), before);
    assert!(ns.records().is_empty());
    json
}

#[test]
#[ignore = "needs root and a kernel with ipip, fou and ip_gre: run by the VM suite (scenarios 43, 44)"]
fn ipip_start_is_idempotent_and_stop_restores_exactly() {
    in_vm();
    sh("modprobe", &["ipip"]);
    let ns = strict_netns();
    assert_eq!(link_up(&ns, "tunl0"), Some(false));
    let json = start_check_stop(&ns, &config("ipip", None), "tunl0");
    assert_eq!(json["tunnel"]["created_by_agent"], false);
    assert_eq!(link_up(&ns, "tunl0"), Some(false));
    assert_eq!(ns.sysctl("all", "rp_filter"), 1);
}

#[test]
#[ignore = "needs root and a kernel with ipip, fou and ip_gre: run by the VM suite (scenarios 43, 44)"]
fn gue_adds_its_fou_port_and_stop_removes_it() {
    in_vm();
    let ns = strict_netns();
    let config = config("gue", Some(6080));
    let before = snapshot(&ns);
    let run = ns.start(&config.path).ok();
    assert!(
        run.stdout.contains("add FOU port 6080 gue (ipv4)"),
        "{run:#?}"
    );
    let fou = fou_ports(&ns);
    assert!(fou.contains("port 6080 gue"), "{fou}");
    let record = std::fs::read_to_string(&ns.records()[0]).unwrap();
    assert!(record.contains("\"version\": 3"), "{record}");
    let json = ns.json("status", &config.path);
    assert_eq!(json["tunnel"]["fou_port"]["present"], true, "{json}");
    assert_eq!(json["tunnel"]["fou_port"]["origin"], "rs-agent", "{json}");
    assert_eq!(
        ns.start(&config.path).ok().stdout,
        "start: no changes needed\n"
    );
    ns.stop().ok();
    assert_eq!(fou_ports(&ns).trim(), "");
    assert_eq!(snapshot(&ns), before);
}

#[test]
#[ignore = "needs root and a kernel with ipip, fou and ip_gre: run by the VM suite (scenarios 43, 44)"]
fn gre_loads_its_module_on_the_way_and_uses_the_fallback_device() {
    in_vm();
    // Unloaded first, so the kernel loads it for the agent (no modprobe).
    if std::path::Path::new("/sys/module/ip_gre").exists() {
        sh("rmmod", &["ip_gre"]);
    }
    let ns = strict_netns();
    assert_eq!(link_up(&ns, "gre0"), None);
    let config = config("gre", None);
    // The plan creates gre0 (it is missing); asking the kernel loads
    // ip_gre, whose fallback gre0 appears: used, not created.
    let dry = ns.start_dry_run(&config.path);
    assert!(
        dry.stdout.contains("would create gre0 (gre external)"),
        "{dry:#?}"
    );
    let run = ns.start(&config.path).ok();
    assert!(!run.stdout.contains("create gre0"), "{run:#?}");
    assert!(
        run.stdout
            .contains("set net.ipv4.conf.gre0.rp_filter = 0 (was 1)"),
        "{run:#?}"
    );
    assert!(std::path::Path::new("/sys/module/ip_gre").exists());
    assert_eq!(link_up(&ns, "gre0"), Some(true));
    // The fallback device appeared with the module: not the agent's.
    let record = std::fs::read_to_string(&ns.records()[0]).unwrap();
    assert!(!record.contains("links_created"), "{record}");
    assert_eq!(
        ns.json("status", &config.path)["tunnel"]["created_by_agent"],
        false
    );
    ns.stop().ok();
    // Modules are left loaded: gre0 stays, down, rp_filter back.
    assert_eq!(link_up(&ns, "gre0"), Some(false));
    assert_eq!(ns.sysctl("gre0", "rp_filter"), 1);
    assert_eq!(ns.sysctl("all", "rp_filter"), 1);
    // From here on, the usual exact round trip.
    start_check_stop(&ns, &config, "gre0");
}

#[test]
#[ignore = "needs root and a kernel with ipip, fou and ip_gre: run by the VM suite (scenarios 43, 44)"]
fn a_fou_port_of_someone_else_is_refused_and_nothing_changes() {
    in_vm();
    sh("modprobe", &["-a", "ipip", "fou"]);
    let ns = strict_netns();
    let config = config("gue", Some(6080));
    for listener in [&["ipproto", "4"][..], &["gue"][..]] {
        let mut args = vec!["fou", "add", "port", "6080"];
        args.extend_from_slice(listener);
        ns.ip(&args);
        let before = (snapshot(&ns), fou_ports(&ns));
        let run = ns.start(&config.path);
        assert_eq!(run.code, 4, "{listener:?}: {run:#?}");
        assert!(
            run.stderr
                .contains("UDP port 6080 has a FOU listener rs-agent did not add"),
            "{run:#?}"
        );
        assert_eq!((snapshot(&ns), fou_ports(&ns)), before);
        assert!(ns.records().is_empty());
        ns.ip(&["fou", "del", "port", "6080"]);
    }
}

/// Runs `rs-agent start` inside the namespace with a read-only file
/// mounted over one sysctl (in a mount namespace of its own): writing it
/// fails midway, after earlier changes went in.
fn start_with_read_only(ns: &Netns, config: &ConfigFile, sysctl: &str, value: i32) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ro");
    // Not what the agent wants, so it writes, and fails.
    std::fs::write(&file, format!("{value}\n")).unwrap();
    let script = format!(
        "mount --bind -o ro {} {sysctl} && exec {} --state-dir {} start --config {}",
        file.display(),
        common::agent_bin(),
        ns.state_dir().display(),
        config.path.display()
    );
    Run::of(std::process::Command::new("ip").args([
        "netns",
        "exec",
        ns.name(),
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]))
}

#[test]
#[ignore = "needs root and a kernel with ipip, fou and ip_gre: run by the VM suite (scenarios 43, 44)"]
fn a_failure_midway_rolls_back_rp_filter_and_the_device_state() {
    in_vm();
    sh("modprobe", &["ipip"]);
    let ns = strict_netns();
    let config = config("ipip", None);
    let before = snapshot(&ns);
    let run = start_with_read_only(&ns, &config, "/proc/sys/net/ipv4/conf/tunl0/rp_filter", 1);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr
            .contains("cannot write net.ipv4.conf.tunl0.rp_filter"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("the changes of this run were undone"),
        "{run:#?}"
    );
    assert_eq!(snapshot(&ns), before);
    assert_eq!(ns.sysctl("all", "rp_filter"), 1);
    assert!(ns.records().is_empty());
}

/// net.core.fb_tunnels_only_for_init_net, set for the test and put back.
struct NoFallbackDevices(String);

impl NoFallbackDevices {
    const PATH: &str = "/proc/sys/net/core/fb_tunnels_only_for_init_net";

    fn set() -> NoFallbackDevices {
        let old = std::fs::read_to_string(Self::PATH).unwrap();
        std::fs::write(Self::PATH, "1\n").unwrap();
        NoFallbackDevices(old)
    }
}

impl Drop for NoFallbackDevices {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

#[test]
#[ignore = "needs root and a kernel with ipip, fou and ip_gre: run by the VM suite (scenarios 43, 44)"]
fn where_the_namespace_has_no_fallback_device_the_agent_creates_and_deletes_one() {
    in_vm();
    sh("modprobe", &["ipip"]);
    let _guard = NoFallbackDevices::set();
    let ns = strict_netns();
    assert_eq!(
        link_up(&ns, "tunl0"),
        None,
        "a fallback device despite the setting"
    );
    let config = config("ipip", None);
    let before = snapshot(&ns);
    let run = ns.start(&config.path).ok();
    assert!(
        run.stdout.contains("create tunl0 (ipip external)"),
        "{run:#?}"
    );
    let details = ns.ip(&["-d", "link", "show", "dev", "tunl0"]);
    assert!(details.contains("external"), "{details}");
    assert_eq!(link_up(&ns, "tunl0"), Some(true));
    // Its rp_filter started from conf/default (1) and is now 0.
    assert_eq!(ns.sysctl("tunl0", "rp_filter"), 0);
    let json = ns.json("status", &config.path);
    assert_eq!(json["tunnel"]["created_by_agent"], true, "{json}");
    assert_eq!(json["in_sync"], true, "{json}");
    // Deleted by hand: start creates it again.
    ns.ip(&["link", "del", "tunl0"]);
    ns.start(&config.path).ok();
    assert_eq!(link_up(&ns, "tunl0"), Some(true));
    ns.stop().ok();
    assert_eq!(link_up(&ns, "tunl0"), None);
    assert_eq!(snapshot(&ns), before);

    // A failure after the creation deletes the device again.
    ns.ip(&[
        "link", "add", "nic0", "type", "veth", "peer", "name", "nic1",
    ]);
    let before = snapshot(&ns);
    let with_nic = ConfigFile::new(&format!(
        "[arp]\ninterfaces = [\"all\", \"nic0\"]\n[tunnel]\ntype = \"ipip\"\n{}",
        vips(&[VIP])
    ));
    let run = start_with_read_only(&ns, &with_nic, "/proc/sys/net/ipv4/conf/nic0/arp_ignore", 0);
    assert_eq!(run.code, 5, "{run:#?}");
    assert_eq!(link_up(&ns, "tunl0"), None, "{run:#?}");
    assert_eq!(snapshot(&ns), before);
    assert!(ns.records().is_empty());
}

#[test]
#[ignore = "needs root and a kernel with ipip, fou and ip_gre: run by the VM suite (scenarios 43, 44)"]
fn watch_repairs_a_downed_device_a_reset_rp_filter_and_a_removed_fou_port() {
    in_vm();
    sh("modprobe", &["-a", "ipip", "fou"]);
    let ns = strict_netns();
    let config = config("gue", Some(6080));
    let before = snapshot(&ns);
    let mut child = std::process::Command::new(common::agent_bin())
        .args(["--netns", ns.name(), "--state-dir"])
        .arg(ns.state_dir())
        .args(["watch", "--interval", "0.2", "--config"])
        .arg(&config.path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let bound = Duration::from_secs(60);
    assert!(wait_for(bound, || link_up(&ns, "tunl0") == Some(true)));
    assert!(wait_for(bound, || fou_ports(&ns).contains("port 6080 gue")));

    ns.ip(&["link", "set", "tunl0", "down"]);
    assert!(
        wait_for(bound, || link_up(&ns, "tunl0") == Some(true)),
        "tunl0 stays down"
    );
    // What systemd's sysctl.d (rp_filter = 2 on every interface) would do.
    ns.write_sysctl("tunl0", "rp_filter", 2);
    ns.write_sysctl("all", "rp_filter", 2);
    assert!(
        wait_for(bound, || ns.sysctl("tunl0", "rp_filter") == 0
            && ns.sysctl("all", "rp_filter") == 0),
        "rp_filter not repaired"
    );
    ns.ip(&["fou", "del", "port", "6080"]);
    assert!(
        wait_for(bound, || fou_ports(&ns).contains("port 6080 gue")),
        "FOU port not back"
    );

    sh("kill", &["-TERM", &child.id().to_string()]);
    let deadline = Instant::now() + bound;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "watch did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    // The values from before the agent are still the ones stop restores.
    ns.stop().ok();
    assert_eq!(snapshot(&ns), before);
    assert_eq!(fou_ports(&ns).trim(), "");
}
