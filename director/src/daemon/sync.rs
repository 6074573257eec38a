//! Full syncs: every `sync_interval` the table is read (beside the loop),
//! the whole file planned against it (drift, refused changes, retired
//! servers) and applied.

use std::time::{Duration, Instant};

use lvs_ipvs::Op;
use tracing::{error, info, warn};

use super::{Daemon, LOGGED_STEPS, groups};
use crate::kernel::KernelError;
use crate::model::Table;
use crate::plan::plan;
use crate::view::view_of;

/// A full sync's read of the kernel's table, done beside the loop.
pub(super) struct TableRead {
    epoch: u64,
    took: Duration,
    table: Result<Table, KernelError>,
}

/// Reads thrown away in a row (the table changed while they ran) before a
/// sync reads with the loop waiting, as a sync under constant changes must
/// still happen.
const MAX_STALE_READS: u32 = 3;

impl Daemon {
    /// Starts a sync: the table is read beside the loop, which goes on
    /// checking, reloading and editing meanwhile.
    pub(super) fn start_read(&mut self) {
        if self.reading {
            return;
        }
        self.reading = true;
        let (kernel, tx, epoch) = (self.kernel.clone(), self.read_tx.clone(), self.table_epoch);
        tokio::spawn(async move {
            let started = Instant::now();
            let table = kernel.table().await;
            let _ = tx.send(TableRead {
                epoch,
                took: started.elapsed(),
                table,
            });
        });
    }

    /// A sync's read is back: planned against if the daemon changed
    /// nothing in the kernel while it ran (a read from before an edit would
    /// undo the edit in the view), else read again.
    pub(super) async fn on_read(&mut self, read: TableRead) {
        self.reading = false;
        if read.took > Duration::from_secs(1) {
            warn!(
                "full sync: reading the table took {:.1}s",
                read.took.as_secs_f64()
            );
        }
        let table = match read.table {
            Ok(t) => t,
            Err(e) => {
                error!("full sync: {e}");
                return;
            }
        };
        if read.epoch == self.table_epoch {
            self.stale_reads = 0;
            self.full_sync(Some(table)).await;
        } else if self.stale_reads + 1 < MAX_STALE_READS {
            self.stale_reads += 1;
            self.start_read();
        } else {
            self.stale_reads = 0;
            self.full_sync(None).await;
        }
    }

    /// Reads the kernel (unless given the table just read), plans the whole
    /// file against it and applies; syncs the nftables table.
    pub(super) async fn full_sync(&mut self, table: Option<Table>) {
        let table = match table {
            Some(t) => t,
            // No check starts and no result counts meanwhile.
            None => match self.kernel.table().await {
                Ok(t) => t,
                Err(e) => {
                    error!("full sync: {e}");
                    return;
                }
            },
        };
        let (lag, overrun) = self.sched.take_lag();
        if lag >= Duration::from_secs(1) || overrun > 0 {
            warn!(
                "checks started up to {:.1}s late since the last sync, {overrun} runs passed over (the last still going); {} running: the director is short of CPU or of --max-in-flight",
                lag.as_secs_f64(),
                self.runs_in_flight
            );
        }
        if self.skipped_since_sync > 0 {
            warn!(
                "{} checks skipped since the last sync (last: {}): raise LimitNOFILE and --max-in-flight, or the intervals",
                self.skipped_since_sync, self.last_skip
            );
            self.skipped_since_sync = 0;
        }
        let retired = self.model.expire_retiring(&table, Instant::now());
        let desired = self.model.desired_table();
        let mut p = plan(&desired, &table, self.opts.prune);
        p.deletions
            .extend(retired.into_iter().map(Op::DeleteService));
        let first = self.counters.syncs == 0;
        if first && !p.unmanaged.is_empty() {
            info!(
                "{} services in the kernel are not in the file: left alone (--prune deletes them)",
                p.unmanaged.len()
            );
        }
        let changes = p.ops().count();
        if changes > 0 {
            let what = if first {
                "first convergence"
            } else {
                "full sync (drift or retries)"
            };
            info!("{what}: {changes} changes");
            let steps = crate::plan::steps(&p, &table);
            for step in steps.iter().take(LOGGED_STEPS) {
                info!("  {step}");
            }
            if steps.len() > LOGGED_STEPS {
                info!("  ... and {} more", steps.len() - LOGGED_STEPS);
            }
        }
        self.view = view_of(table);
        self.apply_plan(p).await;
        match self.kernel.sync_nft(groups(&self.model.config)).await {
            Ok(true) => info!("nftables table of the port groups written"),
            Ok(false) => {}
            Err(e) => error!("{e} (retried at the next sync)"),
        }
        if self.counters.syncs > 0 {
            self.node.reconcile().await;
        }
        self.counters.syncs += 1;
        self.counters.last_sync = Some(Instant::now());
    }
}
