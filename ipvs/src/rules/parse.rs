//! One ipvsadm command line into an [`Op`], option by option as
//! ipvsadm 1.31 does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::argv::{self, BadOpt, BadOptKind};
use super::options::{
    Cmd, allowed, check_tunnel_options, opt_flag, option_name, parse_sched_flags,
};
use super::{DEFAULT_PERSISTENT_TIMEOUT, DEFAULT_SCHEDULER, MAX_TIMEOUT};
use crate::op::Op;
use crate::table::{
    Destination, Family, Forward, Protocol, Service, ServiceFlags, ServiceKey, TUN_FLAG_CSUM,
    TUN_FLAG_REMCSUM, Timeouts, TunnelType,
};

/// A command line: split as popt splits it, the first option its command,
/// every other option checked and applied in turn (so the first problem
/// in argv order is the one reported, as with ipvsadm), then the change.
pub(super) fn parse_args(words: &[String]) -> Result<Op, String> {
    let argv = argv::parse(words);
    if let Some(e) = &argv.error {
        return Err(popt_error(e));
    }
    let Some((first, opts)) = argv.opts.split_first() else {
        return Err("no command given".into());
    };
    let mut e = Entry::new(Cmd::from_id(first.id, &words[0])?);
    let mut seen = Vec::new();
    for o in opts {
        check_option(e.cmd, o.id, &mut seen)?;
        e.set(o.id, o.value.as_deref())?;
    }
    e.into_op(&argv.args)
}

/// popt's complaint in the rules' own words.
fn popt_error(e: &BadOpt) -> String {
    match e.kind {
        BadOptKind::Unknown => {
            let name = match e.given.split_once('=') {
                Some((name, _)) if e.given.starts_with("--") => name,
                _ => &e.given,
            };
            format!("invalid option `{name}'")
        }
        BadOptKind::NoArgument => format!("option `{}' takes no argument", e.given),
        BadOptKind::MissingArgument => format!("option `{}' requires an argument", e.given),
    }
}

/// ipvsadm's bookkeeping of one option after the command: a second
/// command, an option the command does not take, one given twice.
fn check_option(cmd: Cmd, id: &str, seen: &mut Vec<&'static str>) -> Result<(), String> {
    if matches!(
        id,
        "A" | "E" | "D" | "C" | "a" | "e" | "d" | "Z" | "set" | "L" | "S" | "R"
    ) {
        return Err("multiple commands specified".into());
    }
    let name = option_name(id);
    if !allowed(cmd, id) {
        return Err(format!(
            "Illegal '{name}' option with the '{}' command",
            cmd.name()
        ));
    }
    // -6 only qualifies -f: ipvsadm does not count it.
    if id != "6" {
        if seen.contains(&name) {
            return Err(format!("multiple '{name}' options specified"));
        }
        seen.push(name);
    }
    Ok(())
}

/// Parse a decimal like C's strtol-based `string_to_number`.
fn number(s: &str, min: i64, max: i64) -> Option<i64> {
    let v: i64 = s.parse().ok()?;
    (min..=max).contains(&v).then_some(v)
}

/// A weight or a threshold: 0 to `INT_MAX`.
fn count(s: &str, what: &str) -> Result<u32, String> {
    number(s, 0, i64::from(i32::MAX))
        .map(|n| n as u32)
        .ok_or(format!("illegal {what} specified"))
}

/// ipvsadm's `parse_service`: `ADDR[:PORT]`, `[V6ADDR]:PORT` or a bare IPv6
/// address. Returns (address, port if given).
fn parse_addr_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let port = |p: &str| number(p, 0, 65535).map(|n| n as u16);
    if let Some(rest) = s.strip_prefix('[') {
        let (a, p) = rest.split_once(']')?;
        let p = p.strip_prefix(':')?;
        let a: Ipv6Addr = a.parse().ok()?;
        return Some((IpAddr::V6(a), Some(port(p)?)));
    }
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some((IpAddr::V6(a), None));
    }
    match s.rsplit_once(':') {
        Some((a, p)) => Some((IpAddr::V4(a.parse::<Ipv4Addr>().ok()?), Some(port(p)?))),
        None => Some((IpAddr::V4(s.parse::<Ipv4Addr>().ok()?), None)),
    }
}

/// `--set`'s three values.
fn timeouts(args: &[String]) -> Result<Timeouts, String> {
    if args.len() < 3 {
        return Err("--set option requires 3 timeout values".into());
    }
    let t = |s: &str| {
        number(s, 0, i64::from(MAX_TIMEOUT))
            .map(|n| n as u32)
            .ok_or(format!("invalid timeout value `{s}' specified"))
    };
    let timeouts = Timeouts {
        tcp: t(&args[0])?,
        tcp_fin: t(&args[1])?,
        udp: t(&args[2])?,
    };
    if let Some(extra) = args.get(3) {
        return Err(format!("unexpected argument {extra}"));
    }
    Ok(timeouts)
}

/// The command being assembled, like ipvsadm's `struct ipvs_command_entry`.
struct Entry {
    cmd: Cmd,
    af: Option<Family>,
    protocol: Protocol,
    addr: Option<IpAddr>,
    port: u16,
    fwmark: u32,
    sched: String,
    flags: u32,
    timeout: u32,
    netmask: u32,
    pe: Option<String>,
    sched_flags: Option<String>,
    dest_addr: Option<IpAddr>,
    dest_port: u16,
    fwd: Forward,
    weight: u32,
    u_thresh: u32,
    l_thresh: u32,
    tun_type: TunnelType,
    /// `--tun-type` was given (any tunnel option conflicts with -g, -m).
    tun_type_given: bool,
    tun_port: u16,
    tun_flags: u16,
    /// The tunnel options but `--tun-type`, in argv order, for
    /// [`check_tunnel_options`].
    tun_opts: Vec<&'static str>,
}

impl Entry {
    /// ipvsadm's defaults.
    fn new(cmd: Cmd) -> Entry {
        Entry {
            cmd,
            af: None,
            protocol: Protocol::Tcp,
            addr: None,
            port: 0,
            fwmark: 0,
            sched: String::new(),
            flags: 0,
            timeout: 0,
            netmask: 0xffff_ffff,
            pe: None,
            sched_flags: None,
            dest_addr: None,
            dest_port: 0,
            fwd: Forward::Route,
            weight: 1,
            u_thresh: 0,
            l_thresh: 0,
            tun_type: TunnelType::Ipip,
            tun_type_given: false,
            tun_port: 0,
            tun_flags: 0,
            tun_opts: Vec::new(),
        }
    }

    /// One option (already allowed for the command) onto the entry.
    fn set(&mut self, id: &'static str, value: Option<&str>) -> Result<(), String> {
        let v = value.unwrap_or_default();
        match id {
            "t" | "u" | "sctp" => self.set_service_address(id, v)?,
            "f" => self.set_fwmark(v)?,
            "6" => {
                if self.fwmark == 0 {
                    return Err("-6 used before -f".into());
                }
                self.af = Some(Family::Inet6);
                self.netmask = 128;
            }
            "s" => self.sched = v.to_string(),
            "p" => self.set_persistent(value)?,
            "M" => self.set_netmask(v)?,
            "o" => self.flags |= ServiceFlags::ONEPACKET,
            "pe" => self.pe = Some(v.to_string()),
            "b" => self.sched_flags = Some(v.to_string()),
            "r" => {
                let (addr, port) =
                    parse_addr_port(v).ok_or("illegal real server address[:port] specified")?;
                self.dest_addr = Some(addr);
                self.dest_port = port.unwrap_or(self.port);
            }
            "g" => self.fwd = Forward::Route,
            "i" => self.fwd = Forward::Tunnel,
            "m" => self.fwd = Forward::Masquerade,
            "w" => self.weight = count(v, "weight")?,
            "x" => self.u_thresh = count(v, "u_threshold")?,
            "y" => self.l_thresh = count(v, "l_threshold")?,
            "tun-type" | "tun-port" | "tun-nocsum" | "tun-csum" | "tun-remcsum" => {
                self.set_tunnel(id, v)?
            }
            other => {
                return Err(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt_flag(other),
                    self.cmd.name()
                ));
            }
        }
        Ok(())
    }

    /// `-t`, `-u`, `--sctp-service`.
    fn set_service_address(&mut self, id: &str, v: &str) -> Result<(), String> {
        self.protocol = match id {
            "t" => Protocol::Tcp,
            "u" => Protocol::Udp,
            _ => Protocol::Sctp,
        };
        let (addr, port) =
            parse_addr_port(v).ok_or("illegal virtual server address[:port] specified")?;
        if addr.is_ipv6() {
            self.netmask = 128;
        }
        self.af = Some(Family::of(&addr));
        self.addr = Some(addr);
        self.port = port.unwrap_or(0);
        Ok(())
    }

    fn set_fwmark(&mut self, v: &str) -> Result<(), String> {
        // ipvsadm -S prints marks above 2^31 as negative numbers; accept
        // those too so its output can be restored.
        let mark = match v.parse::<i64>() {
            Ok(n) if (1..=i64::from(u32::MAX)).contains(&n) => n as u32,
            Ok(n) if (i64::from(i32::MIN)..0).contains(&n) => n as i32 as u32,
            _ => return Err(format!("invalid fwmark value `{v}' specified")),
        };
        self.af = Some(Family::Inet);
        self.protocol = Protocol::Tcp;
        self.fwmark = mark;
        Ok(())
    }

    /// `-p [TIMEOUT]`.
    fn set_persistent(&mut self, value: Option<&str>) -> Result<(), String> {
        self.flags |= ServiceFlags::PERSISTENT;
        self.timeout = match value {
            None => DEFAULT_PERSISTENT_TIMEOUT,
            Some(t) => number(t, 1, i64::from(MAX_TIMEOUT))
                .ok_or(format!("invalid timeout value `{t}' specified"))?
                as u32,
        };
        Ok(())
    }

    /// `-M`: a prefix length for IPv6 (so after the address), else a mask.
    fn set_netmask(&mut self, v: &str) -> Result<(), String> {
        if self.af == Some(Family::Inet6) {
            self.netmask = number(v, 1, 128).ok_or("illegal ipv6 netmask specified")? as u32;
        } else {
            let m: Ipv4Addr = v
                .parse()
                .map_err(|_| "illegal virtual server persistent mask specified")?;
            self.netmask = u32::from(m);
        }
        Ok(())
    }

    fn set_tunnel(&mut self, id: &'static str, v: &str) -> Result<(), String> {
        match id {
            "tun-type" => {
                self.tun_type = match v {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    _ => return Err("illegal tunnel type specified".into()),
                };
                self.tun_type_given = true;
                return Ok(());
            }
            "tun-port" => {
                self.tun_port = number(v, 1, 65535).ok_or("illegal tunnel port specified")? as u16
            }
            "tun-nocsum" => self.tun_flags = 0,
            "tun-csum" => self.tun_flags |= TUN_FLAG_CSUM,
            _ => self.tun_flags |= TUN_FLAG_REMCSUM,
        }
        self.tun_opts.push(id);
        Ok(())
    }

    /// The service the options named, if any (a mark wins over an address).
    fn key(&self) -> Option<ServiceKey> {
        if self.fwmark != 0 {
            return Some(ServiceKey::Fwmark {
                family: self.af.unwrap_or(Family::Inet),
                mark: self.fwmark,
            });
        }
        self.addr.map(|addr| ServiceKey::Addr {
            protocol: self.protocol,
            addr,
            port: self.port,
        })
    }

    /// The change; `args`: the words that are not options (only `--set`
    /// takes any).
    fn into_op(self, args: &[String]) -> Result<Op, String> {
        let cmd = self.cmd;
        if cmd == Cmd::Timeout {
            return timeouts(args).map(Op::SetTimeouts);
        }
        if let Some(extra) = args.first() {
            return Err(format!("unexpected argument {extra}"));
        }
        let need = |what: &str| {
            format!(
                "You need to supply the '{what}' option for the '{}' command",
                cmd.name()
            )
        };
        let key = match (cmd, self.key()) {
            (Cmd::Flush, _) => return Ok(Op::Flush),
            (Cmd::Zero, key) => return Ok(Op::Zero(key)),
            (_, Some(key)) => key,
            (_, None) => return Err(need("service-address")),
        };
        match cmd {
            Cmd::Del => Ok(Op::DeleteService(key)),
            Cmd::Add => self.into_service(key).map(Op::AddService),
            Cmd::Edit => self.into_service(key).map(Op::EditService),
            // The server commands.
            _ => {
                let Some(addr) = self.dest_addr else {
                    return Err(need("real-server"));
                };
                let d = self.destination(&key, addr)?;
                Ok(match cmd {
                    Cmd::AddDest => Op::AddDestination(key, d),
                    Cmd::EditDest => Op::EditDestination(key, d),
                    _ => Op::DeleteDestination(key, d),
                })
            }
        }
    }

    /// -A and -E: ipvsadm's checks, then the service.
    fn into_service(mut self, key: ServiceKey) -> Result<Service, String> {
        if self.fwmark == 0 && self.port == 0 && self.flags & ServiceFlags::PERSISTENT == 0 {
            return Err("Zero port specified for non-persistent service".into());
        }
        if self.flags & ServiceFlags::ONEPACKET != 0
            && self.fwmark == 0
            && self.protocol != Protocol::Udp
        {
            return Err("One-Packet Scheduling is only for UDP virtual services".into());
        }
        if self.sched.is_empty() {
            self.sched = DEFAULT_SCHEDULER.into();
        }
        if let Some(b) = &self.sched_flags {
            self.flags |= parse_sched_flags(&self.sched, b)?;
        }
        Ok(Service {
            key,
            scheduler: self.sched,
            flags: ServiceFlags(self.flags),
            timeout: self.timeout,
            netmask: self.netmask,
            pe_name: self.pe,
            stats: None,
        })
    }

    /// -a, -e (with ipvsadm's checks) and -d.
    fn destination(&self, key: &ServiceKey, addr: IpAddr) -> Result<Destination, String> {
        let mut port = self.dest_port;
        if self.cmd != Cmd::DelDest {
            // Direct routing and tunnels cannot change the port.
            if self.fwmark == 0 && matches!(self.fwd, Forward::Tunnel | Forward::Route) {
                port = self.port;
            }
            if Family::of(&addr) != key.family() && self.fwd != Forward::Tunnel {
                return Err(
                    "Different address family is allowed only for tunneling servers".into(),
                );
            }
            let any_tun = self.tun_type_given || !self.tun_opts.is_empty();
            if any_tun && self.fwd != Forward::Tunnel {
                return Err("Tunnel options conflict with forward method".into());
            }
            check_tunnel_options(self.tun_type, &self.tun_opts)?;
        }
        Ok(Destination {
            weight: self.weight,
            forward: self.fwd,
            upper_threshold: self.u_thresh,
            lower_threshold: self.l_thresh,
            tun_type: self.tun_type,
            tun_port: self.tun_port,
            tun_flags: self.tun_flags,
            ..Destination::new(addr, port)
        })
    }
}
