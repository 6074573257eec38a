//! What the daemon's loop waits on: signals, the watchdog, the control
//! socket, scrapes, the sync interval, its own channels, and the timers it
//! moves as deadlines change. [`Sources::next`] says what woke it;
//! [`super::Daemon::dispatch`] handles it.

use std::pin::Pin;
use std::time::{Duration, Instant};

use lvs_common::daemon::{Notifier, Signal, Signals, Watchdog};
use tokio::net::UnixListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior, Sleep};

use super::checks::{Done, TICK};
use super::metrics::Ask;
use super::{Channels, TableRead};
use crate::control::{self, Pending};

/// What woke the loop.
pub(super) enum Wake {
    Signal(Signal),
    Watchdog,
    Control(Pending),
    /// A full sync's table read is back.
    Read(TableRead),
    /// Time for a full sync.
    SyncDue,
    /// The node's next deadline (an announcement's hold-down).
    NodeDue,
    Scrape(Ask),
    /// Check runs are due.
    ChecksDue,
    /// The results gate opened again.
    ResultsOpen,
    /// The first result of a batch (the rest are taken from the channel).
    Results(Done),
}

/// The loop's inputs from outside, and its timers.
pub(super) struct Sources {
    signals: Signals,
    watchdog: Watchdog,
    control: mpsc::Receiver<Pending>,
    /// Serves the control socket, sending its requests to `control`.
    control_task: JoinHandle<()>,
    scrapes: Option<mpsc::Receiver<Ask>>,
    sync: Interval,
    pub(super) timers: Timers,
}

impl Sources {
    /// Starts serving the control socket on `listener`.
    pub(super) fn new(
        signals: Signals,
        listener: UnixListener,
        scrapes: Option<mpsc::Receiver<Ask>>,
        notifier: &Notifier,
        sync_interval: Duration,
    ) -> Sources {
        let (control_tx, control) = mpsc::channel::<Pending>(control::MAX_CLIENTS);
        let control_task = tokio::spawn(control::serve(listener, control_tx));
        let mut sync =
            tokio::time::interval_at(tokio::time::Instant::now() + sync_interval, sync_interval);
        sync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Sources {
            signals,
            watchdog: Watchdog::from_notifier(notifier),
            control,
            control_task,
            scrapes,
            sync,
            timers: Timers::new(),
        }
    }

    /// Stops serving the control socket.
    pub(super) fn close(self) {
        self.control_task.abort();
    }

    /// Waits for what comes next. Biased, rare events first: a SIGHUP, a
    /// control request or the watchdog must not wait behind a stream of
    /// results (in an overloaded guest a reload waited seconds for a random
    /// pick); results, the one stream that can stay ready, come last.
    pub(super) async fn next(&mut self, channels: &mut Channels) -> Wake {
        let t = &mut self.timers;
        tokio::select! {
            biased;
            sig = self.signals.recv() => Wake::Signal(sig),
            _ = self.watchdog.tick() => Wake::Watchdog,
            Some(p) = self.control.recv() => Wake::Control(p),
            Some(read) = channels.reads_rx.recv() => Wake::Read(read),
            _ = self.sync.tick() => Wake::SyncDue,
            () = &mut t.node, if t.node_at.is_some() => {
                t.node_at = None;
                Wake::NodeDue
            }
            Some(ask) = scrape(&mut self.scrapes) => Wake::Scrape(ask),
            () = &mut t.due, if t.due_at.is_some() => {
                t.due_at = None;
                Wake::ChecksDue
            }
            () = &mut t.results_gate, if t.results_closed => {
                t.results_closed = false;
                Wake::ResultsOpen
            }
            Some(done) = channels.results_rx.recv(), if !t.results_closed => Wake::Results(done),
        }
    }
}

async fn scrape(scrapes: &mut Option<mpsc::Receiver<Ask>>) -> Option<Ask> {
    match scrapes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Timers for the loop's life, moved when their time changes: made anew in
/// every turn, each turn (one per batch of results, thousands a second)
/// registered and removed two timers.
pub(super) struct Timers {
    /// Check runs due.
    due: Pin<Box<Sleep>>,
    due_at: Option<Instant>,
    /// The node's next deadline.
    node: Pin<Box<Sleep>>,
    node_at: Option<Instant>,
    /// Results are taken at most once a tick: every check's result woke the
    /// loop (thousands of turns a second, each polling every branch of
    /// [`Sources::next`]) where one turn a tick takes them all, for at most
    /// a tick's delay.
    results_gate: Pin<Box<Sleep>>,
    results_closed: bool,
}

impl Timers {
    fn new() -> Timers {
        Timers {
            due: Box::pin(tokio::time::sleep(Duration::ZERO)),
            due_at: None,
            node: Box::pin(tokio::time::sleep(Duration::ZERO)),
            node_at: None,
            results_gate: Box::pin(tokio::time::sleep(Duration::ZERO)),
            results_closed: false,
        }
    }

    /// Moves the timers to the next runs due and the node's next deadline
    /// (none: that timer is off).
    pub(super) fn arm(&mut self, due: Option<Instant>, node: Option<Instant>) {
        if due != self.due_at {
            if let Some(t) = due {
                self.due.as_mut().reset(t.into());
            }
            self.due_at = due;
        }
        if node != self.node_at {
            if let Some(t) = node {
                self.node.as_mut().reset(t.into());
            }
            self.node_at = node;
        }
    }

    /// Results were just taken: the next ones wait a tick.
    pub(super) fn close_results(&mut self) {
        self.results_gate
            .as_mut()
            .reset((Instant::now() + TICK).into());
        self.results_closed = true;
    }
}
