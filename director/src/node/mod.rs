//! What the daemon does for the director as a whole, beyond the IPVS table:
//! the VIPs on the announce interface ([`announce`] decides, [`addr`] does),
//! the quorum file for keepalived ([`health_file`]), the IPVS sysctls
//! ([`sysctl`]) and the connection-sync daemons ([`crate::kernel::conn_sync`]).
//!
//! Order matters at a stop: the VIPs leave first (routers withdraw the
//! route), the quorum file says unhealthy (keepalived hands the VIP over),
//! then the daemon keeps its hands off for `withdraw_grace` so flows still
//! in flight are forwarded, and only then restores the sysctls and stops
//! the sync daemons. The IPVS table stays.
//!
//! A stop for a restart (the package's postinst writes the marker
//! `control.restart` next to the control socket just before `systemctl
//! try-restart`) changes nothing: VIPs, health file, sysctls and sync
//! daemons stay as they are, and what the next start cannot read from the
//! system (the interface it created, whether the sync daemons are its own,
//! `lvs-director withdraw`) is handed over in `control.handover.json`. Two
//! directors upgraded at once then never withdraw together.

pub mod addr;
pub mod announce;
mod handover;
pub mod health_file;
pub mod sysctl;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, info, warn};

use crate::cluster::Cluster;
use crate::config::{Announce, NodeConfig};
use crate::kernel::Kernel;
use addr::{Addrs, Iface};
use announce::{Announcer, Direction, Transition};
use handover::{handover_path, take_handover, take_restart_marker};
use health_file::HealthFile;
use sysctl::{SysctlError, Sysctls};

/// Why the node could not be brought to its configuration (at start: the
/// daemon does not start; at reload: logged, the rest stays applied).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error("sync daemons: {0}")]
    SyncDaemons(#[source] crate::kernel::KernelError),
    #[error("announce: {what}: {source}")]
    Announce {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn announce_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let what = what.into();
    move |source| NodeError::Announce { what, source }
}

/// Per VIP, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipSnapshot {
    pub vip: String,
    pub announced: bool,
    pub announces: u64,
    pub withdrawals: u64,
}

/// Each VIP of the file and whether all its services have quorum.
pub fn servable(model: &Cluster) -> Vec<(IpAddr, bool)> {
    let mut by_vip: BTreeMap<IpAddr, bool> = BTreeMap::new();
    for (i, svc) in model.config.services.iter().enumerate() {
        let ok = model.healthy(i) >= svc.quorum as usize;
        *by_vip.entry(svc.vip).or_insert(true) &= ok;
    }
    by_vip.into_iter().collect()
}

struct Announcing {
    cfg: Announce,
    announcer: Announcer,
    addrs: Addrs,
    iface: Iface,
}

pub struct Node {
    netns: Option<String>,
    control: PathBuf,
    cfg: NodeConfig,
    announcing: Option<Announcing>,
    health: Option<HealthFile>,
    healthy: Option<bool>,
    sysctls: Sysctls,
    /// `[sync]` was in force: the sync daemons are this daemon's.
    sync_managed: bool,
    /// `lvs-director withdraw`: out of service until `announce`.
    withdrawn_by_hand: bool,
    kernel: Kernel,
}

impl Node {
    /// Sets the sysctls, starts the sync daemons and finds (or creates)
    /// the announce interface; VIPs already on it are adopted.
    pub async fn start(
        cfg: &NodeConfig,
        netns: Option<String>,
        control: &Path,
        kernel: Kernel,
        model: &Cluster,
    ) -> Result<Node, NodeError> {
        let handover = take_handover(&handover_path(control));
        let (sysctls, note) = Sysctls::open(control.with_extension("sysctl.json"), netns.clone());
        match (note, &handover) {
            (Some(_), Some(_)) if sysctls.recorded() => info!(
                "sysctl: the originals recorded before the restart are kept (restored at a full stop)"
            ),
            (Some(n), _) => warn!("{n}"),
            (None, _) => {}
        }
        let handover = handover.unwrap_or_default();
        let mut node = Node {
            netns,
            control: control.to_path_buf(),
            cfg: NodeConfig {
                health_file: crate::config::HealthFile::Off,
                ..NodeConfig::default()
            },
            announcing: None,
            health: None,
            healthy: None,
            sysctls,
            // Daemons the instance before a restart started are this one's
            // to stop, even when the file no longer asks for them.
            sync_managed: handover.sync_managed,
            withdrawn_by_hand: handover.withdrawn_by_hand,
            kernel,
        };
        node.configure(cfg, model).await?;
        if let (Some(a), Some(name)) = (&mut node.announcing, &handover.created_interface)
            && a.iface.name == *name
        {
            // Created by the instance before the restart: a full stop
            // deletes it, as that instance's would have.
            a.iface.created = true;
        }
        Ok(node)
    }

    /// Brings the node to `cfg` (start and reload).
    async fn configure(&mut self, cfg: &NodeConfig, model: &Cluster) -> Result<(), NodeError> {
        for line in self.sysctls.apply(&cfg.sysctl)? {
            info!("sysctl: {line}");
        }
        if cfg.sync.is_some() || self.sync_managed {
            let want = crate::kernel::conn_sync::desired(cfg.sync.as_ref());
            let lines = self
                .kernel
                .sync_daemons(want, self.sync_managed || cfg.sync.is_some())
                .await
                .map_err(NodeError::SyncDaemons)?;
            for line in lines {
                info!("sync: {line}");
            }
            self.sync_managed = cfg.sync.is_some();
        }
        let same_iface = match (&self.announcing, &cfg.announce) {
            (Some(a), Some(b)) => a.cfg.interface == b.interface,
            _ => false,
        };
        if !same_iface && let Some(old) = self.announcing.take() {
            release(old, "announcing moves or ends").await;
        }
        match (&mut self.announcing, &cfg.announce) {
            (Some(a), Some(new)) => {
                a.cfg = new.clone();
                a.announcer.set_hold_down(new.hold_down);
            }
            (None, Some(new)) => {
                let addrs = Addrs::connect(self.netns.as_deref())
                    .map_err(announce_error("route netlink"))?;
                let iface = addrs
                    .ensure(&new.interface)
                    .await
                    .map_err(announce_error(format!("interface {}", new.interface)))?;
                if iface.created {
                    info!("announce: created the dummy interface {}", iface.name);
                }
                let mut announcer = Announcer::new(new.hold_down);
                let file_vips: Vec<IpAddr> = servable(model).into_iter().map(|(v, _)| v).collect();
                let present = addrs
                    .list(&iface)
                    .await
                    .map_err(announce_error(format!("addresses of {}", iface.name)))?;
                for vip in present.into_iter().filter(|v| file_vips.contains(v)) {
                    info!("announce: VIP {vip} already on {}: adopted", iface.name);
                    announcer.adopt(vip);
                }
                let mut a = Announcing {
                    cfg: new.clone(),
                    announcer,
                    addrs,
                    iface,
                };
                if self.withdrawn_by_hand {
                    // A reload does not end `lvs-director withdraw`.
                    let ts = a.announcer.withdraw_all("withdrawn by hand");
                    a.apply(&ts).await;
                }
                self.announcing = Some(a);
            }
            _ => {}
        }
        if cfg.health_file != self.cfg.health_file {
            self.health = cfg.health_file.path(&self.control).map(HealthFile::new);
        }
        self.cfg = cfg.clone();
        Ok(())
    }

    /// A reload: a refusal is logged; what could be applied stays applied.
    pub async fn reload(&mut self, cfg: &NodeConfig, model: &Cluster, now: Instant) {
        if let Err(e) = self.configure(cfg, model).await {
            error!("reload: {e}");
        }
        self.update(model, now).await;
    }

    /// Follows the model's quorum: VIPs in or out, the quorum file.
    pub async fn update(&mut self, model: &Cluster, now: Instant) {
        let servable = servable(model);
        let healthy = !self.withdrawn_by_hand && servable.iter().all(|(_, ok)| *ok);
        if let Some(a) = &mut self.announcing {
            let ts = a.announcer.update(&servable, now);
            a.apply(&ts).await;
        }
        self.set_health(healthy);
    }

    fn set_health(&mut self, healthy: bool) {
        if self.healthy != Some(healthy) {
            info!(
                "quorum: {}",
                if healthy {
                    "every service has quorum"
                } else {
                    "a service is below quorum"
                }
            );
        }
        self.healthy = Some(healthy);
        if let Some(h) = &mut self.health {
            match h.set(healthy) {
                Ok(true) => info!(
                    "health file {}: {}",
                    h.path().display(),
                    if healthy { 0 } else { 1 }
                ),
                Ok(false) => {}
                Err(e) => error!("health file {}: {e}", h.path().display()),
            }
        }
    }

    /// Puts back VIPs someone removed (and removes announced ones the
    /// announcer withdrew but that came back): at every full sync.
    pub async fn reconcile(&mut self) {
        let Some(a) = &mut self.announcing else {
            return;
        };
        // Found again by name: someone may have deleted (or recreated) it.
        match a.addrs.ensure(&a.cfg.interface).await {
            Ok(i) => {
                if i.created {
                    warn!("announce: {} was gone: created again", i.name);
                }
                a.iface = Iface {
                    created: a.iface.created || i.created,
                    ..i
                };
            }
            Err(e) => {
                error!("announce: interface {}: {e}", a.cfg.interface);
                return;
            }
        }
        let present = match a.addrs.list(&a.iface).await {
            Ok(p) => p,
            Err(e) => {
                error!("announce: addresses of {}: {e}", a.iface.name);
                return;
            }
        };
        for (vip, s) in a.announcer.vips() {
            let on = present.contains(vip);
            let r = if s.announced && !on {
                warn!(
                    "announce: VIP {vip} was missing from {}: added again",
                    a.iface.name
                );
                a.addrs.add(&a.iface, *vip).await
            } else if !s.announced && on {
                warn!(
                    "announce: VIP {vip} on {} while withdrawn: removed",
                    a.iface.name
                );
                a.addrs.del(&a.iface, *vip).await
            } else {
                Ok(())
            };
            if let Err(e) = r {
                error!("announce: VIP {vip} on {}: {e}", a.iface.name);
            }
        }
    }

    /// `lvs-director withdraw`: every VIP off the interface (held on `lo`
    /// for the grace, in the background), the health file unhealthy.
    pub async fn withdraw_by_hand(&mut self) -> String {
        self.withdrawn_by_hand = true;
        self.set_health(false);
        let Some(a) = &mut self.announcing else {
            return "withdrawn (no [announce]: the health file says 1)".into();
        };
        let ts = a.announcer.withdraw_all("withdrawn by hand");
        let mut held = Vec::new();
        let lo = if a.cfg.withdraw_grace.is_zero() {
            None
        } else {
            a.hold_on_lo(&ts, &mut held).await
        };
        a.apply(&ts).await;
        if let Some(lo) = lo {
            let (addrs, grace) = (a.addrs.clone(), a.cfg.withdraw_grace);
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                for vip in held {
                    match addrs.del(&lo, vip).await {
                        Ok(()) => info!("announce: VIP {vip} let go (off lo after the grace)"),
                        Err(e) => error!("announce: VIP {vip} off lo: {e}"),
                    }
                }
            });
        }
        format!("{} VIPs withdrawn, the health file says 1", ts.len())
    }

    /// `lvs-director announce`: back in service (the caller's next update
    /// announces the servable VIPs, without hold-down).
    pub fn resume_by_hand(&mut self) -> String {
        self.withdrawn_by_hand = false;
        if let Some(a) = &mut self.announcing {
            a.announcer.resume();
        }
        "back in service: servable VIPs are announced".into()
    }

    pub fn withdrawn_by_hand(&self) -> bool {
        self.withdrawn_by_hand
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.announcing
            .as_ref()
            .and_then(|a| a.announcer.next_deadline())
    }

    pub fn vips(&self) -> Vec<VipSnapshot> {
        let Some(a) = &self.announcing else {
            return Vec::new();
        };
        a.announcer
            .vips()
            .iter()
            .map(|(v, s)| VipSnapshot {
                vip: v.to_string(),
                announced: s.announced,
                announces: s.announces,
                withdrawals: s.withdrawals,
            })
            .collect()
    }

    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// A clean stop: withdraw, say unhealthy, wait the grace, restore.
    /// During the grace each withdrawn VIP is held on `lo`: the routing
    /// daemon (which exports the announce interface only) withdraws the
    /// route at once, while packets still on their way are accepted and
    /// forwarded by IPVS instead of dropped.
    ///
    /// With a fresh restart marker (see the module's text) nothing of this
    /// happens: the state is handed over to the next start instead.
    pub async fn stop(&mut self) {
        let marker = self.control.with_extension("restart");
        if take_restart_marker(&marker, SystemTime::now()) {
            self.hand_over();
            return;
        }
        let mut held: Vec<IpAddr> = Vec::new();
        let mut lo = None;
        let mut grace = Duration::ZERO;
        let mut withdrew = false;
        if let Some(a) = &mut self.announcing {
            grace = a.cfg.withdraw_grace;
            let ts = a.announcer.withdraw_all("the daemon stops");
            withdrew = !ts.is_empty();
            if !ts.is_empty() && !grace.is_zero() {
                lo = a.hold_on_lo(&ts, &mut held).await;
            }
            a.apply(&ts).await;
        }
        self.set_health(false);
        if withdrew && !grace.is_zero() {
            info!(
                "stopping: {:.1}s of grace for the routers to move traffic away",
                grace.as_secs_f64()
            );
            tokio::time::sleep(grace).await;
        }
        if let (Some(a), Some(lo)) = (&self.announcing, &lo) {
            for vip in &held {
                match a.addrs.del(lo, *vip).await {
                    Ok(()) => info!("announce: VIP {vip} let go (off lo after the grace)"),
                    Err(e) => error!("announce: VIP {vip} off lo: {e}"),
                }
            }
        }
        if let Some(a) = self.announcing.take() {
            release(a, "the daemon stops").await;
        }
        match self.sysctls.restore() {
            Ok(lines) => lines.iter().for_each(|l| info!("sysctl: {l}")),
            Err(e) => error!("sysctl: restoring: {e} (the record is kept for the next start)"),
        }
        if self.sync_managed {
            match self.kernel.sync_daemons(Vec::new(), true).await {
                Ok(lines) => lines.iter().for_each(|l| info!("sync: {l}")),
                Err(e) => error!("sync: stopping the sync daemons: {e}"),
            }
        }
    }
}

/// Takes every announced VIP off and deletes the interface if this daemon
/// created it.
async fn release(mut a: Announcing, why: &'static str) {
    let ts = a.announcer.withdraw_all(why);
    a.apply(&ts).await;
    if a.iface.created {
        match a.addrs.delete(&a.iface).await {
            Ok(()) => info!("announce: deleted the dummy interface {}", a.iface.name),
            Err(e) => error!("announce: deleting {}: {e}", a.iface.name),
        }
    }
}

impl Announcing {
    /// Puts the VIPs being withdrawn on `lo` (those not there already, which
    /// are listed in `held`); returns `lo` when that worked.
    async fn hold_on_lo(&self, ts: &[Transition], held: &mut Vec<IpAddr>) -> Option<Iface> {
        let lo = match self.addrs.ensure("lo").await {
            Ok(lo) => lo,
            Err(e) => {
                error!("announce: lo: {e}; the VIPs go without a grace");
                return None;
            }
        };
        let present = self.addrs.list(&lo).await.unwrap_or_default();
        for t in ts.iter().filter(|t| !present.contains(&t.vip)) {
            match self.addrs.add(&lo, t.vip).await {
                Ok(()) => held.push(t.vip),
                Err(e) => error!("announce: VIP {} on lo for the grace: {e}", t.vip),
            }
        }
        Some(lo)
    }

    async fn apply(&mut self, ts: &[Transition]) {
        for t in ts {
            let r = match t.direction {
                Direction::Announce => self.addrs.add(&self.iface, t.vip).await,
                Direction::Withdraw => self.addrs.del(&self.iface, t.vip).await,
            };
            let what = match t.direction {
                Direction::Announce => format!("announced on {}", self.iface.name),
                Direction::Withdraw => format!("withdrawn from {}", self.iface.name),
            };
            match r {
                Ok(()) => info!("announce: VIP {} {what} ({})", t.vip, t.reason),
                Err(e) => error!(
                    "announce: VIP {} {what} ({}) FAILED: {e} (retried at the next sync)",
                    t.vip, t.reason
                ),
            }
        }
    }
}
