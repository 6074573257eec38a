//! An exec check run by root cannot become root again: the child is the
//! script user (here the default, `lvs-check` or `nobody`: these tests
//! create no users), with no capability in any set, `no_new_privs`, 1024
//! open files and only PATH and the placeholders' variables. Root only
//! (`scripts/test-all.sh`, step root-tests: `-- --ignored`).

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use lvs_director::check::{CheckKind, CheckOutcome, CheckSpec, run_check};
use lvs_director::sys;

fn exec(argv: &[&str]) -> CheckSpec {
    CheckSpec {
        kind: CheckKind::Exec {
            command: argv.iter().map(|s| s.to_string()).collect(),
        },
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        rise: 1,
        fall: 1,
        port: 3306,
    }
}

#[tokio::test]
#[ignore = "needs root: the child switches to the script user"]
async fn the_child_is_the_script_user_without_privileges() {
    if sys::euid() != 0 {
        eprintln!("skipped: not root (the child can only switch users from root)");
        return;
    }
    let user = sys::Identity::default_user()
        .expect("the default script user")
        .user
        .expect("root switches");
    assert_ne!(user.uid, 0);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The environment the shell was started with (/proc/$$/environ), not
    // the variables a shell adds itself.
    let script = r#"id -u > "$0/uid"; id -G > "$0/groups"; grep -E '^(Cap|NoNewPrivs)' /proc/self/status > "$0/status"; ulimit -n > "$0/nofile"; tr '\0' '\n' < /proc/$$/environ > "$0/env""#;
    let here = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let result = run_check(
        &exec(&["sh", "-c", script, dir.path().to_str().unwrap()]),
        here,
    )
    .await;
    assert_eq!(result.outcome, CheckOutcome::Up);
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();

    assert_eq!(read("uid").trim(), user.uid.to_string());
    let mut groups: Vec<u32> = read("groups")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort();
    let mut want = user.groups.clone();
    want.push(user.gid);
    want.sort();
    want.dedup();
    assert_eq!(groups, want, "the user's groups, not root's");

    let status = read("status");
    for set in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(set))
            .unwrap_or_else(|| panic!("no {set} in {status}"));
        assert_eq!(line, format!("{set}:\t0000000000000000"), "{status}");
    }
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let nofile: u64 = read("nofile").trim().parse().unwrap();
    assert!(nofile <= 1024, "{nofile}");

    let mut env: Vec<String> = read("env").lines().map(String::from).collect();
    env.sort();
    assert_eq!(
        env,
        [
            "LVS_ADDRESS=127.0.0.1",
            "LVS_PORT=3306",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    );
}

/// A setuid-root program gives the child nothing back (no_new_privs).
#[tokio::test]
#[ignore = "needs root: the child switches to the script user"]
async fn setuid_programs_do_not_make_the_child_root() {
    if sys::euid() != 0 {
        eprintln!("skipped: not root (the child can only switch users from root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A setuid-root copy of `id`, where the child may run it.
    let id = dir.path().join("id");
    std::fs::copy("/usr/bin/id", &id).unwrap();
    std::fs::set_permissions(&id, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let here = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let script = r#"test "$("$0" -u)" != 0"#;
    let result = run_check(&exec(&["sh", "-c", script, id.to_str().unwrap()]), here).await;
    assert_eq!(
        result.outcome,
        CheckOutcome::Up,
        "the setuid bit made it root"
    );
}
