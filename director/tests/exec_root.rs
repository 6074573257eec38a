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
    assert_eq!(
        sys::euid(),
        0,
        "run as root (scripts/test-all.sh, root-tests)"
    );
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
    assert_eq!(
        sys::euid(),
        0,
        "run as root (scripts/test-all.sh, root-tests)"
    );
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

/// One of `/proc/thread-self/status`'s capability masks.
fn thread_caps(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// As `lvs-director run` runs: the capabilities kept for exec checks are
/// permitted, not effective. The child still becomes the script user, and
/// a check that overruns is still killed although it is another user's.
#[test]
#[ignore = "needs root: the child switches to the script user"]
fn with_the_daemons_lowered_capabilities_children_switch_and_are_killed() {
    assert_eq!(
        sys::euid(),
        0,
        "run as root (scripts/test-all.sh, root-tests)"
    );
    let mask: u64 = sys::FOR_EXEC_CHECKS.iter().map(|c| 1u64 << c).sum();
    // Capabilities are per thread: a thread of its own, like the daemon's
    // main thread before its runtime starts.
    std::thread::spawn(move || {
        sys::lower_effective().unwrap();
        assert_eq!(thread_caps("CapEff") & mask, 0, "still effective");
        assert_eq!(thread_caps("CapPrm") & mask, mask, "no longer permitted");
        let user = sys::Identity::default_user().unwrap().user.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let here = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let at = dir.path().to_str().unwrap();
            let up = run_check(&exec(&["sh", "-c", r#"id -u > "$0/uid""#, at]), here).await;
            assert_eq!(up.outcome, CheckOutcome::Up);
            let uid = std::fs::read_to_string(dir.path().join("uid")).unwrap();
            assert_eq!(uid.trim(), user.uid.to_string());

            let mut overrun = exec(&["sh", "-c", r#"echo $$ > "$0/pid"; exec sleep 60"#, at]);
            overrun.timeout = Duration::from_secs(3);
            let result = run_check(&overrun, here).await;
            assert!(
                matches!(&result.outcome, CheckOutcome::Down(r) if r.starts_with("timeout")),
                "{result:?}"
            );
        });
        let pid: u32 = std::fs::read_to_string(dir.path().join("pid"))
            .expect("the script ran")
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while running(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !running(pid),
            "the script user's sleep {pid} survived its check"
        );
        assert_eq!(thread_caps("CapEff") & mask, 0, "CAP_KILL left effective");
    })
    .join()
    .unwrap();
}
