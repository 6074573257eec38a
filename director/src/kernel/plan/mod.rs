//! The difference between the services a configuration wants and the
//! kernel's table, as IPVS operations. Pure: no kernel access.
//!
//! A service or real server whose settings changed is edited in place
//! (SET_SERVICE / SET_DEST), never deleted and re-added, so connections
//! already scheduled to it carry on.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use lvs_ipvs::Op;
use lvs_ipvs::table::{Destination, Service, ServiceFlags, ServiceKey, fmt_addr_port};

/// A table: services with their destinations.
pub type Table = [(Service, Vec<Destination>)];

/// The operations to converge, in three phases that must run in order
/// (services before their destinations, deletions of services last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Adds and edits of services.
    pub services: Vec<Op>,
    /// Deletes, edits and adds of destinations.
    pub destinations: Vec<Op>,
    /// Deletes of services.
    pub deletions: Vec<Op>,
    /// Services in the kernel but not in the file, left alone (no --prune).
    pub unmanaged: Vec<ServiceKey>,
}

impl Plan {
    /// Every operation, in the order it is applied.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.services
            .iter()
            .chain(&self.destinations)
            .chain(&self.deletions)
    }

    pub fn is_empty(&self) -> bool {
        self.ops().next().is_none()
    }
}

/// The settings of a service that an edit can change.
fn service_differs(want: &Service, have: &Service) -> bool {
    want.scheduler != have.scheduler
        || want.flags.0 & ServiceFlags::USER_MASK != have.flags.0 & ServiceFlags::USER_MASK
        || want.timeout != have.timeout
        || want.netmask != have.netmask
        || want.pe_name != have.pe_name
}

fn destination_differs(want: &Destination, have: &Destination) -> bool {
    want.forward != have.forward
        || want.weight != have.weight
        || want.upper_threshold != have.upper_threshold
        || want.lower_threshold != have.lower_threshold
        || want.tun_type != have.tun_type
        || want.tun_port != have.tun_port
        || want.tun_flags != have.tun_flags
}

/// Plan the changes that turn `current` into `desired`. Services of
/// `current` absent from `desired` are deleted when `prune` is set, else
/// reported in [`Plan::unmanaged`]. The destinations of every service in
/// `desired` are made exactly those listed.
pub fn plan(desired: &Table, current: &Table, prune: bool) -> Plan {
    plan_from(desired.iter().cloned(), current, prune)
}

/// [`plan`] with the desired entries made one at a time (a daemon's whole
/// table is never built beside the one read from the kernel: 20,000
/// destinations are 1.6 MB).
pub fn plan_from(
    desired: impl Iterator<Item = (Service, Vec<Destination>)>,
    current: &Table,
    prune: bool,
) -> Plan {
    let have: HashMap<ServiceKey, &(Service, Vec<Destination>)> =
        current.iter().map(|e| (e.0.key, e)).collect();
    let mut wanted: HashSet<ServiceKey> = HashSet::with_capacity(current.len());
    let mut p = Plan::default();
    for (want, want_dests) in desired {
        let key = want.key;
        wanted.insert(key);
        let have_dests: &[Destination] = match have.get(&key) {
            None => {
                p.services.push(Op::AddService(want.without_counters()));
                &[]
            }
            Some((svc, dests)) => {
                if service_differs(&want, svc) {
                    p.services.push(Op::EditService(want.without_counters()));
                }
                dests
            }
        };
        diff_destinations(&mut p, key, &want_dests, have_dests);
    }
    for (svc, _) in current {
        if !wanted.contains(&svc.key) {
            if prune {
                p.deletions.push(Op::DeleteService(svc.key));
            } else {
                p.unmanaged.push(svc.key);
            }
        }
    }
    p
}

/// Up to this many pairs, destinations are matched by a scan (no map per
/// service: a full sync of 2,000 services built 4,000 of them).
const SCAN_PAIRS: usize = 1024;

fn diff_destinations(p: &mut Plan, key: ServiceKey, want: &[Destination], have: &[Destination]) {
    let same = |a: &Destination, b: &Destination| a.addr == b.addr && a.port == b.port;
    if want.len() * have.len() <= SCAN_PAIRS {
        for d in have {
            if !want.iter().any(|w| same(w, d)) {
                p.destinations
                    .push(Op::DeleteDestination(key, d.without_counters()));
            }
        }
        for d in want {
            match have.iter().find(|h| same(h, d)) {
                None => p
                    .destinations
                    .push(Op::AddDestination(key, d.without_counters())),
                Some(h) if destination_differs(d, h) => p
                    .destinations
                    .push(Op::EditDestination(key, d.without_counters())),
                Some(_) => {}
            }
        }
        return;
    }
    let index: HashMap<_, &Destination> = have.iter().map(|d| ((d.addr, d.port), d)).collect();
    let wanted: HashSet<_> = want.iter().map(|d| (d.addr, d.port)).collect();
    for d in have {
        if !wanted.contains(&(d.addr, d.port)) {
            p.destinations
                .push(Op::DeleteDestination(key, d.without_counters()));
        }
    }
    for d in want {
        match index.get(&(d.addr, d.port)) {
            None => p
                .destinations
                .push(Op::AddDestination(key, d.without_counters())),
            Some(h) if destination_differs(d, h) => p
                .destinations
                .push(Op::EditDestination(key, d.without_counters())),
            Some(_) => {}
        }
    }
}

/// Plan the removal of the given services (those of a configuration)
/// from `current`: what `ipvsctl apply --remove` does. Others stay.
pub fn plan_removal(keys: &[ServiceKey], current: &Table) -> Plan {
    let mut p = Plan::default();
    for (svc, _) in current {
        if keys.contains(&svc.key) {
            p.deletions.push(Op::DeleteService(svc.key));
        }
    }
    p
}

/// One step of a plan, for printing (text or JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// add, edit or delete
    pub action: &'static str,
    /// service or destination
    pub object: &'static str,
    /// The service, as `tcp 203.0.113.10:80` or `fwmark 11`.
    pub service: String,
    /// The destination (`addr:port`), for destination steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The settings it gets (or had, when edited: `weight 1 -> 2`).
    pub detail: String,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.destination {
            Some(d) => write!(f, "{} {} {d} of {}", self.action, self.object, self.service)?,
            None => write!(f, "{} {} {}", self.action, self.object, self.service)?,
        }
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

fn service_detail(s: &Service) -> String {
    let mut parts = vec![format!("scheduler {}", s.scheduler)];
    if s.is_persistent() {
        parts.push(format!("persistence {}s", s.timeout));
        if !s.has_full_netmask() {
            parts.push(format!("netmask {}", netmask_text(s)));
        }
    }
    if s.flags.has(ServiceFlags::ONEPACKET) {
        parts.push("one-packet".into());
    }
    if s.flags.sched_bits() != 0 {
        parts.push(format!("scheduler flags {:#x}", s.flags.sched_bits()));
    }
    parts.join(", ")
}

fn netmask_text(s: &Service) -> String {
    match s.key.family() {
        lvs_ipvs::table::Family::Inet => format!("/{}", s.netmask.count_ones()),
        lvs_ipvs::table::Family::Inet6 => format!("/{}", s.netmask),
    }
}

fn destination_detail(d: &Destination) -> String {
    let fwd = match d.forward {
        lvs_ipvs::table::Forward::Route => "dr",
        lvs_ipvs::table::Forward::Tunnel => "tun",
        lvs_ipvs::table::Forward::Masquerade => "nat",
        lvs_ipvs::table::Forward::Local => "local",
        lvs_ipvs::table::Forward::Bypass => "bypass",
    };
    let mut s = format!("{fwd}, weight {}", d.weight);
    if d.upper_threshold != 0 || d.lower_threshold != 0 {
        s.push_str(&format!(
            ", thresholds {}/{}",
            d.upper_threshold, d.lower_threshold
        ));
    }
    s
}

/// The plan as printable steps; `current` supplies the old values of edits.
pub fn steps(plan: &Plan, current: &Table) -> Vec<Step> {
    first_steps(plan, current, usize::MAX)
}

/// The first `max` of [`steps`] (a daemon logs a few of 22,000).
pub fn first_steps(plan: &Plan, current: &Table, max: usize) -> Vec<Step> {
    let old_svc: HashMap<ServiceKey, &(Service, Vec<Destination>)> =
        current.iter().map(|e| (e.0.key, e)).collect();
    let old_dest = |k: &ServiceKey, d: &Destination| {
        old_svc
            .get(k)
            .and_then(|(_, ds)| ds.iter().find(|o| o.addr == d.addr && o.port == d.port))
    };
    let mut out = Vec::new();
    for op in plan.ops().take(max) {
        let step = match op {
            Op::AddService(s) => Step {
                action: "add",
                object: "service",
                service: s.key.to_string(),
                destination: None,
                detail: service_detail(s),
            },
            Op::EditService(s) => Step {
                action: "edit",
                object: "service",
                service: s.key.to_string(),
                destination: None,
                detail: match old_svc.get(&s.key) {
                    Some((o, _)) => format!("{} -> {}", service_detail(o), service_detail(s)),
                    None => service_detail(s),
                },
            },
            Op::DeleteService(k) => Step {
                action: "delete",
                object: "service",
                service: k.to_string(),
                destination: None,
                detail: String::new(),
            },
            Op::AddDestination(k, d) => Step {
                action: "add",
                object: "destination",
                service: k.to_string(),
                destination: Some(fmt_addr_port(&d.addr, d.port)),
                detail: destination_detail(d),
            },
            Op::EditDestination(k, d) => Step {
                action: "edit",
                object: "destination",
                service: k.to_string(),
                destination: Some(fmt_addr_port(&d.addr, d.port)),
                detail: match old_dest(k, d) {
                    Some(o) => format!("{} -> {}", destination_detail(o), destination_detail(d)),
                    None => destination_detail(d),
                },
            },
            Op::DeleteDestination(k, d) => Step {
                action: "delete",
                object: "destination",
                service: k.to_string(),
                destination: Some(fmt_addr_port(&d.addr, d.port)),
                detail: String::new(),
            },
            other => Step {
                action: "other",
                object: "table",
                service: other.describe(),
                destination: None,
                detail: String::new(),
            },
        };
        out.push(step);
    }
    out
}

#[cfg(test)]
mod tests;
