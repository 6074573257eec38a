//! `lvs-director run`: the director file converged onto the kernel, then
//! kept there while the real servers' health changes. The loop is
//! rs-agent's flow driven by events: observe (check results, signals,
//! control requests, the sync timer) -> decide (the pure [`Cluster`]) ->
//! plan ([`plan`], per service) -> apply ([`Kernel`]) -> record (the
//! kernel view, the log).
//!
//! - Check results go into the model; the services they touch are planned
//!   against the daemon's view of the kernel (no table read) and edited.
//! - Every `sync_interval` a full sync reads the table, plans everything
//!   (drift, refused changes, retired servers) and applies.
//! - SIGHUP reloads (a bad file changes nothing); SIGTERM/SIGINT exit 0
//!   and leave the table as it is: the cluster keeps serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lvs_common::daemon::{Notifier, Signal, Signals, Watchdog};
use lvs_ipvs::Op;
use lvs_ipvs::table::ServiceKey;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::check::{CheckOutcome, Checker};
use crate::cluster::schedule::Scheduler;
use crate::cluster::{CheckId, Cluster, Event, Table};
use crate::config::{self, ConfigError, DirectorConfig, PortGroup};
use crate::control::{self, ControlError, Pending};
use crate::kernel::plan::plan;
use crate::kernel::view::{View, patch};
use crate::kernel::{Applied, Kernel, KernelError};

mod admin;
mod limits;
pub(crate) mod metrics;
mod resync;
use limits::fd_budget;
use resync::TableRead;

/// How `run` was asked to work.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    pub netns: Option<String>,
    pub control: PathBuf,
    pub metrics: Option<SocketAddr>,
    /// Delete services that are not in the file (as `apply --prune`).
    pub prune: bool,
    pub sync_interval: Duration,
    pub max_in_flight: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    #[error("metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl DaemonError {
    /// 2: bad file (nothing changed); 4: the control socket is taken or
    /// unusable; 255: the kernel.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_) => 2,
            DaemonError::Control(_) | DaemonError::Metrics { .. } => 4,
            _ => 255,
        }
    }
}

/// Results handled per turn of the loop before the edits go out.
const RESULT_BATCH: usize = 4096;
/// Runs started per turn of the loop.
const START_BATCH: usize = 4096;
/// Granularity of check starts.
const TICK: Duration = Duration::from_millis(10);
/// Steps of a sync's plan logged one per line; the rest are counted.
const LOGGED_STEPS: usize = 50;

/// A finished check.
struct Done {
    generation: u64,
    id: CheckId,
    outcome: CheckOutcome,
    /// When it started, and how long it took if the run measured it.
    started: Instant,
    duration: Option<Duration>,
}

/// Counters for status and metrics.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub syncs: u64,
    pub edits: u64,
    pub refused: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    pub transitions: u64,
    pub skipped: u64,
    pub last_sync: Option<Instant>,
    /// When the file was last loaded and applied without error.
    pub last_load: Option<std::time::SystemTime>,
}

pub struct Daemon {
    pub(crate) opts: Options,
    kernel: Kernel,
    pub(crate) model: Cluster,
    pub(crate) view: View,
    sched: Scheduler,
    prev_remap: Vec<Option<CheckId>>,
    pub(crate) checker: Arc<Checker>,
    tx: mpsc::UnboundedSender<Done>,
    rx: mpsc::UnboundedReceiver<Done>,
    notifier: Notifier,
    pub(crate) counters: Counters,
    pub(crate) started: Instant,
    skipped_since_sync: u64,
    last_skip: String,
    /// Check tasks spawned whose result has not come back.
    runs_in_flight: usize,
    /// Announcement, quorum file, sysctls, sync daemons.
    pub(crate) node: crate::node::Node,
    /// What the last load of the file keeps for the next (see
    /// [`config::load_reusing`]).
    reuse: config::Reuse,
    /// While a sync's table read is in flight: the changes the daemon made
    /// meanwhile, put over the read when it is back (see
    /// [`Daemon::on_read`]); `None` once there were too many to keep.
    overtaken: Option<Option<Vec<Op>>>,
    /// Reads in a row thrown away because too much changed meanwhile.
    stale_reads: u32,
    read_tx: mpsc::UnboundedSender<TableRead>,
    read_rx: mpsc::UnboundedReceiver<TableRead>,
}

/// Hands the pages a sync or a reload freed back to the kernel. glibc keeps
/// free chunks inside its heap, and the transients of each sync (the table
/// read, the view it replaces) left holes that the next one did not fill:
/// the heap grew by half between start-up and the first reload in the VM
/// benchmark. A trim walks the free lists (milliseconds at 20,000 servers,
/// once per sync).
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only works on the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn groups(c: &DirectorConfig) -> Vec<PortGroup> {
    c.services.iter().filter_map(|s| s.group.clone()).collect()
}

fn log_events(events: &[Event]) {
    for e in events {
        info!("{e}");
    }
}

fn log_refused(applied: &Applied) {
    let refused = &applied.refused;
    for r in refused.iter().take(20) {
        warn!(
            "the kernel refused to {}: {} (retried at the next sync)",
            applied.op(r.at).describe(),
            r.error
        );
    }
    if refused.len() > 20 {
        warn!("... and {} more refused changes", refused.len() - 20);
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(opts: Options) -> Result<(), DaemonError> {
    let (config, reuse) = config::load_reusing(&opts.config, None)?;
    let mut signals = Signals::new().map_err(DaemonError::Signals)?;
    let listener = control::bind(&opts.control).await?;
    // Bound before anything changes: a taken port fails the start.
    let mut metrics = match opts.metrics {
        Some(addr) => Some(crate::daemon::metrics::start(addr).await?),
        None => None,
    };
    let drains_file = control::drains_path(&opts.control);
    let drains = control::load_drains(&drains_file).unwrap_or_else(|e| {
        warn!("{e}: starting without admin drains");
        Default::default()
    });
    let kernel = Kernel::open(opts.netns.clone()).await?;
    let table = kernel.table_to_plan().await?;
    let now = Instant::now();
    let (model, events) = Cluster::new(config, &table, drains, now);
    log_events(&events);
    let node = crate::node::Node::start(
        &model.config.node,
        opts.netns.clone(),
        &opts.control,
        kernel.clone(),
        &model,
    )
    .await
    .map_err(DaemonError::Node)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (read_tx, read_rx) = mpsc::unbounded_channel();
    let mut d = Daemon {
        sched: Scheduler::new(&model, now),
        checker: Arc::new(Checker::new(fd_budget(opts.max_in_flight))),
        opts,
        kernel,
        model,
        view: View::new(),
        prev_remap: Vec::new(),
        tx,
        rx,
        notifier: Notifier::from_env(),
        counters: Counters::default(),
        started: now,
        skipped_since_sync: 0,
        last_skip: String::new(),
        runs_in_flight: 0,
        node,
        reuse,
        overtaken: None,
        stale_reads: 0,
        read_tx,
        read_rx,
    };
    d.full_sync(Some(table)).await;
    d.counters.last_load = crate::daemon::metrics::now();
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Pending>(control::MAX_CLIENTS);
    let control_task = tokio::spawn(control::serve(listener, ctl_tx));
    info!(
        "running: {} services, {} checks scheduled, control socket {}",
        d.model.config.services.len(),
        d.sched.len(),
        d.opts.control.display()
    );
    let _ = d.notifier.ready(&d.status_line());
    let mut watchdog = Watchdog::from_notifier(&d.notifier);
    let mut sync = tokio::time::interval_at(
        tokio::time::Instant::now() + d.opts.sync_interval,
        d.opts.sync_interval,
    );
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Two timers for the loop's life, moved when their time changes: made
    // anew in every turn, each turn (one per batch of results, thousands a
    // second) registered and removed two timers.
    let due_timer = tokio::time::sleep(Duration::ZERO);
    let node_timer = tokio::time::sleep(Duration::ZERO);
    // Results are taken at most once a tick: every check's result woke the
    // loop (thousands of turns a second, each polling every branch below)
    // where one turn a tick takes them all, for at most a tick's delay.
    let results_gate = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(due_timer, node_timer, results_gate);
    let (mut due_at, mut node_at): (Option<Instant>, Option<Instant>) = (None, None);
    let mut results_closed = false;
    loop {
        // No timer while every run slot is taken: a result frees one.
        // Runs due within one tick start together: thousands of checks
        // spread over an interval wake the loop at most 1/TICK times a
        // second, not once per check.
        let next = if d.run_budget() > 0 {
            d.sched.next_due().map(|t| t + TICK)
        } else {
            None
        };
        if next != due_at {
            if let Some(t) = next {
                due_timer.as_mut().reset(t.into());
            }
            due_at = next;
        }
        let node_due = d.node.next_deadline();
        if node_due != node_at {
            if let Some(t) = node_due {
                node_timer.as_mut().reset(t.into());
            }
            node_at = node_due;
        }
        // Whether the model may have changed: the node follows it.
        // Biased, rare events first: a SIGHUP, a control request or the
        // watchdog must not wait behind a stream of results (in an
        // overloaded guest a reload waited seconds for a random pick);
        // results, the one stream that can stay ready, come last.
        let changed = tokio::select! {
            biased;
            sig = signals.recv() => match sig {
                Signal::Reload => { d.reload().await; true }
                Signal::Stop => break,
            },
            _ = watchdog.tick() => { let _ = d.notifier.watchdog(); false }
            Some(p) = ctl_rx.recv() => {
                let reply = d.on_control(p.request).await;
                let _ = p.reply.send(reply);
                true
            }
            Some(read) = d.read_rx.recv() => { d.on_read(read).await; true }
            _ = sync.tick() => { d.start_read(); false }
            () = &mut node_timer, if node_at.is_some() => { node_at = None; true }
            Some(ask) = async {
                match &mut metrics {
                    Some(m) => m.recv().await,
                    None => std::future::pending().await,
                }
            } => { crate::daemon::metrics::answer(&d, d.kernel.clone(), ask); false }
            () = &mut due_timer, if due_at.is_some() => { due_at = None; d.start_due(); false }
            () = &mut results_gate, if results_closed => { results_closed = false; false }
            Some(done) = d.rx.recv(), if !results_closed => {
                let changed = d.on_results(done).await;
                results_gate.as_mut().reset((Instant::now() + TICK).into());
                results_closed = true;
                changed
            }
        };
        if changed {
            d.node.update(&d.model, Instant::now()).await;
        }
    }
    let _ = d.notifier.stopping();
    control_task.abort();
    d.node.stop().await;
    info!("stopping: the IPVS table stays as it is");
    let _ = std::fs::remove_file(&d.opts.control);
    Ok(())
}

impl Daemon {
    pub(crate) fn status_line(&self) -> String {
        let (mut up, mut down, mut unchecked) = (0, 0, 0);
        for c in &self.model.checks {
            match c.state.health {
                crate::cluster::health::Health::Up => up += 1,
                crate::cluster::health::Health::Down => down += 1,
                crate::cluster::health::Health::Unchecked => unchecked += 1,
            }
        }
        format!(
            "{} services; checks: {up} up, {down} down, {unchecked} unchecked; {} drained by hand",
            self.model.config.services.len(),
            self.model.drains.len()
        )
    }

    /// Runs the daemon may start now: one task per check in flight, at most
    /// the checker's cap. Checks due beyond it stay due (late, not lost):
    /// a waiting run would hold its whole future (about 10 KB) meanwhile,
    /// so 20,000 of them waiting on the checker's permits cost 200 MB.
    fn run_budget(&self) -> usize {
        self.checker
            .max_in_flight()
            .saturating_sub(self.runs_in_flight)
            .min(START_BATCH)
    }

    fn start_due(&mut self) {
        let budget = self.run_budget();
        for run in self.sched.due(&self.model, Instant::now(), budget) {
            self.runs_in_flight += 1;
            let tx = self.tx.clone();
            let (generation, id) = (run.generation, run.id);
            self.checker
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

    /// The current id of a result's check (results of the generation
    /// before the last reload are mapped; older ones are dropped).
    fn current_id(&self, generation: u64, id: CheckId) -> Option<CheckId> {
        let g = self.sched.generation();
        if generation == g {
            Some(id)
        } else if generation + 1 == g {
            self.prev_remap.get(id).copied().flatten()
        } else {
            None
        }
    }

    /// Records a batch of results and edits what they changed; true if
    /// they changed a server's state (the node's quorum follows: at 20,000
    /// servers, recounting it for every batch was a seventh of the CPU).
    async fn on_results(&mut self, first: Done) -> bool {
        let now = Instant::now();
        let mut services: Vec<usize> = Vec::new();
        let mut next = Some(first);
        let mut n = 0;
        while let Some(done) = next.take() {
            n += 1;
            self.runs_in_flight = self.runs_in_flight.saturating_sub(1);
            if let Some(id) = self.current_id(done.generation, done.id) {
                self.sched.finished(id);
                if let CheckOutcome::Skipped(why) = &done.outcome {
                    // The first at once, the rest summed up at the next
                    // sync: an overloaded checker must not flood the log too.
                    if self.skipped_since_sync == 0 {
                        warn!(
                            "a check was skipped ({why}): its server keeps its state; more skips are summed up at the next sync"
                        );
                    }
                    self.counters.skipped += 1;
                    self.skipped_since_sync += 1;
                    self.last_skip = why.clone();
                }
                let up = self.model.record(id, &done.outcome, now);
                self.model.checks[id].state.set_last_duration(
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
            if n < RESULT_BATCH {
                next = self.rx.try_recv().ok();
            }
        }
        if !services.is_empty() {
            // A batch may touch thousands of services: no linear dedup.
            services.sort_unstable();
            services.dedup();
            let entries = services
                .iter()
                .map(|&i| self.model.service_entry(i))
                .collect();
            self.converge(entries, Vec::new()).await;
            let _ = self.notifier.status(&self.status_line());
            return true;
        }
        false
    }

    /// Plans `entries` (services as they should be) against the view and
    /// applies; `delete` are services to delete outright.
    async fn converge(&mut self, entries: Table, delete: Vec<ServiceKey>) {
        let current: Table = entries
            .iter()
            .filter_map(|(s, _)| self.view.get(&s.key).cloned())
            .collect();
        let mut p = plan(&entries, &current, false);
        p.deletions.extend(
            delete
                .into_iter()
                .filter(|k| self.view.contains_key(k))
                .map(Op::DeleteService),
        );
        self.apply_plan(p).await;
    }

    async fn apply_plan(&mut self, p: crate::kernel::plan::Plan) {
        if p.is_empty() {
            return;
        }
        match self.kernel.apply(p).await {
            Ok(applied) => {
                self.counters.edits += applied.done_count() as u64;
                self.counters.refused += applied.refused.len() as u64;
                for op in applied.done() {
                    patch(&mut self.view, op);
                    self.overtook(op);
                }
                log_refused(&applied);
            }
            Err(e) => error!("{e}"),
        }
    }
}
