//! The checks' runs: started when due (within the checker's cap), their
//! results taken in batches into the cluster, the services they touched
//! edited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use super::{Daemon, log_events};
use crate::check::{CheckOutcome, Checker};
use crate::cluster::schedule::Scheduler;
use crate::cluster::{CheckId, Cluster, Event};

/// Results handled per turn of the loop before the edits go out.
pub(super) const RESULT_BATCH: usize = 4096;
/// Runs started per turn of the loop.
const START_BATCH: usize = 4096;
/// Granularity of check starts.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// A finished check.
pub(super) struct Done {
    generation: u64,
    id: CheckId,
    outcome: CheckOutcome,
    /// When it started, and how long it took if the run measured it.
    started: Instant,
    duration: Option<Duration>,
}

/// When each check is due, the runs out, and the skips the next sync sums
/// up.
pub(super) struct Runs {
    sched: Scheduler,
    checker: Arc<Checker>,
    /// The ids of the checks before the last reload, mapped to the current
    /// ones (results of runs started before it still count).
    prev_remap: Vec<Option<CheckId>>,
    /// Check tasks spawned whose result has not come back.
    in_flight: usize,
    skipped_since_sync: u64,
    last_skip: String,
}

impl Runs {
    pub(super) fn new(sched: Scheduler, checker: Arc<Checker>) -> Runs {
        Runs {
            sched,
            checker,
            prev_remap: Vec::new(),
            in_flight: 0,
            skipped_since_sync: 0,
            last_skip: String::new(),
        }
    }

    pub(super) fn scheduled(&self) -> usize {
        self.sched.len()
    }

    /// A reload renumbered the checks: `remap` maps the old ids.
    pub(super) fn reload(&mut self, cluster: &Cluster, remap: Vec<Option<CheckId>>, now: Instant) {
        self.sched.reload(cluster, &remap, now);
        self.prev_remap = remap;
    }

    /// How late runs started since the last call, and how many were passed
    /// over.
    pub(super) fn take_lag(&mut self) -> (Duration, u64) {
        self.sched.take_lag()
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Checks running now (the checker's count: runs waiting for a permit
    /// are not).
    pub(super) fn checks_in_flight(&self) -> usize {
        self.checker.in_flight()
    }

    /// Runs the daemon may start now: one task per check in flight, at most
    /// the checker's cap. Checks due beyond it stay due (late, not lost):
    /// a waiting run would hold its whole future (about 10 KB) meanwhile,
    /// so 20,000 of them waiting on the checker's permits cost 200 MB.
    fn budget(&self) -> usize {
        self.checker
            .max_in_flight()
            .saturating_sub(self.in_flight)
            .min(START_BATCH)
    }

    /// When the loop must start runs: none while every run slot is taken
    /// (a result frees one). Runs due within one tick start together:
    /// thousands of checks spread over an interval wake the loop at most
    /// 1/TICK times a second, not once per check.
    pub(super) fn next_due(&self) -> Option<Instant> {
        if self.budget() > 0 {
            self.sched.next_due().map(|t| t + TICK)
        } else {
            None
        }
    }

    /// A run is back: the current id of its check (results of the
    /// generation before the last reload are mapped; older ones are
    /// dropped).
    fn finished(&mut self, generation: u64, id: CheckId) -> Option<CheckId> {
        self.in_flight = self.in_flight.saturating_sub(1);
        let g = self.sched.generation();
        let id = if generation == g {
            Some(id)
        } else if generation + 1 == g {
            self.prev_remap.get(id).copied().flatten()
        } else {
            None
        }?;
        self.sched.finished(id);
        Some(id)
    }

    /// The first skip at once, the rest summed up at the next sync: an
    /// overloaded checker must not flood the log too.
    fn skipped(&mut self, why: &str) {
        if self.skipped_since_sync == 0 {
            warn!(
                "a check was skipped ({why}): its server keeps its state; more skips are summed up at the next sync"
            );
        }
        self.skipped_since_sync += 1;
        self.last_skip = why.to_string();
    }

    /// Skips since the last sync (and the last one's reason), counted anew.
    pub(super) fn take_skips(&mut self) -> Option<(u64, &str)> {
        let n = std::mem::take(&mut self.skipped_since_sync);
        (n > 0).then_some((n, self.last_skip.as_str()))
    }
}

impl Daemon {
    pub(super) fn start_due(&mut self) {
        let budget = self.runs.budget();
        for run in self.runs.sched.due(&self.cluster, Instant::now(), budget) {
            self.runs.in_flight += 1;
            let tx = self.channels.results_tx.clone();
            let (generation, id) = (run.generation, run.id);
            self.runs
                .checker
                .spawn(run.spec, run.address, move |outcome, started, duration| {
                    let _ = tx.send(Done {
                        generation,
                        id,
                        outcome,
                        started,
                        duration,
                    });
                });
        }
    }

    /// Records a batch of results and edits what they changed; true if
    /// they changed a server's state (the node's quorum follows: at 20,000
    /// servers, recounting it for every batch was a seventh of the CPU).
    pub(super) async fn on_results(&mut self, first: Done) -> bool {
        let now = Instant::now();
        let mut services: Vec<usize> = Vec::new();
        let mut next = Some(first);
        let mut n = 0;
        while let Some(done) = next.take() {
            n += 1;
            if let Some(id) = self.runs.finished(done.generation, done.id) {
                self.record(id, &done, now, &mut services);
            }
            if n < RESULT_BATCH {
                next = self.channels.results_rx.try_recv().ok();
            }
        }
        if services.is_empty() {
            return false;
        }
        // A batch may touch thousands of services: no linear dedup.
        services.sort_unstable();
        services.dedup();
        self.converge_services(&services).await;
        true
    }

    /// One result of check `id` into the cluster; the services it touched
    /// go to `services`.
    fn record(&mut self, id: CheckId, done: &Done, now: Instant, services: &mut Vec<usize>) {
        if let CheckOutcome::Skipped(why) = &done.outcome {
            self.runs.skipped(why);
            self.counters.skipped += 1;
        }
        let up = self.cluster.record(id, &done.outcome, now);
        self.cluster.checks[id].state.set_last_duration(
            done.duration
                .unwrap_or_else(|| now.saturating_duration_since(done.started)),
        );
        self.counters.transitions += up
            .events
            .iter()
            .filter(|e| matches!(e, Event::Server { .. }))
            .count() as u64;
        log_events(&up.events);
        services.extend(up.services);
    }
}
