//! Shared fixtures of the root tests: a named network namespace per test,
//! removed on drop, and helpers to run the agent in it and look at the result.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const AGENT: &str = env!("CARGO_BIN_EXE_rs-agent");

/// The agent binary the fixtures run: RS_AGENT_TEST_BIN if set (the VM
/// suite points it at a tmpfs copy: every exec over 9p re-reads the
/// binary), else the one cargo built.
pub fn agent_bin() -> String {
    std::env::var("RS_AGENT_TEST_BIN").unwrap_or_else(|_| AGENT.to_string())
}

/// A network namespace created for one test (lvs-testkit's: `ip netns add`,
/// removed on drop), with its own state directory, removed on drop too.
/// Derefs to the kit's namespace for `name()`, `ip`, `exec` and `run`.
pub struct Netns {
    ns: lvs_testkit::Netns,
    pub state: tempfile::TempDir,
}

impl std::ops::Deref for Netns {
    type Target = lvs_testkit::Netns;

    fn deref(&self) -> &lvs_testkit::Netns {
        &self.ns
    }
}

impl Netns {
    /// A fresh namespace with `lo` up and the ARP sysctls of `all` set to the
    /// values given (a new namespace copies them from the machine's, so tests
    /// set the values they assert on).
    pub fn new(arp_ignore: i32, arp_announce: i32) -> Netns {
        let ns = Netns {
            ns: lvs_testkit::Netns::new("rsa"),
            state: tempfile::tempdir().unwrap(),
        };
        ns.write_sysctl("all", "arp_ignore", arp_ignore);
        ns.write_sysctl("all", "arp_announce", arp_announce);
        ns
    }

    /// Runs a command in the namespace as user nobody, without capabilities.
    pub fn exec_as_nobody(&self, args: &[&str]) -> Output {
        let mut full = vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ];
        full.extend_from_slice(args);
        self.exec(&full)
    }

    pub fn sysctl(&self, interface: &str, key: &str) -> i32 {
        let path = format!("/proc/sys/net/ipv4/conf/{interface}/{key}");
        let out = self.exec(&["cat", &path]);
        assert!(out.status.success(), "cat {path}: {out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    pub fn write_sysctl(&self, interface: &str, key: &str, value: i32) {
        let path = format!("/proc/sys/net/ipv4/conf/{interface}/{key}");
        let out = self.exec(&["sh", "-c", &format!("echo {value} > {path}")]);
        assert!(out.status.success(), "write {path}: {out:?}");
    }

    /// Addresses on `dev` as "addr/prefix" strings.
    pub fn addresses(&self, dev: &str) -> Vec<String> {
        let json = self.ip(&["-j", "addr", "show", "dev", dev]);
        let links: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut out = Vec::new();
        for link in links.as_array().unwrap() {
            for a in link["addr_info"].as_array().unwrap() {
                out.push(format!(
                    "{}/{}",
                    a["local"].as_str().unwrap(),
                    a["prefixlen"].as_u64().unwrap()
                ));
            }
        }
        out
    }

    /// Everything a run may touch: every address, link state, and the ARP
    /// sysctls and rp_filter of every conf entry. Equal snapshots mean "left as it was".
    pub fn snapshot(&self) -> String {
        let addresses = self.ip(&["-o", "addr", "show"]);
        let links = self.ip(&["-o", "link", "show"]);
        let out = self.exec(&[
            "sh",
            "-c",
            "grep -H . /proc/sys/net/ipv4/conf/*/arp_ignore /proc/sys/net/ipv4/conf/*/arp_announce /proc/sys/net/ipv4/conf/*/rp_filter",
        ]);
        format!(
            "{addresses}\n{links}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    }

    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Files in the state directory, other than lock files.
    pub fn records(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.state_dir())
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files
    }

    /// Runs `rs-agent --netns NAME --state-dir DIR ARGS...`.
    pub fn agent(&self, args: &[&str]) -> Run {
        let mut full = vec![
            "--netns",
            self.name(),
            "--state-dir",
            self.state.path().to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        Run::of(Command::new(agent_bin()).args(&full))
    }

    pub fn start(&self, config: &Path) -> Run {
        self.agent(&["start", "--config", config.to_str().unwrap()])
    }

    pub fn stop(&self) -> Run {
        self.agent(&["stop"])
    }

    /// `rs-agent GLOBAL... --output json COMMAND --config PATH`, which must
    /// succeed: its report.
    pub fn json_with(&self, global: &[&str], command: &str, config: &Path) -> serde_json::Value {
        let mut full = global.to_vec();
        full.extend(["--output", "json", command, "--config"]);
        full.push(config.to_str().unwrap());
        self.agent(&full).ok().json()
    }

    /// `rs-agent --output json COMMAND --config PATH` (start, status, ...),
    /// which must succeed: its report.
    pub fn json(&self, command: &str, config: &Path) -> serde_json::Value {
        self.json_with(&[], command, config)
    }

    /// `rs-agent start --dry-run --config PATH`, which must succeed.
    pub fn start_dry_run(&self, config: &Path) -> Run {
        self.agent(&["start", "--dry-run", "--config", config.to_str().unwrap()])
            .ok()
    }
}

/// The outcome of one agent run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(command: &mut Command) -> Run {
        let out = command.stdin(Stdio::null()).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Asserts exit 0 and returns self.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// A configuration file in its own temporary directory.
pub struct ConfigFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl ConfigFile {
    pub fn new(text: &str) -> ConfigFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile { _dir: dir, path }
    }

    /// Lets an unprivileged user read the file.
    pub fn make_world_readable(&self) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.path.parent().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    pub fn set(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }
}

/// `[[vip]]` entries for the given addresses.
pub fn vips(addresses: &[&str]) -> String {
    addresses
        .iter()
        .map(|a| format!("[[vip]]\naddress = \"{a}\"\n"))
        .collect()
}
