//! A flood of checks against a server that never answers: the open file
//! descriptors of the process stay bounded by the Checker's cap. Alone in
//! its own test binary so that no other test's sockets blur the count.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lvs_director::check::{CheckKind, CheckOutcome, CheckSpec, Checker, HttpCheck};
use tokio::net::TcpListener;

const CHECKS: usize = 2000;
const CAP: usize = 64;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_checks_hold_at_most_the_cap_in_sockets() {
    // Bound, listening, never accepting: the kernel completes handshakes
    // into the queue (then drops SYNs), nobody ever answers.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec = Arc::new(CheckSpec {
        kind: CheckKind::Http(HttpCheck {
            tls: false,
            path: "/".into(),
            expect_status: vec![(200, 399)],
            expect_body: None,
            host: None,
            verify_tls: true,
            ca_file: None,
        }),
        // Long enough that no check is skipped: 2000 / 64 waves of 0.2 s.
        interval: Duration::from_secs(120),
        timeout: Duration::from_millis(200),
        rise: 1,
        fall: 1,
        port,
    });
    let checker = Arc::new(Checker::new(CAP));
    let baseline = open_fds();

    // Sample the descriptors while the flood runs.
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let peak_in_flight = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, peak, peak_in_flight, checker) = (
            done.clone(),
            peak.clone(),
            peak_in_flight.clone(),
            checker.clone(),
        );
        tokio::spawn(async move {
            let stop = Instant::now() + Duration::from_secs(120);
            while !done.load(Ordering::Relaxed) && Instant::now() < stop {
                peak.fetch_max(open_fds(), Ordering::Relaxed);
                peak_in_flight.fetch_max(checker.in_flight(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let started = Instant::now();
    let tasks: Vec<_> = (0..CHECKS)
        .map(|_| {
            let (checker, spec) = (checker.clone(), spec.clone());
            tokio::spawn(async move { checker.run(&spec, IpAddr::V4(Ipv4Addr::LOCALHOST)).await })
        })
        .collect();
    let mut timeouts = 0;
    for task in tasks {
        let result = task.await.unwrap();
        match result.outcome {
            CheckOutcome::Down(reason) if reason == "timeout after 0.2s" => timeouts += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();

    let peak = peak.load(Ordering::Relaxed);
    let peak_in_flight = peak_in_flight.load(Ordering::Relaxed);
    eprintln!(
        "{CHECKS} checks in {elapsed:?}: fds baseline {baseline}, peak {peak}, peak in flight {peak_in_flight}"
    );
    assert_eq!(timeouts, CHECKS);
    assert_eq!(checker.in_flight(), 0);
    // The cap was used (the test measured something) and held.
    assert!(peak_in_flight > CAP / 2, "peak in flight {peak_in_flight}");
    assert!(peak_in_flight <= CAP);
    // One socket per check in flight, plus slack for the runtime (timers,
    // the sampler's own read_dir).
    assert!(
        peak <= baseline + CAP + 16,
        "{peak} descriptors open at the peak, baseline {baseline}, cap {CAP}"
    );
    // 2000 / 64 waves of 0.2 s is ~6 s; the bound catches a serialised run.
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    drop(listener);
}
