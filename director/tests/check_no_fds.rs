//! A director out of file descriptors: a check that cannot open its socket
//! (EMFILE) is skipped, not a failed server. Alone in its own test binary
//! because it lowers the process's open-files limit, which would break any
//! test running beside it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lvs_director::check::{CheckKind, CheckOutcome, CheckSpec, Checker, HttpCheck, run_check};
use tokio::net::TcpListener;

fn spec(kind: CheckKind, port: u16) -> CheckSpec {
    CheckSpec {
        kind,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        rise: 1,
        fall: 1,
        port,
    }
}

fn nofile() -> libc::rlimit {
    let (rlim_cur, rlim_max) = lvs_director::sys::nofile_limit().expect("getrlimit");
    libc::rlimit { rlim_cur, rlim_max }
}

fn set_nofile(lim: &libc::rlimit) {
    assert!(lvs_director::sys::set_nofile_limit(
        lim.rlim_cur,
        lim.rlim_max
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn checks_without_a_free_descriptor_are_skipped_not_down() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        })
    };
    let here = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let tcp = spec(CheckKind::Tcp, port);
    let http = spec(
        CheckKind::Http(HttpCheck {
            tls: false,
            path: "/".into(),
            expect_status: vec![(200, 399)],
            expect_body: None,
            host: None,
            verify_tls: true,
            ca_file: None,
        }),
        port,
    );
    let agent = spec(CheckKind::Agent, port);
    let exec = spec(
        CheckKind::Exec {
            command: vec!["/bin/true".into()],
        },
        port,
    );
    // With descriptors to spare the server is up (the agent and http
    // checks get a closed connection: down, but not skipped).
    assert_eq!(run_check(&tcp, here).await.outcome, CheckOutcome::Up);

    // Take every descriptor the limit allows.
    let saved = nofile();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    set_nofile(&libc::rlimit {
        rlim_cur: open + 8,
        rlim_max: saved.rlim_max,
    });
    let mut hogs = Vec::new();
    for _ in 0..64 {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hogs.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
        }
    }
    assert!(
        std::fs::File::open("/dev/null").is_err(),
        "the descriptors are not exhausted"
    );
    let mut outcomes = Vec::new();
    for s in [&tcp, &http, &agent, &exec] {
        outcomes.push(run_check(s, here).await.outcome);
    }
    // A half-open check's first run opens the raw socket (as root; else
    // it is a connect check): that open fails too.
    let checker = Checker::new(4);
    let half_open = spec(CheckKind::TcpHalfOpen, port);
    outcomes.push(checker.run(&half_open, here).await.outcome);
    drop(hogs);
    set_nofile(&saved);

    let kinds = ["tcp", "http", "agent", "exec", "tcp half-open"];
    for (what, outcome) in kinds.iter().zip(&outcomes) {
        let CheckOutcome::Skipped(reason) = outcome else {
            panic!("{what}: expected Skipped, got {outcome:?}");
        };
        assert!(reason.contains("too many open files"), "{what}: {reason}");
    }
    // Descriptors back: the same check runs again.
    assert_eq!(run_check(&tcp, here).await.outcome, CheckOutcome::Up);
    // And the half-open one opens its socket now: the failed open was not
    // taken for good (where raw sockets are allowed, the server accepts
    // nothing: no connect check ran).
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        checker.run(&half_open, here).await.outcome,
        CheckOutcome::Up
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let raw_allowed = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::TCP),
    )
    .is_ok();
    if raw_allowed {
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), before);
    }
    server.abort();
}
