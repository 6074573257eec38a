//! A [`Status`] from the daemon's parts, and the kernel's counters added
//! to it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lvs_ipvs::table::{Destination, ServiceKey};

use super::{
    Counters, HealthState, IpvsCounters, RetiringStatus, ServerStatus, ServiceStatus, SorryStatus,
    Status, Traffic, VipStatus, check_text,
};
use crate::cluster::health::{Health, outcome_text};
use crate::cluster::{Cluster, Table};
use crate::kernel::view::View;
use crate::node::VipSnapshot;

/// What a status is made of, borrowed from the running daemon.
pub struct Parts<'a> {
    pub config: &'a Path,
    pub started: Instant,
    pub cluster: &'a Cluster,
    /// What the daemon believes the kernel holds: the weights in force.
    pub view: &'a View,
    pub counters: &'a Counters,
    pub checks_in_flight: usize,
    /// The node: whether every service has quorum, a withdrawal by hand,
    /// the announced VIPs.
    pub quorum: Option<bool>,
    pub withdrawn_by_hand: bool,
    pub vips: Vec<VipSnapshot>,
}

/// Turns the daemon's instants into Unix times, against one reading of
/// both clocks.
#[derive(Clone, Copy)]
struct Clock {
    now: Instant,
    wall: SystemTime,
}

impl Clock {
    fn unix(self, at: Instant) -> f64 {
        unix_seconds(self.wall - self.now.saturating_duration_since(at))
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The destinations of a service by address and port: a service may have
/// thousands, and each of its servers looks itself up.
fn by_address(ds: &[Destination]) -> HashMap<(IpAddr, u16), &Destination> {
    ds.iter().map(|d| ((d.addr, d.port), d)).collect()
}

impl Status {
    /// The status now. No table read: weights are the view's.
    pub fn new(parts: Parts<'_>) -> Status {
        Status::at(parts, Instant::now(), SystemTime::now())
    }

    pub(super) fn at(parts: Parts<'_>, now: Instant, wall: SystemTime) -> Status {
        let clock = Clock { now, wall };
        let m = parts.cluster;
        let c = parts.counters;
        Status {
            config: parts.config.display().to_string(),
            started: clock.unix(parts.started),
            checks: m.checks.len(),
            checks_in_flight: parts.checks_in_flight,
            checks_skipped: c.skipped,
            syncs: c.syncs,
            last_sync: c.last_sync.map(|t| clock.unix(t)),
            edits: c.edits,
            refused: c.refused,
            reloads: c.reloads,
            reload_failures: c.reload_failures,
            last_load: c.last_load.map(unix_seconds),
            services: (0..m.config.services.len())
                .map(|i| service(m, parts.view, i, clock))
                .collect(),
            retiring: m
                .retiring
                .iter()
                .map(|r| RetiringStatus {
                    service: r.key,
                    whole_service: r.service.is_some(),
                    servers: r
                        .dests
                        .iter()
                        .map(|d| SocketAddr::new(d.addr, d.port))
                        .collect(),
                })
                .collect(),
            quorum: parts.quorum,
            withdrawn_by_hand: parts.withdrawn_by_hand,
            vips: parts
                .vips
                .into_iter()
                .map(|v| VipStatus {
                    vip: v.vip,
                    announced: v.announced,
                    announces: v.announces,
                    withdrawals: v.withdrawals,
                })
                .collect(),
        }
    }

    /// Adds what a table read with counters found: each service's traffic,
    /// each destination's weight, connections and traffic. What the table
    /// lacks has none (and no weight).
    pub fn add_ipvs_counters(&mut self, table: &Table) {
        let by_key: HashMap<ServiceKey, _> = table.iter().map(|(s, ds)| (s.key, (s, ds))).collect();
        for svc in &mut self.services {
            let found = by_key.get(&svc.service);
            svc.ipvs =
                found.map(|(s, _)| s.stats.as_deref().map(Traffic::from).unwrap_or_default());
            let dests = found.map(|(_, ds)| by_address(ds)).unwrap_or_default();
            let lookup = |at: SocketAddr| dests.get(&(at.ip(), at.port())).copied();
            for server in &mut svc.servers {
                let d = lookup(server.server);
                server.weight = d.map(|d| d.weight);
                server.ipvs = d.map(counters);
            }
            if let Some(sorry) = &mut svc.sorry_destination {
                let d = lookup(sorry.server);
                sorry.weight = d.map(|d| d.weight);
                sorry.ipvs = d.map(counters);
            }
        }
    }
}

fn counters(d: &Destination) -> IpvsCounters {
    IpvsCounters {
        active_connections: u64::from(d.active_conns),
        inactive_connections: u64::from(d.inact_conns),
        traffic: d.stats.as_deref().map(Traffic::from).unwrap_or_default(),
    }
}

fn health(check: &crate::cluster::health::CheckState) -> HealthState {
    match check.health {
        Health::Up if check.agent_drain => HealthState::Drain,
        Health::Up => HealthState::Up,
        Health::Down => HealthState::Down,
        Health::Unchecked => HealthState::Unchecked,
    }
}

/// Service `i` of the cluster, with the view's weights.
fn service(m: &Cluster, view: &View, i: usize, clock: Clock) -> ServiceStatus {
    let svc = &m.config.services[i];
    let in_kernel = view
        .get(&svc.service.key)
        .map(|(_, ds)| by_address(ds))
        .unwrap_or_default();
    let weight = |addr: IpAddr, port: u16| in_kernel.get(&(addr, port)).map(|d| d.weight);
    let servers = svc
        .servers
        .iter()
        .enumerate()
        .map(|(j, dest)| {
            let slot = &m.servers[i][j];
            let check = &m.checks[slot.check];
            let st = &check.state;
            ServerStatus {
                server: SocketAddr::new(dest.addr, dest.port),
                health: health(st),
                weight: weight(dest.addr, dest.port),
                configured_weight: dest.weight,
                admin_drained: m.drained(i, j),
                adopted: st.assumed && slot.adopted.is_some(),
                check: check_text(&check.spec),
                last_result: st.last.as_ref().map(|l| outcome_text(&l.outcome)),
                last_check: st.last.as_ref().map(|l| clock.unix(l.at.instant())),
                since: clock.unix(st.since.instant()),
                last_check_duration: st.last_duration().map(|d| d.as_secs_f64()),
                transitions: u64::from(st.transitions),
                ipvs: None,
            }
        })
        .collect();
    ServiceStatus {
        service: svc.service.key,
        scheduler: svc.service.scheduler.clone(),
        quorum: svc.quorum,
        healthy: m.healthy(i),
        on_failure: svc.on_failure.name().into(),
        sorry_server: svc.sorry_server,
        sorry_active: m.sorry[i],
        servers,
        sorry_destination: svc
            .sorry_destination()
            .filter(|_| m.sorry[i])
            .map(|d| SorryStatus {
                server: SocketAddr::new(d.addr, d.port),
                configured_weight: d.weight,
                weight: weight(d.addr, d.port),
                ipvs: None,
            }),
        ipvs: None,
    }
}
