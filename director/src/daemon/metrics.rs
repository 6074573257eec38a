//! The daemon's side of `--metrics`: the exporter ([`crate::metrics`])
//! asks for a [`Snapshot`] at each scrape (from its blocking thread); the
//! daemon's loop answers with the health part at once and a task adds the
//! kernel's counters (one table read per scrape, on the kernel thread), so
//! a scrape never stalls the checks.

use std::net::SocketAddr;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use crate::daemon::{Daemon, DaemonError};
use crate::kernel::Kernel;
use crate::metrics::{
    HealthState, MetricsServer, ServerSnapshot, ServiceSnapshot, Snapshot, server_label,
    service_label,
};

/// A scrape waiting for its snapshot.
pub type Ask = oneshot::Sender<Snapshot>;

/// Binds `addr` (so a taken port fails the start) and serves in the
/// background; scrapes arrive on the returned receiver.
pub async fn start(addr: SocketAddr) -> Result<mpsc::Receiver<Ask>, DaemonError> {
    let server = MetricsServer::bind(addr)
        .await
        .map_err(|e| DaemonError::Metrics {
            addr,
            source: std::io::Error::other(e.to_string()),
        })?;
    let (tx, rx) = mpsc::channel::<Ask>(4);
    tokio::spawn(server.run(move || {
        let (ask, answer) = oneshot::channel();
        if tx.blocking_send(ask).is_err() {
            return Snapshot::default();
        }
        answer.blocking_recv().unwrap_or_default()
    }));
    tracing::info!("metrics on http://{addr}/metrics");
    Ok(rx)
}

/// The health part now; the kernel's counters are added by a task.
pub(crate) fn answer(d: &Daemon, kernel: Kernel, ask: Ask) {
    let m = &d.model;
    let mut snap = Snapshot {
        services: Vec::with_capacity(m.config.services.len()),
        reloads_total: d.counters.reloads + d.counters.reload_failures,
        reload_errors_total: d.counters.reload_failures,
        checks_in_flight: d.checker.in_flight() as u64,
        checks_skipped_total: d.counters.skipped,
        last_reload_success: d.counters.last_load,
        vips: d
            .node
            .vips()
            .into_iter()
            .map(|v| crate::metrics::VipSnapshot {
                vip: v.vip,
                announced: v.announced,
                announces: v.announces,
                withdrawals: v.withdrawals,
            })
            .collect(),
        healthy: d.node.healthy(),
    };
    for (i, svc) in m.config.services.iter().enumerate() {
        let mut servers = Vec::with_capacity(svc.servers.len() + 1);
        for (j, dest) in svc.servers.iter().enumerate() {
            let st = &m.checks[m.servers[i][j].check].state;
            let state = match st.health {
                _ if m.drained(i, j) => HealthState::Drain,
                crate::cluster::health::Health::Up if st.agent_drain => HealthState::Drain,
                crate::cluster::health::Health::Up => HealthState::Up,
                crate::cluster::health::Health::Down => HealthState::Down,
                crate::cluster::health::Health::Unchecked => HealthState::Unchecked,
            };
            servers.push(ServerSnapshot {
                server: server_label(dest.addr, dest.port),
                configured_weight: dest.weight,
                state,
                last_check_duration: st.last_duration(),
                transitions_total: u64::from(st.transitions),
                ..ServerSnapshot::default()
            });
        }
        if let Some(s) = svc.sorry_destination().filter(|_| m.sorry[i]) {
            servers.push(ServerSnapshot {
                server: server_label(s.addr, s.port),
                configured_weight: s.weight,
                state: HealthState::Up,
                ..ServerSnapshot::default()
            });
        }
        snap.services.push(ServiceSnapshot {
            service: service_label(&svc.service.key),
            servers,
            ..ServiceSnapshot::default()
        });
    }
    // (service, the address and port of each server snapshot, in order)
    let keys: Vec<_> = m
        .config
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut ends: Vec<_> = s.servers.iter().map(|d| (d.addr, d.port)).collect();
            ends.extend(
                s.sorry_destination()
                    .filter(|_| m.sorry[i])
                    .map(|d| (d.addr, d.port)),
            );
            (s.service.key, ends)
        })
        .collect();
    tokio::spawn(async move {
        if let Ok(table) = kernel.table().await {
            let by_key: std::collections::HashMap<_, _> =
                table.iter().map(|(s, ds)| (s.key, (s, ds))).collect();
            for (svc, (key, ends)) in snap.services.iter_mut().zip(&keys) {
                let Some((s, ds)) = by_key.get(key) else {
                    continue;
                };
                svc.stats = s.stats.as_deref().copied().unwrap_or_default();
                for (server, (addr, port)) in svc.servers.iter_mut().zip(ends) {
                    if let Some(d) = ds.iter().find(|d| d.addr == *addr && d.port == *port) {
                        server.weight = d.weight;
                        server.active_connections = u64::from(d.active_conns);
                        server.inactive_connections = u64::from(d.inact_conns);
                        server.stats = d.stats.as_deref().copied().unwrap_or_default();
                    }
                }
            }
        }
        let _ = ask.send(snap);
    });
}

/// Now, for `last_reload_success`.
pub(crate) fn now() -> Option<SystemTime> {
    Some(SystemTime::now())
}
