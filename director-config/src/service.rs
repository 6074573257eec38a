//! Validation of one `[[service]]` on its own: address and ports, scheduler
//! and flags, persistence, real servers with their checks, health keys. What
//! spans services (duplicate keys and ports, derived marks) is the `load`
//! module's: it needs every service of the file.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use lvs_ipvs::table::{Destination, Family, Protocol, Service, ServiceFlags, ServiceKey};
use toml::Spanned;

use crate::ConfigError;
use crate::check::{CheckKind, CheckSpec};
use crate::checks::PortDefault;
use crate::parts::{check_scheduler, check_vip};
use crate::raw::{RawCheck, RawServer, RawService};
use crate::validate::Validator;
use crate::validated::{ExecProgram, PortGroup, ServiceConfig};

/// Scheduler when the file names none (ipvsadm's default).
pub const DEFAULT_SCHEDULER: &str = "wlc";

/// Longest persistence timeout accepted, in seconds (the kernel keeps it in
/// jiffies in 32 bits; at HZ=1000 this is the most that fits).
pub const MAX_PERSISTENCE: u32 = u32::MAX / 1000;

pub(super) struct ServiceParts {
    pub(super) cfg: ServiceConfig,
    /// The protocol of the service's ports.
    pub(super) protocol: Protocol,
    /// Where to point at for a duplicate key.
    pub(super) key_offset: usize,
    /// Each served (vip, protocol) port with its position.
    pub(super) port_offsets: Vec<(u16, usize)>,
}

/// `persistence` and `persistence_netmask`.
struct Persistence {
    /// Seconds; 0 when the service is not persistent.
    timeout: u32,
    /// As the kernel takes it: a mask for IPv4, a prefix length for IPv6.
    netmask: u32,
}

/// What `port` or `ports` (with `mark`) make of a service.
struct Addressing {
    key: ServiceKey,
    group: Option<PortGroup>,
    key_offset: usize,
    port_offsets: Vec<(u16, usize)>,
}

impl Validator<'_> {
    /// One `[[service]]`; `start` is where its header is, for the errors
    /// about a key it lacks. Each step stops at its first error, so their
    /// order decides which error a file with several gets.
    pub(super) fn service(
        &self,
        raw: RawService,
        start: usize,
    ) -> Result<ServiceParts, ConfigError> {
        let vip = check_vip(raw.vip.get_ref()).or_else(|m| self.err(raw.vip.span(), m))?;
        let family = Family::of(&vip);
        let protocol = self.protocol(raw.protocol.as_ref())?;
        let (scheduler, flags) = self.scheduler(&raw, start)?;
        let persistence = self.persistence(&raw, family)?;
        let Addressing {
            key,
            group,
            key_offset,
            port_offsets,
        } = self.addressing(&raw, vip, protocol, persistence.timeout, start)?;

        let mut service = Service::new(key, scheduler);
        service.flags = flags;
        if persistence.timeout > 0 {
            service = service.persistent(persistence.timeout);
        }
        service.netmask = persistence.netmask;

        let group_port = group.as_ref().and_then(|g| g.ports.first().copied());
        let (servers, checks, programs) =
            self.servers(raw.server, raw.check.as_ref(), &key, family, group_port)?;
        let service_line = self.line(start);
        let exec_programs = programs
            .into_iter()
            .map(|(program, offset)| {
                let at = self.position(offset);
                ExecProgram {
                    program,
                    lines_below: at.line - service_line,
                    column: at.column,
                }
            })
            .collect();
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
                checks,
                quorum,
                sorry_server,
                on_failure,
                exec_programs,
            },
            protocol,
            key_offset,
            port_offsets,
        })
    }

    fn protocol(&self, raw: Option<&Spanned<String>>) -> Result<Protocol, ConfigError> {
        let Some(p) = raw else {
            return Ok(Protocol::Tcp);
        };
        match p.get_ref().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            other => self.err(
                p.span(),
                format!("protocol {other:?} is not one of \"tcp\", \"udp\", \"sctp\""),
            ),
        }
    }

    /// `scheduler`, `scheduler_flags` and `one_packet`.
    fn scheduler(
        &self,
        raw: &RawService,
        start: usize,
    ) -> Result<(String, ServiceFlags), ConfigError> {
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
        Ok((scheduler, flags))
    }

    fn persistence(&self, raw: &RawService, family: Family) -> Result<Persistence, ConfigError> {
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
        let netmask = match family {
            Family::Inet if prefix == 32 => u32::MAX,
            Family::Inet => u32::MAX << (32 - prefix),
            Family::Inet6 => prefix,
        };
        Ok(Persistence { timeout, netmask })
    }

    /// `port`, or `ports` with `mark`: the service's key. `timeout` is the
    /// persistence, which port 0 needs.
    fn addressing(
        &self,
        raw: &RawService,
        vip: IpAddr,
        protocol: Protocol,
        timeout: u32,
        start: usize,
    ) -> Result<Addressing, ConfigError> {
        let addressing = match (&raw.port, &raw.ports) {
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
            (Some(p), None) => self.single_port(p, vip, protocol, timeout, raw.vip.span().start)?,
            (None, Some(ps)) => self.port_group(ps, raw.mark.as_ref(), vip, protocol)?,
        };
        if let (Some(m), None) = (&raw.mark, &addressing.group) {
            return self.err(m.span(), "mark is only for a port group (`ports`)".into());
        }
        Ok(addressing)
    }

    /// `port`; a duplicate key is reported at the VIP (`vip_offset`).
    fn single_port(
        &self,
        p: &Spanned<i64>,
        vip: IpAddr,
        protocol: Protocol,
        timeout: u32,
        vip_offset: usize,
    ) -> Result<Addressing, ConfigError> {
        let port = self.int::<u16>(p, "port", 0, 65535)?;
        if port == 0 && timeout == 0 {
            return self.err(
                p.span(),
                "port 0 (every port) needs persistence (a timeout in seconds)".into(),
            );
        }
        Ok(Addressing {
            key: ServiceKey::Addr {
                protocol,
                addr: vip,
                port,
            },
            group: None,
            key_offset: vip_offset,
            port_offsets: vec![(port, p.span().start)],
        })
    }

    /// `ports` and `mark`: a firewall-mark service.
    fn port_group(
        &self,
        ps: &Spanned<Vec<Spanned<i64>>>,
        mark: Option<&Spanned<i64>>,
        vip: IpAddr,
        protocol: Protocol,
    ) -> Result<Addressing, ConfigError> {
        if ps.get_ref().is_empty() {
            return self.err(ps.span(), "ports is empty".into());
        }
        let mut ports: Vec<u16> = Vec::new();
        let mut port_offsets = Vec::new();
        for p in ps.get_ref() {
            let port = self.int::<u16>(p, "port", 1, 65535)?;
            if ports.contains(&port) {
                return self.err(p.span(), format!("port {port} is listed twice"));
            }
            ports.push(port);
            port_offsets.push((port, p.span().start));
        }
        ports.sort_unstable();
        let (mark, key_offset) = match mark {
            Some(m) => (
                self.int::<u32>(m, "mark", 1, i64::from(u32::MAX))?,
                m.span().start,
            ),
            // 0: derived once every explicit mark is known.
            None => (0, ps.span().start),
        };
        Ok(Addressing {
            key: ServiceKey::fwmark(Family::of(&vip), mark),
            group: Some(PortGroup {
                vip,
                protocol,
                ports,
                mark,
            }),
            key_offset,
            port_offsets,
        })
    }

    /// The real servers in file order, with the check of each: the
    /// service's `check` with the server's merged over it; and the programs
    /// of the exec checks, each once, with their offsets.
    #[allow(clippy::type_complexity)]
    fn servers(
        &self,
        raw: Vec<Spanned<RawServer>>,
        check: Option<&Spanned<RawCheck>>,
        key: &ServiceKey,
        family: Family,
        group_port: Option<u16>,
    ) -> Result<(Vec<Destination>, Vec<Arc<CheckSpec>>, Vec<(String, usize)>), ConfigError> {
        let mut programs: Vec<(String, usize)> = Vec::new();
        let mut program_seen: std::collections::HashSet<usize> = Default::default();
        let mut servers: Vec<Destination> = Vec::with_capacity(raw.len());
        // Servers with the same check share one spec: 20,000 copies of it
        // were a fifth of the daemon's memory.
        let mut check_specs: Vec<Arc<CheckSpec>> = Vec::with_capacity(raw.len());
        let mut server_seen: HashMap<(IpAddr, u16), usize> = HashMap::new();
        for rs in raw {
            let rs_start = rs.span().start;
            let rs = rs.into_inner();
            let (spec, program) = self.check_spec(
                check,
                rs.check.as_ref(),
                PortDefault {
                    server_port: rs
                        .port
                        .as_ref()
                        .and_then(|p| u16::try_from(*p.get_ref()).ok())
                        .unwrap_or(key.port()),
                    group_port,
                },
            )?;
            let d = self.server(rs, key, family)?;
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
            if let (Some(offset), CheckKind::Exec { command }) = (program, &spec.kind)
                && program_seen.insert(offset)
            {
                programs.push((command[0].clone(), offset));
            }
            let spec = match check_specs.last() {
                Some(last) if **last == spec => last.clone(),
                _ => Arc::new(spec),
            };
            check_specs.push(spec);
        }
        if let (true, Some(c)) = (servers.is_empty(), check) {
            // Validate the table even with no server to apply it to (its
            // program is never run: not one to refuse).
            self.check_spec(
                Some(c),
                None,
                PortDefault {
                    server_port: key.port(),
                    group_port,
                },
            )?;
        }
        Ok((servers, check_specs, programs))
    }
}
