//! Shared fixtures of the root tests: a named network namespace per test,
//! removed on drop, and helpers to run the agent in it and look at the result.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const AGENT: &str = env!("CARGO_BIN_EXE_rs-agent");

/// The agent binary the fixtures run: RS_AGENT_TEST_BIN if set (the VM
/// suite points it at a tmpfs copy: every exec over 9p re-reads the
/// binary), else the one cargo built.
pub fn agent_bin() -> String {
    std::env::var("RS_AGENT_TEST_BIN").unwrap_or_else(|_| AGENT.to_string())
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A network namespace created for one test (`ip netns add`), with its own
/// state directory; both are removed on drop.
pub struct Netns {
    pub name: String,
    pub state: tempfile::TempDir,
}

impl Netns {
    /// A fresh namespace with `lo` up and the ARP sysctls of `all` set to the
    /// values given (a new namespace copies them from the machine's, so tests
    /// set the values they assert on).
    pub fn new(arp_ignore: i32, arp_announce: i32) -> Netns {
        assert!(
            is_root(),
            "the root tests need root: run them through scripts/test-all.sh"
        );
        let name = format!(
            "rsa-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        sh("ip", &["netns", "add", &name]);
        let ns = Netns {
            name,
            state: tempfile::tempdir().unwrap(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.write_sysctl("all", "arp_ignore", arp_ignore);
        ns.write_sysctl("all", "arp_announce", arp_announce);
        ns
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        Command::new("ip")
            .args(&full)
            .stdin(Stdio::null())
            .output()
            .unwrap()
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
            &self.name,
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
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
