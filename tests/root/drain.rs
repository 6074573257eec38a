//! Root tests of drain, `check --output prometheus` and tunnel-mode
//! refusals that need no tunnel support in the kernel (the machines'
//! kernel has none: the tunnel itself is tested in the VM, tests/tunnel.rs).

use std::path::Path;

use crate::common::{ConfigFile, Netns, vips};

const VIP: &str = "203.0.113.30";

fn status_json(ns: &Netns, config: &ConfigFile, persist: &Path) -> serde_json::Value {
    ns.json_with(
        &["--persist-dir", persist.to_str().unwrap()],
        "status",
        &config.path,
    )
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn drain_is_recorded_shown_and_lifted() {
    let ns = Netns::new(0, 0);
    let persist = tempfile::tempdir().unwrap();
    let config = ConfigFile::new(&vips(&[VIP]));
    ns.start(&config.path).ok();
    let before = ns.snapshot();
    let p = persist.path().to_str().unwrap();
    let json = status_json(&ns, &config, persist.path());
    assert_eq!(json["drain"], serde_json::Value::Null);
    assert_eq!(json["agent_answer"], "up");

    let run = ns
        .agent(&["--persist-dir", p, "drain", "--reason", "kernel update"])
        .ok();
    assert_eq!(run.stdout, "drain: drained (kernel update)\n");
    // The drain changes no network setting.
    assert_eq!(ns.snapshot(), before);
    // Each run is a new process: the state outlives the agent.
    let json = status_json(&ns, &config, persist.path());
    assert_eq!(json["drain"]["reason"], "kernel update");
    assert_eq!(json["drain"]["persistent"], false);
    assert_eq!(json["agent_answer"], "drain");
    assert!(json["in_sync"].as_bool().unwrap());
    let text = ns
        .agent(&[
            "--persist-dir",
            p,
            "status",
            "--config",
            config.path.to_str().unwrap(),
        ])
        .ok()
        .stdout;
    assert!(text.contains("Drain: drained since "), "{text}");
    assert!(text.contains("Agent endpoint answers: drain"), "{text}");
    // Drained but in sync: check still exits 0 (drain is not drift).
    ns.agent(&[
        "--persist-dir",
        p,
        "check",
        "--config",
        config.path.to_str().unwrap(),
    ])
    .ok();

    let again = ns
        .agent(&["--persist-dir", p, "--output", "json", "drain"])
        .ok()
        .json();
    assert_eq!(again["changed"], false);
    assert_eq!(again["drain"]["reason"], "kernel update");
    // Not persistent: nothing under the persistent directory.
    assert_eq!(std::fs::read_dir(persist.path()).unwrap().count(), 0);

    let run = ns.agent(&["--persist-dir", p, "undrain"]).ok();
    assert_eq!(run.stdout, "undrain: undrained\n");
    let run = ns.agent(&["--persist-dir", p, "undrain"]).ok();
    assert_eq!(run.stdout, "undrain: was not drained\n");
    assert_eq!(
        status_json(&ns, &config, persist.path())["agent_answer"],
        "up"
    );
    // stop neither needs nor touches the drain; the namespace is as before start.
    ns.stop().ok();
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn persistent_drain_outlives_the_runtime_state() {
    let ns = Netns::new(0, 0);
    let persist = tempfile::tempdir().unwrap();
    let p = persist.path().to_str().unwrap();
    let config = ConfigFile::new(&vips(&[VIP]));
    ns.agent(&[
        "--persist-dir",
        p,
        "drain",
        "--persistent",
        "--reason",
        "disk",
    ])
    .ok();
    // Named after the namespace, which a reboot keeps (a cookie does not).
    let file = persist
        .path()
        .join(format!("drain-netns-{}.json", ns.name()));
    assert!(
        file.exists(),
        "{:?}",
        std::fs::read_dir(persist.path())
            .unwrap()
            .collect::<Vec<_>>()
    );
    // A reboot empties /run: the state directory goes.
    for entry in std::fs::read_dir(ns.state_dir()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let json = status_json(&ns, &config, persist.path());
    assert_eq!(json["drain"]["reason"], "disk");
    assert_eq!(json["drain"]["persistent"], true);
    ns.agent(&["--persist-dir", p, "undrain"]).ok();
    assert!(!file.exists());
    assert_eq!(
        status_json(&ns, &config, persist.path())["drain"],
        serde_json::Value::Null
    );
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn drain_needs_privileges() {
    let ns = Netns::new(0, 0);
    let dir = ns.state_dir().to_str().unwrap().to_string();
    let out = ns.exec_as_nobody(&[crate::common::AGENT, "--state-dir", &dir, "drain"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(std::fs::read_dir(ns.state_dir()).unwrap().next().is_none());
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn check_writes_the_prometheus_textfile_format() {
    let ns = Netns::new(0, 0);
    let config = ConfigFile::new(&vips(&[VIP, "203.0.113.31"]));
    let path = config.path.to_str().unwrap();
    ns.start(&config.path).ok();
    let run = ns
        .agent(&["check", "--output", "prometheus", "--config", path])
        .ok();
    for line in [
        "rs_agent_in_sync 1",
        "rs_agent_check_error 0",
        "rs_agent_drift{kind=\"vip\"} 0",
        "rs_agent_vip_present{vip=\"203.0.113.30\"} 1",
        "rs_agent_vip_present{vip=\"203.0.113.31\"} 1",
        "rs_agent_drained 0",
    ] {
        assert!(run.stdout.lines().any(|l| l == line), "{line}: {run:#?}");
    }
    // Drift: exit 1, and the metrics say what.
    ns.ip(&["addr", "del", "203.0.113.31/32", "dev", "lo"]);
    ns.write_sysctl("all", "arp_announce", 0);
    let run = ns.agent(&["check", "--output", "prometheus", "--config", path]);
    assert_eq!(run.code, 1, "{run:#?}");
    for line in [
        "rs_agent_in_sync 0",
        "rs_agent_drift{kind=\"vip\"} 1",
        "rs_agent_drift{kind=\"sysctl\"} 1",
        "rs_agent_vip_present{vip=\"203.0.113.31\"} 0",
        "rs_agent_traffic_broken 1",
    ] {
        assert!(run.stdout.lines().any(|l| l == line), "{line}: {run:#?}");
    }
    // A check that cannot run says so in the file.
    config.set("[[vip]]\naddress = \"nonsense\"\n");
    let run = ns.agent(&["check", "--output", "prometheus", "--config", path]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stdout.lines().any(|l| l == "rs_agent_check_error 1"),
        "{run:#?}"
    );
    // Other commands have no Prometheus form.
    let run = ns.agent(&["--output", "prometheus", "start", "--config", path]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("--output prometheus is for check only"),
        "{run:#?}"
    );
    ns.stop().ok();
}

fn assert_refused(ns: &Netns, text: &str, code: i32, needle: &str) {
    let before = ns.snapshot();
    let config = ConfigFile::new(text);
    let run = ns.start(&config.path);
    assert_eq!(run.code, code, "{text}: {run:#?}");
    assert!(run.stderr.contains(needle), "{text}: {run:#?}");
    assert_eq!(ns.snapshot(), before, "{text}");
    assert!(ns.records().is_empty(), "{text}: {:?}", ns.records());
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn bad_tunnel_input_changes_nothing() {
    let ns = Netns::new(0, 0);
    let vip = vips(&[VIP]);
    assert_refused(
        &ns,
        &format!("[tunnel]\ntype = \"vxlan\"\n{vip}"),
        2,
        "config.toml:2:8: tunnel type \"vxlan\" is not one of \"ipip\", \"gue\", \"gre\"",
    );
    assert_refused(
        &ns,
        &format!("[tunnel]\ntype = \"ipip\"\nport = 6080\n{vip}"),
        2,
        "config.toml:3:8: port is only for tunnel type \"gue\"",
    );
    assert_refused(
        &ns,
        &format!("[tunnel]\ntype = \"gue\"\n{vip}"),
        2,
        "needs `port`",
    );
    assert_refused(
        &ns,
        "[tunnel]\ntype = \"ipip\"\n[[vip]]\naddress = \"2001:db8::30\"\n",
        2,
        "tunnel mode (ipip) takes IPv4 VIPs only",
    );
}

/// Holds a UDP socket bound to `port` inside the namespace until dropped.
fn udp_socket_in(ns: &Netns, port: u16) -> std::net::UdpSocket {
    ns.run(|| std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap())
}

/// Whether this kernel has what tunnel type `module` needs: the module
/// loaded, built in, or installed. The machines' own kernel has none of
/// them (no module support at all), the VM's kernel has them all.
fn kernel_has(module: &str) -> bool {
    rs_agent::kernel::support(module) != rs_agent::domain::KernelSupport::Absent
}

#[test]
#[ignore = "needs root: run by scripts/test-all.sh"]
fn tunnel_on_a_kernel_without_it_is_refused_cleanly() {
    let ns = Netns::new(0, 0);
    ns.write_sysctl("all", "rp_filter", 1);
    // A UDP socket of someone else's on the GUE port.
    let _socket = udp_socket_in(&ns, 6081);
    let before = ns.snapshot();
    let config = ConfigFile::new(&format!(
        "[tunnel]\ntype = \"gue\"\nport = 6081\n{}",
        vips(&[VIP])
    ));
    let run = ns.start(&config.path);
    // Every reason at once, before anything changes: exit 4.
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.stderr
            .contains("UDP port 6081 is in use by another socket"),
        "{run:#?}"
    );
    if !kernel_has("ipip") {
        assert!(
            run.stderr.contains("this kernel has no ipip support"),
            "{run:#?}"
        );
    }
    if !kernel_has("fou") {
        assert!(
            run.stderr.contains("this kernel has no FOU support"),
            "{run:#?}"
        );
    }
    assert_eq!(ns.snapshot(), before);
    assert_eq!(ns.sysctl("all", "rp_filter"), 1);
    assert!(ns.records().is_empty());

    // IPIP alone on a kernel without it: refused the same way.
    let config = ConfigFile::new(&format!("[tunnel]\ntype = \"ipip\"\n{}", vips(&[VIP])));
    let run = ns.start(&config.path);
    if kernel_has("ipip") {
        run.ok();
        ns.stop().ok();
    } else {
        assert_eq!(run.code, 4, "{run:#?}");
        assert!(
            run.stderr.contains(
                "this kernel has no ipip support (module ipip is neither built in nor installed)"
            ),
            "{run:#?}"
        );
        // status says what is missing, without failing.
        let json = ns.json("status", &config.path);
        assert_eq!(json["tunnel"]["present"], false);
        assert_eq!(json["agent_answer"], "down");
    }
    assert_eq!(ns.snapshot(), before);
}
