//! Fixtures shared by the root tests of rs-agent, lvs-ipvs and
//! lvs-director: a network namespace of the test's own ([`Netns`]: made
//! with `ip netns add` under a unique name, `lo` up, deleted on drop), ways
//! to run commands and code inside it, and [`sh`] for commands that must
//! succeed.
//!
//! Tests that use it need root (and `ip` from iproute2); they are
//! `#[ignore = "needs ..."]`d and run with `--ignored`, which
//! scripts/test-all.sh does inside a network namespace of its own. Run by
//! hand without root, [`Netns::new`] fails the test with that advice
//! instead of leaving half a fixture behind.
//!
//! A dev-dependency only: nothing here belongs in a shipped binary.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// Whether the process runs as root (effective user 0).
pub fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command (stdin from /dev/null) and returns its stdout, panicking
/// with its output if it cannot start or fails.
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

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `PREFIX-PID-N`: unique among the namespaces of this process and of any
/// other test process running at the same time.
fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// A network namespace made for one test (`ip netns add`, so it is
/// reachable by name: `ip -n NAME`, `--netns NAME`), with `lo` up. Deleted
/// on drop, a panicking test's too.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace named `PREFIX-PID-N`, `lo` up. Panics without root.
    pub fn new(prefix: &str) -> Netns {
        assert!(
            is_root(),
            "network namespace tests need root: run them with --ignored as root \
             (scripts/test-all.sh runs them inside a namespace of its own)"
        );
        let name = unique_name(prefix);
        sh("ip", &["netns", "add", &name]);
        // Owned from here: a failure below still deletes it.
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The name `ip netns` knows it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS...`, which must succeed; its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Each line of `script` as `ip -n NAME LINE` (words split at spaces;
    /// blank lines skipped), each of which must succeed.
    pub fn ip_lines(&self, script: &str) {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let args: Vec<&str> = line.split_whitespace().collect();
            self.ip(&args);
        }
    }

    /// `ip netns exec NAME ARGS...` (stdin from /dev/null): its output,
    /// whether it succeeded or not.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        Command::new("ip")
            .args(&full)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {}: {e}", self.name))
    }

    /// `ip netns exec NAME ARGS...`, which must succeed; its stdout.
    pub fn sh(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Runs `f` on a thread inside the namespace (a namespace is entered
    /// per thread) and returns what it returns; every socket it opens lives
    /// in the namespace. A panic in `f` is the caller's.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                self.enter();
                f()
            });
            match thread.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Starts `f` on a thread inside the namespace, for code that runs
    /// while the test goes on (join the handle for its result).
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let name = self.name.clone();
        std::thread::spawn(move || {
            enter(&name);
            f()
        })
    }

    fn enter(&self) {
        enter(&self.name);
    }
}

fn enter(name: &str) {
    lvs_common::netns::enter(name).unwrap_or_else(|e| panic!("entering {name}: {e}"));
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_carry_the_prefix_and_pid() {
        let (a, b) = (unique_name("kit"), unique_name("kit"));
        assert_ne!(a, b);
        assert!(
            a.starts_with(&format!("kit-{}-", std::process::id())),
            "{a}"
        );
    }

    fn current_netns() -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
    }

    #[test]
    #[ignore = "needs root (ip netns): cargo test -p lvs-testkit -- --ignored, in a throwaway namespace"]
    fn a_namespace_is_made_entered_and_deleted() {
        let here = current_netns();
        let ns = Netns::new("kit");
        let path = format!("/run/netns/{}", ns.name());
        assert!(std::path::Path::new(&path).exists());
        assert!(ns.ip(&["-o", "link", "show", "lo"]).contains("UP"));
        let inside = ns.run(current_netns);
        assert_ne!(inside, here);
        assert_eq!(ns.spawn(current_netns).join().unwrap(), inside);
        assert_eq!(current_netns(), here, "the caller's thread moved");
        ns.ip_lines("link add v0 type veth peer name v1\n\n  link set v0 up\n");
        assert!(ns.sh(&["cat", "/sys/class/net/v0/flags"]).starts_with("0x"));
        assert!(!ns.exec(&["false"]).status.success());
        drop(ns);
        assert!(!std::path::Path::new(&path).exists());
    }

    #[test]
    #[ignore = "needs root (ip netns): cargo test -p lvs-testkit -- --ignored, in a throwaway namespace"]
    fn a_panic_inside_is_the_callers() {
        let ns = Netns::new("kit");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ns.run(|| panic!("inside"));
        }));
        assert!(caught.is_err());
    }
}
