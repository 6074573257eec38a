//! A reload as a diff, pure and O(services + servers): the new model keeps
//! the state of every check that did not change (same address, same
//! [`CheckSpec`]); a server new to the file starts unchecked; a server
//! whose check changed keeps its weight until the new check's first result
//! if it was serving (as at a restart; unchecked otherwise); servers that
//! left the file are retired (weight 0, then deleted), services that left
//! it too.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use lvs_ipvs::table::{Destination, ServiceKey};

use super::{CheckId, CheckIndex, Cluster, Event, RETIRE_GRACE, Retiring};
use crate::cluster::health::CheckState;
use crate::config::{DirectorConfig, PortGroup, ServiceConfig};

/// What a reload changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadDiff {
    /// Services of the new file (indices) to re-plan: new, changed, with
    /// servers retiring, or whose sorry server comes or goes.
    pub services: Vec<usize>,
    /// Services that left the file and still have destinations: retiring.
    pub retiring: Vec<ServiceKey>,
    /// Services that left the file with nothing in the kernel to drain:
    /// delete now.
    pub delete_now: Vec<ServiceKey>,
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Checks whose state was kept, and new ones.
    pub checks_kept: usize,
    pub checks_new: usize,
    /// The port groups differ (the nftables table is rewritten).
    pub groups_changed: bool,
    /// Old check id -> new check id, for results still in flight.
    /// Empty when `in_place`.
    pub remap: Vec<Option<CheckId>>,
    /// Every check kept with its id ([`Cluster::reload_in_place`]): nothing
    /// to remap, the scheduler stays as it is.
    pub in_place: bool,
    pub events: Vec<Event>,
}

/// Equal but for the line numbers.
fn same_service(a: &ServiceConfig, b: &ServiceConfig) -> bool {
    a.service == b.service
        && a.servers == b.servers
        && a.checks == b.checks
        && a.group == b.group
        && a.quorum == b.quorum
        && a.sorry_server == b.sorry_server
        && a.on_failure == b.on_failure
}

fn groups(c: &DirectorConfig) -> Vec<&PortGroup> {
    c.services.iter().filter_map(|s| s.group.as_ref()).collect()
}

impl Cluster {
    /// [`Cluster::reload`] into this model. A reload that keeps every check
    /// (the same servers with the same checks, in the same order: weights,
    /// schedulers, quorums and the like changed, the most common edit)
    /// changes the model in place: the checks, their ids and states stay,
    /// and no second model is built beside this one (at 20,000 servers,
    /// that second model was most of a reload's memory peak).
    pub fn reload_in_place(
        &mut self,
        config: DirectorConfig,
        present: impl Fn(&ServiceKey, IpAddr, u16) -> bool,
        now: Instant,
    ) -> ReloadDiff {
        if !self.same_checks(&config) {
            let (m, diff) = self.reload(config, present, now);
            *self = m;
            return diff;
        }
        let mut diff = ReloadDiff {
            groups_changed: groups(&self.config) != groups(&config),
            checks_kept: self.checks.len(),
            in_place: true,
            ..ReloadDiff::default()
        };
        let old = std::mem::replace(&mut self.config, config);
        for (i, (svc, before)) in self.config.services.iter().zip(&old.services).enumerate() {
            if Arc::ptr_eq(svc, before) || same_service(before, svc) {
                diff.unchanged += 1;
            } else {
                diff.changed += 1;
                diff.services.push(i);
            }
        }
        // Retiring entries stay as they are: they list what the file does
        // not, and the file lists the same servers.
        for i in 0..self.config.services.len() {
            if self.update_sorry(i, &mut diff.events) && !diff.services.contains(&i) {
                diff.services.push(i);
            }
        }
        diff
    }

    /// Whether `config` has the services (same keys, in the same order)
    /// and servers (same address and port, same check, in the same order)
    /// of this model's.
    fn same_checks(&self, config: &DirectorConfig) -> bool {
        let same_servers = |a: &Arc<ServiceConfig>, b: &Arc<ServiceConfig>| {
            Arc::ptr_eq(a, b)
                || (a.service.key == b.service.key
                    && a.servers.len() == b.servers.len()
                    && a.servers
                        .iter()
                        .zip(&b.servers)
                        .all(|(x, y)| x.addr == y.addr && x.port == y.port)
                    && a.checks == b.checks)
        };
        self.config.services.len() == config.services.len()
            && self
                .config
                .services
                .iter()
                .zip(&config.services)
                .all(|(a, b)| same_servers(a, b))
    }

    /// The model for `config`, carrying this one's state over. `present`
    /// tells whether the kernel holds a destination (only those are
    /// retired; the others simply go).
    pub fn reload(
        &self,
        config: DirectorConfig,
        present: impl Fn(&ServiceKey, IpAddr, u16) -> bool,
        now: Instant,
    ) -> (Cluster, ReloadDiff) {
        let mut diff = ReloadDiff {
            groups_changed: groups(&self.config) != groups(&config),
            ..ReloadDiff::default()
        };
        let mut kept = 0;
        let old_index = CheckIndex::of(&self.checks);
        let (mut m, index) = Cluster::build(config, self.drains.clone(), now, |addr, spec| {
            let old = old_index.get(&self.checks, addr, spec)?;
            kept += 1;
            Some(self.checks[old].state.clone())
        });
        drop(old_index);
        diff.checks_kept = kept;
        diff.checks_new = m.checks.len() - kept;
        diff.remap = self
            .checks
            .iter()
            .map(|c| index.get(&m.checks, c.address, &c.spec))
            .collect();
        drop(index);
        let mut kept_ids = vec![false; m.checks.len()];
        for id in diff.remap.iter().flatten() {
            kept_ids[*id] = true;
        }

        let mut retiring = self.retiring_still_gone(&m);
        let deadline = now + RETIRE_GRACE;
        let mut seen_old: HashSet<usize> = HashSet::with_capacity(self.config.services.len());
        for i in 0..m.config.services.len() {
            let key = m.config.services[i].service.key;
            let Some(o) = self.service_index(&key) else {
                diff.added += 1;
                diff.services.push(i);
                m.sorry[i] = false;
                continue;
            };
            seen_old.insert(o);
            m.sorry[i] = self.sorry[o];
            self.carry_adoption(&mut m, i, o, &diff.remap, &kept_ids, now);
            let (old, svc) = (&self.config.services[o], &m.config.services[i]);
            if same_service(old, svc) {
                diff.unchanged += 1;
                continue;
            }
            diff.changed += 1;
            diff.services.push(i);
            let gone = servers_gone(old, svc, &present);
            if !gone.is_empty() {
                match retiring
                    .iter_mut()
                    .find(|r| r.key == key && r.service.is_none())
                {
                    Some(r) => r.dests.extend(gone),
                    None => retiring.push(Retiring {
                        key,
                        service: None,
                        dests: gone,
                        deadline,
                    }),
                }
            }
        }
        self.retire_services_gone(&seen_old, &present, deadline, &mut retiring, &mut diff);
        m.retiring = retiring;
        for i in 0..m.config.services.len() {
            if m.update_sorry(i, &mut diff.events) && !diff.services.contains(&i) {
                diff.services.push(i);
            }
        }
        (m, diff)
    }

    /// The retiring entries from before whose key or destination is not
    /// back in `m`'s file.
    fn retiring_still_gone(&self, m: &Cluster) -> Vec<Retiring> {
        let mut retiring = Vec::new();
        for r in &self.retiring {
            match m.service_index(&r.key) {
                // The service is in the file (again): what it does not
                // list keeps retiring as destinations.
                Some(i) => {
                    let listed: HashSet<(IpAddr, u16)> = m.config.services[i]
                        .servers
                        .iter()
                        .map(|d| (d.addr, d.port))
                        .collect();
                    let mut r = r.clone();
                    r.service = None;
                    r.dests.retain(|d| !listed.contains(&(d.addr, d.port)));
                    if !r.dests.is_empty() {
                        retiring.push(r);
                    }
                }
                None => retiring.push(r.clone()),
            }
        }
        retiring
    }

    /// Adoption (the kernel's weight kept until a check's first result)
    /// carries over to service `i` of `m` from service `o` of `self` for
    /// servers whose check was kept, or whose check changed while serving.
    fn carry_adoption(
        &self,
        m: &mut Cluster,
        i: usize,
        o: usize,
        remap: &[Option<CheckId>],
        kept_ids: &[bool],
        now: Instant,
    ) {
        let old = &self.config.services[o];
        let old_slots: HashMap<(IpAddr, u16), (CheckId, usize, Option<u32>)> = old
            .servers
            .iter()
            .zip(&self.servers[o])
            .enumerate()
            .map(|(j, (d, s))| ((d.addr, d.port), (s.check, j, s.adopted)))
            .collect();
        for j in 0..m.config.services[i].servers.len() {
            let d = &m.config.services[i].servers[j];
            let Some(&(old_check, old_j, adopted)) = old_slots.get(&(d.addr, d.port)) else {
                continue;
            };
            let new_check = m.servers[i][j].check;
            if remap[old_check] == Some(new_check) {
                // Same check: its state is kept, adoption too.
                m.servers[i][j].adopted = adopted;
            } else if !kept_ids[new_check] && self.checks[old_check].state.serving() {
                // Its check changed: the server was serving, so it keeps
                // the weight it has until the new check's first result
                // (as at a restart), instead of all servers of a service
                // dropping to 0 while the new check rises.
                let st = &mut m.checks[new_check].state;
                if st.health != crate::cluster::health::Health::Up {
                    *st = CheckState::adopted(now);
                }
                m.servers[i][j].adopted = self.server_weight(o, old_j);
            }
        }
    }

    /// Services of `self` not in the new file (`seen_old` lists those that
    /// are): deleted now when the kernel holds none of their destinations,
    /// retired otherwise.
    fn retire_services_gone(
        &self,
        seen_old: &HashSet<usize>,
        present: &impl Fn(&ServiceKey, IpAddr, u16) -> bool,
        deadline: Instant,
        retiring: &mut Vec<Retiring>,
        diff: &mut ReloadDiff,
    ) {
        for (o, old) in self.config.services.iter().enumerate() {
            if seen_old.contains(&o) {
                continue;
            }
            let key = old.service.key;
            let mut dests: Vec<Destination> = old
                .servers
                .iter()
                .filter(|d| present(&key, d.addr, d.port))
                .map(|d| Destination {
                    weight: 0,
                    ..d.clone()
                })
                .collect();
            if let Some(s) = old.sorry_destination()
                && present(&key, s.addr, s.port)
            {
                dests.push(Destination { weight: 0, ..s });
            }
            retiring.retain(|r| r.key != key);
            if dests.is_empty() {
                diff.delete_now.push(key);
            } else {
                diff.retiring.push(key);
                retiring.push(Retiring {
                    key,
                    service: Some(old.service.clone()),
                    dests,
                    deadline,
                });
            }
        }
    }
}

/// The servers `old` lists and `svc` does not, that the kernel holds: they
/// retire at weight 0.
fn servers_gone(
    old: &ServiceConfig,
    svc: &ServiceConfig,
    present: &impl Fn(&ServiceKey, IpAddr, u16) -> bool,
) -> Vec<Destination> {
    let key = old.service.key;
    let listed: HashSet<(IpAddr, u16)> = svc.servers.iter().map(|d| (d.addr, d.port)).collect();
    old.servers
        .iter()
        .filter(|d| !listed.contains(&(d.addr, d.port)) && present(&key, d.addr, d.port))
        .map(|d| Destination {
            weight: 0,
            ..d.clone()
        })
        .collect()
}
