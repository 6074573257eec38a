//! Root tests against the real kernel. Each test creates its own network
//! namespace; the suite runs inside a throwaway namespace of its own
//! (scripts/test-all.sh), so nothing here can reach the machine's network.
//! Every test is `#[ignore = "needs root: ..."]`: a plain `cargo test` reports
//! them as ignored (never as passed), and scripts/test-all.sh runs them as
//! root with `--ignored`, where they fail, never skip, without root.

mod common;
// Drain, Prometheus output, tunnel refusals: tests/root/drain.rs.
#[path = "root/drain.rs"]
mod drain;

use std::process::Command;

use common::{ConfigFile, Netns, Run, vips};

const VIP4: &str = "203.0.113.10";
const VIP6: &str = "2001:db8::10";

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn start_adds_vips_and_sets_arp() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&format!(
        "{}label = \"lo:0\"\n{}",
        vips(&[VIP4]),
        vips(&[VIP6])
    ));
    let run = ns.start(&config.path).ok();
    assert!(run.stdout.contains("start: 4 change(s) made"), "{run:#?}");
    assert_eq!(ns.sysctl("all", "arp_ignore"), 1);
    assert_eq!(ns.sysctl("all", "arp_announce"), 2);
    let lo = ns.ip(&["addr", "show", "dev", "lo"]);
    assert!(
        lo.contains(&format!("inet {VIP4}/32 scope global lo:0")),
        "{lo}"
    );
    // IPv6: /128, no DAD, deprecated (preferred lifetime 0).
    let line = lo.lines().find(|l| l.contains(VIP6)).unwrap();
    assert!(line.contains(&format!("{VIP6}/128")), "{lo}");
    assert!(
        line.contains("nodad") && line.contains("deprecated"),
        "{lo}"
    );
    assert!(lo.contains("preferred_lft 0sec"), "{lo}");
    // The lo sysctls are not touched: ARP requests arrive on the NICs.
    assert_eq!(ns.sysctl("lo", "arp_ignore"), 0);
    assert_eq!(ns.records().len(), 1);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn second_start_changes_nothing_and_says_so() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    ns.start(&config.path).ok();
    let before = ns.snapshot();
    let run = ns.start(&config.path).ok();
    assert_eq!(run.stdout, "start: no changes needed\n");
    assert_eq!(ns.snapshot(), before);
    let json = ns.json("start", &config.path);
    assert_eq!(json["changed"], false);
    assert_eq!(json["changes"].as_array().unwrap().len(), 0);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn start_json_reports_changes() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let json = ns
        .agent(&[
            "start",
            "--config",
            config.path.to_str().unwrap(),
            "--output",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(json["changed"], true);
    let actions: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["set_sysctl", "set_sysctl", "add_address"]);
    assert_eq!(json["changes"][2]["address"], VIP4);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn start_converges_after_config_change() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&["203.0.113.1", "203.0.113.2"]));
    ns.start(&config.path).ok();
    config.set(&vips(&["203.0.113.2", "203.0.113.3"]));
    let run = ns.start(&config.path).ok();
    assert_eq!(
        run.stdout,
        "remove 203.0.113.1/32 from lo\nadd 203.0.113.3/32 to lo\nstart: 2 change(s) made\n"
    );
    let lo = ns.addresses("lo");
    assert!(!lo.contains(&"203.0.113.1/32".to_string()), "{lo:?}");
    assert!(lo.contains(&"203.0.113.2/32".to_string()), "{lo:?}");
    assert!(lo.contains(&"203.0.113.3/32".to_string()), "{lo:?}");
    // Stop removes what the agent holds now, all of it.
    ns.stop().ok();
    assert_eq!(ns.addresses("lo"), vec!["127.0.0.1/8", "::1/128"]);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn stop_restores_exactly_and_second_stop_is_a_no_op() {
    let ns = Netns::new(0, 0);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4, VIP6]));
    ns.start(&config.path).ok();
    assert_ne!(ns.snapshot(), before);
    ns.stop().ok();
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty(), "record left: {:?}", ns.records());
    let run = ns.stop().ok();
    assert_eq!(run.stdout, "stop: no changes needed\n");
    assert_eq!(ns.snapshot(), before);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn stop_works_when_the_config_is_gone() {
    let ns = Netns::new(0, 0);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4]));
    ns.start(&config.path).ok();
    std::fs::remove_file(&config.path).unwrap();
    ns.agent(&["stop", "--config", config.path.to_str().unwrap()])
        .ok();
    assert_eq!(ns.snapshot(), before);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn stop_restores_non_default_prior_values() {
    let ns = Netns::new(3, 1);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4]));
    ns.start(&config.path).ok();
    assert_eq!(
        (
            ns.sysctl("all", "arp_ignore"),
            ns.sysctl("all", "arp_announce")
        ),
        (1, 2)
    );
    // A second start must not record the agent's own values as the originals.
    ns.start(&config.path).ok();
    ns.stop().ok();
    assert_eq!(
        (
            ns.sysctl("all", "arp_ignore"),
            ns.sysctl("all", "arp_announce")
        ),
        (3, 1)
    );
    assert_eq!(ns.snapshot(), before);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn stop_leaves_a_value_someone_else_changed() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    ns.start(&config.path).ok();
    ns.write_sysctl("all", "arp_ignore", 2);
    let run = ns.stop().ok();
    assert_eq!(ns.sysctl("all", "arp_ignore"), 2);
    assert_eq!(ns.sysctl("all", "arp_announce"), 0);
    assert!(
        run.stderr
            .contains("net.ipv4.conf.all.arp_ignore left at 2"),
        "{run:#?}"
    );
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn preexisting_vip_is_never_removed() {
    let ns = Netns::new(0, 0);
    ns.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"]);
    let config = ConfigFile::new(&vips(&[VIP4, "203.0.113.11"]));
    ns.start(&config.path).ok();
    let status = ns
        .agent(&["status", "--config", config.path.to_str().unwrap()])
        .ok();
    assert!(
        status.stdout.contains("on lo (pre-existing)"),
        "{status:#?}"
    );
    ns.stop().ok();
    let lo = ns.addresses("lo");
    assert!(lo.contains(&format!("{VIP4}/32")), "{lo:?}");
    assert!(!lo.contains(&"203.0.113.11/32".to_string()), "{lo:?}");
    // Removing it from the config does not remove it either.
    ns.start(&config.path).ok();
    config.set(&vips(&["203.0.113.11"]));
    ns.start(&config.path).ok();
    assert!(ns.addresses("lo").contains(&format!("{VIP4}/32")));
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn vip_on_a_nic_is_refused_before_any_change() {
    let ns = Netns::new(0, 0);
    ns.ip(&[
        "link", "add", "nic0", "type", "veth", "peer", "name", "nic0p",
    ]);
    ns.ip(&["addr", "add", &format!("{VIP4}/24"), "dev", "nic0"]);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&["203.0.113.99", VIP4]));
    let run = ns.start(&config.path);
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.stderr
            .contains(&format!("VIP {VIP4} is configured on nic0")),
        "{run:#?}"
    );
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty());
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn failure_midway_rolls_back_everything() {
    let ns = Netns::new(0, 0);
    // A real kernel failure: IPv6 disabled on lo refuses the IPv6 VIP after
    // the sysctls and the IPv4 VIPs went in.
    let out = ns.exec(&[
        "sh",
        "-c",
        "echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6",
    ]);
    assert!(out.status.success());
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&["203.0.113.1", "203.0.113.2", VIP6, "203.0.113.3"]));
    let run = ns.start(&config.path);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains(&format!("cannot add {VIP6}/128 to lo")),
        "{run:#?}"
    );
    assert!(run.stderr.contains("disable_ipv6"), "{run:#?}");
    assert!(
        run.stderr.contains("the changes of this run were undone"),
        "{run:#?}"
    );
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty(), "{:?}", ns.records());

    // A failing converge of an already started agent returns to the started state.
    let good = ConfigFile::new(&vips(&["203.0.113.1"]));
    ns.start(&good.path).ok();
    let started = ns.snapshot();
    let record = std::fs::read_to_string(&ns.records()[0]).unwrap();
    let run = ns.start(&config.path);
    assert_eq!(run.code, 5, "{run:#?}");
    assert_eq!(ns.snapshot(), started);
    assert_eq!(std::fs::read_to_string(&ns.records()[0]).unwrap(), record);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn namespaces_keep_separate_records() {
    let a = Netns::new(0, 0);
    let b = Netns::new(0, 0);
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let config_a = ConfigFile::new(&vips(&["203.0.113.1"]));
    let config_b = ConfigFile::new(&vips(&["203.0.113.2"]));
    let before_a = a.snapshot();
    let run = |ns: &Netns, args: &[&str]| {
        let mut full = vec!["--netns", ns.name(), "--state-dir", dir];
        full.extend_from_slice(args);
        Run::of(Command::new(common::AGENT).args(&full)).ok()
    };
    run(&a, &["start", "--config", config_a.path.to_str().unwrap()]);
    run(&b, &["start", "--config", config_b.path.to_str().unwrap()]);
    let records = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "json")
        .count();
    assert_eq!(records, 2);
    run(&a, &["stop"]);
    assert_eq!(a.snapshot(), before_a);
    assert_eq!(
        b.addresses("lo"),
        vec!["127.0.0.1/8", "203.0.113.2/32", "::1/128"]
    );
    assert_eq!(b.sysctl("all", "arp_ignore"), 1);
}

/// `count` simultaneous `rs-agent start` runs in `ns`, each successful.
fn parallel_starts(ns: &Netns, config: &ConfigFile, count: usize) -> Vec<Run> {
    let handles: Vec<_> = (0..count)
        .map(|_| {
            let mut command = Command::new(common::AGENT);
            command
                .args(["--netns", ns.name(), "--state-dir"])
                .arg(ns.state_dir())
                .args(["start", "--config"])
                .arg(&config.path);
            std::thread::spawn(move || Run::of(&mut command))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap().ok())
        .collect()
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn concurrent_starts_serialize() {
    let ns = Netns::new(2, 0);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4, VIP6, "203.0.113.11"]));
    parallel_starts(&ns, &config, 8);
    let lo = ns.addresses("lo");
    assert_eq!(
        lo.iter().filter(|a| a.starts_with(VIP4)).count(),
        1,
        "{lo:?}"
    );
    ns.stop().ok();
    assert_eq!(ns.snapshot(), before);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn concurrent_first_starts_record_the_true_originals() {
    let ns = Netns::new(3, 1);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4]));
    let runs = parallel_starts(&ns, &config, 6);
    let changed = runs
        .iter()
        .filter(|r| r.stdout.contains("change(s) made"))
        .count();
    assert_eq!(changed, 1, "exactly one run changes something: {runs:#?}");
    ns.stop().ok();
    assert_eq!(ns.snapshot(), before);
}

fn assert_rejected(ns: &Netns, config_text: Option<&str>, code: i32, needle: &str) {
    let before = ns.snapshot();
    let config = ConfigFile::new(config_text.unwrap_or(""));
    if config_text.is_none() {
        std::fs::remove_file(&config.path).unwrap();
    }
    let run = ns.start(&config.path);
    assert_eq!(run.code, code, "{config_text:?}: {run:#?}");
    assert!(
        run.stderr.contains(needle),
        "{config_text:?}: expected {needle:?} in {run:#?}"
    );
    assert_eq!(
        ns.snapshot(),
        before,
        "{config_text:?} changed the namespace"
    );
    assert!(ns.records().is_empty(), "{config_text:?} wrote a record");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn bad_input_changes_nothing() {
    let ns = Netns::new(0, 0);
    let cases: &[(Option<&str>, &str)] = &[
        (None, "cannot read configuration: No such file"),
        (
            Some("[[vip]\naddress = \"203.0.113.1\"\n"),
            "config.toml:1:",
        ),
        (
            Some("[[vip]]\naddress = \"203.0.113.1\"\nlable = \"lo:0\"\n"),
            "config.toml:3:1: unknown field `lable`",
        ),
        (
            Some("[[vip]]\naddress = \"203.0.113.300\"\n"),
            "config.toml:2:11: \"203.0.113.300\" is not an IP address",
        ),
        (
            Some("[[vip]]\naddress = \"0.0.0.0\"\n"),
            "config.toml:2:11: 0.0.0.0 cannot be a VIP: it is the unspecified address",
        ),
        (Some("[[vip]]\naddress = \"::\"\n"), "unspecified"),
        (Some("[[vip]]\naddress = \"127.0.0.5\"\n"), "loopback"),
        (Some("[[vip]]\naddress = \"239.1.1.1\"\n"), "multicast"),
        (
            Some("[[vip]]\naddress = \"255.255.255.255\"\n"),
            "broadcast",
        ),
        (
            Some("[[vip]]\naddress = \"203.0.113.1\"\n[[vip]]\naddress = \"203.0.113.1\"\n"),
            "config.toml:4:11: VIP 203.0.113.1 is listed twice (first on line 2)",
        ),
        (
            Some("[arp]\nignore = 5\n[[vip]]\naddress = \"203.0.113.1\"\n"),
            "config.toml:2:10: ignore = 5 is out of range",
        ),
        (
            Some("[arp]\nannounce = 3\n"),
            "config.toml:2:12: announce = 3 is out of range",
        ),
        (Some("[arp]\ninterfaces = [\"a/b\"]\n"), "config.toml:2:15:"),
    ];
    for (text, needle) in cases {
        assert_rejected(&ns, *text, 2, needle);
    }
    // Valid syntax, but the system has no such interface: refused, exit 4.
    assert_rejected(
        &ns,
        Some("[arp]\ninterfaces = [\"all\", \"nosuch0\"]\n[[vip]]\naddress = \"203.0.113.1\"\n"),
        4,
        "interface \"nosuch0\" of [arp] interfaces does not exist",
    );
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn without_privileges_nothing_changes() {
    let ns = Netns::new(0, 0);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4]));
    config.make_world_readable();
    for command in ["start", "stop"] {
        let out = ns.exec_as_nobody(&[
            common::AGENT,
            "--state-dir",
            ns.state_dir().to_str().unwrap(),
            command,
            "--config",
            config.path.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{command}: {stderr}");
        assert!(stderr.contains("needs root or CAP_NET_ADMIN"), "{stderr}");
    }
    // --netns needs CAP_SYS_ADMIN to enter the namespace.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(common::AGENT)
        .args(["--netns", ns.name(), "start", "--config"])
        .arg(&config.path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty());
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn unknown_netns_is_an_error() {
    let config = ConfigFile::new(&vips(&[VIP4]));
    let run = Run::of(Command::new(common::AGENT).args([
        "--netns",
        "rsa-no-such-namespace",
        "start",
        "--config",
        config.path.to_str().unwrap(),
    ]));
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(run.stderr.contains("rsa-no-such-namespace"), "{run:#?}");
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn netns_option_is_the_same_as_running_inside() {
    // Without --netns the agent works in the namespace it runs in.
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let out = ns.exec(&[
        common::AGENT,
        "--state-dir",
        ns.state_dir().to_str().unwrap(),
        "start",
        "--config",
        config.path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(ns.addresses("lo").contains(&format!("{VIP4}/32")));
    // ... and --netns finds the same record.
    let run = ns.start(&config.path).ok();
    assert_eq!(run.stdout, "start: no changes needed\n");
    ns.stop().ok();
    assert!(!ns.addresses("lo").contains(&format!("{VIP4}/32")));
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn dry_run_changes_nothing() {
    let ns = Netns::new(0, 0);
    let before = ns.snapshot();
    let config = ConfigFile::new(&vips(&[VIP4]));
    let run = ns.start_dry_run(&config.path);
    assert!(
        run.stdout.contains(&format!("would add {VIP4}/32 to lo")),
        "{run:#?}"
    );
    assert!(run.stdout.contains("dry run"), "{run:#?}");
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty());
    ns.start(&config.path).ok();
    let started = ns.snapshot();
    let run = ns.agent(&["stop", "--dry-run"]).ok();
    assert!(
        run.stdout
            .contains(&format!("would remove {VIP4}/32 from lo")),
        "{run:#?}"
    );
    assert_eq!(ns.snapshot(), started);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn lo_down_is_brought_up_and_put_back() {
    let ns = Netns::new(0, 0);
    ns.ip(&["link", "set", "lo", "down"]);
    let config = ConfigFile::new(&vips(&[VIP4]));
    ns.start(&config.path).ok();
    assert!(ns.ip(&["link", "show", "lo"]).contains(",UP"));
    ns.stop().ok();
    assert!(!ns.ip(&["link", "show", "lo"]).contains(",UP"));
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn check_and_status_report_drift() {
    let ns = Netns::new(0, 0);
    ns.ip(&[
        "link", "add", "nic0", "type", "veth", "peer", "name", "nic0p",
    ]);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let path = config.path.to_str().unwrap();
    let run = ns.agent(&["check", "--config", path]);
    assert_eq!(run.code, 1, "{run:#?}");
    ns.start(&config.path).ok();
    let run = ns.agent(&["check", "--config", path]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.ends_with("in sync\n"), "{run:#?}");

    ns.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"]);
    ns.write_sysctl("nic0", "arp_ignore", 0);
    ns.write_sysctl("all", "arp_ignore", 0);
    let run = ns.agent(&["check", "--config", path]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stdout
            .contains(&format!("drift: VIP {VIP4} is not on lo")),
        "{run:#?}"
    );
    assert!(
        run.stdout.contains("drift: nic0 answers ARP for the VIPs"),
        "{run:#?}"
    );
    let json = ns
        .agent(&["status", "--output", "json", "--config", path])
        .ok()
        .json();
    assert_eq!(json["in_sync"], false);
    let nic0 = |json: &serde_json::Value| {
        json["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["interface"] == "nic0")
            .cloned()
            .unwrap()
    };
    assert_eq!(nic0(&json)["answers_arp_for_vips"], true);
    // A per-interface value counts through max(all, iface).
    ns.write_sysctl("nic0", "arp_ignore", 1);
    let json = ns
        .agent(&["status", "--output", "json", "--config", path])
        .ok()
        .json();
    assert_eq!(nic0(&json)["arp_ignore"], 1);
    assert_eq!(nic0(&json)["answers_arp_for_vips"], false);
    // A bad config is an error (2), not drift.
    config.set("[[vip]]\naddress = \"x\"\n");
    assert_eq!(ns.agent(&["check", "--config", path]).code, 2);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn interface_names_with_dots() {
    let ns = Netns::new(0, 0);
    ns.ip(&[
        "link", "add", "nic0.100", "type", "veth", "peer", "name", "nic0p",
    ]);
    let config = ConfigFile::new(&format!(
        "[arp]\ninterfaces = [\"nic0.100\"]\n{}",
        vips(&[VIP4])
    ));
    let run = ns.start(&config.path).ok();
    assert!(
        run.stdout
            .contains("set net.ipv4.conf.nic0/100.arp_ignore = 1 (was 0)"),
        "{run:#?}"
    );
    assert_eq!(ns.sysctl("nic0.100", "arp_ignore"), 1);
    assert_eq!(ns.sysctl("nic0.100", "arp_announce"), 2);
    assert_eq!(ns.sysctl("all", "arp_ignore"), 0);
    ns.stop().ok();
    assert_eq!(ns.sysctl("nic0.100", "arp_ignore"), 0);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn thousands_of_vips_in_one_run() {
    let ns = Netns::new(0, 0);
    let addresses: Vec<String> = (0..3000)
        .map(|i| format!("198.18.{}.{}", i / 250, i % 250 + 1))
        .chain((0..1000).map(|i| format!("2001:db8:1::{:x}", i + 1)))
        .collect();
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let config = ConfigFile::new(&vips(&refs));
    ns.start(&config.path).ok();
    assert_eq!(ns.addresses("lo").len(), 4000 + 2);
    let run = ns.start(&config.path).ok();
    assert_eq!(run.stdout, "start: no changes needed\n");
    ns.stop().ok();
    assert_eq!(ns.addresses("lo"), vec!["127.0.0.1/8", "::1/128"]);
}

/// ARP end to end: a client and a real server joined by a veth pair. The real
/// server answers ARP for a VIP on its lo until `rs-agent start`.
#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn arp_for_the_vip_is_answered_before_start_and_not_after() {
    let client = Netns::new(0, 0);
    let server = Netns::new(0, 0);
    client.ip(&[
        "link",
        "add",
        "veth-c",
        "type",
        "veth",
        "peer",
        "name",
        "veth-s",
        "netns",
        server.name(),
    ]);
    client.ip(&["addr", "add", "198.51.100.1/24", "dev", "veth-c"]);
    client.ip(&["link", "set", "veth-c", "up"]);
    server.ip(&["addr", "add", "198.51.100.2/24", "dev", "veth-s"]);
    server.ip(&["link", "set", "veth-s", "up"]);
    server.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"]);
    let arping = |target: &str| {
        let out = client.exec(&["arping", "-c", "2", "-w", "3", "-I", "veth-c", target]);
        out.status.success()
    };
    // The control: the server's own address is answered, and so is the VIP.
    assert!(
        arping("198.51.100.2"),
        "no ARP answer from the server at all"
    );
    assert!(
        arping(VIP4),
        "the VIP on lo should be answered before rs-agent"
    );

    server.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"]);
    let config = ConfigFile::new(&vips(&[VIP4]));
    server.start(&config.path).ok();
    assert!(
        arping("198.51.100.2"),
        "the server's own address must still be answered"
    );
    assert!(!arping(VIP4), "the VIP must not be answered after start");

    server.stop().ok();
    assert_eq!(server.sysctl("all", "arp_ignore"), 0);
    assert_eq!(server.sysctl("all", "arp_announce"), 0);
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn unprivileged_check_works_without_the_record() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    config.make_world_readable();
    ns.start(&config.path).ok();
    let out = ns.exec_as_nobody(&[
        common::AGENT,
        "--state-dir",
        ns.state_dir().to_str().unwrap(),
        "check",
        "--config",
        config.path.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains("on lo (origin unknown)"), "{stdout}");
    assert!(
        stdout.contains("warning: cannot read the rollback record"),
        "{stdout}"
    );
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn vips_can_come_from_the_director_configuration() {
    let ns = Netns::new(0, 0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("director.toml"),
        "[[service]]\nvip = \"203.0.113.30\"\nprotocol = \"tcp\"\nport = 80\n\
         [[service.server]]\naddress = \"198.51.100.2\"\nforward = \"dr\"\n\
         [[service]]\nvip = \"2001:db8::30\"\nprotocol = \"tcp\"\nport = 80\n",
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "vips_from_director = \"director.toml\"\n").unwrap();
    ns.start(&config).ok();
    let lo = ns.addresses("lo");
    assert!(lo.contains(&"203.0.113.30/32".to_string()), "{lo:?}");
    assert!(lo.contains(&"2001:db8::30/128".to_string()), "{lo:?}");
    ns.stop().ok();
    assert_eq!(ns.addresses("lo"), vec!["127.0.0.1/8", "::1/128"]);
}

/// A sysctl every run reads, replaced (in the run's own mount namespace) by
/// a file the kernel would never produce: reading the system fails.
#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn a_failure_to_read_the_system_is_exit_7_and_changes_nothing() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP4]));
    let before = ns.snapshot();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("arp_ignore");
    std::fs::write(&garbage, "garbage\n").unwrap();
    for command in ["start", "stop", "status", "check"] {
        let script = format!(
            "mount --bind {garbage} /proc/sys/net/ipv4/conf/default/arp_ignore && \
             exec {agent} --state-dir {state} {command} --config {config}",
            garbage = garbage.display(),
            agent = common::AGENT,
            state = ns.state_dir().display(),
            config = config.path.display(),
        );
        let out = ns.exec(&["sh", "-c", &script]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{command}: {stderr}");
        assert!(
            stderr.contains("cannot parse net.ipv4.conf.default.arp_ignore"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("undone"), "{command}: {stderr}");
    }
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty());
}

/// The record the previous agent (record format 1) wrote, and the
/// configuration it ran with: see src/state/tests.rs.
const RECORD_V1: &str = include_str!("fixtures/record-v1.json");
const CONFIG_V1: &str = "[arp]\ninterfaces = [\"all\", \"nic0.100\"]\n\
    [[vip]]\naddress = \"203.0.113.10\"\nlabel = \"lo:0\"\n\
    [[vip]]\naddress = \"203.0.113.11\"\n\
    [[vip]]\naddress = \"2001:db8::10\"\n";

/// A namespace as the previous agent left it after `start` with CONFIG_V1,
/// with its record in place; returns the state from before that start.
fn started_by_the_previous_agent(ns: &Netns) -> String {
    // Before: what the fixture's "original" values and the pre-existing VIP say.
    ns.ip(&[
        "link", "add", "nic0.100", "type", "veth", "peer", "name", "nic0p",
    ]);
    ns.write_sysctl("nic0.100", "arp_ignore", 2);
    ns.ip(&["addr", "add", "203.0.113.11/32", "dev", "lo"]);
    ns.ip(&["link", "set", "lo", "down"]);
    let before = ns.snapshot();
    // What that start did, as its output listed it.
    for (interface, key, value) in [
        ("all", "arp_ignore", 1),
        ("all", "arp_announce", 2),
        ("nic0.100", "arp_ignore", 1),
        ("nic0.100", "arp_announce", 2),
    ] {
        ns.write_sysctl(interface, key, value);
    }
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&[
        "addr",
        "add",
        "203.0.113.10/32",
        "dev",
        "lo",
        "label",
        "lo:0",
    ]);
    ns.ip(&[
        "addr",
        "add",
        "2001:db8::10/128",
        "dev",
        "lo",
        "nodad",
        "preferred_lft",
        "0",
    ]);
    // Its record, where this agent looks for the namespace's record.
    let json = ns
        .agent(&["--output", "json", "stop", "--dry-run"])
        .ok()
        .json();
    let record = json["record"].as_str().unwrap();
    std::fs::create_dir_all(ns.state_dir()).unwrap();
    std::fs::write(record, RECORD_V1).unwrap();
    before
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn stop_undoes_exactly_what_the_previous_agent_recorded() {
    let ns = Netns::new(3, 1);
    let before = started_by_the_previous_agent(&ns);
    let config = ConfigFile::new(CONFIG_V1);
    let status = ns
        .agent(&["status", "--config", config.path.to_str().unwrap()])
        .ok();
    assert!(
        status.stdout.contains("on lo (added by rs-agent)"),
        "{status:#?}"
    );
    assert!(
        status.stdout.contains("on lo (pre-existing)"),
        "{status:#?}"
    );
    assert!(status.stdout.ends_with("in sync\n"), "{status:#?}");
    let run = ns.stop().ok();
    assert!(run.stdout.contains("stop: 7 change(s) made"), "{run:#?}");
    assert_eq!(ns.snapshot(), before);
    assert!(ns.records().is_empty());
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn start_over_a_previous_record_keeps_it_until_something_changes() {
    let ns = Netns::new(3, 1);
    let before = started_by_the_previous_agent(&ns);
    let config = ConfigFile::new(CONFIG_V1);
    // Nothing to change: the record stays as the previous agent wrote it
    // (so going back to that agent still works).
    let run = ns.start(&config.path).ok();
    assert_eq!(run.stdout, "start: no changes needed\n");
    let record = ns.records()[0].clone();
    assert_eq!(std::fs::read_to_string(&record).unwrap(), RECORD_V1);
    // A change rewrites it in the current format, with everything it held.
    config.set(&CONFIG_V1.replace("203.0.113.10", "203.0.113.12"));
    let run = ns.start(&config.path).ok();
    assert_eq!(
        run.stdout,
        "remove 203.0.113.10/32 label lo:0 from lo\nadd 203.0.113.12/32 label lo:0 to lo\nstart: 2 change(s) made\n"
    );
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    assert!(text.contains("\"links_brought_up\""), "{text}");
    ns.stop().ok();
    assert_eq!(ns.snapshot(), before);
}
