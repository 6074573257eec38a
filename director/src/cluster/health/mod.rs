//! The health of one check (one address checked one way), as a pure state
//! machine: results and the time come in, transitions come out. No I/O, no
//! clock of its own (tests drive it with made-up instants).
//!
//! States:
//! - `Unchecked`: new (first start, or added by a reload) and no result
//!   yet. Not serving: a new server receives traffic only after `rise`
//!   consecutive successes (keepalived's `alpha`, always on).
//! - `Up`: serving. `fall` consecutive failures make it `Down`.
//! - `Down`: failed. `rise` consecutive successes make it `Up`.
//!
//! A check found serving in the kernel when the daemon starts is adopted:
//! it starts `Up` with [`CheckState::assumed`] set, and each of its servers
//! keeps the weight the kernel has until the check's first result. That
//! first result then counts like any other in `Up`: a success confirms it
//! (the configured weight applies), a failure is the first of `fall`.
//!
//! An agent's `drain` answer is a live server asking for no new
//! connections: it counts as a success for rise and fall, and sets
//! [`CheckState::agent_drain`] (weight 0) until the agent says `up` again.

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::check::CheckOutcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unchecked,
    Up,
    Down,
}

impl Health {
    pub fn name(self) -> &'static str {
        match self {
            Health::Unchecked => "unchecked",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The last result of a check and when it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastResult {
    pub outcome: CheckOutcome,
    pub at: Stamp,
}

/// An [`Instant`] in 8 bytes, not 16: nanoseconds from a process-wide
/// origin (signed: a test's made-up instants may come before it). Each of
/// 20,000 checks holds two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(i64);

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Stamp {
    pub fn of(t: Instant) -> Stamp {
        let o = origin();
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        match t.checked_duration_since(o) {
            Some(d) => Stamp(nanos(d)),
            None => Stamp(-nanos(o.duration_since(t))),
        }
    }

    pub fn instant(self) -> Instant {
        let d = Duration::from_nanos(self.0.unsigned_abs());
        if self.0 >= 0 {
            origin() + d
        } else {
            origin() - d
        }
    }
}

/// The state of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    pub health: Health,
    /// Adopted from the kernel at start: `Up` without a result yet.
    pub assumed: bool,
    /// The agent answered `drain` last.
    pub agent_drain: bool,
    /// Consecutive successes and failures.
    pub successes: u32,
    pub failures: u32,
    /// When `health` (or `agent_drain`) last changed.
    pub since: Stamp,
    pub last: Option<LastResult>,
    /// Results so far, how many failed, transitions (for metrics; 32
    /// bits, saturating: 13 years of results every 0.1 s, and 20,000
    /// checks hold 12 bytes less each).
    pub runs: u32,
    pub failed_runs: u32,
    pub transitions: u32,
    /// How long the last run took, in microseconds plus one (0: no run
    /// yet; 4 bytes, not 16). See [`CheckState::last_duration`].
    last_duration_us: u32,
}

/// A change of a check's state, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
}

impl CheckState {
    fn with(health: Health, now: Instant) -> CheckState {
        CheckState {
            health,
            assumed: false,
            agent_drain: false,
            successes: 0,
            failures: 0,
            since: Stamp::of(now),
            last: None,
            runs: 0,
            failed_runs: 0,
            transitions: 0,
            last_duration_us: 0,
        }
    }

    /// A new check: not serving until `rise` successes.
    pub fn new(now: Instant) -> CheckState {
        CheckState::with(Health::Unchecked, now)
    }

    /// A check of type `none`: always up.
    pub fn always_up(now: Instant) -> CheckState {
        CheckState::with(Health::Up, now)
    }

    /// A check whose server was found serving in the kernel at start.
    pub fn adopted(now: Instant) -> CheckState {
        CheckState {
            assumed: true,
            ..CheckState::with(Health::Up, now)
        }
    }

    /// How long the last run took (set by the daemon), to the microsecond
    /// (at most 71 minutes).
    pub fn last_duration(&self) -> Option<Duration> {
        let us = self.last_duration_us.checked_sub(1)?;
        Some(Duration::from_micros(u64::from(us)))
    }

    pub fn set_last_duration(&mut self, d: Duration) {
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX - 1);
        self.last_duration_us = us.saturating_add(1);
    }

    /// Whether the servers of this check take new connections.
    pub fn serving(&self) -> bool {
        self.health == Health::Up && !self.agent_drain
    }

    /// The state's name as shown in logs and status (`drain` for an up
    /// server whose agent asked to be drained).
    pub fn label(&self) -> &'static str {
        if self.health == Health::Up && self.agent_drain {
            "drain"
        } else {
            self.health.name()
        }
    }

    /// Records one result at `now`; returns the transition it caused, if any.
    pub fn record(
        &mut self,
        outcome: &CheckOutcome,
        rise: u32,
        fall: u32,
        now: Instant,
    ) -> Option<Transition> {
        if let CheckOutcome::Skipped(_) = outcome {
            // Says nothing about the server: the state stays as it is.
            return None;
        }
        let before = self.label();
        self.assumed = false;
        self.runs = self.runs.saturating_add(1);
        match outcome {
            CheckOutcome::Up | CheckOutcome::Drain => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.health != Health::Up && self.successes >= rise.max(1) {
                    self.health = Health::Up;
                }
                self.agent_drain = *outcome == CheckOutcome::Drain;
            }
            CheckOutcome::Skipped(_) => return None,
            CheckOutcome::Down(_) => {
                self.failed_runs = self.failed_runs.saturating_add(1);
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                match self.health {
                    // Not serving anyway: say so at the first failure.
                    Health::Unchecked => self.health = Health::Down,
                    Health::Up if self.failures >= fall.max(1) => {
                        self.health = Health::Down;
                        self.agent_drain = false;
                    }
                    _ => {}
                }
            }
        }
        // Kept as it is when it did not change (the usual success): no
        // allocation per result.
        if self.last.as_ref().is_none_or(|l| l.outcome != *outcome) {
            self.last = Some(LastResult {
                outcome: outcome.clone(),
                at: Stamp::of(now),
            });
        } else if let Some(l) = &mut self.last {
            l.at = Stamp::of(now);
        }
        let after = self.label();
        if after == before {
            return None;
        }
        self.since = Stamp::of(now);
        self.transitions = self.transitions.saturating_add(1);
        // Built only for a transition (results come by the thousand).
        let reason = match outcome {
            CheckOutcome::Drain => "agent asks for drain".to_string(),
            CheckOutcome::Down(why) => why.clone(),
            _ => format!("{} consecutive successes", self.successes),
        };
        Some(Transition {
            from: before,
            to: after,
            reason,
        })
    }
}

/// A short text of an outcome for status and logs.
pub fn outcome_text(o: &CheckOutcome) -> String {
    match o {
        CheckOutcome::Up => "ok".into(),
        CheckOutcome::Drain => "drain".into(),
        CheckOutcome::Down(why) => why.clone(),
        CheckOutcome::Skipped(why) => format!("skipped: {why}"),
    }
}

#[cfg(test)]
mod tests;
