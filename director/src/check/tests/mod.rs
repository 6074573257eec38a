//! Checks against servers the tests run themselves, on loopback only, on
//! ports the kernel assigns. Every server loop is bounded in bytes and
//! stops when the check hangs up.

mod agent;
mod exec;
mod http;
mod parse;
mod syn;
mod tls;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::{CheckKind, CheckOutcome, CheckResult, CheckSpec, HttpCheck};
use super::{Checker, run_check};

pub(super) const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// What a result may take beyond its timeout on a loaded 2-core machine: a
/// bound that still catches a check that ignores its timeout.
pub(super) const SLACK: Duration = Duration::from_secs(3);

pub(super) fn spec(kind: CheckKind, port: u16, timeout: Duration) -> CheckSpec {
    CheckSpec {
        kind,
        interval: Duration::from_secs(30),
        timeout,
        rise: 1,
        fall: 1,
        port,
    }
}

pub(super) fn http(path: &str) -> HttpCheck {
    HttpCheck {
        tls: false,
        path: path.into(),
        expect_status: vec![(200, 399)],
        expect_body: None,
        host: None,
        verify_tls: true,
        ca_file: None,
    }
}

pub(super) fn down(reason: &str) -> CheckOutcome {
    CheckOutcome::Down(reason.into())
}

/// A listener on 127.0.0.1 with a kernel-assigned port; each connection is
/// handed to `handler` in a task of its own.
pub(super) async fn serve<F, Fut>(handler: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handler(stream));
        }
    });
    port
}

/// A port nothing listens on: bound, then released.
pub(super) async fn closed_port() -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    listener.local_addr().unwrap().port()
}

pub(super) async fn check(spec: &CheckSpec) -> CheckResult {
    let result = run_check(spec, LOCALHOST).await;
    assert_eq!(result.address, LOCALHOST);
    assert!(
        result.duration <= spec.timeout + SLACK,
        "took {:?} with a timeout of {:?}: {:?}",
        result.duration,
        spec.timeout,
        result.outcome
    );
    result
}

#[tokio::test]
async fn none_is_up_at_once() {
    // "At once" is a fact about the future, not about the machine's load:
    // it completes at its first poll, waiting on nothing.
    use futures::FutureExt;
    let spec = spec(CheckKind::None, 1, Duration::from_secs(1));
    let result = run_check(&spec, LOCALHOST)
        .now_or_never()
        .expect("a check of kind none waited on something");
    assert_eq!(result.outcome, CheckOutcome::Up);
}

#[tokio::test]
async fn tcp_up_and_refused() {
    let port = serve(|_stream| async {}).await;
    let up = check(&spec(CheckKind::Tcp, port, Duration::from_secs(2))).await;
    assert_eq!(up.outcome, CheckOutcome::Up);
    let port = closed_port().await;
    let refused = check(&spec(CheckKind::Tcp, port, Duration::from_secs(2))).await;
    assert_eq!(refused.outcome, down("connection refused"));
}

/// A TCP check closes with a reset: the server reads ECONNRESET, not an
/// orderly end (and the director keeps no TIME_WAIT).
#[tokio::test]
async fn tcp_closes_with_a_reset() {
    use tokio::io::AsyncReadExt;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let port = serve(move |mut stream| {
        let tx = tx.clone();
        async move {
            let mut buf = [0u8; 1];
            let _ = tx.send(stream.read(&mut buf).await.map_err(|e| e.kind()));
        }
    })
    .await;
    let up = check(&spec(CheckKind::Tcp, port, Duration::from_secs(2))).await;
    assert_eq!(up.outcome, CheckOutcome::Up);
    let read = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(
        read.unwrap().unwrap(),
        Err(std::io::ErrorKind::ConnectionReset)
    );
}

/// A listener whose accept queue is full drops further SYNs: the connect
/// hangs until the check's timeout.
#[tokio::test]
async fn tcp_connect_timeout() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(LOCALHOST, 0)).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the queue (backlog 0 still queues one or two); never accepted.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let timeout = Duration::from_millis(500);
    let result = check(&spec(CheckKind::Tcp, addr.port(), timeout)).await;
    assert_eq!(result.outcome, down("timeout after 0.5s"));
    assert!(result.duration >= timeout);
    drop((listener, fillers));
}

#[tokio::test]
async fn checker_runs_and_skips_when_every_permit_is_taken() {
    let checker = std::sync::Arc::new(Checker::new(1));
    assert_eq!(checker.max_in_flight(), 1);
    // Accepts and never answers: holds the one permit for its timeout.
    let port = serve(|stream| async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    })
    .await;
    let slow = spec(CheckKind::Http(http("/")), port, Duration::from_secs(2));
    let holder = {
        let checker = checker.clone();
        tokio::spawn(async move { checker.run(&slow, LOCALHOST).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(checker.in_flight(), 1);

    let mut quick = spec(CheckKind::None, port, Duration::from_secs(1));
    quick.interval = Duration::from_millis(300);
    let skipped = checker.run(&quick, LOCALHOST).await;
    let CheckOutcome::Skipped(reason) = &skipped.outcome else {
        panic!("expected Skipped, got {:?}", skipped.outcome);
    };
    assert!(reason.contains("not started within 0.3s"), "{reason}");
    assert!(skipped.duration >= Duration::from_millis(300));
    assert_eq!(checker.waiting(), 0);

    // The holder ends at its own timeout; then the permit is free again.
    let held = holder.await.unwrap();
    assert_eq!(held.outcome, down("timeout after 2.0s"));
    assert_eq!(checker.in_flight(), 0);
    let ran = checker.run(&quick, LOCALHOST).await;
    assert_eq!(ran.outcome, CheckOutcome::Up);
}

#[test]
fn resources_of_the_director_and_a_finished_handshake_are_not_a_down_server() {
    use super::reason::failed_to_connect;
    use super::run::handshake_done;
    let e = std::io::Error::from_raw_os_error;
    for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
        assert!(
            matches!(failed_to_connect(&e(errno), ""), CheckOutcome::Skipped(_)),
            "errno {errno}"
        );
    }
    assert_eq!(
        failed_to_connect(&e(libc::EMFILE), "agent: "),
        CheckOutcome::Skipped("agent: not started: too many open files".into())
    );
    assert_eq!(
        failed_to_connect(&e(libc::ECONNREFUSED), "agent: "),
        down("agent: connection refused")
    );
    // A reset after the handshake: the server accepted.
    assert!(handshake_done(&e(libc::ECONNRESET)) && handshake_done(&e(libc::EPIPE)));
    for errno in [libc::ECONNREFUSED, libc::ETIMEDOUT, libc::EHOSTUNREACH] {
        assert!(!handshake_done(&e(errno)), "errno {errno}");
    }
}

#[tokio::test]
async fn spawned_tcp_runs_report_like_run_check() {
    let checker = std::sync::Arc::new(Checker::new(4));
    let open = serve(|stream| async move { drop(stream) }).await;
    let closed = closed_port().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for port in [open, closed] {
        let tx = tx.clone();
        let s = std::sync::Arc::new(spec(CheckKind::Tcp, port, Duration::from_secs(2)));
        checker.spawn(s, LOCALHOST, move |o, _, d| {
            let _ = tx.send((port, o, d));
        });
    }
    let mut got = [rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    got.sort_by_key(|(p, _, _)| *p != open);
    assert_eq!(got[0], (open, CheckOutcome::Up, None));
    assert_eq!(got[1], (closed, down("connection refused"), None));
    // Other kinds measure their own duration.
    let tx = tx.clone();
    let s = std::sync::Arc::new(spec(CheckKind::None, open, Duration::from_secs(2)));
    checker.spawn(s, LOCALHOST, move |o, _, d| {
        let _ = tx.send((0, o, d));
    });
    let (_, outcome, duration) = rx.recv().await.unwrap();
    assert_eq!(outcome, CheckOutcome::Up);
    assert!(duration.is_some());
    assert_eq!(checker.in_flight(), 0);
}

/// A task the runtime polls only after the check's timeout has passed
/// since its spawn (an overloaded director) still connects: the timeout
/// runs from the connect, not from the spawn.
#[tokio::test(flavor = "current_thread")]
async fn a_tcp_run_polled_late_is_not_timed_out() {
    let checker = std::sync::Arc::new(Checker::new(4));
    let port = serve(|stream| async move { drop(stream) }).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let s = std::sync::Arc::new(spec(CheckKind::Tcp, port, Duration::from_millis(300)));
    checker.spawn(s, LOCALHOST, move |o, _, _| {
        let _ = tx.send(o);
    });
    // Blocks the only runtime thread: the task cannot run meanwhile.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rx.recv().await.unwrap(), CheckOutcome::Up);
}

#[test]
fn reasons_are_short_and_lower_case() {
    use super::reason::{io_reason, secs};
    assert_eq!(secs(Duration::from_secs(1)), "1.0s");
    assert_eq!(secs(Duration::from_millis(250)), "0.25s");
    assert_eq!(secs(Duration::from_millis(2500)), "2.5s");
    assert_eq!(secs(Duration::from_millis(1)), "0.001s");
    let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
    assert_eq!(io_reason(&refused), "connection refused");
    let unreachable = std::io::Error::from_raw_os_error(libc::EHOSTUNREACH);
    assert_eq!(io_reason(&unreachable), "no route to host");
}
