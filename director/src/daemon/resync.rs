//! Full syncs: every `sync_interval` the table is read (beside the loop),
//! the whole file planned against it (drift, refused changes, retired
//! servers) and applied.

use std::time::{Duration, Instant};

use lvs_ipvs::Op;
use tracing::{error, info, warn};

use super::{Daemon, LOGGED_STEPS, groups};
use crate::cluster::Table;
use crate::kernel::KernelError;
use crate::kernel::plan::plan_from;
use crate::kernel::view::{View, patch, view_of};

/// A full sync's read of the kernel's table, done beside the loop.
pub(super) struct TableRead {
    took: Duration,
    table: Result<Table, KernelError>,
}

/// Changes kept to put over a read in flight; beyond them the read is
/// thrown away and done again.
const MAX_OVERTAKING: usize = 4096;

/// Reads thrown away in a row before a sync reads with the loop waiting
/// (a sync under constant changes must still happen).
const MAX_STALE_READS: u32 = 3;

/// Where the full syncs' reads stand.
#[derive(Default)]
pub(super) struct Resync {
    read: Read,
    /// Reads in a row thrown away because too much changed meanwhile.
    stale_reads: u32,
}

/// A sync's table read beside the loop.
#[derive(Default)]
enum Read {
    #[default]
    Idle,
    /// In flight, with the changes the daemon made meanwhile: put over the
    /// read when it is back (see [`Daemon::on_read`]).
    InFlight(Vec<Op>),
    /// In flight, but too much changed meanwhile: it will be thrown away.
    Overtaken,
}

impl Resync {
    /// Notes a change the kernel took, for the read in flight.
    pub(super) fn overtook(&mut self, op: &Op) {
        match &mut self.read {
            Read::InFlight(ops) if ops.len() < MAX_OVERTAKING => ops.push(op.clone()),
            Read::InFlight(_) => self.read = Read::Overtaken,
            Read::Idle | Read::Overtaken => {}
        }
    }
}

impl Daemon {
    /// Starts a sync: the table is read beside the loop, which goes on
    /// checking, reloading and editing meanwhile.
    pub(super) fn start_read(&mut self) {
        if !matches!(self.resync.read, Read::Idle) {
            return;
        }
        self.resync.read = Read::InFlight(Vec::new());
        let (kernel, tx) = (self.kernel.clone(), self.channels.reads_tx.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let table = kernel.table_to_plan().await;
            let _ = tx.send(TableRead {
                took: started.elapsed(),
                table,
            });
        });
    }

    /// A sync's read is back. The changes the daemon made while it ran are
    /// put over it: the read may or may not have seen each one, and a
    /// change's result is the same either way (planning against the bare
    /// read would undo them in the view). Too many changes: read again.
    pub(super) async fn on_read(&mut self, read: TableRead) {
        let overtaken = std::mem::take(&mut self.resync.read);
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
        match overtaken {
            Read::InFlight(ops) => {
                self.resync.stale_reads = 0;
                let table = if ops.is_empty() {
                    table
                } else {
                    overlay(table, &ops)
                };
                self.full_sync(Some(table)).await;
            }
            _ if self.resync.stale_reads + 1 < MAX_STALE_READS => {
                self.resync.stale_reads += 1;
                self.start_read();
            }
            _ => {
                self.resync.stale_reads = 0;
                self.full_sync(None).await;
            }
        }
    }

    /// Reads the kernel (unless given the table just read), plans the whole
    /// file against it and applies; syncs the nftables table.
    pub(super) async fn full_sync(&mut self, table: Option<Table>) {
        let table = match table {
            Some(t) => t,
            // No check starts and no result counts meanwhile.
            None => match self.kernel.table_to_plan().await {
                Ok(t) => t,
                Err(e) => {
                    error!("full sync: {e}");
                    return;
                }
            },
        };
        self.log_lag_and_skips();
        // The table just read replaces the view: dropped now, the old one
        // is not held beside the read and the new map (2 MB at 20,000
        // servers, at the peak of every sync).
        self.view = View::new();
        let retired = self.cluster.expire_retiring(&table, Instant::now());
        let mut p = plan_from(self.cluster.desired_entries(), &table, self.opts.prune);
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
            for step in crate::kernel::plan::first_steps(&p, &table, LOGGED_STEPS) {
                info!("  {step}");
            }
            if changes > LOGGED_STEPS {
                info!("  ... and {} more", changes - LOGGED_STEPS);
            }
        }
        self.view = view_of(table);
        self.apply_plan(p).await;
        match self.kernel.sync_nft(groups(&self.cluster.config)).await {
            Ok(true) => info!("nftables table of the port groups written"),
            Ok(false) => {}
            Err(e) => error!("{e} (retried at the next sync)"),
        }
        if self.counters.syncs > 0 {
            self.node.reconcile().await;
        }
        self.counters.syncs += 1;
        self.counters.last_sync = Some(Instant::now());
        super::release_freed_memory();
    }
}

impl Daemon {
    /// What the checks suffered since the last sync: late starts, skips.
    fn log_lag_and_skips(&mut self) {
        let (lag, overrun) = self.runs.take_lag();
        if lag >= Duration::from_secs(1) || overrun > 0 {
            warn!(
                "checks started up to {:.1}s late since the last sync, {overrun} runs passed over (the last still going); {} running: the director is short of CPU or of --max-in-flight",
                lag.as_secs_f64(),
                self.runs.in_flight()
            );
        }
        if let Some((n, last)) = self.runs.take_skips() {
            warn!(
                "{n} checks skipped since the last sync (last: {last}): raise LimitNOFILE and --max-in-flight, or the intervals"
            );
        }
    }
}

/// `table` with `ops` applied as the kernel applied them, keeping the
/// connection counts it reported (a retiring server's count decides when
/// it goes).
fn overlay(table: Table, ops: &[Op]) -> Table {
    let mut view = view_of(table);
    for op in ops {
        match op {
            Op::AddDestination(k, d) | Op::EditDestination(k, d) => {
                let Some((_, ds)) = view.get_mut(k) else {
                    continue;
                };
                match ds.iter_mut().find(|x| x.addr == d.addr && x.port == d.port) {
                    Some(x) => {
                        let counts = (x.active_conns, x.inact_conns, x.persist_conns);
                        *x = d.clone();
                        (x.active_conns, x.inact_conns, x.persist_conns) = counts;
                    }
                    None => ds.push(d.clone()),
                }
            }
            other => patch(&mut view, other),
        }
    }
    view.into_values().collect()
}

#[cfg(test)]
mod tests {
    use lvs_ipvs::table::{Destination, Service, ServiceKey};

    use super::*;

    #[test]
    fn changes_made_during_a_read_are_put_over_it() {
        let key = ServiceKey::Addr {
            protocol: lvs_ipvs::table::Protocol::Tcp,
            addr: "198.51.100.1".parse().unwrap(),
            port: 80,
        };
        let dest = |last: u8, weight: u32, active: u32| {
            let mut d = Destination::new(format!("198.51.100.{last}").parse().unwrap(), 80);
            (d.weight, d.active_conns) = (weight, active);
            d
        };
        let read: Table = vec![(
            Service::new(key, "wrr"),
            vec![dest(10, 1, 5), dest(11, 1, 0)],
        )];
        let ops = [
            // Seen by the read or not: the result is the same.
            Op::EditDestination(key, dest(10, 0, 0)),
            Op::DeleteDestination(key, dest(11, 1, 0)),
            Op::AddDestination(key, dest(12, 3, 0)),
            Op::AddDestination(key, dest(12, 3, 0)),
        ];
        let t = overlay(read, &ops);
        assert_eq!(t.len(), 1);
        let got: Vec<(String, u32, u32)> = t[0]
            .1
            .iter()
            .map(|d| (d.addr.to_string(), d.weight, d.active_conns))
            .collect();
        assert_eq!(
            got,
            [
                ("198.51.100.10".into(), 0, 5),
                ("198.51.100.12".into(), 3, 0)
            ],
            "the kernel's count kept, the edit's weight in force"
        );
    }
}
