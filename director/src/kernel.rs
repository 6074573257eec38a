//! The daemon's only door to the kernel: one thread owns the IPVS handle
//! (and runs nft), and the daemon's async loop sends it jobs. The handle's
//! I/O is blocking, so it must stay off the loop that runs the checks.
//!
//! While `lvs_ipvs::Handle` is async (its futures only ever block), the
//! thread drives it with a current-thread runtime of its own (`block_on`);
//! when the handle becomes synchronous, those `block_on` calls go and
//! nothing else changes.

use std::sync::mpsc;

use lvs_ipvs::{DEFAULT_CONCURRENCY, Error as IpvsError, Handle, Op};
use tokio::sync::oneshot;

use crate::config::PortGroup;
use crate::model::Table;
use crate::nft::{self, Nft};
use crate::plan::Plan;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open IPVS: {0}")]
    Open(#[source] IpvsError),
    #[error("reading the IPVS table: {0}")]
    Read(#[source] IpvsError),
    #[error("nftables: {0}")]
    Nft(#[source] nft::NftError),
    #[error("port groups need nftables, but {0} cannot be run")]
    NoNft(String),
    #[error("the kernel thread cannot start: {0}")]
    Thread(#[source] std::io::Error),
    #[error("the kernel thread is gone")]
    Gone,
}

/// A change the kernel refused.
#[derive(Debug)]
pub struct Refused {
    pub op: Op,
    pub error: IpvsError,
}

struct Ctx {
    rt: tokio::runtime::Runtime,
    ipvs: Handle,
    nft: Nft,
}

type Job = Box<dyn FnOnce(&Ctx) + Send>;

/// The handle on the kernel thread.
#[derive(Clone)]
pub struct Kernel {
    tx: mpsc::Sender<Job>,
}

fn open_handle(rt: &tokio::runtime::Runtime, netns: Option<&str>) -> Result<Handle, IpvsError> {
    let open = || {
        rt.block_on(async {
            match netns {
                Some(ns) => Handle::in_netns(ns).await,
                None => Handle::new().await,
            }
        })
    };
    match open() {
        // Like ipvsadm: load the module once and try again.
        Err(IpvsError::FamilyNotFound) => {
            let loaded = std::process::Command::new("modprobe")
                .args(["--", "ip_vs"])
                .status()
                .is_ok_and(|s| s.success());
            if loaded {
                open()
            } else {
                Err(IpvsError::FamilyNotFound)
            }
        }
        other => other,
    }
}

impl Kernel {
    /// Starts the thread and opens IPVS in `netns` (or here).
    pub async fn open(netns: Option<String>) -> Result<Kernel, KernelError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("lvs-kernel".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(KernelError::Thread(e)));
                        return;
                    }
                };
                let ipvs = match open_handle(&rt, netns.as_deref()) {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = ready_tx.send(Err(KernelError::Open(e)));
                        return;
                    }
                };
                let nft = Nft::new(netns.map(|n| format!("/run/netns/{n}").into()));
                let ctx = Ctx { rt, ipvs, nft };
                let _ = ready_tx.send(Ok(()));
                // Ends when every Kernel is dropped.
                while let Ok(job) = rx.recv() {
                    job(&ctx);
                }
            })
            .map_err(KernelError::Thread)?;
        ready_rx.await.map_err(|_| KernelError::Gone)??;
        Ok(Kernel { tx })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ctx) -> T + Send + 'static,
    ) -> Result<T, KernelError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |ctx| {
                let _ = tx.send(f(ctx));
            }))
            .map_err(|_| KernelError::Gone)?;
        rx.await.map_err(|_| KernelError::Gone)
    }

    /// The whole table, with connection counts.
    pub async fn table(&self) -> Result<Table, KernelError> {
        self.call(|c| c.rt.block_on(c.ipvs.table()))
            .await?
            .map_err(KernelError::Read)
    }

    /// Runs a plan's phases in order (services, destinations, deletions),
    /// each phase's requests in flight together. Unlike `apply`, a refused
    /// change does not stop the others: the refusals come back, and the
    /// next sync retries them.
    pub async fn apply(&self, plan: Plan) -> Result<Vec<Refused>, KernelError> {
        self.call(move |c| {
            let mut refused = Vec::new();
            for phase in [plan.services, plan.destinations, plan.deletions] {
                if phase.is_empty() {
                    continue;
                }
                let results =
                    c.rt.block_on(c.ipvs.apply_many(&phase, DEFAULT_CONCURRENCY));
                for (op, r) in phase.into_iter().zip(results) {
                    if let Err(error) = r {
                        refused.push(Refused { op, error });
                    }
                }
            }
            refused
        })
        .await
    }

    /// Makes the port-group table hold exactly `groups` (as `apply` does:
    /// left alone when it already matches). Returns whether it was written.
    pub async fn sync_nft(&self, groups: Vec<PortGroup>) -> Result<bool, KernelError> {
        self.call(move |c| {
            let have_nft = c.nft.available();
            if !have_nft {
                if groups.is_empty() {
                    return Ok(false);
                }
                return Err(KernelError::NoNft(c.nft.program.display().to_string()));
            }
            let listed = c.nft.list_table().map_err(KernelError::Nft)?;
            let write = match &listed {
                None => !groups.is_empty(),
                Some(l) => !nft::table_matches(l, &groups) || groups.is_empty(),
            };
            if write {
                c.nft.replace(&groups).map_err(KernelError::Nft)?;
            }
            Ok(write)
        })
        .await?
    }
}
