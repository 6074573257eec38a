//! The kit of a long-running service under systemd (or without it):
//!
//! - [`Notifier`]: sd_notify(3) over `$NOTIFY_SOCKET` (READY, STATUS,
//!   WATCHDOG, RELOADING, STOPPING) without linking libsystemd;
//! - [`Watchdog`]: the `WatchdogSec=` keep-alive, which keeps pinging while
//!   the service waits on something slow but bounded (a lock, a repair);
//! - [`Signals`]: SIGHUP as [`Signal::Reload`], SIGTERM and SIGINT as
//!   [`Signal::Stop`], as one async stream;
//! - [`RateLimiter`]: a token bucket, pure (the caller passes the time), so
//!   a fight with another tool shows in the log instead of spinning.

use std::future::Future;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};

/// sd_notify(3): state changes sent to the service manager. Without
/// `$NOTIFY_SOCKET` (not started by systemd with `Type=notify`) every send
/// is a no-op, so callers need no special case.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
    /// An unusable value disables notifications.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.into_string().ok()?;
            let address = match path.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name).ok()?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            Some((UnixDatagram::unbound().ok()?, address))
        });
        Notifier { socket }
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { socket: None }
    }

    /// Whether a service manager listens.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends raw `KEY=value` lines (newline-separated).
    pub fn send(&self, state: &str) -> io::Result<()> {
        match &self.socket {
            Some((socket, address)) => socket.send_to_addr(state.as_bytes(), address).map(drop),
            None => Ok(()),
        }
    }

    /// `READY=1` with a status line: start-up is complete.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=`: the free-form line `systemctl status` shows.
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: the keep-alive of `WatchdogSec=`.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    /// `RELOADING=1`: a reload began; send [`Notifier::ready`] when done.
    /// (`Type=notify-reload` also wants MONOTONIC_USEC=, which needs the raw
    /// CLOCK_MONOTONIC; units reloading by signal with `Type=notify` do not.)
    pub fn reloading(&self) -> io::Result<()> {
        self.send("RELOADING=1")
    }

    /// `STOPPING=1`: shutting down.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    /// How often to send `WATCHDOG=1`: half the `WATCHDOG_USEC` systemd set,
    /// if it set one for this process (`WATCHDOG_PID`, when present, must be
    /// ours: a child does not inherit the duty).
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        let usec = std::env::var("WATCHDOG_USEC").ok()?;
        let pid = std::env::var("WATCHDOG_PID").ok();
        watchdog_period(&usec, pid.as_deref(), std::process::id())
    }
}

/// The pure part of [`Notifier::watchdog_period`].
fn watchdog_period(usec: &str, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec.trim().parse().ok()?;
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(own_pid)) {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// A STATUS= value must stay on one line: a newline would start another
/// assignment.
fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// The `WatchdogSec=` keep-alive. [`Watchdog::tick`] completes whenever a
/// ping is due (never when no watchdog is configured), for a `select!` in
/// the service's loop; [`Watchdog::keep_alive`] drives a slow operation
/// while pinging, so a bounded wait (a lock held by another process, a
/// repair) is not mistaken for a hang.
#[derive(Debug)]
pub struct Watchdog {
    interval: Option<tokio::time::Interval>,
}

impl Watchdog {
    /// A watchdog pinging every `period`, or a disabled one. Must be called
    /// inside a tokio runtime with time enabled.
    pub fn new(period: Option<Duration>) -> Watchdog {
        let interval = period.map(|p| {
            let mut interval = tokio::time::interval(p);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        Watchdog { interval }
    }

    /// The period the notifier's environment asks for.
    pub fn from_notifier(notifier: &Notifier) -> Watchdog {
        Watchdog::new(notifier.watchdog_period())
    }

    /// Whether a watchdog is configured.
    pub fn is_enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// Completes when the next ping is due; pending forever when disabled.
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Runs `future` to completion, sending `WATCHDOG=1` through `notifier`
    /// whenever a ping falls due meanwhile. The future must be bounded: the
    /// watchdog exists to catch a service that hangs.
    pub async fn keep_alive<F: Future>(&mut self, notifier: &Notifier, future: F) -> F::Output {
        tokio::pin!(future);
        loop {
            tokio::select! {
                output = &mut future => return output,
                _ = self.tick() => {
                    // A lost ping is retried at the next tick; nothing else to do.
                    let _ = notifier.watchdog();
                }
            }
        }
    }
}

/// What a signal asks of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM or SIGINT: exit.
    Stop,
}

/// SIGHUP, SIGTERM and SIGINT as one stream. Installing the handlers
/// replaces the default actions (SIGTERM no longer kills the process), so
/// create it before the service does anything it must finish cleanly.
#[derive(Debug)]
pub struct Signals {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Must be called inside a tokio runtime.
    pub fn new() -> io::Result<Signals> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal. Signals of one kind arriving while none is awaited
    /// are merged into one (as the kernel does).
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.hangup.recv() => Signal::Reload,
            _ = self.terminate.recv() => Signal::Stop,
            _ = self.interrupt.recv() => Signal::Stop,
        }
    }
}

/// A token bucket: `burst` actions at once, then one per `refill`. Pure:
/// every call takes the current time, so it is tested with a fake clock.
///
/// Over any span of time T starting with a full bucket, at most
/// `burst + T / refill` actions are allowed ([`RateLimiter::max_allowed`]).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    burst: u32,
    refill: Duration,
    tokens: u32,
    /// When the bucket last gained a token (or was last full).
    last_refill: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`. A burst of 0 is taken as 1 and a zero refill
    /// period as one nanosecond, so the limiter always lets something through.
    pub fn new(burst: u32, refill: Duration, now: Instant) -> RateLimiter {
        let burst = burst.max(1);
        RateLimiter {
            burst,
            refill: refill.max(Duration::from_nanos(1)),
            tokens: burst,
            last_refill: now,
        }
    }

    /// The bucket size.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time to earn one token.
    pub fn refill(&self) -> Duration {
        self.refill
    }

    /// Takes a token at `now`, or says when the next one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let elapsed = now.saturating_duration_since(self.last_refill);
        let earned = elapsed.as_nanos() / self.refill.as_nanos();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            self.last_refill += self.refill * earned;
        }
        if self.tokens == 0 {
            return Err(self.last_refill + self.refill);
        }
        // A full bucket earns nothing: the refill clock starts with the
        // first token spent, not at the last refill.
        if self.tokens == self.burst {
            self.last_refill = now;
        }
        self.tokens -= 1;
        Ok(())
    }

    /// The most actions a limiter of this `burst` and `refill` allows in
    /// `elapsed` time: `burst + ⌊elapsed / refill⌋`.
    pub fn max_allowed(burst: u32, refill: Duration, elapsed: Duration) -> u64 {
        let refill = refill.max(Duration::from_nanos(1));
        u64::from(burst.max(1))
            + u64::try_from(elapsed.as_nanos() / refill.as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst_then_one_per_period() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(3, Duration::from_secs(2), start);
        for _ in 0..3 {
            assert!(limiter.take(start).is_ok());
        }
        let next = limiter.take(start).unwrap_err();
        assert_eq!(next, start + Duration::from_secs(2));
        assert!(limiter.take(start + Duration::from_millis(1999)).is_err());
        assert!(limiter.take(start + Duration::from_secs(2)).is_ok());
        assert!(limiter.take(start + Duration::from_secs(2)).is_err());
        // A long quiet spell refills the whole burst, no more.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.take(later).is_ok());
        }
        assert!(limiter.take(later).is_err());
    }

    #[test]
    fn rate_limiter_never_exceeds_its_bound() {
        // A caller hammering every 7 ms, obeying nothing, for a minute of
        // fake time: the count allowed stays under burst + elapsed / refill
        // at every instant.
        let start = Instant::now();
        let refill = Duration::from_millis(250);
        let mut limiter = RateLimiter::new(5, refill, start);
        let mut allowed = 0u64;
        for step in 0..=8_600u32 {
            let elapsed = Duration::from_millis(7) * step;
            if limiter.take(start + elapsed).is_ok() {
                allowed += 1;
            }
            assert!(allowed <= RateLimiter::max_allowed(5, refill, elapsed));
        }
        // And it does not starve: about one per refill period after the burst.
        assert!(allowed >= 5 + 60_000 / 250 - 1, "{allowed}");
    }

    #[test]
    fn rate_limiter_next_time_is_honest() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(1, Duration::from_secs(1), start);
        limiter.take(start).unwrap();
        let t = start + Duration::from_millis(300);
        let next = limiter.take(t).unwrap_err();
        assert!(limiter.take(next - Duration::from_nanos(1)).is_err());
        assert!(limiter.take(next).is_ok());
    }

    #[test]
    fn degenerate_limits_still_let_something_through() {
        let now = Instant::now();
        let mut limiter = RateLimiter::new(0, Duration::ZERO, now);
        assert_eq!(limiter.burst(), 1);
        assert!(limiter.take(now).is_ok());
        assert!(limiter.take(now + Duration::from_nanos(1)).is_ok());
    }

    #[test]
    fn watchdog_period_is_half_the_timeout_and_only_for_us() {
        assert_eq!(
            watchdog_period("30000000", None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_period("30000000", Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_period("30000000", Some("8"), 7), None);
        assert_eq!(watchdog_period("0", None, 7), None);
        assert_eq!(watchdog_period("soon", None, 7), None);
    }

    #[test]
    fn notifier_sends_datagrams_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
        };
        assert!(notifier.is_enabled());
        notifier.ready("watching\n2 VIPs").unwrap();
        notifier.watchdog().unwrap();
        notifier.stopping().unwrap();
        let mut buf = [0u8; 256];
        let mut next = || {
            let n = listener.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        assert_eq!(next(), "READY=1\nSTATUS=watching 2 VIPs");
        assert_eq!(next(), "WATCHDOG=1");
        assert_eq!(next(), "STOPPING=1");
        // Without a socket, sending is a silent no-op.
        assert!(Notifier::disabled().watchdog().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_pings_while_the_future_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let notifier = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                SocketAddr::from_pathname(&path).unwrap(),
            )),
        };
        let mut watchdog = Watchdog::new(Some(Duration::from_secs(1)));
        let value = watchdog
            .keep_alive(&notifier, async {
                tokio::time::sleep(Duration::from_millis(4500)).await;
                42
            })
            .await;
        assert_eq!(value, 42);
        let mut pings = 0;
        let mut buf = [0u8; 64];
        while let Ok(n) = listener.recv(&mut buf) {
            assert_eq!(&buf[..n], b"WATCHDOG=1");
            pings += 1;
        }
        // At 0, 1, 2, 3 and 4 s of (paused, auto-advanced) time.
        assert_eq!(pings, 5);
        // Disabled: the future just runs.
        let mut off = Watchdog::new(None);
        assert!(!off.is_enabled());
        assert_eq!(off.keep_alive(&notifier, async { 7 }).await, 7);
    }
}
