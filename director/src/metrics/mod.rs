//! Prometheus metrics of the director: a plain-data [`Snapshot`] that the
//! daemon fills, [`render`]ed in the Prometheus text format (version 0.0.4,
//! through `prometheus-client`), and served over HTTP by [`serve`].
//!
//! Why a snapshot rather than live metric objects: the numbers live
//! elsewhere (IPVS counters in the kernel, health in the state machine), so
//! each scrape builds a fresh registry from one consistent copy. A server
//! removed from the file vanishes from the next scrape, with no stale
//! series to forget.

mod http;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use lvs_ipvs::table::{Family, Protocol, ServiceKey, Stats};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as MetricFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

pub use http::{Limits, MetricsError, MetricsServer, serve};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Everything one scrape shows. Service and server labels must be unique
/// (two entries with the same labels would add up).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub services: Vec<ServiceSnapshot>,
    /// Configuration reloads attempted (SIGHUP, control socket), since start.
    pub reloads_total: u64,
    /// Reloads that failed (the file did not parse, the kernel refused).
    pub reload_errors_total: u64,
    /// Checks running now ([`crate::check::Checker::in_flight`]).
    pub checks_in_flight: u64,
    /// Checks not started for want of a permit
    /// ([`crate::check::CheckOutcome::Skipped`]), since start.
    pub checks_skipped_total: u64,
    /// When the configuration was last loaded and applied without error
    /// (exported as 0 until then).
    pub last_reload_success: Option<SystemTime>,
    /// The VIPs of `[announce]` (none without it).
    pub vips: Vec<VipSnapshot>,
    /// Every service has quorum (what the health file says); `None`
    /// before the first look.
    pub healthy: Option<bool>,
}

/// One VIP of `[announce]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VipSnapshot {
    pub vip: String,
    /// On the announce interface now.
    pub announced: bool,
    pub announces: u64,
    pub withdrawals: u64,
}

/// One virtual service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceSnapshot {
    /// The `service` label, ipvsadm style: `TCP 10.1.252.73:80`, `FWM 11`
    /// (see [`service_label`]).
    pub service: String,
    /// The kernel's counters of the service (rates are Prometheus' job).
    pub stats: Stats,
    pub servers: Vec<ServerSnapshot>,
}

/// One real server of one service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerSnapshot {
    /// The `server` label: `10.1.252.74:80`, `[2001:db8::74]:80`
    /// (see [`server_label`]).
    pub server: String,
    pub stats: Stats,
    pub active_connections: u64,
    pub inactive_connections: u64,
    /// The weight in the kernel now (0 while down or drained).
    pub weight: u32,
    /// The weight the file gives it.
    pub configured_weight: u32,
    pub state: HealthState,
    /// How long its last check took (none before the first check).
    pub last_check_duration: Option<Duration>,
    /// Health state changes since start.
    pub transitions_total: u64,
}

/// A real server's health as the state machine holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum HealthState {
    Up,
    Down,
    Drain,
    /// Not checked yet (or no verdict yet).
    #[default]
    Unchecked,
}

impl HealthState {
    pub const ALL: [HealthState; 4] = [Self::Up, Self::Down, Self::Drain, Self::Unchecked];

    /// The value of the `state` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Drain => "drain",
            Self::Unchecked => "unchecked",
        }
    }
}

/// `TCP 10.1.252.73:80`, `UDP [2001:db8::1]:53`, `SCTP ...`, `FWM 11`,
/// `FWM 11 IPv6`: the way `ipvsadm -L -n` names services.
pub fn service_label(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let protocol = match protocol {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            };
            format!("{protocol} {}", SocketAddr::new(*addr, *port))
        }
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark,
        } => format!("FWM {mark}"),
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark,
        } => format!("FWM {mark} IPv6"),
    }
}

/// `10.1.252.74:80`, `[2001:db8::74]:80`.
pub fn server_label(address: IpAddr, port: u16) -> String {
    SocketAddr::new(address, port).to_string()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipLabels {
    vip: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipDirectionLabels {
    vip: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceStateLabels {
    service: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    service: String,
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerStateLabels {
    service: String,
    server: String,
    state: &'static str,
}

type Counters<L> = MetricFamily<L, Counter>;
type Gauges<L> = MetricFamily<L, Gauge>;
type FloatGauges<L> = MetricFamily<L, Gauge<f64, AtomicU64>>;

/// The five IPVS counters of a service or a server.
struct Traffic<L> {
    connections: Counters<L>,
    in_packets: Counters<L>,
    out_packets: Counters<L>,
    in_bytes: Counters<L>,
    out_bytes: Counters<L>,
}

impl<L> Traffic<L>
where
    L: Clone + std::hash::Hash + Eq + std::fmt::Debug + EncodeLabelSet + Send + Sync + 'static,
{
    fn register(registry: &mut Registry, what: &str) -> Self {
        let traffic = Self {
            connections: Default::default(),
            in_packets: Default::default(),
            out_packets: Default::default(),
            in_bytes: Default::default(),
            out_bytes: Default::default(),
        };
        let name = |n: &str| format!("lvs_director_{what}_{n}");
        registry.register(
            name("connections"),
            format!("Connections scheduled to the {what} (IPVS)"),
            traffic.connections.clone(),
        );
        registry.register(
            name("incoming_packets"),
            format!("Packets from clients to the {what} (IPVS)"),
            traffic.in_packets.clone(),
        );
        registry.register(
            name("outgoing_packets"),
            format!("Packets from the {what} to clients (IPVS; NAT only)"),
            traffic.out_packets.clone(),
        );
        registry.register_with_unit(
            name("incoming"),
            format!("Bytes from clients to the {what} (IPVS)"),
            Unit::Bytes,
            traffic.in_bytes.clone(),
        );
        registry.register_with_unit(
            name("outgoing"),
            format!("Bytes from the {what} to clients (IPVS; NAT only)"),
            Unit::Bytes,
            traffic.out_bytes.clone(),
        );
        traffic
    }

    fn set(&self, labels: &L, stats: &Stats) {
        self.connections.get_or_create(labels).inc_by(stats.conns);
        self.in_packets.get_or_create(labels).inc_by(stats.inpkts);
        self.out_packets.get_or_create(labels).inc_by(stats.outpkts);
        self.in_bytes.get_or_create(labels).inc_by(stats.inbytes);
        self.out_bytes.get_or_create(labels).inc_by(stats.outbytes);
    }
}

/// The snapshot in the Prometheus text format (version 0.0.4, the format
/// every scraper reads; counters end in `_total`, units are in the names).
pub fn render(snapshot: &Snapshot) -> String {
    let registry = registry(snapshot);
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

/// A fresh registry holding the snapshot. A family without a sample (no
/// service yet) is left out of the text altogether. Within a family the
/// samples come in hash order.
fn registry(snapshot: &Snapshot) -> Registry {
    let mut registry = Registry::default();

    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let metric = Counter::<u64>::default();
        metric.inc_by(value);
        registry.register(name, help, metric);
    };
    counter(
        &mut registry,
        "lvs_director_reloads",
        "Configuration reloads attempted",
        snapshot.reloads_total,
    );
    counter(
        &mut registry,
        "lvs_director_reload_errors",
        "Configuration reloads that failed",
        snapshot.reload_errors_total,
    );
    counter(
        &mut registry,
        "lvs_director_checks_skipped",
        "Checks not started: every permit stayed taken for an interval",
        snapshot.checks_skipped_total,
    );
    let in_flight = Gauge::<i64>::default();
    in_flight.set(saturating_i64(snapshot.checks_in_flight));
    registry.register(
        "lvs_director_checks_in_flight",
        "Checks running now",
        in_flight,
    );
    let reloaded = Gauge::<f64, AtomicU64>::default();
    reloaded.set(snapshot.last_reload_success.map_or(0.0, unix_seconds));
    registry.register_with_unit(
        "lvs_director_config_last_reload_success_timestamp",
        "When the configuration was last applied without error (0: never)",
        Unit::Seconds,
        reloaded,
    );

    if let Some(h) = snapshot.healthy {
        let g = Gauge::<i64>::default();
        g.set(i64::from(h));
        registry.register(
            "lvs_director_quorum",
            "1 while every service has quorum (the health file says 0), else 0",
            g,
        );
    }
    let announced = Gauges::<VipLabels>::default();
    registry.register(
        "lvs_director_vip_announced",
        "1 while the VIP is on the announce interface",
        announced.clone(),
    );
    let vip_transitions = Counters::<VipDirectionLabels>::default();
    registry.register(
        "lvs_director_announce_transitions",
        "VIPs put on (announce) or taken off (withdraw) the announce interface",
        vip_transitions.clone(),
    );
    for v in &snapshot.vips {
        announced
            .get_or_create(&VipLabels { vip: v.vip.clone() })
            .set(i64::from(v.announced));
        for (direction, n) in [("announce", v.announces), ("withdraw", v.withdrawals)] {
            vip_transitions
                .get_or_create(&VipDirectionLabels {
                    vip: v.vip.clone(),
                    direction,
                })
                .inc_by(n);
        }
    }

    let service_traffic = Traffic::<ServiceLabels>::register(&mut registry, "service");
    let service_servers = Gauges::<ServiceStateLabels>::default();
    registry.register(
        "lvs_director_service_servers",
        "Real servers of the service by health state",
        service_servers.clone(),
    );
    let server_traffic = Traffic::<ServerLabels>::register(&mut registry, "server");
    let active = Gauges::<ServerLabels>::default();
    registry.register(
        "lvs_director_server_active_connections",
        "Established connections (IPVS ActiveConn)",
        active.clone(),
    );
    let inactive = Gauges::<ServerLabels>::default();
    registry.register(
        "lvs_director_server_inactive_connections",
        "Other connections (IPVS InActConn)",
        inactive.clone(),
    );
    let weight = Gauges::<ServerLabels>::default();
    registry.register(
        "lvs_director_server_weight",
        "Weight in force in the kernel (0 while down or drained)",
        weight.clone(),
    );
    let configured = Gauges::<ServerLabels>::default();
    registry.register(
        "lvs_director_server_configured_weight",
        "Weight the director file gives the server",
        configured.clone(),
    );
    let state = Gauges::<ServerStateLabels>::default();
    registry.register(
        "lvs_director_server_state",
        "Health state: 1 for the current state, 0 for the others",
        state.clone(),
    );
    let duration = FloatGauges::<ServerLabels>::default();
    registry.register_with_unit(
        "lvs_director_server_last_check_duration",
        "How long the last check took",
        Unit::Seconds,
        duration.clone(),
    );
    let transitions = Counters::<ServerLabels>::default();
    registry.register(
        "lvs_director_server_transitions",
        "Health state changes",
        transitions.clone(),
    );

    for service in &snapshot.services {
        let labels = ServiceLabels {
            service: service.service.clone(),
        };
        service_traffic.set(&labels, &service.stats);
        for s in HealthState::ALL {
            let count = service
                .servers
                .iter()
                .filter(|server| server.state == s)
                .count();
            service_servers
                .get_or_create(&ServiceStateLabels {
                    service: service.service.clone(),
                    state: s.as_str(),
                })
                .set(saturating_i64(count as u64));
        }
        for server in &service.servers {
            let labels = ServerLabels {
                service: service.service.clone(),
                server: server.server.clone(),
            };
            server_traffic.set(&labels, &server.stats);
            active
                .get_or_create(&labels)
                .set(saturating_i64(server.active_connections));
            inactive
                .get_or_create(&labels)
                .set(saturating_i64(server.inactive_connections));
            weight.get_or_create(&labels).set(server.weight.into());
            configured
                .get_or_create(&labels)
                .set(server.configured_weight.into());
            for s in HealthState::ALL {
                let labels = ServerStateLabels {
                    service: service.service.clone(),
                    server: server.server.clone(),
                    state: s.as_str(),
                };
                state
                    .get_or_create(&labels)
                    .set(i64::from(server.state == s));
            }
            if let Some(took) = server.last_check_duration {
                duration.get_or_create(&labels).set(took.as_secs_f64());
            }
            transitions
                .get_or_create(&labels)
                .inc_by(server.transitions_total);
        }
    }
    registry
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
