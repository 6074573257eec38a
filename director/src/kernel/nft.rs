//! Firewall marks for port groups: one nftables table owned by ipvsctl,
//! `table inet ipvsctl`, with a prerouting chain at mangle priority and one
//! rule per group (`ip daddr VIP tcp dport { 80, 3306 } meta mark set 11`).
//!
//! Each apply replaces the whole table in ONE nftables transaction, written
//! in nftables' JSON input (`nft -j -f -`): add the table (so the delete
//! cannot fail), delete it, then add it again with its chain and rules.
//! With no groups the batch only adds and deletes, which removes the table.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use lvs_common::netns;
use serde_json::{Value, json};

use crate::config::{PortGroup, protocol_name};

pub const TABLE_FAMILY: &str = "inet";
pub const TABLE_NAME: &str = "ipvsctl";
pub const CHAIN_NAME: &str = "prerouting";
/// The mangle priority (NF_IP_PRI_MANGLE), as nft names it.
pub const MANGLE_PRIORITY: i32 = -150;
/// How long one nft run may take. nft runs on the kernel thread, the one
/// that makes every IPVS change: a hung nft (a stuck netlink socket, a
/// lock held by another nft) must not stop health changes for good.
pub const NFT_TIMEOUT: Duration = Duration::from_secs(10);

fn table() -> Value {
    json!({"family": TABLE_FAMILY, "name": TABLE_NAME})
}

fn chain() -> Value {
    json!({"chain": {
        "family": TABLE_FAMILY,
        "table": TABLE_NAME,
        "name": CHAIN_NAME,
        "type": "filter",
        "hook": "prerouting",
        "prio": MANGLE_PRIORITY,
        "policy": "accept",
    }})
}

/// The JSON rule of one group.
fn rule(g: &PortGroup) -> Value {
    let l3 = if g.vip.is_ipv4() { "ip" } else { "ip6" };
    let ports: Value = match g.ports.as_slice() {
        [one] => json!(one),
        many => json!({"set": many}),
    };
    json!({"rule": {
        "family": TABLE_FAMILY,
        "table": TABLE_NAME,
        "chain": CHAIN_NAME,
        "comment": format!("ipvsctl fwmark {}", g.mark),
        "expr": [
            {"match": {"op": "==",
                       "left": {"payload": {"protocol": l3, "field": "daddr"}},
                       "right": g.vip.to_string()}},
            {"match": {"op": "==",
                       "left": {"payload": {"protocol": protocol_name(g.protocol), "field": "dport"}},
                       "right": ports}},
            {"mangle": {"key": {"meta": {"key": "mark"}}, "value": g.mark}},
        ],
    }})
}

/// The `nft -j -f -` input that makes the table hold exactly `groups`
/// (or removes it when there are none), as one transaction.
pub fn replace_json(groups: &[PortGroup]) -> String {
    let mut cmds = vec![
        json!({"metainfo": {"json_schema_version": 1}}),
        json!({"add": {"table": table()}}),
        json!({"delete": {"table": table()}}),
    ];
    if !groups.is_empty() {
        cmds.push(json!({"add": {"table": table()}}));
        cmds.push(json!({ "add": chain() }));
        for g in groups {
            cmds.push(json!({ "add": rule(g) }));
        }
    }
    let doc = json!({ "nftables": cmds });
    format!("{doc}\n")
}

/// Whether `listing` (what `nft -j list table inet ipvsctl` printed) is
/// exactly the table [`replace_json`] would write for `groups`: the same
/// table, chain and rules, in order, handles aside. Anything else in the
/// table (another chain, a set, a rule added by hand) makes it differ.
pub fn table_matches(listing: &str, groups: &[PortGroup]) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(listing) else {
        return false;
    };
    let Some(objects) = doc["nftables"].as_array() else {
        return false;
    };
    let listed: Vec<Value> = objects
        .iter()
        .filter(|o| o.get("metainfo").is_none())
        .map(|o| {
            let mut o = o.clone();
            let inner = o.as_object_mut().and_then(|m| m.values_mut().next());
            if let Some(fields) = inner.and_then(Value::as_object_mut) {
                fields.remove("handle");
            }
            o
        })
        .collect();
    let mut wanted = vec![json!({ "table": table() }), chain()];
    wanted.extend(groups.iter().map(rule));
    listed == wanted
}

/// Runs the nft program, optionally inside a network namespace.
#[derive(Debug, Clone)]
pub struct Nft {
    pub program: PathBuf,
    /// A namespace file (`/run/netns/NAME`) to enter before running nft.
    pub netns: Option<PathBuf>,
    /// After this long nft is killed and the run fails.
    pub timeout: Duration,
}

/// A failed nft run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nft {what}: {message}")]
pub struct NftError {
    pub what: String,
    pub message: String,
}

impl Nft {
    pub fn new(netns: Option<PathBuf>) -> Nft {
        Nft {
            program: PathBuf::from("nft"),
            netns,
            timeout: NFT_TIMEOUT,
        }
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Result<(bool, String, String), NftError> {
        let err = |message: String| NftError {
            what: args.join(" "),
            message,
        };
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = &self.netns {
            let ns = netns::open(p).map_err(|e| err(e.to_string()))?;
            netns::spawn_inside(&mut cmd, ns);
        }
        let mut child = cmd.spawn().map_err(|e| err(e.to_string()))?;
        // The pipes are fed and drained on their own threads: a child that
        // reads no input or fills its output pipe must not block the
        // deadline below.
        let stdin = child.stdin.take();
        let input = input.map(str::to_owned);
        let feeder = thread::spawn(move || {
            if let (Some(text), Some(mut stdin)) = (input, stdin) {
                stdin.write_all(text.as_bytes())
            } else {
                Ok(())
            }
        });
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = match wait_until(&mut child, Instant::now() + self.timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                // The readers are left to finish on their own: a grandchild
                // may still hold the pipes open.
                return Err(err(format!(
                    "{} did not finish within {:.1}s and was killed",
                    self.program.display(),
                    self.timeout.as_secs_f64()
                )));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(e.to_string()));
            }
        };
        // A write error (EPIPE) matters only if nft failed: its stderr says why.
        let fed = feeder.join().unwrap_or(Ok(()));
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if let Err(e) = fed
            && status.success()
        {
            return Err(err(format!("writing its input: {e}")));
        }
        Ok((
            status.success(),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).trim().to_string(),
        ))
    }

    /// Whether the nft program can be run at all.
    pub fn available(&self) -> bool {
        self.run(&["--version"], None).is_ok_and(|(ok, _, _)| ok)
    }

    /// Whether nft can be run, and an error when it cannot while the file
    /// has port groups (`groups`): they are nothing without their marks.
    pub fn usable(&self, groups: bool) -> Result<bool, NftError> {
        let available = self.available();
        if groups && !available {
            return Err(NftError {
                what: "--version".into(),
                message: format!(
                    "{} cannot be run, and port groups need nftables",
                    self.program.display()
                ),
            });
        }
        Ok(available)
    }

    /// `nft -j list table inet ipvsctl` (JSON), or `None` if the table
    /// does not exist.
    pub fn list_table(&self) -> Result<Option<String>, NftError> {
        let (ok, out, err) = self.run(&["-j", "list", "table", TABLE_FAMILY, TABLE_NAME], None)?;
        if ok {
            Ok(Some(out))
        } else if err.contains("No such file or directory") {
            Ok(None)
        } else {
            Err(NftError {
                what: format!("list table {TABLE_FAMILY} {TABLE_NAME}"),
                message: err,
            })
        }
    }

    /// Replace the table with rules for `groups` (one transaction).
    pub fn replace(&self, groups: &[PortGroup]) -> Result<(), NftError> {
        self.feed(&["-j", "-f", "-"], &replace_json(groups))
    }

    fn feed(&self, args: &[&str], input: &str) -> Result<(), NftError> {
        let (ok, _, err) = self.run(args, Some(input))?;
        if ok {
            Ok(())
        } else {
            Err(NftError {
                what: args.join(" "),
                message: err,
            })
        }
    }
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut out);
        }
        out
    })
}

/// The child's exit status, or `None` if it is still running at `deadline`.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    // Short polls first: nft usually exits within milliseconds.
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvs_ipvs::table::Protocol;

    fn fake_nft(dir: &std::path::Path, script: &str) -> Nft {
        use std::os::unix::fs::PermissionsExt;
        let program = dir.join("nft");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        Nft {
            program,
            netns: None,
            timeout: Duration::from_millis(500),
        }
    }

    /// A hung nft is killed at the timeout and named in the error, instead
    /// of holding the kernel thread (and every IPVS change) forever.
    #[test]
    fn a_hung_nft_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let nft = fake_nft(dir.path(), "exec sleep 30");
        let started = Instant::now();
        let e = nft
            .replace(&[group("203.0.113.10", &[80], 11)])
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        assert!(e.message.contains("did not finish within 0.5s"), "{e}");
        assert!(e.to_string().starts_with("nft -j -f -:"), "{e}");
        assert!(!nft.available());
        assert!(nft.list_table().is_err());
    }

    /// Input larger than a pipe's buffer, to a program that reads it all,
    /// and its output and exit status come back as before.
    #[test]
    fn a_quick_nft_is_read_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let nft = fake_nft(dir.path(), "wc -c; echo oops >&2; exit 1");
        let input = "x".repeat(1 << 20);
        let (ok, out, err) = nft.run(&["-f", "-"], Some(&input)).unwrap();
        assert!(!ok);
        assert_eq!(out.trim(), (1 << 20).to_string());
        assert_eq!(err, "oops");
        let nft = fake_nft(dir.path(), "echo '{}'");
        assert_eq!(nft.list_table().unwrap().as_deref(), Some("{}\n"));
    }

    fn group(vip: &str, ports: &[u16], mark: u32) -> PortGroup {
        PortGroup {
            vip: vip.parse().unwrap(),
            protocol: Protocol::Tcp,
            ports: ports.to_vec(),
            mark,
        }
    }

    #[test]
    fn replace_is_one_batch_with_the_rules() {
        let text = replace_json(&[
            group("203.0.113.10", &[80, 3306], 11),
            PortGroup {
                protocol: Protocol::Udp,
                ..group("2001:db8::10", &[53], 12)
            },
        ]);
        let v: Value = serde_json::from_str(&text).unwrap();
        let cmds = v["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 7);
        assert_eq!(cmds[0]["metainfo"]["json_schema_version"], 1);
        assert_eq!(
            cmds[1],
            json!({"add": {"table": {"family": "inet", "name": "ipvsctl"}}})
        );
        assert_eq!(
            cmds[2],
            json!({"delete": {"table": {"family": "inet", "name": "ipvsctl"}}})
        );
        assert_eq!(cmds[3], cmds[1]);
        let chain = &cmds[4]["add"]["chain"];
        assert_eq!(chain["hook"], "prerouting");
        assert_eq!(chain["type"], "filter");
        assert_eq!(chain["prio"], -150);
        let r = &cmds[5]["add"]["rule"];
        assert_eq!(r["chain"], "prerouting");
        assert_eq!(
            r["expr"],
            json!([
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [80, 3306]}}},
                {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 11}}
            ])
        );
        let r6 = &cmds[6]["add"]["rule"]["expr"];
        assert_eq!(r6[0]["match"]["left"]["payload"]["protocol"], "ip6");
        assert_eq!(r6[0]["match"]["right"], "2001:db8::10");
        assert_eq!(r6[1]["match"]["left"]["payload"]["protocol"], "udp");
        assert_eq!(r6[1]["match"]["right"], 53);
        assert_eq!(r6[2]["mangle"]["value"], 12);
        assert!(text.ends_with("}\n"));
    }

    /// What `nft -j list table inet ipvsctl` printed (nft 1.0.6) after
    /// `replace_json` of the seed's group.
    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "ipvsctl", "handle": 2}}, {"chain": {"family": "inet", "table": "ipvsctl", "name": "prerouting", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -150, "policy": "accept"}}, {"rule": {"family": "inet", "table": "ipvsctl", "chain": "prerouting", "handle": 3, "comment": "ipvsctl fwmark 11", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "203.0.113.10"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [80, 3306]}}}, {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 11}}]}}]}"#;

    #[test]
    fn listing_of_the_same_table_matches() {
        let g = group("203.0.113.10", &[80, 3306], 11);
        assert!(table_matches(LISTED, std::slice::from_ref(&g)));
        assert!(!table_matches(
            LISTED,
            &[group("203.0.113.10", &[80, 3306], 12)]
        ));
        assert!(!table_matches(LISTED, &[group("203.0.113.10", &[80], 11)]));
        assert!(!table_matches(
            LISTED,
            &[g.clone(), group("203.0.113.11", &[80], 12)]
        ));
        assert!(!table_matches(LISTED, &[]));
        // A rule added by hand makes it differ.
        let extra = LISTED.replace(
            "]}}]}",
            r#"]}}, {"rule": {"family": "inet", "table": "ipvsctl", "chain": "prerouting", "handle": 4, "expr": [{"accept": null}]}}]}"#,
        );
        assert!(!table_matches(&extra, &[g]));
        assert!(!table_matches("not json", &[]));
    }

    #[test]
    fn no_groups_removes_the_table() {
        let v: Value = serde_json::from_str(&replace_json(&[])).unwrap();
        let cmds = v["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 3);
        assert!(cmds[1].get("add").is_some());
        assert!(cmds[2].get("delete").is_some());
    }
}
