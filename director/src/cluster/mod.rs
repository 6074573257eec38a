//! The daemon's picture of the cluster, pure: the configuration, the state
//! of every unique check, the admin drains and the servers being retired;
//! from it, the table the kernel should hold ([`Cluster::desired_table`], or
//! one service at a time with [`Cluster::service_entry`]), diffed against the
//! kernel by [`crate::kernel::plan::plan`]. Check results, drains and reloads
//! change the model and say which services to re-plan. No I/O, no clock.
//!
//! Checks are shared: servers (of any services) with the same address and
//! the same [`CheckSpec`] share one check and its state, which runs once per
//! interval. A server whose check already runs (another service's, or its
//! own before a reload) takes that check's state; a server with a new
//! check starts `Unchecked`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lvs_ipvs::table::{Destination, Service, ServiceKey};

use crate::check::{CheckKind, CheckOutcome, CheckSpec};
use crate::cluster::health::{CheckState, Health};
use crate::config::{DirectorConfig, OnFailure, ServiceConfig};

pub type CheckId = usize;

/// A table (what [`crate::kernel::plan::plan`] diffs).
pub type Table = Vec<(Service, Vec<Destination>)>;

/// An admin drain: (service, server address, server port).
pub type DrainKey = (ServiceKey, IpAddr, u16);

/// How long a server removed by a reload stays at weight 0 at most before
/// it is deleted, when it still has active connections.
pub const RETIRE_GRACE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSlot {
    pub check: CheckId,
    /// The kernel's weight when the daemon started, kept until the check's
    /// first result.
    pub adopted: Option<u32>,
}

/// Destinations (or a whole service) removed by a reload: weight 0 until
/// they have no active connection (or [`RETIRE_GRACE`] passed), then deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retiring {
    pub key: ServiceKey,
    /// Set when the whole service left the file.
    pub service: Option<Service>,
    pub dests: Vec<Destination>,
    pub deadline: Instant,
}

/// What a change did: lines to log, services to re-plan (indices).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Update {
    pub events: Vec<Event>,
    pub services: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub config: DirectorConfig,
    pub checks: Vec<CheckEntry>,
    /// Per service, per server.
    pub servers: Vec<Vec<ServerSlot>>,
    /// Per service: the sorry server is wanted.
    pub sorry: Vec<bool>,
    by_key: HashMap<ServiceKey, usize>,
    pub drains: HashSet<DrainKey>,
    pub retiring: Vec<Retiring>,
}

fn lookup(table: &[(Service, Vec<Destination>)]) -> HashMap<ServiceKey, &[Destination]> {
    table.iter().map(|(s, d)| (s.key, d.as_slice())).collect()
}

impl Cluster {
    /// The model at start: checks found serving in `kernel` are adopted
    /// (see [`crate::cluster::health`]), the others start unchecked; `drains` are
    /// the admin drains kept from before (those naming no server of the
    /// file are dropped).
    pub fn new(
        config: DirectorConfig,
        kernel: &[(Service, Vec<Destination>)],
        drains: HashSet<DrainKey>,
        now: Instant,
    ) -> (Cluster, Vec<Event>) {
        let have = lookup(kernel);
        let (mut m, _) = Cluster::build(config, drains, now, |_, _| None);
        let mut adopt = vec![false; m.checks.len()];
        for (i, svc) in m.config.services.iter().enumerate() {
            let dests = have.get(&svc.service.key).copied().unwrap_or(&[]);
            for (j, d) in svc.servers.iter().enumerate() {
                let Some(k) = dests.iter().find(|k| k.addr == d.addr && k.port == d.port) else {
                    continue;
                };
                m.servers[i][j].adopted = Some(k.weight);
                let drained = m.drains.contains(&(svc.service.key, d.addr, d.port));
                if k.weight > 0 || d.weight == 0 || drained {
                    adopt[m.servers[i][j].check] = true;
                }
            }
        }
        for (c, entry) in m.checks.iter_mut().enumerate() {
            if adopt[c] && entry.spec.kind != CheckKind::None {
                entry.state = CheckState::adopted(now);
            }
        }
        let mut events = Vec::new();
        for i in 0..m.sorry.len() {
            m.update_sorry(i, &mut events);
        }
        (m, events)
    }

    /// The model's skeleton: checks (states from `carry`, else new:
    /// unchecked, or up for `none`), servers, service index; sorry flags
    /// all off. With the index of its checks.
    fn build(
        config: DirectorConfig,
        drains: HashSet<DrainKey>,
        now: Instant,
        mut carry: impl FnMut(IpAddr, &Arc<CheckSpec>) -> Option<CheckState>,
    ) -> (Cluster, CheckIndex) {
        // Sized up front: grown by doubling, 20,000 checks held 32,768 slots.
        let total: usize = config.services.iter().map(|s| s.servers.len()).sum();
        let mut checks: Vec<CheckEntry> = Vec::with_capacity(total);
        let mut index = CheckIndex::with_capacity(total);
        let mut servers = Vec::with_capacity(config.services.len());
        let mut by_key = HashMap::with_capacity(config.services.len());
        for (i, svc) in config.services.iter().enumerate() {
            by_key.insert(svc.service.key, i);
            let mut slots = Vec::with_capacity(svc.servers.len());
            for (j, (d, spec)) in svc.servers.iter().zip(&svc.checks).enumerate() {
                let spec = spec.clone();
                let id = match index.get(&checks, d.addr, &spec) {
                    Some(id) => id,
                    None => {
                        let id = checks.len();
                        let state = carry(d.addr, &spec).unwrap_or_else(|| {
                            if spec.kind == CheckKind::None {
                                CheckState::always_up(now)
                            } else {
                                CheckState::new(now)
                            }
                        });
                        checks.push(CheckEntry {
                            address: d.addr,
                            spec: spec.clone(),
                            state,
                            users: Users::default(),
                        });
                        index.insert(d.addr, &spec, id);
                        id
                    }
                };
                checks[id].users.push((i, j));
                slots.push(ServerSlot {
                    check: id,
                    adopted: None,
                });
            }
            servers.push(slots);
        }
        let drains = if drains.is_empty() {
            drains
        } else {
            let known: HashSet<DrainKey> = config
                .services
                .iter()
                .flat_map(|s| s.servers.iter().map(|d| (s.service.key, d.addr, d.port)))
                .collect();
            drains.into_iter().filter(|k| known.contains(k)).collect()
        };
        let n = config.services.len();
        let m = Cluster {
            config,
            checks,
            servers,
            sorry: vec![false; n],
            by_key,
            drains,
            retiring: Vec::new(),
        };
        (m, index)
    }

    pub fn service_index(&self, key: &ServiceKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// Whether server `j` of service `i` is admin-drained.
    pub fn drained(&self, i: usize, j: usize) -> bool {
        let s = &self.config.services[i];
        let d = &s.servers[j];
        self.drains.contains(&(s.service.key, d.addr, d.port))
    }

    /// Healthy (serving, not drained) servers of service `i`.
    pub fn healthy(&self, i: usize) -> usize {
        self.servers[i]
            .iter()
            .enumerate()
            .filter(|(j, slot)| self.checks[slot.check].state.serving() && !self.drained(i, *j))
            .count()
    }

    /// The weight server `j` of service `i` should have in the kernel;
    /// `None`: not in the table (failed with `on_failure = "remove"`).
    pub fn server_weight(&self, i: usize, j: usize) -> Option<u32> {
        let svc = &self.config.services[i];
        let slot = &self.servers[i][j];
        let st = &self.checks[slot.check].state;
        let base = match (st.assumed, slot.adopted) {
            (true, Some(w)) => Some(w),
            _ if st.serving() => Some(svc.servers[j].weight),
            _ if st.health == Health::Up => Some(0), // agent drain
            _ => match svc.on_failure {
                OnFailure::Drain => Some(0),
                OnFailure::Remove => None,
            },
        };
        base.map(|w| if self.drained(i, j) { 0 } else { w })
    }

    /// What the kernel should hold for service `i`.
    pub fn service_entry(&self, i: usize) -> (Service, Vec<Destination>) {
        let svc = &self.config.services[i];
        let mut dests = Vec::with_capacity(svc.servers.len() + 1);
        for (j, d) in svc.servers.iter().enumerate() {
            if let Some(w) = self.server_weight(i, j) {
                let mut d = d.clone();
                d.weight = w;
                dests.push(d);
            }
        }
        if self.sorry[i] {
            dests.extend(svc.sorry_destination());
        }
        for r in self.retiring.iter().filter(|r| r.key == svc.service.key) {
            dests.extend(r.dests.iter().cloned());
        }
        (svc.service.clone(), dests)
    }

    /// The whole table the kernel should hold: every service of the file
    /// and every service still retiring.
    pub fn desired_table(&self) -> Table {
        self.desired_entries().collect()
    }

    /// [`Cluster::desired_table`] one service at a time.
    pub fn desired_entries(&self) -> impl Iterator<Item = (Service, Vec<Destination>)> + '_ {
        (0..self.config.services.len())
            .map(|i| self.service_entry(i))
            .chain(
                self.retiring
                    .iter()
                    .filter_map(|r| r.service.as_ref().map(|s| (s.clone(), r.dests.clone()))),
            )
    }

    fn update_sorry(&mut self, i: usize, events: &mut Vec<Event>) -> bool {
        let svc: &ServiceConfig = &self.config.services[i];
        let Some(sorry) = svc.sorry_server else {
            return false;
        };
        let healthy = self.healthy(i);
        let want = healthy < svc.quorum as usize;
        if want == self.sorry[i] {
            return false;
        }
        self.sorry[i] = want;
        events.push(Event::Sorry {
            service: svc.service.key,
            sorry,
            active: want,
            healthy,
            quorum: svc.quorum,
        });
        true
    }

    /// Records a result of check `id`.
    pub fn record(&mut self, id: CheckId, outcome: &CheckOutcome, now: Instant) -> Update {
        let mut up = Update::default();
        let Some(entry) = self.checks.get_mut(id) else {
            return up;
        };
        let (rise, fall) = (entry.spec.rise, entry.spec.fall);
        let transition = entry.state.record(outcome, rise, fall, now);
        // Taken and put back: no allocation per result.
        let users = std::mem::take(&mut entry.users);
        let mut touched = transition.is_some();
        for (i, j) in users.iter() {
            if self.servers[i][j].adopted.take().is_some() {
                touched = true;
            }
        }
        if !touched {
            self.checks[id].users = users;
            return up;
        }
        for (i, j) in users.iter() {
            if let Some(t) = &transition {
                let svc = &self.config.services[i];
                let d = &svc.servers[j];
                up.events.push(Event::Server {
                    service: svc.service.key,
                    server: (d.addr, d.port),
                    from: t.from,
                    to: t.to,
                    reason: t.reason.clone(),
                });
            }
            if !up.services.contains(&i) {
                up.services.push(i);
            }
        }
        self.checks[id].users = users;
        for k in 0..up.services.len() {
            self.update_sorry(up.services[k], &mut up.events);
        }
        up
    }

    /// Sets (`on`) or lifts an admin drain of server `addr` (any port, or
    /// `port`) in service `key` (or in every service having it, `None`).
    /// Errors when nothing matches.
    pub fn set_drain(
        &mut self,
        key: Option<ServiceKey>,
        addr: IpAddr,
        port: Option<u16>,
        on: bool,
    ) -> Result<Update, String> {
        let mut up = Update::default();
        let mut matched = 0;
        for (i, svc) in self.config.services.iter().enumerate() {
            if key.is_some_and(|k| k != svc.service.key) {
                continue;
            }
            for d in &svc.servers {
                if d.addr != addr || port.is_some_and(|p| p != d.port) {
                    continue;
                }
                matched += 1;
                let k = (svc.service.key, d.addr, d.port);
                let changed = if on {
                    self.drains.insert(k)
                } else {
                    self.drains.remove(&k)
                };
                if changed && !up.services.contains(&i) {
                    up.services.push(i);
                }
            }
        }
        if matched == 0 {
            let svc = key.map_or("any service".to_string(), |k| format!("service {k}"));
            return Err(format!("{svc} has no real server {addr}"));
        }
        for &i in &up.services.clone() {
            self.update_sorry(i, &mut up.events);
        }
        Ok(up)
    }

    /// Drops what finished retiring, given the kernel's table (with its
    /// connection counts): destinations without active connections, or
    /// past their deadline. Returns the services (whole services that left
    /// the file) now to be deleted.
    pub fn expire_retiring(
        &mut self,
        kernel: &[(Service, Vec<Destination>)],
        now: Instant,
    ) -> Vec<ServiceKey> {
        let have = lookup(kernel);
        let mut delete = Vec::new();
        self.retiring.retain_mut(|r| {
            let dests = have.get(&r.key).copied().unwrap_or(&[]);
            let overdue = now >= r.deadline;
            r.dests.retain(|d| {
                let active = dests
                    .iter()
                    .find(|k| k.addr == d.addr && k.port == d.port)
                    .map_or(0, |k| k.active_conns);
                active > 0 && !overdue
            });
            if r.dests.is_empty() {
                if r.service.is_some() && have.contains_key(&r.key) {
                    delete.push(r.key);
                }
                return false;
            }
            true
        });
        delete
    }
}

mod checks;
mod event;
pub mod health;
mod reload;
pub mod schedule;
pub(crate) use checks::CheckIndex;
pub use checks::{CheckEntry, Users};
pub use event::Event;
pub use reload::ReloadDiff;

#[cfg(test)]
mod tests;
