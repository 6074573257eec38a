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
//!
//! What the loop waits on, and its timers, are [`wake`]'s; what each wake
//! does is [`Daemon::dispatch`]'s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lvs_common::daemon::{Notifier, Signal, Signals};
use lvs_ipvs::Op;
use lvs_ipvs::table::ServiceKey;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::check::Checker;
use crate::cluster::schedule::Scheduler;
use crate::cluster::{Cluster, Event, Table};
use crate::config::{self, ConfigError, DirectorConfig, PortGroup};
use crate::control::{self, ControlError};
use crate::kernel::plan::plan;
use crate::kernel::view::{View, patch};
use crate::kernel::{Applied, Kernel, KernelError};
use crate::node::Node;
use crate::status::{Counters, Parts, Status};

mod admin;
mod checks;
mod limits;
mod metrics;
mod resync;
mod scripts;
mod wake;
use checks::Runs;
use limits::fd_budget;
use resync::{Resync, TableRead};
use wake::{Sources, Wake};

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
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

impl DaemonError {
    /// How `lvs-director run` exits on this error.
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            DaemonError::Config(_) | DaemonError::Control(ControlError::State { .. }) => {
                Exit::Usage
            }
            DaemonError::Control(_) | DaemonError::Metrics(_) => Exit::Unavailable,
            _ => Exit::Kernel,
        }
    }
}

/// Steps of a sync's plan logged one per line; the rest are counted.
const LOGGED_STEPS: usize = 50;

/// The running daemon: what it knows, and the kernel and machine it
/// drives. Its loop's inputs are [`Sources`].
struct Daemon {
    opts: Options,
    /// The file, every check's state, the admin drains, retiring servers.
    cluster: Cluster,
    /// What the daemon believes the kernel holds.
    view: View,
    kernel: Kernel,
    /// Announcement, quorum file, sysctls, sync daemons.
    node: Node,
    /// What the last load of the file keeps for the next (see
    /// [`config::load_reusing`]).
    reuse: config::Reuse,
    /// The checks' runs: when each is due, how many are out.
    runs: Runs,
    /// The full syncs' table reads beside the loop.
    resync: Resync,
    /// Where the runs and the table reads report back.
    channels: Channels,
    counters: Counters,
    started: Instant,
    notifier: Notifier,
}

/// The daemon's own channels: what it starts beside the loop (check runs,
/// table reads) comes back on them.
struct Channels {
    results_tx: mpsc::UnboundedSender<checks::Done>,
    results_rx: mpsc::UnboundedReceiver<checks::Done>,
    reads_tx: mpsc::UnboundedSender<TableRead>,
    reads_rx: mpsc::UnboundedReceiver<TableRead>,
}

impl Channels {
    fn new() -> Channels {
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let (reads_tx, reads_rx) = mpsc::unbounded_channel();
        Channels {
            results_tx,
            results_rx,
            reads_tx,
            reads_rx,
        }
    }
}

/// What a turn of the loop did.
enum Turn {
    /// Nothing the node follows changed.
    Same,
    /// The cluster may have changed: the node follows it.
    Changed,
    Stop,
}

/// Hands the pages a sync or a reload freed back to the kernel. glibc keeps
/// free chunks inside its heap, and the transients of each sync (the table
/// read, the view it replaces) left holes that the next one did not fill:
/// the heap grew by half between start-up and the first reload in the VM
/// benchmark. A trim walks the free lists (milliseconds at 20,000 servers,
/// once per sync).
fn release_freed_memory() {
    crate::sys::malloc_trim();
}

fn groups(c: &DirectorConfig) -> Vec<PortGroup> {
    c.services.iter().filter_map(|s| s.group.clone()).collect()
}

/// One line per event, with `service` (and `server`) as fields too, so that
/// `journalctl` output can be filtered by them.
fn log_events(events: &[Event]) {
    for e in events {
        match e {
            Event::Server {
                service, server, ..
            } => {
                let server = lvs_ipvs::table::fmt_addr_port(&server.0, server.1);
                info!(service = %service, server = %server, "{e}");
            }
            Event::Sorry { service, .. } => info!(service = %service, "{e}"),
        }
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
    let (mut d, mut sources) = Daemon::start(opts).await?;
    loop {
        sources
            .timers
            .arm(d.runs.next_due(), d.node.next_deadline());
        let wake = sources.next(&mut d.channels).await;
        let took_results = matches!(wake, Wake::Results(_));
        let turn = d.dispatch(wake).await;
        if took_results {
            sources.timers.close_results();
        }
        match turn {
            Turn::Same => {}
            Turn::Changed => d.node.update(&d.cluster, Instant::now()).await,
            Turn::Stop => break,
        }
    }
    d.stop(sources).await;
    Ok(())
}

impl Daemon {
    /// Everything that can fail at start is tried before the table
    /// changes: the file, the signals, the control socket, the metrics
    /// address (then the kernel, in [`Daemon::open`]). Then the first
    /// convergence, and the loop's inputs.
    async fn start(opts: Options) -> Result<(Daemon, Sources), DaemonError> {
        let (config, reuse) = config::load_reusing(&opts.config, None)?;
        crate::sys::set_script_identity(scripts::prepare(&opts.config, &config)?);
        let signals = Signals::new().map_err(DaemonError::Signals)?;
        let listener = control::bind(&opts.control).await?;
        let scrapes = match opts.metrics {
            Some(addr) => Some(metrics::start(addr).await?),
            None => None,
        };
        let d = Daemon::open(opts, config, reuse).await?;
        let sources = Sources::new(
            signals,
            listener,
            scrapes,
            &d.notifier,
            d.opts.sync_interval,
        );
        info!(
            "running: {} services, {} checks scheduled, control socket {}",
            d.cluster.config.services.len(),
            d.runs.scheduled(),
            d.opts.control.display()
        );
        let _ = d.notifier.ready(&d.status_line());
        Ok((d, sources))
    }

    /// The kernel opened, the cluster as the table and the drains kept from
    /// before make it, the node started, and the first convergence.
    async fn open(
        opts: Options,
        config: DirectorConfig,
        reuse: config::Reuse,
    ) -> Result<Daemon, DaemonError> {
        // An unreadable file refuses the start: going on without it would
        // put every server drained by hand back into service.
        let drains = control::load_drains(&control::drains_path(&opts.control))?;
        let kernel = Kernel::open(opts.netns.clone()).await?;
        let table = kernel.table_to_plan().await?;
        let now = Instant::now();
        let (cluster, events) = Cluster::new(config, &table, drains, now);
        log_events(&events);
        let node = Node::start(
            &cluster.config.node,
            opts.netns.clone(),
            &opts.control,
            kernel.clone(),
            &cluster,
        )
        .await?;
        let mut d = Daemon {
            runs: Runs::new(
                Scheduler::new(&cluster, now),
                Arc::new(Checker::new(fd_budget(opts.max_in_flight))),
            ),
            opts,
            kernel,
            cluster,
            view: View::new(),
            node,
            reuse,
            resync: Resync::default(),
            channels: Channels::new(),
            counters: Counters::default(),
            started: now,
            notifier: Notifier::from_env(),
        };
        d.full_sync(Some(table)).await;
        d.counters.last_load = Some(SystemTime::now());
        Ok(d)
    }

    /// Handles one wake of the loop.
    async fn dispatch(&mut self, wake: Wake) -> Turn {
        let changed = match wake {
            Wake::Signal(Signal::Reload) => {
                self.reload().await;
                true
            }
            Wake::Signal(Signal::Stop) => return Turn::Stop,
            Wake::Watchdog => {
                let _ = self.notifier.watchdog();
                false
            }
            Wake::Control(p) => {
                let reply = self.on_control(p.request).await;
                let _ = p.reply.send(reply);
                true
            }
            Wake::Read(read) => {
                self.on_read(read).await;
                true
            }
            Wake::SyncDue => {
                self.start_read();
                false
            }
            Wake::NodeDue => true,
            Wake::Scrape(ask) => {
                self.answer_scrape(ask);
                false
            }
            Wake::ChecksDue => {
                self.start_due();
                false
            }
            Wake::ResultsOpen => false,
            Wake::Results(first) => self.on_results(first).await,
        };
        if changed { Turn::Changed } else { Turn::Same }
    }

    /// A clean stop: the table stays as it is.
    async fn stop(mut self, sources: Sources) {
        let _ = self.notifier.stopping();
        sources.close();
        self.node.stop().await;
        info!("stopping: the IPVS table stays as it is");
        let _ = std::fs::remove_file(&self.opts.control);
    }

    /// The status now (no table read: weights are the view's).
    fn status(&self) -> Status {
        Status::new(Parts {
            config: &self.opts.config,
            started: self.started,
            cluster: &self.cluster,
            view: &self.view,
            counters: &self.counters,
            checks_in_flight: self.runs.checks_in_flight(),
            quorum: self.node.healthy(),
            withdrawn_by_hand: self.node.withdrawn_by_hand(),
            vips: self.node.vips(),
        })
    }

    /// systemd's one-line status.
    fn status_line(&self) -> String {
        let (mut up, mut down, mut unchecked) = (0, 0, 0);
        for c in &self.cluster.checks {
            match c.state.health {
                crate::cluster::health::Health::Up => up += 1,
                crate::cluster::health::Health::Down => down += 1,
                crate::cluster::health::Health::Unchecked => unchecked += 1,
            }
        }
        format!(
            "{} services; checks: {up} up, {down} down, {unchecked} unchecked; {} drained by hand",
            self.cluster.config.services.len(),
            self.cluster.drains.len()
        )
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

    /// Plans services `services` of the cluster against the view and
    /// applies, then tells systemd.
    async fn converge_services(&mut self, services: &[usize]) {
        let entries = services
            .iter()
            .map(|&i| self.cluster.service_entry(i))
            .collect();
        self.converge(entries, Vec::new()).await;
        let _ = self.notifier.status(&self.status_line());
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
                    self.resync.overtook(op);
                }
                log_refused(&applied);
            }
            Err(e) => error!("{e}"),
        }
    }
}
