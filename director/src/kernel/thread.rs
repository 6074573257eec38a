//! The daemon's only door to the kernel: one thread owns the IPVS handle
//! for changes (and runs nft), and the daemon's async loop sends it jobs.
//! The handle's I/O is blocking, so it must stay off the loop that runs the
//! checks. Reads of the whole table go to a second thread with its own
//! handle: at 20,000 servers a read takes seconds in a slow guest, and a
//! reload's edit or a failed server's drain must not wait behind it (the
//! kernel serves a dump in parts, and changes go in between them).
//!
//! Every batch of changes takes the namespace's table lock (shared with
//! `lvs-director apply` and `ipvsctl`), so a restore's rollback or a
//! one-shot apply never interleaves with the daemon's edits.

use std::sync::mpsc;

use std::time::Duration;

use lvs_ipvs::{Error as IpvsError, Handle, LockError, Op};
use tokio::sync::oneshot;

use crate::cluster::Table;
use crate::config::PortGroup;
use crate::kernel::nft::{self, Nft};
use crate::kernel::plan::Plan;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open IPVS: {0}")]
    Open(#[source] IpvsError),
    #[error("reading the IPVS table: {0}")]
    Read(#[source] IpvsError),
    #[error("nftables: {0}")]
    Nft(#[source] nft::NftError),
    #[error("the kernel thread cannot start: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the kernel thread is gone")]
    Gone,
    #[error("{0}")]
    Lock(#[source] LockError),
    #[error("sync daemons: {0}")]
    Sync(#[source] IpvsError),
}

/// How long a batch waits for another tool's run on the same table; the
/// next sync retries after a timeout.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// What became of a plan's changes: the plan's own vectors handed back
/// (a first convergence is 22,000 changes: a second vector of those done
/// was 2 MB more at the start's peak), with the ones the kernel refused.
#[derive(Debug, Default)]
pub struct Applied {
    /// Services, destinations, deletions: every change, refused or not.
    pub phases: [Vec<Op>; 3],
    /// The refused changes, in order.
    pub refused: Vec<Refused>,
}

/// A change the kernel refused: its phase and index in
/// [`Applied::phases`], and why.
#[derive(Debug)]
pub struct Refused {
    pub at: (usize, usize),
    pub error: IpvsError,
}

impl Applied {
    pub fn op(&self, at: (usize, usize)) -> &Op {
        &self.phases[at.0][at.1]
    }

    /// The changes the kernel took, in order.
    pub fn done(&self) -> impl Iterator<Item = &Op> {
        let mut refused = self.refused.iter().map(|r| r.at).peekable();
        self.phases
            .iter()
            .enumerate()
            .flat_map(|(p, ops)| ops.iter().enumerate().map(move |(i, op)| ((p, i), op)))
            .filter_map(move |(at, op)| {
                if refused.peek() == Some(&at) {
                    refused.next();
                    None
                } else {
                    Some(op)
                }
            })
    }

    pub fn done_count(&self) -> usize {
        self.phases.iter().map(Vec::len).sum::<usize>() - self.refused.len()
    }
}

struct Ctx {
    ipvs: Handle,
    nft: Nft,
    netns: Option<String>,
    /// No port group, and the table was found absent (or deleted): syncs
    /// with no group do not run `nft` again.
    nft_absent: std::cell::Cell<bool>,
}

type Job = Box<dyn FnOnce(&Ctx) + Send>;

/// The handle on the kernel threads.
#[derive(Clone)]
pub struct Kernel {
    tx: mpsc::Sender<Job>,
    read_tx: mpsc::Sender<Job>,
}

impl Kernel {
    /// Starts the threads and opens IPVS in `netns` (or here).
    pub async fn open(netns: Option<String>) -> Result<Kernel, KernelError> {
        let tx = Self::thread("lvs-kernel", netns.clone()).await?;
        let read_tx = Self::thread("lvs-kernel-read", netns).await?;
        Ok(Kernel { tx, read_tx })
    }

    async fn thread(name: &str, netns: Option<String>) -> Result<mpsc::Sender<Job>, KernelError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // Like ipvsadm: loads ip_vs once if the kernel has no IPVS yet.
                let ipvs = match Handle::connect(netns.as_deref()) {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = ready_tx.send(Err(KernelError::Open(e)));
                        return;
                    }
                };
                let nft = Nft::new(netns.as_ref().map(|n| format!("/run/netns/{n}").into()));
                let ctx = Ctx {
                    ipvs,
                    nft,
                    netns,
                    nft_absent: Default::default(),
                };
                let _ = ready_tx.send(Ok(()));
                // Ends when every Kernel is dropped.
                while let Ok(job) = rx.recv() {
                    job(&ctx);
                }
            })
            .map_err(KernelError::Thread)?;
        ready_rx.await.map_err(|_| KernelError::Gone)??;
        Ok(tx)
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ctx) -> T + Send + 'static,
    ) -> Result<T, KernelError> {
        Self::call_on(&self.tx, f).await
    }

    async fn call_on<T: Send + 'static>(
        thread: &mpsc::Sender<Job>,
        f: impl FnOnce(&Ctx) -> T + Send + 'static,
    ) -> Result<T, KernelError> {
        let (tx, rx) = oneshot::channel();
        thread
            .send(Box::new(move |ctx| {
                let _ = tx.send(f(ctx));
            }))
            .map_err(|_| KernelError::Gone)?;
        rx.await.map_err(|_| KernelError::Gone)
    }

    /// The whole table, with connection counts and traffic counters (on
    /// the reading thread: changes sent meanwhile are not held up).
    pub async fn table(&self) -> Result<Table, KernelError> {
        Self::call_on(&self.read_tx, |c| c.ipvs.table())
            .await?
            .map_err(KernelError::Read)
    }

    /// [`Kernel::table`] without the traffic counters: what a sync plans
    /// against.
    pub async fn table_to_plan(&self) -> Result<Table, KernelError> {
        Self::call_on(&self.read_tx, |c| c.ipvs.table_without_stats())
            .await?
            .map_err(KernelError::Read)
    }

    /// Runs a plan's phases in order (services, destinations, deletions),
    /// each phase's requests in flight together. Unlike `apply`, a refused
    /// change does not stop the others: the refusals come back, and the
    /// next sync retries them.
    pub async fn apply(&self, plan: Plan) -> Result<Applied, KernelError> {
        self.call(move |c| {
            let _lock = lvs_ipvs::lock_table(c.netns.as_deref(), None, LOCK_TIMEOUT)
                .map_err(KernelError::Lock)?;
            let mut refused = Vec::new();
            for (p, phase) in [&plan.services, &plan.destinations, &plan.deletions]
                .into_iter()
                .enumerate()
            {
                if phase.is_empty() {
                    continue;
                }
                let mut failed = Vec::new();
                c.ipvs.apply_many_failures(phase, |i, error| {
                    failed.push(Refused { at: (p, i), error })
                });
                // A socket failure's changes come after the refusals.
                failed.sort_by_key(|r| r.at);
                refused.append(&mut failed);
            }
            let applied = Applied {
                phases: [plan.services, plan.destinations, plan.deletions],
                refused,
            };
            Ok(applied)
        })
        .await?
    }

    /// Makes the kernel run the sync daemons `want` (see
    /// [`crate::kernel::conn_sync::diff`]); returns what changed, one line each.
    pub async fn sync_daemons(
        &self,
        want: Vec<lvs_ipvs::Daemon>,
        managed: bool,
    ) -> Result<Vec<String>, KernelError> {
        self.call(move |c| {
            let running = c.ipvs.daemons().map_err(KernelError::Sync)?;
            let (stop, start) = crate::kernel::conn_sync::diff(&running, &want, managed);
            let mut lines = Vec::new();
            for state in stop {
                c.ipvs.stop_daemon(state).map_err(KernelError::Sync)?;
                lines.push(format!("{state:?} sync daemon stopped"));
            }
            for d in start {
                c.ipvs.start_daemon(&d).map_err(KernelError::Sync)?;
                lines.push(format!(
                    "{:?} sync daemon started on {}, syncid {}",
                    d.state, d.mcast_ifn, d.sync_id
                ));
            }
            Ok(lines)
        })
        .await?
    }

    /// Makes the port-group table hold exactly `groups` (as `apply` does:
    /// left alone when it already matches). Returns whether it was written.
    /// Without groups the table is looked for until it is known absent,
    /// then not again: a file with no port group runs no `nft` per sync.
    pub async fn sync_nft(&self, groups: Vec<PortGroup>) -> Result<bool, KernelError> {
        self.call(move |c| {
            if groups.is_empty() && c.nft_absent.get() {
                return Ok(false);
            }
            if !c.nft.usable(!groups.is_empty()).map_err(KernelError::Nft)? {
                return Ok(false);
            }
            let listed = c.nft.list_table().map_err(KernelError::Nft)?;
            let write = match &listed {
                None => !groups.is_empty(),
                Some(l) => !nft::table_matches(l, &groups) || groups.is_empty(),
            };
            if write {
                c.nft.replace(&groups).map_err(KernelError::Nft)?;
            }
            c.nft_absent.set(groups.is_empty());
            Ok(write)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use lvs_ipvs::table::{Service, ServiceKey};

    use super::*;

    #[test]
    fn done_skips_the_refused_changes() {
        let key = |port| ServiceKey::tcp("198.51.100.1".parse().unwrap(), port);
        let add = |port| Op::AddService(Service::new(key(port), "wrr"));
        let refused = |at| Refused {
            at,
            error: IpvsError::Unconfirmed {
                what: String::new(),
            },
        };
        let applied = Applied {
            phases: [
                vec![add(1), add(2), add(3)],
                vec![],
                vec![Op::DeleteService(key(4))],
            ],
            refused: vec![refused((0, 1)), refused((2, 0))],
        };
        let done: Vec<&Op> = applied.done().collect();
        assert_eq!(done, [&add(1), &add(3)]);
        assert_eq!(applied.done_count(), 2);
        assert_eq!(applied.op((0, 1)), &add(2));
    }
}
