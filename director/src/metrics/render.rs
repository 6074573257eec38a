//! A [`Status`] in the Prometheus text format, through a fresh
//! `prometheus-client` registry per snapshot.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;

use lvs_ipvs::table::{Family, Protocol, ServiceKey};
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as MetricFamily;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::status::{HealthState, IpvsCounters, ServiceStatus, Status, Traffic};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

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

/// The status in the Prometheus text format (version 0.0.4, the format
/// every scraper reads; counters end in `_total`, units are in the names).
/// Service and server labels must be unique (two entries with the same
/// labels would add up). A family without a sample (no service yet) is
/// left out of the text altogether. Within a family the samples come in
/// hash order.
pub fn render(status: &Status) -> String {
    let mut registry = Registry::default();
    register_daemon(&mut registry, status);
    register_node(&mut registry, status);
    let services = ServiceFamilies::register(&mut registry);
    let servers = ServerFamilies::register(&mut registry);
    for service in &status.services {
        let label = service_label(&service.service);
        services.record(&label, service);
        for row in rows(service) {
            servers.record(&label, &row);
        }
    }
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
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

/// The daemon's own counters: reloads, checks in flight and skipped.
fn register_daemon(registry: &mut Registry, status: &Status) {
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let metric = Counter::<u64>::default();
        metric.inc_by(value);
        registry.register(name, help, metric);
    };
    counter(
        registry,
        "lvs_director_reloads",
        "Configuration reloads attempted",
        status.reloads + status.reload_failures,
    );
    counter(
        registry,
        "lvs_director_reload_errors",
        "Configuration reloads that failed",
        status.reload_failures,
    );
    counter(
        registry,
        "lvs_director_checks_skipped",
        "Checks not started: every permit stayed taken for an interval",
        status.checks_skipped,
    );
    let in_flight = Gauge::<i64>::default();
    in_flight.set(saturating_i64(status.checks_in_flight as u64));
    registry.register(
        "lvs_director_checks_in_flight",
        "Checks running now",
        in_flight,
    );
    let reloaded = Gauge::<f64, AtomicU64>::default();
    reloaded.set(status.last_load.unwrap_or(0.0));
    registry.register_with_unit(
        "lvs_director_config_last_reload_success_timestamp",
        "When the configuration was last applied without error (0: never)",
        Unit::Seconds,
        reloaded,
    );
}

/// The director as a machine: quorum (the health file) and the VIPs.
fn register_node(registry: &mut Registry, status: &Status) {
    if let Some(h) = status.quorum {
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
    let transitions = Counters::<VipDirectionLabels>::default();
    registry.register(
        "lvs_director_announce_transitions",
        "VIPs put on (announce) or taken off (withdraw) the announce interface",
        transitions.clone(),
    );
    for v in &status.vips {
        announced
            .get_or_create(&VipLabels { vip: v.vip.clone() })
            .set(i64::from(v.announced));
        for (direction, n) in [("announce", v.announces), ("withdraw", v.withdrawals)] {
            transitions
                .get_or_create(&VipDirectionLabels {
                    vip: v.vip.clone(),
                    direction,
                })
                .inc_by(n);
        }
    }
}

/// The five IPVS counters of a service or a server.
struct TrafficFamilies<L> {
    connections: Counters<L>,
    in_packets: Counters<L>,
    out_packets: Counters<L>,
    in_bytes: Counters<L>,
    out_bytes: Counters<L>,
}

impl<L> TrafficFamilies<L>
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

    fn set(&self, labels: &L, t: &Traffic) {
        self.connections.get_or_create(labels).inc_by(t.connections);
        self.in_packets
            .get_or_create(labels)
            .inc_by(t.incoming_packets);
        self.out_packets
            .get_or_create(labels)
            .inc_by(t.outgoing_packets);
        self.in_bytes.get_or_create(labels).inc_by(t.incoming_bytes);
        self.out_bytes
            .get_or_create(labels)
            .inc_by(t.outgoing_bytes);
    }
}

/// A destination as the metrics show it: a real server, or the sorry
/// server while it is wanted (up, never checked).
struct Row<'a> {
    server: SocketAddr,
    state: HealthState,
    /// In the kernel at the read; 0 when absent.
    weight: Option<u32>,
    configured_weight: u32,
    ipvs: Option<&'a IpvsCounters>,
    last_check_duration: Option<f64>,
    transitions: u64,
}

fn rows(service: &ServiceStatus) -> impl Iterator<Item = Row<'_>> {
    let servers = service.servers.iter().map(|s| Row {
        server: s.server,
        state: s.state(),
        weight: s.weight,
        configured_weight: s.configured_weight,
        ipvs: s.ipvs.as_ref(),
        last_check_duration: s.last_check_duration,
        transitions: s.transitions,
    });
    let sorry = service.sorry_destination.iter().map(|s| Row {
        server: s.server,
        state: HealthState::Up,
        weight: s.weight,
        configured_weight: s.configured_weight,
        ipvs: s.ipvs.as_ref(),
        last_check_duration: None,
        transitions: 0,
    });
    servers.chain(sorry)
}

struct ServiceFamilies {
    traffic: TrafficFamilies<ServiceLabels>,
    servers: Gauges<ServiceStateLabels>,
}

impl ServiceFamilies {
    fn register(registry: &mut Registry) -> Self {
        let families = Self {
            traffic: TrafficFamilies::register(registry, "service"),
            servers: Gauges::default(),
        };
        registry.register(
            "lvs_director_service_servers",
            "Real servers of the service by health state",
            families.servers.clone(),
        );
        families
    }

    fn record(&self, label: &str, service: &ServiceStatus) {
        let labels = ServiceLabels {
            service: label.to_string(),
        };
        self.traffic.set(&labels, &service.ipvs.unwrap_or_default());
        for s in HealthState::ALL {
            let count = rows(service).filter(|row| row.state == s).count();
            self.servers
                .get_or_create(&ServiceStateLabels {
                    service: label.to_string(),
                    state: s.as_str(),
                })
                .set(saturating_i64(count as u64));
        }
    }
}

struct ServerFamilies {
    traffic: TrafficFamilies<ServerLabels>,
    active: Gauges<ServerLabels>,
    inactive: Gauges<ServerLabels>,
    weight: Gauges<ServerLabels>,
    configured: Gauges<ServerLabels>,
    state: Gauges<ServerStateLabels>,
    duration: FloatGauges<ServerLabels>,
    transitions: Counters<ServerLabels>,
}

impl ServerFamilies {
    fn register(registry: &mut Registry) -> Self {
        let families = Self {
            traffic: TrafficFamilies::register(registry, "server"),
            active: Default::default(),
            inactive: Default::default(),
            weight: Default::default(),
            configured: Default::default(),
            state: Default::default(),
            duration: Default::default(),
            transitions: Default::default(),
        };
        registry.register(
            "lvs_director_server_active_connections",
            "Established connections (IPVS ActiveConn)",
            families.active.clone(),
        );
        registry.register(
            "lvs_director_server_inactive_connections",
            "Other connections (IPVS InActConn)",
            families.inactive.clone(),
        );
        registry.register(
            "lvs_director_server_weight",
            "Weight in force in the kernel (0 while down or drained)",
            families.weight.clone(),
        );
        registry.register(
            "lvs_director_server_configured_weight",
            "Weight the director file gives the server",
            families.configured.clone(),
        );
        registry.register(
            "lvs_director_server_state",
            "Health state: 1 for the current state, 0 for the others",
            families.state.clone(),
        );
        registry.register_with_unit(
            "lvs_director_server_last_check_duration",
            "How long the last check took",
            Unit::Seconds,
            families.duration.clone(),
        );
        registry.register(
            "lvs_director_server_transitions",
            "Health state changes",
            families.transitions.clone(),
        );
        families
    }

    fn record(&self, service: &str, row: &Row<'_>) {
        let labels = ServerLabels {
            service: service.to_string(),
            server: row.server.to_string(),
        };
        let ipvs = row.ipvs.copied().unwrap_or_default();
        self.traffic.set(&labels, &ipvs.traffic);
        self.active
            .get_or_create(&labels)
            .set(saturating_i64(ipvs.active_connections));
        self.inactive
            .get_or_create(&labels)
            .set(saturating_i64(ipvs.inactive_connections));
        self.weight
            .get_or_create(&labels)
            .set(row.weight.unwrap_or(0).into());
        self.configured
            .get_or_create(&labels)
            .set(row.configured_weight.into());
        for s in HealthState::ALL {
            let labels = ServerStateLabels {
                service: service.to_string(),
                server: labels.server.clone(),
                state: s.as_str(),
            };
            self.state
                .get_or_create(&labels)
                .set(i64::from(row.state == s));
        }
        if let Some(took) = row.last_check_duration {
            self.duration.get_or_create(&labels).set(took);
        }
        self.transitions
            .get_or_create(&labels)
            .inc_by(row.transitions);
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
