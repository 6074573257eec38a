//! One ipvsadm command line into an [`Op`], option by option as
//! ipvsadm 1.31 does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::argv::{self, BadOpt, BadOptKind};
use super::options::*;
use super::{DEFAULT_PERSISTENT_TIMEOUT, DEFAULT_SCHEDULER, MAX_TIMEOUT};
use crate::op::Op;
use crate::table::{
    Destination, Family, Forward, Protocol, Service, ServiceFlags, ServiceKey, TUN_FLAG_CSUM,
    TUN_FLAG_REMCSUM, Timeouts, TunnelType,
};

/// The command being assembled, like ipvsadm's `struct ipvs_command_entry`.
struct Entry {
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
    tun_port: u16,
    tun_flags: u16,
}

/// Parse a decimal like C's strtol-based `string_to_number`.
fn number(s: &str, min: i64, max: i64) -> Option<i64> {
    let v: i64 = s.parse().ok()?;
    (min..=max).contains(&v).then_some(v)
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

pub(super) fn parse_args(words: &[String]) -> Result<Op, String> {
    let argv = argv::parse(words);
    if let Some(e) = &argv.error {
        return Err(popt_error(e));
    }
    let opts: Vec<(&'static str, Option<String>)> =
        argv.opts.into_iter().map(|o| (o.id, o.value)).collect();
    let positional = argv.args;

    let Some((first, _)) = opts.first() else {
        return Err("no command given".into());
    };
    let cmd = match *first {
        "A" => Cmd::Add,
        "E" => Cmd::Edit,
        "D" => Cmd::Del,
        "C" => Cmd::Flush,
        "a" => Cmd::AddDest,
        "e" => Cmd::EditDest,
        "d" => Cmd::DelDest,
        "Z" => Cmd::Zero,
        "set" => Cmd::Timeout,
        "L" | "S" | "R" | "h" | "v" | "start-daemon" | "stop-daemon" => {
            return Err(format!("command `{}' is not supported in rules", words[0]));
        }
        other => {
            return Err(format!(
                "the first option must be a command, not `{}'",
                opt_flag(other)
            ));
        }
    };

    let mut e = Entry {
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
        tun_port: 0,
        tun_flags: 0,
    };
    let mut seen: Vec<&'static str> = Vec::new();
    let mut has_service = false;
    let mut has_server = false;
    let mut tun_opts: Vec<&'static str> = Vec::new();

    for (id, value) in &opts[1..] {
        let v = value.clone().unwrap_or_default();
        let group = option_name(id);
        if matches!(
            *id,
            "A" | "E" | "D" | "C" | "a" | "e" | "d" | "Z" | "set" | "L" | "S" | "R"
        ) {
            return Err("multiple commands specified".into());
        }
        if !allowed(cmd, id) {
            return Err(format!(
                "Illegal '{group}' option with the '{}' command",
                cmd.name()
            ));
        }
        if *id != "6" {
            if seen.contains(&group) {
                return Err(format!("multiple '{group}' options specified"));
            }
            seen.push(group);
        }
        match *id {
            "t" | "u" | "sctp" => {
                e.protocol = match *id {
                    "t" => Protocol::Tcp,
                    "u" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                let (addr, port) =
                    parse_addr_port(&v).ok_or("illegal virtual server address[:port] specified")?;
                if addr.is_ipv6() {
                    e.netmask = 128;
                }
                e.af = Some(Family::of(&addr));
                e.addr = Some(addr);
                e.port = port.unwrap_or(0);
                has_service = true;
            }
            "f" => {
                // ipvsadm -S prints marks above 2^31 as negative numbers;
                // accept those too so its output can be restored.
                let mark = match v.parse::<i64>() {
                    Ok(n) if (1..=i64::from(u32::MAX)).contains(&n) => n as u32,
                    Ok(n) if (i64::from(i32::MIN)..0).contains(&n) => n as i32 as u32,
                    _ => return Err(format!("invalid fwmark value `{v}' specified")),
                };
                e.af = Some(Family::Inet);
                e.protocol = Protocol::Tcp;
                e.fwmark = mark;
                has_service = true;
            }
            "6" => {
                if e.fwmark == 0 {
                    return Err("-6 used before -f".into());
                }
                e.af = Some(Family::Inet6);
                e.netmask = 128;
            }
            "s" => e.sched = v,
            "p" => {
                e.flags |= ServiceFlags::PERSISTENT;
                e.timeout = match value {
                    None => DEFAULT_PERSISTENT_TIMEOUT,
                    Some(t) => number(t, 1, i64::from(MAX_TIMEOUT))
                        .ok_or(format!("invalid timeout value `{t}' specified"))?
                        as u32,
                };
            }
            "M" => {
                if e.af == Some(Family::Inet6) {
                    e.netmask = number(&v, 1, 128).ok_or("illegal ipv6 netmask specified")? as u32;
                } else {
                    let m: Ipv4Addr = v
                        .parse()
                        .map_err(|_| "illegal virtual server persistent mask specified")?;
                    e.netmask = u32::from(m);
                }
            }
            "o" => e.flags |= ServiceFlags::ONEPACKET,
            "pe" => e.pe = Some(v),
            "b" => e.sched_flags = Some(v),
            "r" => {
                let (addr, port) =
                    parse_addr_port(&v).ok_or("illegal real server address[:port] specified")?;
                e.dest_addr = Some(addr);
                e.dest_port = port.unwrap_or(e.port);
                has_server = true;
            }
            "g" => e.fwd = Forward::Route,
            "i" => e.fwd = Forward::Tunnel,
            "m" => e.fwd = Forward::Masquerade,
            "w" => {
                e.weight =
                    number(&v, 0, i64::from(i32::MAX)).ok_or("illegal weight specified")? as u32
            }
            "x" => {
                e.u_thresh = number(&v, 0, i64::from(i32::MAX))
                    .ok_or("illegal u_threshold specified")? as u32
            }
            "y" => {
                e.l_thresh = number(&v, 0, i64::from(i32::MAX))
                    .ok_or("illegal l_threshold specified")? as u32
            }
            "tun-type" => {
                e.tun_type = match v.as_str() {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    _ => return Err("illegal tunnel type specified".into()),
                };
            }
            "tun-port" => {
                e.tun_port = number(&v, 1, 65535).ok_or("illegal tunnel port specified")? as u16;
                tun_opts.push("tun-port");
            }
            "tun-nocsum" => {
                e.tun_flags = 0;
                tun_opts.push("tun-nocsum");
            }
            "tun-csum" => {
                e.tun_flags |= TUN_FLAG_CSUM;
                tun_opts.push("tun-csum");
            }
            "tun-remcsum" => {
                e.tun_flags |= TUN_FLAG_REMCSUM;
                tun_opts.push("tun-remcsum");
            }
            other => {
                return Err(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt_flag(other),
                    cmd.name()
                ));
            }
        }
    }

    if cmd == Cmd::Timeout {
        if positional.len() < 3 {
            return Err("--set option requires 3 timeout values".into());
        }
        let t = |s: &str| {
            number(s, 0, i64::from(MAX_TIMEOUT))
                .map(|n| n as u32)
                .ok_or(format!("invalid timeout value `{s}' specified"))
        };
        let timeouts = Timeouts {
            tcp: t(&positional[0])?,
            tcp_fin: t(&positional[1])?,
            udp: t(&positional[2])?,
        };
        if let Some(extra) = positional.get(3) {
            return Err(format!("unexpected argument {extra}"));
        }
        return Ok(Op::SetTimeouts(timeouts));
    }
    if let Some(extra) = positional.first() {
        return Err(format!("unexpected argument {extra}"));
    }
    let needs_service = !matches!(cmd, Cmd::Flush | Cmd::Zero);
    if needs_service && !has_service {
        return Err(format!(
            "You need to supply the 'service-address' option for the '{}' command",
            cmd.name()
        ));
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest | Cmd::DelDest) && !has_server {
        return Err(format!(
            "You need to supply the 'real-server' option for the '{}' command",
            cmd.name()
        ));
    }

    let key = if !has_service {
        None
    } else if e.fwmark != 0 {
        Some(ServiceKey::Fwmark {
            family: e.af.unwrap_or(Family::Inet),
            mark: e.fwmark,
        })
    } else {
        Some(ServiceKey::Addr {
            protocol: e.protocol,
            addr: e.addr.unwrap(),
            port: e.port,
        })
    };

    match cmd {
        Cmd::Flush => Ok(Op::Flush),
        Cmd::Zero => Ok(Op::Zero(key)),
        Cmd::Del => Ok(Op::DeleteService(key.unwrap())),
        Cmd::Add | Cmd::Edit => {
            let key = key.unwrap();
            if e.fwmark == 0 && e.port == 0 && e.flags & ServiceFlags::PERSISTENT == 0 {
                return Err("Zero port specified for non-persistent service".into());
            }
            if e.flags & ServiceFlags::ONEPACKET != 0
                && e.fwmark == 0
                && e.protocol != Protocol::Udp
            {
                return Err("One-Packet Scheduling is only for UDP virtual services".into());
            }
            if e.sched.is_empty() {
                e.sched = DEFAULT_SCHEDULER.into();
            }
            if let Some(b) = &e.sched_flags {
                e.flags |= parse_sched_flags(&e.sched, b)?;
            }
            let svc = Service {
                key,
                scheduler: e.sched,
                flags: ServiceFlags(e.flags),
                timeout: e.timeout,
                netmask: e.netmask,
                pe_name: e.pe,
                stats: None,
            };
            Ok(if cmd == Cmd::Add {
                Op::AddService(svc)
            } else {
                Op::EditService(svc)
            })
        }
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let key = key.unwrap();
            let addr = e.dest_addr.unwrap();
            let mut port = e.dest_port;
            if cmd != Cmd::DelDest {
                if e.fwmark == 0 && matches!(e.fwd, Forward::Tunnel | Forward::Route) {
                    port = e.port;
                }
                if Family::of(&addr) != key.family() && e.fwd != Forward::Tunnel {
                    return Err(
                        "Different address family is allowed only for tunneling servers".into(),
                    );
                }
                let any_tun = !tun_opts.is_empty() || seen.contains(&"tun-type");
                if any_tun && e.fwd != Forward::Tunnel {
                    return Err("Tunnel options conflict with forward method".into());
                }
                check_tunnel_options(e.tun_type, &tun_opts)?;
            }
            let d = Destination {
                weight: e.weight,
                forward: e.fwd,
                upper_threshold: e.u_thresh,
                lower_threshold: e.l_thresh,
                tun_type: e.tun_type,
                tun_port: e.tun_port,
                tun_flags: e.tun_flags,
                ..Destination::new(addr, port)
            };
            Ok(match cmd {
                Cmd::AddDest => Op::AddDestination(key, d),
                Cmd::EditDest => Op::EditDestination(key, d),
                _ => Op::DeleteDestination(key, d),
            })
        }
        Cmd::Timeout => unreachable!(),
    }
}
