//! Running one check ([`run_check`]) and capping how many run at once
//! ([`Checker`]).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::reason::{failed_to_connect, secs, timeout_reason};
use super::syn::Prober;
use super::{CheckKind, CheckOutcome, CheckResult, CheckSpec};
use super::{agent, exec, http};

/// Default cap on checks in flight. Each check holds at most one socket (or
/// one child and the read end of its stderr pipe), so this bounds the
/// checker's file descriptors to about this many, well under the usual
/// `LimitNOFILE` of a service (keepalived users hit fd limits near 10,000
/// TCP checkers).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Runs one check of `address` (on `spec.port`) to its end, within
/// `spec.timeout`: every kind is bounded in time, memory and descriptors.
/// Never panics on a hostile peer; the reason of a failure is a short
/// lower-case string (`connection refused`, `HTTP 503`,
/// `timeout after 1.0s`...).
///
/// Raw sockets belong to a [`Checker`]: here a half-open check runs as a
/// connect check.
pub async fn run_check(spec: &CheckSpec, address: IpAddr) -> CheckResult {
    run_with(spec, address, None).await
}

async fn run_with(spec: &CheckSpec, address: IpAddr, prober: Option<&Prober>) -> CheckResult {
    let start = Instant::now();
    let target = SocketAddr::new(address, spec.port);
    let outcome = match &spec.kind {
        CheckKind::None => CheckOutcome::Up,
        CheckKind::TcpHalfOpen => match prober.map(|p| p.family(address)) {
            Some(Ok(Some(family))) => family.probe(target, spec.timeout).await.0,
            Some(Err(e)) => failed_to_connect(&e, ""),
            Some(Ok(None)) | None => bounded(spec.timeout, tcp(target)).await,
        },
        CheckKind::Tcp => bounded(spec.timeout, tcp(target)).await,
        CheckKind::Http(check) => bounded(spec.timeout, http::run(check, target)).await,
        CheckKind::Agent => bounded(spec.timeout, agent::run(target)).await,
        // Exec owns its deadline: on expiry it must kill the process group
        // and reap the child before it returns, which a dropped future
        // cannot do.
        CheckKind::Exec { command } => exec::run(command, target, spec.timeout).await,
    };
    CheckResult {
        address,
        outcome,
        duration: start.elapsed(),
    }
}

/// A check that is one connection, cut off at `timeout` (dropping the
/// future closes its socket).
async fn bounded(timeout: Duration, check: impl Future<Output = CheckOutcome>) -> CheckOutcome {
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| CheckOutcome::Down(timeout_reason(timeout)))
}

async fn tcp(target: SocketAddr) -> CheckOutcome {
    match TcpStream::connect(target).await {
        // Closed at once with a reset (as HAProxy's connect checks): no
        // TIME_WAIT on the director, whose ports would otherwise hold a
        // minute's worth of checks, and one packet instead of the two FIN
        // exchanges (measured: the kernel's packet work is most of a
        // checker's CPU). A server application sees its accepted
        // connection reset.
        Ok(stream) => {
            let _ = stream.set_zero_linger();
            CheckOutcome::Up
        }
        Err(e) if handshake_done(&e) => CheckOutcome::Up,
        Err(e) => failed_to_connect(&e, ""),
    }
}

/// Whether a connect that failed with `e` had nonetheless completed the
/// handshake. The kernel reports a reset as ECONNREFUSED while the connect
/// is in progress, as ECONNRESET once established and as EPIPE after the
/// peer's FIN: a busy director that looks at the socket only after a server
/// accepted, closed and reset it sees one of the last two, and the server
/// did accept the connection (at 20,000 checks a VM drained hundreds of
/// healthy servers on "broken pipe").
pub(crate) fn handshake_done(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNRESET | libc::EPIPE))
}

/// A TCP check run by the daemon, in a task much smaller than one that can
/// hold any kind of check (an http or https run's state is kilobytes; at
/// thousands of checks a second, moving and allocating it showed in the
/// profile). Its one clock reading is its start: the timeout runs from
/// there, when the connect is really made, never from when the task was
/// spawned (an overloaded director polls a new task late, and a deadline
/// set at the spawn timed out thousands of healthy servers in the VM).
async fn tcp_timed(target: SocketAddr, timeout: Duration) -> (CheckOutcome, Instant) {
    let started = Instant::now();
    let outcome = tokio::time::timeout_at((started + timeout).into(), tcp(target))
        .await
        .unwrap_or_else(|_| CheckOutcome::Down(timeout_reason(timeout)));
    (outcome, started)
}

/// Caps the checks in flight with a semaphore, so that a director with
/// tens of thousands of real servers (or a flood of slow ones) holds a
/// bounded number of sockets and children.
///
/// Waiting for a permit does not count against the check's `timeout` (the
/// timeout starts when the check does). A check that waits a whole
/// `interval` without a permit is not run: its result is
/// [`CheckOutcome::Skipped`], which says nothing about the server (the next
/// run of the same check would be due by then anyway).
#[derive(Debug)]
pub struct Checker {
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    waiting: AtomicUsize,
    /// The raw sockets of half-open checks, opened on the first one.
    syn: Prober,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_IN_FLIGHT)
    }
}

impl Checker {
    /// `max_in_flight` of 0 is taken as 1 (no check could ever run).
    pub fn new(max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            waiting: AtomicUsize::new(0),
            syn: Prober::new(max_in_flight),
        }
    }

    /// Runs the check once a permit is free (see the type's documentation).
    pub async fn run(&self, spec: &CheckSpec, address: IpAddr) -> CheckResult {
        // The usual case, a free permit, arms no timer.
        if let Ok(_permit) = self.permits.try_acquire() {
            return run_with(spec, address, Some(&self.syn)).await;
        }
        let queued = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = tokio::time::timeout(spec.interval, self.permits.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match permit {
            Ok(Ok(_permit)) => run_with(spec, address, Some(&self.syn)).await,
            // Timed out (or closed, which this type never does).
            _ => CheckResult {
                address,
                outcome: CheckOutcome::Skipped(format!(
                    "not started within {}: {} checks in flight (the limit)",
                    secs(spec.interval),
                    self.max_in_flight
                )),
                duration: queued.elapsed(),
            },
        }
    }

    /// Spawns a run of `spec` on `address` and hands `done` its outcome,
    /// when it started, and how long it took if the run measured that. A
    /// TCP run (the common kind, by the thousand) reads the clock once, at
    /// its start, and leaves its duration to the caller (`None`), who
    /// reads the clock when it handles the result anyway.
    pub fn spawn(
        self: &Arc<Self>,
        spec: Arc<CheckSpec>,
        address: IpAddr,
        done: impl FnOnce(CheckOutcome, Instant, Option<Duration>) + Send + 'static,
    ) {
        let checker = self.clone();
        if spec.kind == CheckKind::TcpHalfOpen {
            tokio::spawn(async move {
                let target = SocketAddr::new(address, spec.port);
                let (outcome, started) = match checker.permits.try_acquire() {
                    Ok(_permit) => match checker.syn.family(address) {
                        Ok(Some(family)) => family.probe(target, spec.timeout).await,
                        Ok(None) => tcp_timed(target, spec.timeout).await,
                        Err(e) => (failed_to_connect(&e, ""), Instant::now()),
                    },
                    Err(_) => {
                        let r = Box::pin(checker.run(&spec, address)).await;
                        let started = Instant::now().checked_sub(r.duration);
                        (r.outcome, started.unwrap_or_else(Instant::now))
                    }
                };
                done(outcome, started, None);
            });
            return;
        }
        if spec.kind != CheckKind::Tcp {
            tokio::spawn(async move {
                let r = checker.run(&spec, address).await;
                let started = Instant::now()
                    .checked_sub(r.duration)
                    .unwrap_or_else(Instant::now);
                done(r.outcome, started, Some(r.duration));
            });
            return;
        }
        tokio::spawn(async move {
            let (outcome, started) = match checker.permits.try_acquire() {
                Ok(_permit) => tcp_timed(SocketAddr::new(address, spec.port), spec.timeout).await,
                // Boxed: the rare wait for a permit must not make every
                // TCP task as large as the general run.
                Err(_) => {
                    let r = Box::pin(checker.run(&spec, address)).await;
                    let started = Instant::now().checked_sub(r.duration);
                    (r.outcome, started.unwrap_or_else(Instant::now))
                }
            };
            done(outcome, started, None);
        });
    }

    /// Checks running now (for the `checks in flight` gauge).
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.permits.available_permits()
    }

    /// Checks waiting for a permit now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}
