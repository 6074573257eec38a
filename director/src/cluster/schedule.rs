//! When each unique check runs: a heap of due times, one entry per check
//! (memory O(checks), nothing allocated per run but the run itself). The
//! first run of each check is spread over its interval by a hash of its
//! index, so 20,000 checks do not fire at once; after that a check runs
//! every `interval` from its previous start, and a run still going when the
//! next is due makes that next one wait for the following slot.
//!
//! Starts are paced by a token bucket at twice the checks' average rate
//! (the sum of 1/interval), holding 20 ms of that: a director that fell
//! behind (a stall, a busy machine) catches up at twice the pace instead of
//! firing every overdue check at once: up to 1,024 SYNs back to back (the
//! in-flight cap) at the servers and at the director's own runtime, just
//! when it is least able to take them. (In the VM benchmark the burst was
//! first suspected for the connect timeouts of a lagging director; the
//! network counters later showed almost no drops, and the timeouts came
//! from deadlines set before the runs were first polled: see
//! `check::run`.)
//!
//! Pure (the time is passed in); the daemon spawns the runs it hands out.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::check::{CheckKind, CheckSpec};
use crate::cluster::{CheckId, Cluster};

/// A time as nanoseconds since the scheduler's epoch: 8 bytes where an
/// `Instant` takes 16, in each of 20,000 slots and heap entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct At(u64);

/// A check's times. The address and spec are the model's (by check id):
/// not copied here.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the run in flight started ([`Slot::IDLE`]: none). A run whose
    /// result never came (a result of a generation the daemon no longer
    /// maps, after two quick reloads) stops counting once it is older than
    /// any run can be.
    running: At,
    next: At,
}

impl Slot {
    const IDLE: At = At(u64::MAX);
    /// The slot of a check that never runs (`none`).
    const UNUSED: Slot = Slot {
        running: Slot::IDLE,
        next: At(u64::MAX),
    };

    fn used(&self) -> bool {
        self.next != Slot::UNUSED.next
    }

    fn busy(&self, spec: &CheckSpec, now: At) -> bool {
        // The checker waits at most an interval for a permit, then runs
        // within the timeout.
        let longest = spec.interval + spec.timeout + Duration::from_secs(1);
        self.running != Slot::IDLE
            && now.0.saturating_sub(self.running.0) < longest.as_nanos() as u64
    }
}

/// A run to start.
#[derive(Debug, Clone)]
pub struct Run {
    pub generation: u64,
    pub id: CheckId,
    pub address: IpAddr,
    pub spec: Arc<CheckSpec>,
}

#[derive(Debug)]
pub struct Scheduler {
    generation: u64,
    /// What [`At`] counts from.
    epoch: Instant,
    slots: Vec<Slot>,
    heap: BinaryHeap<Reverse<(At, u32)>>,
    /// The latest start behind its due time since [`Scheduler::take_lag`]:
    /// the measure of a director too busy for its checks (every second of
    /// it adds to detection and recovery times).
    lag: Duration,
    /// Runs not started because the previous one was still going.
    overrun: u64,
    /// Pacing: starts allowed per second, what the bucket holds, and when
    /// it was last filled.
    refill: f64,
    tokens: f64,
    filled: Option<Instant>,
    /// The bucket ran dry: nothing starts before this.
    paced_until: Option<Instant>,
}

/// Starts may run at this multiple of the checks' average rate.
const CATCH_UP: f64 = 2.0;
/// The bucket holds this much time of starts at the paced rate...
const BURST: Duration = Duration::from_millis(20);
/// ...and never fewer than this many (few checks: no pacing to speak of).
const MIN_BURST: f64 = 16.0;
/// Starts per second allowed however few checks there are.
const MIN_RATE: f64 = 100.0;

/// A stable spread of check `id`'s first run over `interval`.
fn jitter(id: CheckId, interval: Duration) -> Duration {
    // splitmix64
    let mut z = (id as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let nanos = interval.as_nanos().max(1) as u64;
    Duration::from_nanos(z % nanos)
}

impl Scheduler {
    /// Every check of `model` except `none` ones, first runs spread.
    pub fn new(model: &Cluster, now: Instant) -> Scheduler {
        let mut s = Scheduler {
            generation: 0,
            epoch: now,
            slots: Vec::new(),
            heap: BinaryHeap::new(),
            lag: Duration::ZERO,
            overrun: 0,
            refill: 0.0,
            tokens: 0.0,
            filled: None,
            paced_until: None,
        };
        s.rebuild(model, |_| None, now);
        s
    }

    /// `t` as an [`At`] (saturated at the epoch).
    fn at(&self, t: Instant) -> At {
        At(t.saturating_duration_since(self.epoch).as_nanos() as u64)
    }

    fn instant(&self, at: At) -> Instant {
        self.epoch + Duration::from_nanos(at.0)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// After a reload: checks kept (`remap` old id -> new id) keep their
    /// times and running runs; new checks start spread as at start.
    pub fn reload(&mut self, model: &Cluster, remap: &[Option<CheckId>], now: Instant) {
        let old = std::mem::take(&mut self.slots);
        let mut back: Vec<Option<CheckId>> = vec![None; model.checks.len()];
        for (o, n) in remap.iter().enumerate() {
            if let Some(n) = n {
                back[*n] = Some(o);
            }
        }
        self.generation += 1;
        self.rebuild(
            model,
            |new| back[new].and_then(|o| old.get(o).copied().filter(Slot::used)),
            now,
        );
    }

    fn rebuild(&mut self, model: &Cluster, carry: impl Fn(CheckId) -> Option<Slot>, now: Instant) {
        self.slots = Vec::with_capacity(model.checks.len());
        self.heap = BinaryHeap::with_capacity(model.checks.len());
        let rate: f64 = model
            .checks
            .iter()
            .filter(|c| c.spec.kind != CheckKind::None)
            .map(|c| 1.0 / c.spec.interval.max(Duration::from_millis(10)).as_secs_f64())
            .sum();
        self.refill = (rate * CATCH_UP).max(MIN_RATE);
        for (id, c) in model.checks.iter().enumerate() {
            if c.spec.kind == CheckKind::None {
                self.slots.push(Slot::UNUSED);
                continue;
            }
            let slot = carry(id).unwrap_or_else(|| Slot {
                running: Slot::IDLE,
                next: self.at(now + jitter(id, c.spec.interval)),
            });
            // Check ids index vectors of the configuration, far below 2^32.
            self.heap.push(Reverse((slot.next, id as u32)));
            self.slots.push(slot);
        }
    }

    /// When the next run is due (and the pace allows it).
    pub fn next_due(&self) -> Option<Instant> {
        let top = self.heap.peek().map(|Reverse((t, _))| self.instant(*t))?;
        Some(self.paced_until.map_or(top, |p| p.max(top)))
    }

    fn capacity(&self) -> f64 {
        (self.refill * BURST.as_secs_f64()).max(MIN_BURST)
    }

    /// Runs due at `now`, at most `max` and at most what the pace allows;
    /// `model` is the one the scheduler was built (or reloaded) with.
    pub fn due(&mut self, model: &Cluster, now: Instant, max: usize) -> Vec<Run> {
        let cap = self.capacity();
        self.tokens = match self.filled {
            Some(t) => (self.tokens + self.refill * now.saturating_duration_since(t).as_secs_f64())
                .min(cap),
            None => cap,
        };
        self.filled = Some(now);
        self.paced_until = None;
        // The epsilon: a rate summed from 20,000 fifths is 3,999.999...
        let max = max.min((self.tokens + 1e-6) as usize);
        let mut out = Vec::new();
        let now_at = self.at(now);
        while out.len() < max {
            let Some(&Reverse((t, id))) = self.heap.peek() else {
                break;
            };
            if t > now_at {
                break;
            }
            self.heap.pop();
            let id = id as CheckId;
            let (Some(slot), Some(check)) = (self.slots.get_mut(id), model.checks.get(id)) else {
                continue;
            };
            if !slot.used() {
                continue;
            }
            self.lag = self
                .lag
                .max(Duration::from_nanos(now_at.0.saturating_sub(t.0)));
            let interval = check
                .spec
                .interval
                .max(Duration::from_millis(10))
                .as_nanos() as u64;
            // From the slot's time, not from now: no drift; but never in the
            // past (a late loop does not make a burst), nor sooner than half
            // an interval after this start (a director catching up does not
            // run its late checks twice).
            let mut next = slot.next.0 + interval;
            if next < now_at.0 + interval / 2 {
                next = now_at.0 + interval;
            }
            slot.next = At(next);
            self.heap.push(Reverse((slot.next, id as u32)));
            if slot.busy(&check.spec, now_at) {
                self.overrun += 1;
                continue;
            }
            slot.running = now_at;
            out.push(Run {
                generation: self.generation,
                id,
                address: check.address,
                spec: check.spec.clone(),
            });
        }
        self.tokens -= out.len() as f64;
        if self.tokens < 1.0 && self.heap.peek().is_some_and(|Reverse((t, _))| *t <= now_at) {
            // Dry with runs waiting: come back when one token is in.
            let wait = (1.0 - self.tokens) / self.refill;
            self.paced_until = Some(now + Duration::from_secs_f64(wait));
        }
        out
    }

    /// The largest lag of a start and the runs passed over for an
    /// unfinished one since the last call; both reset.
    pub fn take_lag(&mut self) -> (Duration, u64) {
        (
            std::mem::take(&mut self.lag),
            std::mem::take(&mut self.overrun),
        )
    }

    /// A run of check `id` (of the current generation) ended.
    pub fn finished(&mut self, id: CheckId) {
        if let Some(slot) = self.slots.get_mut(id) {
            slot.running = Slot::IDLE;
        }
    }

    /// Checks scheduled.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.used()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;
    use crate::config::parse;

    fn model(n: usize, interval: &str) -> Cluster {
        let mut text = String::from("[[service]]\nvip = \"203.0.113.10\"\nport = 80\n");
        text.push_str(&format!(
            "[service.check]\ntype = \"tcp\"\ninterval = {interval}\n"
        ));
        for i in 0..n {
            text.push_str(&format!(
                "[[service.server]]\naddress = \"198.18.{}.{}\"\n",
                i / 250,
                i % 250 + 1
            ));
        }
        let c = parse(Path::new("d.toml"), &text).unwrap();
        Cluster::new(c, &[], HashSet::new(), Instant::now()).0
    }

    #[test]
    fn first_runs_are_spread_and_then_periodic() {
        let m = model(1000, "5.0");
        let t0 = Instant::now();
        let mut s = Scheduler::new(&m, t0);
        assert_eq!(s.len(), 1000);
        // In each of five 1 s slices, roughly a fifth of the checks start
        // (the daemon asks every 10 ms).
        let mut counts = Vec::new();
        for sec in 0..5 {
            let mut n = 0;
            for tick in 1..=100 {
                let runs = s.due(
                    &m,
                    t0 + Duration::from_millis(sec * 1000 + tick * 10),
                    usize::MAX,
                );
                for r in &runs {
                    s.finished(r.id);
                }
                n += runs.len();
            }
            counts.push(n);
        }
        assert_eq!(counts.iter().sum::<usize>(), 1000, "{counts:?}");
        assert!(
            counts.iter().all(|&c| (120..=280).contains(&c)),
            "{counts:?}"
        );
        // The next 5 s: every check once more.
        let mut n = 0;
        for tick in 1..=500 {
            n += s
                .due(&m, t0 + Duration::from_millis(5000 + tick * 10), usize::MAX)
                .len();
        }
        assert_eq!(n, 1000);
    }

    #[test]
    fn a_director_behind_catches_up_at_twice_the_pace_not_at_once() {
        // 20,000 checks every 5 s: 4,000 starts a second on average.
        let m = model(20_000, "5.0");
        let t0 = Instant::now();
        let mut s = Scheduler::new(&m, t0);
        // A stall: every check is overdue at t0 + 6 s.
        let stall = t0 + Duration::from_secs(6);
        let first = s.due(&m, stall, usize::MAX);
        assert_eq!(first.len(), 160, "20 ms at 8,000 a second");
        // Dry: the next start waits for a token, not for the next tick.
        let next = s.next_due().unwrap();
        assert!(next > stall && next <= stall + Duration::from_millis(1));
        assert!(s.due(&m, stall, usize::MAX).is_empty());
        // Then 8,000 a second, in ticks of 10 ms: every overdue check has
        // started 2.5 s later, none again within half an interval.
        let mut started: std::collections::HashMap<CheckId, Instant> =
            first.iter().map(|r| (r.id, stall)).collect();
        for r in &first {
            s.finished(r.id);
        }
        let mut per_tick = Vec::new();
        for tick in 1..=250 {
            let now = stall + Duration::from_millis(tick * 10);
            let runs = s.due(&m, now, usize::MAX);
            per_tick.push(runs.len());
            for r in runs {
                if let Some(&then) = started.get(&r.id) {
                    assert!(
                        now - then >= Duration::from_millis(2500),
                        "check {} again",
                        r.id
                    );
                }
                started.insert(r.id, now);
                s.finished(r.id);
            }
        }
        assert!(per_tick.iter().all(|&n| n <= 80), "{per_tick:?}");
        assert_eq!(started.len(), 20_000);
        let (lag, _) = s.take_lag();
        assert!(lag >= Duration::from_secs(3), "{lag:?}");
    }

    #[test]
    fn a_running_check_is_not_started_twice() {
        let m = model(1, "1.0");
        let t0 = Instant::now();
        let mut s = Scheduler::new(&m, t0);
        let r = s.due(&m, t0 + Duration::from_secs(1), 10);
        assert_eq!(r.len(), 1);
        assert!(
            s.due(&m, t0 + Duration::from_secs(3), 10).is_empty(),
            "still running"
        );
        s.finished(0);
        assert_eq!(s.due(&m, t0 + Duration::from_secs(5), 10).len(), 1);
    }

    #[test]
    fn lag_and_passed_over_runs_are_measured_and_reset() {
        let m = model(1, "1.0");
        let t0 = Instant::now();
        let mut s = Scheduler::new(&m, t0);
        let due = s.next_due().unwrap();
        assert_eq!(s.take_lag(), (Duration::ZERO, 0));
        // Started 3 s after its time: a lag of 3 s, and the next run is an
        // interval from now, not a burst of the missed ones.
        let late = due + Duration::from_secs(3);
        assert_eq!(s.due(&m, late, 10).len(), 1);
        assert_eq!(s.next_due().unwrap(), late + Duration::from_secs(1));
        // Still running at its next time: passed over.
        assert!(s.due(&m, late + Duration::from_secs(1), 10).is_empty());
        assert_eq!(s.take_lag(), (Duration::from_secs(3), 1));
        assert_eq!(s.take_lag(), (Duration::ZERO, 0));
    }

    #[test]
    fn reload_keeps_times_of_kept_checks() {
        let m = model(3, "1.0");
        let t0 = Instant::now();
        let mut s = Scheduler::new(&m, t0);
        let first = s.next_due().unwrap();
        // The same model: every check kept, same next time.
        s.reload(
            &m,
            &[Some(0), Some(1), Some(2)],
            t0 + Duration::from_millis(1),
        );
        assert_eq!(s.generation(), 1);
        assert_eq!(s.next_due().unwrap(), first);
        let none = model(0, "1.0");
        s.reload(&none, &[None, None, None], t0);
        assert!(s.is_empty() && s.next_due().is_none());
    }
}
