//! The daemon's state as one typed snapshot, [`Status`]: what the control
//! socket sends (its serde form is the JSON of `lvs-director status
//! --output json`), what the CLI renders as text ([`Status::to_text`]) and
//! what each Prometheus scrape is rendered from ([`crate::metrics::render`]).
//!
//! The daemon builds it from its parts ([`Parts`]: the cluster, the kernel
//! view, the counters, the node's state); status knows nothing of the
//! daemon. Times are Unix times in seconds (the CLI may run in another
//! process, long after).

mod build;
#[cfg(test)]
mod tests;
mod text;

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use lvs_ipvs::table::{ServiceKey, Stats};
use serde::{Deserialize, Serialize};

use crate::check::{CheckKind, CheckSpec};

pub use build::Parts;

/// Everything `lvs-director status` shows and every scrape exports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The director file the daemon runs.
    pub config: String,
    pub started: f64,
    /// Unique checks (servers with the same address and check share one).
    pub checks: usize,
    pub checks_in_flight: usize,
    /// Checks not started for want of a permit or of descriptors.
    #[serde(default)]
    pub checks_skipped: u64,
    /// Full syncs (table read, planned, applied) since start.
    pub syncs: u64,
    pub last_sync: Option<f64>,
    /// Changes the kernel took, and refused, since start.
    pub edits: u64,
    pub refused: u64,
    /// Reloads that took, and that were refused.
    pub reloads: u64,
    pub reload_failures: u64,
    /// When the file was last loaded and applied without error.
    #[serde(default)]
    pub last_load: Option<f64>,
    pub services: Vec<ServiceStatus>,
    /// Servers (or whole services) a reload removed, drained until their
    /// connections are gone.
    pub retiring: Vec<RetiringStatus>,
    /// Every service has quorum (what the health file says); null before
    /// the first look.
    pub quorum: Option<bool>,
    /// `lvs-director withdraw`: out of service until `announce`.
    pub withdrawn_by_hand: bool,
    /// The VIPs of `[announce]` (none without it).
    pub vips: Vec<VipStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// As written everywhere else: `tcp 203.0.113.10:80`, `fwmark 11`.
    #[serde(with = "key_text")]
    pub service: ServiceKey,
    pub scheduler: String,
    pub quorum: u32,
    /// Servers serving now.
    pub healthy: usize,
    /// `drain` or `remove`.
    pub on_failure: String,
    pub sorry_server: Option<IpAddr>,
    /// The sorry server is wanted in the table (quorum lost).
    pub sorry_active: bool,
    pub servers: Vec<ServerStatus>,
    /// The sorry server's destination while it is wanted: the metrics show
    /// it beside the real servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_destination: Option<SorryStatus>,
    /// Only after [`Status::add_ipvs_counters`] (a scrape): a status reply
    /// reads no table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs: Option<Traffic>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub server: SocketAddr,
    /// The check's verdict (an admin drain is `admin_drained`, apart).
    pub health: HealthState,
    /// In force in the kernel, as last written or read; null while the
    /// server is not in the table.
    pub weight: Option<u32>,
    pub configured_weight: u32,
    pub admin_drained: bool,
    /// Found in the table at start and kept at its weight until its check's
    /// first result.
    pub adopted: bool,
    /// `tcp port 80`, `http://host:80/health`... (see [`check_text`]).
    pub check: String,
    pub last_result: Option<String>,
    pub last_check: Option<f64>,
    /// Since when the server is in its state.
    pub since: f64,
    /// How long the last check took, in seconds.
    #[serde(default)]
    pub last_check_duration: Option<f64>,
    /// Health state changes since start.
    #[serde(default)]
    pub transitions: u64,
    /// Only after [`Status::add_ipvs_counters`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs: Option<IpvsCounters>,
}

impl ServerStatus {
    /// The state the metrics export: an admin drain shows as `drain`
    /// whatever the check says.
    pub fn state(&self) -> HealthState {
        if self.admin_drained {
            HealthState::Drain
        } else {
            self.health
        }
    }
}

/// The sorry server as a destination of its service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SorryStatus {
    pub server: SocketAddr,
    pub configured_weight: u32,
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs: Option<IpvsCounters>,
}

/// A real server's health as the state machine holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    Up,
    Down,
    /// Up, but its agent asked to be drained (or, in [`ServerStatus::state`],
    /// drained by hand).
    Drain,
    /// Not checked yet (or no verdict yet).
    #[default]
    Unchecked,
}

impl HealthState {
    pub const ALL: [HealthState; 4] = [Self::Up, Self::Down, Self::Drain, Self::Unchecked];

    /// As in logs, the JSON and the metrics' `state` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Drain => "drain",
            Self::Unchecked => "unchecked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetiringStatus {
    #[serde(with = "key_text")]
    pub service: ServiceKey,
    /// The whole service left the file (not only some servers).
    pub whole_service: bool,
    pub servers: Vec<SocketAddr>,
}

/// One VIP of `[announce]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    pub vip: String,
    /// On the announce interface now.
    pub announced: bool,
    pub announces: u64,
    pub withdrawals: u64,
}

/// The kernel's counters of a service or a destination (rates are
/// Prometheus' job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub connections: u64,
    pub incoming_packets: u64,
    pub outgoing_packets: u64,
    pub incoming_bytes: u64,
    pub outgoing_bytes: u64,
}

impl From<&Stats> for Traffic {
    fn from(s: &Stats) -> Traffic {
        Traffic {
            connections: s.conns,
            incoming_packets: s.inpkts,
            outgoing_packets: s.outpkts,
            incoming_bytes: s.inbytes,
            outgoing_bytes: s.outbytes,
        }
    }
}

/// A destination's connections and counters as a table read found them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsCounters {
    /// IPVS ActiveConn and InActConn.
    pub active_connections: u64,
    pub inactive_connections: u64,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// The daemon's counters, kept by its loop.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub syncs: u64,
    pub edits: u64,
    pub refused: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    pub transitions: u64,
    pub skipped: u64,
    pub last_sync: Option<Instant>,
    /// When the file was last loaded and applied without error.
    pub last_load: Option<SystemTime>,
}

/// `tcp port 80`, `http://host:80/health`, `exec /usr/bin/x`...
pub fn check_text(spec: &CheckSpec) -> String {
    match &spec.kind {
        CheckKind::None => "none".into(),
        CheckKind::Tcp => format!("tcp port {}", spec.port),
        CheckKind::TcpHalfOpen => format!("tcp half-open port {}", spec.port),
        CheckKind::Agent => format!("agent port {}", spec.port),
        CheckKind::Http(h) => format!(
            "{} port {} {}",
            if h.tls { "https" } else { "http" },
            spec.port,
            h.path
        ),
        CheckKind::Exec { command } => format!("exec {}", command[0]),
    }
}

/// A service key as its `Display` writes it (`tcp 203.0.113.10:80`,
/// `fwmark 11 (IPv6)`): the status's JSON kept that text when it became
/// typed.
mod key_text {
    use std::net::SocketAddr;

    use lvs_ipvs::table::{Family, Protocol, ServiceKey};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &ServiceKey, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(key)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ServiceKey, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| D::Error::custom(format!("{text:?} is not a service")))
    }

    /// The inverse of `Display`, and nothing more liberal (the command
    /// line's selectors are [`crate::control::parse_service`]'s).
    pub(super) fn parse(text: &str) -> Option<ServiceKey> {
        if let Some(rest) = text.strip_prefix("fwmark ") {
            let (mark, family) = match rest.strip_suffix(" (IPv6)") {
                Some(mark) => (mark, Family::Inet6),
                None => (rest, Family::Inet),
            };
            return Some(ServiceKey::fwmark(family, mark.parse().ok()?));
        }
        let (protocol, addr) = text.split_once(' ')?;
        let protocol = match protocol {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return None,
        };
        let addr: SocketAddr = addr.parse().ok()?;
        Some(ServiceKey::Addr {
            protocol,
            addr: addr.ip(),
            port: addr.port(),
        })
    }
}
