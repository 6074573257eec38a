//! What a valid file becomes: [`DirectorConfig`] and its services, and what
//! is derived from them (the VIPs, a port group's mark).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use lvs_ipvs::table::{Destination, Forward, Protocol, Service};

use crate::check::CheckSpec;
use crate::node::NodeConfig;

/// Derived marks fall in this range, away from small hand-picked marks.
pub const AUTO_MARK_BASE: u32 = 0x0001_0000;
pub const AUTO_MARK_SPAN: u32 = 0x000f_0000;

/// The validated configuration: the services in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectorConfig {
    pub services: Vec<Arc<ServiceConfig>>,
    /// `[announce]`, `health_file`, `[sysctl]`, `[sync]`: the daemon's.
    pub node: NodeConfig,
}

/// One virtual service with its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The service as the kernel should hold it (key, scheduler, flags,
    /// persistence).
    pub service: Service,
    /// The real servers, in file order.
    pub servers: Vec<Destination>,
    /// The VIP (for a port group, the address its marking rule matches).
    pub vip: IpAddr,
    /// Set for a port group (a firewall-mark service).
    pub group: Option<PortGroup>,
    /// Line of the `[[service]]` header, for messages.
    pub line: usize,
    /// The health check of each server, in the order of `servers`
    /// (`lvs-director apply` ignores them; `lvs-director run` runs them).
    pub checks: Vec<Arc<CheckSpec>>,
    /// Healthy servers needed; below it the sorry server joins (default 1).
    pub quorum: u32,
    /// Added (weight 1, the forwarding method of the first server, the
    /// service's port) while fewer than `quorum` servers are healthy.
    pub sorry_server: Option<IpAddr>,
    /// What a failed server gets.
    pub on_failure: OnFailure,
    /// The programs of the service's exec checks, each once, with where
    /// the file names it: lvs-director refuses an unsafe one at start and
    /// reload (rs-agent reads this file too and must not look at scripts).
    pub exec_programs: Vec<ExecProgram>,
}

/// A position in the file, 1-based (the column in characters), for the
/// errors found after loading, by what needs the system (an unknown user,
/// an unsafe script).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// `file:line:column: message`.
    pub fn error(self, file: &std::path::Path, message: impl Into<String>) -> crate::ConfigError {
        crate::ConfigError::new(file, self.line, self.column, message)
    }
}

/// An exec check's program as the file gives it. Its line is kept relative
/// to its service's (`ServiceConfig::line`): a service taken over unparsed
/// by a reload (see `load`) has the same text, so only that line moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecProgram {
    pub program: String,
    pub(crate) lines_below: usize,
    pub(crate) column: usize,
}

impl ExecProgram {
    /// Where the program is in the file, for a service at line `service_line`.
    pub fn position(&self, service_line: usize) -> Position {
        Position {
            line: service_line + self.lines_below,
            column: self.column,
        }
    }
}

/// What happens to a real server whose check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Weight 0: connections already scheduled carry on, no new ones
    /// (keepalived's inhibit_on_failure, ldirectord's quiescent).
    #[default]
    Drain,
    /// Deleted from the service.
    Remove,
}

impl OnFailure {
    pub fn name(self) -> &'static str {
        match self {
            OnFailure::Drain => "drain",
            OnFailure::Remove => "remove",
        }
    }
}

impl ServiceConfig {
    /// The sorry server as a destination of this service.
    pub fn sorry_destination(&self) -> Option<Destination> {
        let addr = self.sorry_server?;
        let mut d = Destination::new(addr, self.service.key.port());
        d.forward = self.servers.first().map_or(Forward::Route, |s| s.forward);
        d.weight = 1;
        Some(d)
    }
}

/// Ports of one VIP scheduled together as one firewall-mark service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    pub vip: IpAddr,
    pub protocol: Protocol,
    /// Sorted, unique.
    pub ports: Vec<u16>,
    pub mark: u32,
}

/// The VIPs of the configuration, unique, in file order: what the real
/// servers must hold on `lo` (rs-agent reads them from this file).
pub fn vips(config: &DirectorConfig) -> Vec<IpAddr> {
    // A set, not Vec::contains: clusters with thousands of services exist.
    let mut seen = HashSet::new();
    config
        .services
        .iter()
        .map(|s| s.vip)
        .filter(|vip| seen.insert(*vip))
        .collect()
}

/// A stable mark for a group without one: FNV-1a of its VIP, protocol and
/// ports, folded into [`AUTO_MARK_BASE`]..+[`AUTO_MARK_SPAN`]. Reordering
/// the file does not change it; changing the group's ports does.
///
/// The hashed bytes are spelled out here (`VIP PROTO [P1, P2]`) rather than
/// taken from a `Debug` rendering, whose format Rust does not promise: a
/// different mark after an upgrade would silently re-mark live traffic.
pub fn derived_mark(group: &PortGroup) -> u32 {
    let ports: Vec<String> = group.ports.iter().map(u16::to_string).collect();
    let text = format!(
        "{} {} [{}]",
        group.vip,
        protocol_name(group.protocol),
        ports.join(", ")
    );
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    AUTO_MARK_BASE + h % AUTO_MARK_SPAN
}

pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}
