//! The director's TOML configuration: read with serde into a raw form that
//! keeps source positions, then validated into [`DirectorConfig`]. Every
//! error names `file:line:column`; nothing is applied unless the whole file
//! is valid.
//!
//! ```toml
//! [[service]]
//! vip = "10.1.252.73"        # the virtual IP (also what rs-agent puts on lo)
//! protocol = "tcp"           # tcp (default), udp or sctp
//! port = 80                  # one port; 0 = every port (needs persistence)
//! scheduler = "wrr"          # default wlc
//!
//! [[service.server]]
//! address = "10.1.252.74"
//! forward = "dr"             # dr (default), tun or nat
//! weight = 1
//!
//! [[service]]
//! vip = "10.1.252.73"
//! ports = [80, 3306]         # a port group: one firewall-mark service
//! mark = 11                  # optional; derived from VIP, protocol and ports if absent
//! persistence = 60           # seconds
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use lvs_common::config_error::LineIndex;
use serde::Deserialize;
use toml::Spanned;

use lvs_ipvs::table::{Destination, Family, Forward, Protocol, Service, ServiceFlags, ServiceKey};

use parts::{check_scheduler, check_vip};

use crate::check::CheckSpec;

pub mod check;
mod checks;
mod load;
mod node;
mod parts;

pub use load::{Reuse, load, load_reusing, parse, parse_reusing};

pub use node::{
    Announce, DEFAULT_HEALTH_FILE, HealthFile, NodeConfig, SYSCTLS, SyncConfig, SyncRole,
    valid_ifname,
};

/// Where the systemd unit reads the director's configuration.
pub const DEFAULT_DIRECTOR_CONFIG: &str = "/etc/lvs-director/director.toml";

/// Scheduler when the file names none (ipvsadm's default).
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// Derived marks fall in this range, away from small hand-picked marks.
pub const AUTO_MARK_BASE: u32 = 0x0001_0000;
pub const AUTO_MARK_SPAN: u32 = 0x000f_0000;

/// Longest persistence timeout accepted, in seconds (the kernel keeps it in
/// jiffies in 32 bits; at HZ=1000 this is the most that fits).
pub const MAX_PERSISTENCE: u32 = u32::MAX / 1000;

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
    let mut seen = std::collections::HashSet::new();
    config
        .services
        .iter()
        .map(|s| s.vip)
        .filter(|vip| seen.insert(*vip))
        .collect()
}

/// A configuration error with its position in the file (`file:line:column:
/// message`; the whole file when its line is 0): lvs-common's, shared with
/// rs-agent.
pub use lvs_common::config_error::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    service: Vec<Spanned<RawService>>,
    announce: Option<Spanned<node::RawAnnounce>>,
    health_file: Option<Spanned<String>>,
    sysctl: Option<Spanned<node::RawSysctl>>,
    sync: Option<Spanned<node::RawSync>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    vip: Spanned<String>,
    protocol: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    ports: Option<Spanned<Vec<Spanned<i64>>>>,
    mark: Option<Spanned<i64>>,
    scheduler: Option<Spanned<String>>,
    scheduler_flags: Option<Vec<Spanned<String>>>,
    persistence: Option<Spanned<i64>>,
    persistence_netmask: Option<Spanned<i64>>,
    one_packet: Option<bool>,
    quorum: Option<Spanned<i64>>,
    sorry_server: Option<Spanned<String>>,
    on_failure: Option<Spanned<String>>,
    check: Option<Spanned<checks::RawCheck>>,
    #[serde(default)]
    server: Vec<Spanned<RawServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    address: Spanned<String>,
    port: Option<Spanned<i64>>,
    forward: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    upper_threshold: Option<Spanned<i64>>,
    lower_threshold: Option<Spanned<i64>>,
    check: Option<Spanned<checks::RawCheck>>,
}

fn check_unique(
    v: &Validator,
    seen: &mut HashMap<ServiceKey, usize>,
    key: &ServiceKey,
    offset: usize,
) -> Result<(), ConfigError> {
    if let Some(&first) = seen.get(key) {
        return Err(v.at(
            Some(offset..offset),
            format!("service {key} is already defined on line {}", v.line(first)),
        ));
    }
    seen.insert(*key, offset);
    Ok(())
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

struct ServiceParts {
    cfg: ServiceConfig,
    /// The protocol of the service's ports.
    protocol: Protocol,
    /// Where to point at for a duplicate key.
    key_offset: usize,
    /// Each served (vip, protocol) port with its position.
    port_offsets: Vec<(u16, usize)>,
}

struct Validator<'a> {
    path: &'a Path,
    /// Positions cost a binary search (a service's line is computed for
    /// every service: a rescan of the text each time was quadratic).
    lines: &'a LineIndex<'a>,
    /// Where the part of the file being validated starts: spans are
    /// relative to it (see [`load`]).
    base: usize,
}

impl<'a> Validator<'a> {
    fn at(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        match span {
            Some(s) => self.lines.error(self.path, self.base + s.start, message),
            None => ConfigError::whole_file(self.path, message),
        }
    }

    /// The same file, from `base` on.
    fn from(&self, base: usize) -> Validator<'a> {
        Validator {
            path: self.path,
            lines: self.lines,
            base,
        }
    }

    fn err<T>(&self, span: Range<usize>, message: String) -> Result<T, ConfigError> {
        Err(self.at(Some(span), message))
    }

    fn line(&self, offset: usize) -> usize {
        self.lines.line(self.base + offset)
    }

    fn int<T: TryFrom<i64>>(
        &self,
        v: &Spanned<i64>,
        name: &str,
        min: i64,
        max: i64,
    ) -> Result<T, ConfigError> {
        let n = *v.get_ref();
        if n < min || n > max {
            return self.err(
                v.span(),
                format!("{name} = {n} is out of range ({min}..={max})"),
            );
        }
        T::try_from(n).or_else(|_| self.err(v.span(), format!("{name} = {n} is out of range")))
    }

    fn service(&self, raw: RawService, start: usize) -> Result<ServiceParts, ConfigError> {
        let vip = check_vip(raw.vip.get_ref()).or_else(|m| self.err(raw.vip.span(), m))?;
        let family = Family::of(&vip);
        let protocol = match &raw.protocol {
            None => Protocol::Tcp,
            Some(p) => match p.get_ref().as_str() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                other => {
                    return self.err(
                        p.span(),
                        format!("protocol {other:?} is not one of \"tcp\", \"udp\", \"sctp\""),
                    );
                }
            },
        };
        let scheduler = match &raw.scheduler {
            None => DEFAULT_SCHEDULER.to_string(),
            Some(s) => check_scheduler(s.get_ref()).or_else(|m| self.err(s.span(), m))?,
        };
        let mut flags = ServiceFlags::default();
        for f in raw.scheduler_flags.iter().flatten() {
            let bits = lvs_ipvs::rules::parse_sched_flags(&scheduler, f.get_ref())
                .map_err(|_| {
                    format!(
                        "scheduler flag {:?} is not one of flag-1, flag-2, flag-3, sh-fallback, sh-port (scheduler sh), mh-fallback, mh-port (scheduler mh)",
                        f.get_ref()
                    )
                })
                .or_else(|m| self.err(f.span(), m))?;
            flags.0 |= bits;
        }
        // A destination at weight 0 keeps its Maglev slots: without the
        // fallback flag the flows hashing there are dropped, and the daemon
        // sets weight 0 for every failed or drained server.
        if scheduler == "mh" && !flags.has(ServiceFlags::SCHED1) {
            let at = raw.scheduler.as_ref().map_or(start..start, |s| s.span());
            return self.err(
                at,
                "scheduler \"mh\" needs scheduler_flags = [\"mh-fallback\"]: without it the flows of a drained or failed server (weight 0) are dropped, not passed on".into(),
            );
        }
        if raw.one_packet == Some(true) {
            flags.set(ServiceFlags::ONEPACKET, true);
        }
        let timeout = match &raw.persistence {
            None => 0,
            Some(p) => self.int::<u32>(p, "persistence", 1, i64::from(MAX_PERSISTENCE))?,
        };
        let full_prefix: i64 = if family == Family::Inet { 32 } else { 128 };
        let prefix = match &raw.persistence_netmask {
            None => full_prefix as u32,
            Some(m) => {
                if raw.persistence.is_none() {
                    return self.err(
                        m.span(),
                        "persistence_netmask needs persistence (a timeout in seconds)".into(),
                    );
                }
                self.int::<u32>(m, "persistence_netmask (a prefix length)", 1, full_prefix)?
            }
        };

        let mut port_offsets = Vec::new();
        let (key, group, key_offset) = match (&raw.port, &raw.ports) {
            (Some(_), Some(ps)) => {
                return self.err(
                    ps.span(),
                    "a service has either `port` or `ports` (a port group), not both".into(),
                );
            }
            (None, None) => {
                return self.err(
                    start..start,
                    "a service needs `port` (one port, 0 for all) or `ports` (a port group)".into(),
                );
            }
            (Some(p), None) => {
                let port = self.int::<u16>(p, "port", 0, 65535)?;
                if port == 0 && timeout == 0 {
                    return self.err(
                        p.span(),
                        "port 0 (every port) needs persistence (a timeout in seconds)".into(),
                    );
                }
                port_offsets.push((port, p.span().start));
                let key = ServiceKey::Addr {
                    protocol,
                    addr: vip,
                    port,
                };
                (key, None, raw.vip.span().start)
            }
            (None, Some(ps)) => {
                if ps.get_ref().is_empty() {
                    return self.err(ps.span(), "ports is empty".into());
                }
                let mut ports: Vec<u16> = Vec::new();
                for p in ps.get_ref() {
                    let port = self.int::<u16>(p, "port", 1, 65535)?;
                    if ports.contains(&port) {
                        return self.err(p.span(), format!("port {port} is listed twice"));
                    }
                    ports.push(port);
                    port_offsets.push((port, p.span().start));
                }
                ports.sort_unstable();
                let (mark, offset) = match &raw.mark {
                    Some(m) => (
                        self.int::<u32>(m, "mark", 1, i64::from(u32::MAX))?,
                        m.span().start,
                    ),
                    // 0: derived once every explicit mark is known.
                    None => (0, ps.span().start),
                };
                let group = PortGroup {
                    vip,
                    protocol,
                    ports,
                    mark,
                };
                (ServiceKey::fwmark(family, mark), Some(group), offset)
            }
        };
        if let (Some(m), None) = (&raw.mark, &group) {
            return self.err(m.span(), "mark is only for a port group (`ports`)".into());
        }

        let mut service = Service::new(key, scheduler);
        service.flags = flags;
        if timeout > 0 {
            service = service.persistent(timeout);
        }
        service.netmask = match family {
            Family::Inet if prefix == 32 => u32::MAX,
            Family::Inet => u32::MAX << (32 - prefix),
            Family::Inet6 => prefix,
        };

        let mut servers: Vec<Destination> = Vec::with_capacity(raw.server.len());
        // Servers with the same check share one spec: 20,000 copies of it
        // were a fifth of the daemon's memory.
        let mut check_specs: Vec<Arc<CheckSpec>> = Vec::with_capacity(raw.server.len());
        let mut server_seen: HashMap<(IpAddr, u16), usize> = HashMap::new();
        let group_port = group.as_ref().and_then(|g| g.ports.first().copied());
        for rs in raw.server {
            let rs_start = rs.span().start;
            let rs = rs.into_inner();
            let spec = self.check_spec(
                raw.check.as_ref(),
                rs.check.as_ref(),
                checks::PortDefault {
                    server_port: rs
                        .port
                        .as_ref()
                        .and_then(|p| u16::try_from(*p.get_ref()).ok())
                        .unwrap_or(key.port()),
                    group_port,
                },
            )?;
            let d = self.server(rs, &key, family)?;
            if let Some(&first) = server_seen.get(&(d.addr, d.port)) {
                return self.err(
                    rs_start..rs_start,
                    format!(
                        "real server {} is listed twice in this service (first on line {})",
                        lvs_ipvs::table::fmt_addr_port(&d.addr, d.port),
                        self.line(first)
                    ),
                );
            }
            server_seen.insert((d.addr, d.port), rs_start);
            servers.push(d);
            let spec = match check_specs.last() {
                Some(last) if **last == spec => last.clone(),
                _ => Arc::new(spec),
            };
            check_specs.push(spec);
        }
        if let (true, Some(c)) = (servers.is_empty(), &raw.check) {
            // Validate the table even with no server to apply it to.
            self.check_spec(
                Some(c),
                None,
                checks::PortDefault {
                    server_port: key.port(),
                    group_port,
                },
            )?;
        }
        let (quorum, sorry_server, on_failure) = self.health_keys(
            raw.quorum.as_ref(),
            raw.sorry_server.as_ref(),
            raw.on_failure.as_ref(),
            &servers,
            family,
        )?;
        Ok(ServiceParts {
            cfg: ServiceConfig {
                service,
                servers,
                vip,
                group,
                line: 0,
                checks: check_specs,
                quorum,
                sorry_server,
                on_failure,
            },
            protocol,
            key_offset,
            port_offsets,
        })
    }
}

#[cfg(test)]
mod tests;
