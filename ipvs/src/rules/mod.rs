//! ipvsadm's rules text: the command lines `ipvsadm -R` reads and the
//! output of `ipvsadm -S -n`.
//!
//! Parsing follows ipvsadm 1.31's option processing (popt): the first
//! option is the command, options are applied left to right (so `-6` must
//! follow `-f`, and a later `-t` of an IPv6 address resets the netmask to
//! 128), short options can be bundled (`-At`) or carry their value
//! (`-w3`), long options take `--name value` or `--name=value`, and `-p`
//! takes its optional timeout only from a following word that does not
//! start with `-`. The defaults are ipvsadm's: scheduler wlc, weight 1,
//! direct routing, bare `-p` = 360 seconds, full persistence netmask; for
//! `-g` and `-i` on an address service the real server port is the
//! service port.

use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::listing::{netmask_text, sched_flag_names, table_order};
use crate::model::{
    Destination, Family, Forward, Protocol, Service, ServiceFlags, ServiceKey, TUN_FLAG_CSUM,
    TUN_FLAG_REMCSUM, Timeouts, TunnelType, fmt_addr_port,
};
use crate::op::Op;

/// ipvsadm's default scheduler.
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// Timeout of a bare `-p`.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// ipvsadm's upper bound for `-p` (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;

/// A rules line that does not parse, or breaks ipvsadm's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RulesError {
    /// 1-based line number (0 for a single command line).
    pub line: usize,
    pub message: String,
}

/// A parsed rules line: its number and its change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub op: Op,
}

/// Parse a whole rules text (what `ipvsadm -R` reads). Blank lines and
/// lines starting with `#` are skipped. Every line is checked; the first
/// bad line is reported.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RulesError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let words = split_words(raw).map_err(|message| RulesError { line, message })?;
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        let op = parse_args(&words).map_err(|message| RulesError { line, message })?;
        out.push(Rule { line, op });
    }
    Ok(out)
}

/// Parse one command line (for example `-A -t 10.0.0.1:80 -s rr`).
pub fn parse_command(line: &str) -> Result<Op, RulesError> {
    let words = split_words(line).map_err(|message| RulesError { line: 0, message })?;
    parse_args(&words).map_err(|message| RulesError { line: 0, message })
}

/// Parse one command given as separate words (an argv without the
/// program name), e.g. `["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2"]`.
pub fn parse_words(words: &[String]) -> Result<Op, RulesError> {
    parse_args(words).map_err(|message| RulesError { line: 0, message })
}

/// Split a line into words on blanks, honouring double and single quotes
/// and backslash escapes.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    Zero,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::Zero => "zero",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arg {
    No,
    Required,
    Optional,
}

/// (long name, short name, argument, option id)
const OPTIONS: &[(&str, Option<char>, Arg, &str)] = &[
    ("add-service", Some('A'), Arg::No, "A"),
    ("edit-service", Some('E'), Arg::No, "E"),
    ("delete-service", Some('D'), Arg::No, "D"),
    ("clear", Some('C'), Arg::No, "C"),
    ("list", Some('L'), Arg::No, "L"),
    ("list", Some('l'), Arg::No, "L"),
    ("zero", Some('Z'), Arg::No, "Z"),
    ("add-server", Some('a'), Arg::No, "a"),
    ("edit-server", Some('e'), Arg::No, "e"),
    ("delete-server", Some('d'), Arg::No, "d"),
    ("set", None, Arg::No, "set"),
    ("help", Some('h'), Arg::No, "h"),
    ("version", Some('v'), Arg::No, "v"),
    ("restore", Some('R'), Arg::No, "R"),
    ("save", Some('S'), Arg::No, "S"),
    ("start-daemon", None, Arg::Required, "start-daemon"),
    ("stop-daemon", None, Arg::Required, "stop-daemon"),
    ("tcp-service", Some('t'), Arg::Required, "t"),
    ("udp-service", Some('u'), Arg::Required, "u"),
    ("sctp-service", None, Arg::Required, "sctp"),
    ("fwmark-service", Some('f'), Arg::Required, "f"),
    ("scheduler", Some('s'), Arg::Required, "s"),
    ("persistent", Some('p'), Arg::Optional, "p"),
    ("netmask", Some('M'), Arg::Required, "M"),
    ("real-server", Some('r'), Arg::Required, "r"),
    ("masquerading", Some('m'), Arg::No, "m"),
    ("ipip", Some('i'), Arg::No, "i"),
    ("gatewaying", Some('g'), Arg::No, "g"),
    ("weight", Some('w'), Arg::Required, "w"),
    ("u-threshold", Some('x'), Arg::Required, "x"),
    ("l-threshold", Some('y'), Arg::Required, "y"),
    ("numeric", Some('n'), Arg::No, "n"),
    ("connection", Some('c'), Arg::No, "c"),
    ("ipv6", Some('6'), Arg::No, "6"),
    ("ops", Some('o'), Arg::No, "o"),
    ("pe", None, Arg::Required, "pe"),
    ("sched-flags", Some('b'), Arg::Required, "b"),
    ("tun-type", None, Arg::Required, "tun-type"),
    ("tun-port", None, Arg::Required, "tun-port"),
    ("tun-nocsum", None, Arg::No, "tun-nocsum"),
    ("tun-csum", None, Arg::No, "tun-csum"),
    ("tun-remcsum", None, Arg::No, "tun-remcsum"),
    ("exact", Some('X'), Arg::No, "X"),
    ("stats", None, Arg::No, "stats"),
    ("rate", None, Arg::No, "rate"),
    ("timeout", None, Arg::No, "timeout"),
    ("daemon", None, Arg::No, "daemon"),
    ("thresholds", None, Arg::No, "thresholds"),
    ("persistent-conn", None, Arg::No, "persistent-conn"),
    ("nosort", None, Arg::No, "nosort"),
    ("sort", None, Arg::No, "sort"),
    ("tun-info", None, Arg::No, "tun-info"),
    ("mcast-interface", None, Arg::Required, "mcast-interface"),
    ("syncid", None, Arg::Required, "syncid"),
];

/// Option names as ipvsadm reports them in errors.
fn opt_name(id: &str) -> &'static str {
    match id {
        "t" | "u" | "sctp" | "f" => "service-address",
        "s" => "scheduler",
        "p" => "persistent",
        "M" => "netmask",
        "r" => "real-server",
        "m" | "i" | "g" => "forwarding-method",
        "w" => "weight",
        "x" => "u-threshold",
        "y" => "l-threshold",
        "n" => "numeric",
        "o" => "ops",
        "pe" => "pe",
        "b" => "sched-flags",
        "6" => "ipv6",
        "tun-type" => "tun-type",
        "tun-port" => "tun-port",
        "tun-nocsum" => "tun-nocsum",
        "tun-csum" => "tun-csum",
        "tun-remcsum" => "tun-remcsum",
        _ => "option",
    }
}

/// Which option groups a command allows (besides the service address).
fn allowed(cmd: Cmd, group: &str) -> bool {
    match cmd {
        Cmd::Add | Cmd::Edit => {
            matches!(
                group,
                "service-address"
                    | "scheduler"
                    | "persistent"
                    | "netmask"
                    | "ops"
                    | "pe"
                    | "sched-flags"
                    | "ipv6"
            )
        }
        Cmd::Del => matches!(group, "service-address" | "ipv6"),
        Cmd::AddDest | Cmd::EditDest => matches!(
            group,
            "service-address"
                | "ipv6"
                | "real-server"
                | "forwarding-method"
                | "weight"
                | "u-threshold"
                | "l-threshold"
                | "tun-type"
                | "tun-port"
                | "tun-nocsum"
                | "tun-csum"
                | "tun-remcsum"
        ),
        Cmd::DelDest => matches!(group, "service-address" | "ipv6" | "real-server"),
        Cmd::Zero => matches!(group, "service-address" | "ipv6"),
        Cmd::Flush | Cmd::Timeout => false,
    }
}

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

fn parse_args(words: &[String]) -> Result<Op, String> {
    // Expand into (option id, value) in order, plus positional arguments.
    let mut opts: Vec<(&'static str, Option<String>)> = Vec::new();
    let mut positional: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if let Some(long) = w.strip_prefix("--") {
            if long.is_empty() {
                positional.extend(words[i..].iter().cloned());
                break;
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(&(_, _, arg, id)) = OPTIONS.iter().find(|o| o.0 == name) else {
                return Err(format!("invalid option `--{name}'"));
            };
            let value = match (arg, inline) {
                (Arg::No, Some(_)) => return Err(format!("option `--{name}' takes no argument")),
                (Arg::No, None) => None,
                (_, Some(v)) => Some(v),
                (Arg::Required, None) => {
                    let v = words
                        .get(i)
                        .ok_or_else(|| format!("option `--{name}' requires an argument"))?;
                    i += 1;
                    Some(v.clone())
                }
                (Arg::Optional, None) => match words.get(i) {
                    Some(v) if !v.starts_with('-') => {
                        i += 1;
                        Some(v.clone())
                    }
                    _ => None,
                },
            };
            opts.push((id, value));
        } else if w.len() > 1 && w.starts_with('-') {
            let chars: Vec<char> = w[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some(&(_, _, arg, id)) = OPTIONS.iter().find(|o| o.1 == Some(c)) else {
                    return Err(format!("invalid option `-{c}'"));
                };
                let rest: String = chars[j..].iter().collect();
                let value = match arg {
                    Arg::No => None,
                    _ if !rest.is_empty() => {
                        j = chars.len();
                        Some(rest)
                    }
                    Arg::Required => {
                        let v = words
                            .get(i)
                            .ok_or_else(|| format!("option `-{c}' requires an argument"))?;
                        i += 1;
                        Some(v.clone())
                    }
                    Arg::Optional => match words.get(i) {
                        Some(v) if !v.starts_with('-') => {
                            i += 1;
                            Some(v.clone())
                        }
                        _ => None,
                    },
                };
                opts.push((id, value));
            }
        } else {
            positional.push(w.clone());
        }
    }

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
        let group = opt_name(id);
        if matches!(
            *id,
            "A" | "E" | "D" | "C" | "a" | "e" | "d" | "Z" | "set" | "L" | "S" | "R"
        ) {
            return Err("multiple commands specified".into());
        }
        if !allowed(cmd, group) {
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
            "w" => e.weight = number(&v, 0, 65535).ok_or("illegal weight specified")? as u32,
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

fn opt_flag(id: &str) -> String {
    if id.len() == 1 {
        format!("-{id}")
    } else {
        format!("--{id}")
    }
}

fn check_tunnel_options(t: TunnelType, opts: &[&str]) -> Result<(), String> {
    let csums: Vec<&&str> = opts.iter().filter(|o| o.ends_with("csum")).collect();
    let has_port = opts.contains(&"tun-port");
    match t {
        TunnelType::Ipip => {
            if let Some(o) = opts.first() {
                return Err(format!("Illegal '{o}' option with the 'ipip' tunnel type"));
            }
        }
        TunnelType::Gue => {
            if !has_port {
                return Err(
                    "You need to supply the 'tun-port' option for the 'gue' tunnel type".into(),
                );
            }
        }
        TunnelType::Gre => {
            if has_port {
                return Err("Illegal 'tun-port' option with the 'gre' tunnel type".into());
            }
            if opts.contains(&"tun-remcsum") {
                return Err("Illegal 'tun-remcsum' option with the 'gre' tunnel type".into());
            }
        }
    }
    if csums.len() > 1 {
        return Err(format!(
            "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
            csums[1],
            csums[0],
            t.name()
        ));
    }
    Ok(())
}

/// ipvsadm's `-b` names: flag-1..3 for any scheduler, sh-fallback/sh-port
/// for sh, mh-fallback/mh-port for mh.
pub fn parse_sched_flags(sched: &str, text: &str) -> Result<u32, String> {
    let mut flags = 0;
    for f in text.split(',') {
        let (bit, only) = match f {
            "flag-1" => (ServiceFlags::SCHED1, None),
            "flag-2" => (ServiceFlags::SCHED2, None),
            "flag-3" => (ServiceFlags::SCHED3, None),
            "sh-fallback" => (ServiceFlags::SCHED1, Some("sh")),
            "sh-port" => (ServiceFlags::SCHED2, Some("sh")),
            "mh-fallback" => (ServiceFlags::SCHED1, Some("mh")),
            "mh-port" => (ServiceFlags::SCHED2, Some("mh")),
            _ => return Err(format!("invalid scheduler flag `{f}'")),
        };
        if only.is_some_and(|s| s != sched) {
            return Err(format!("incompatible scheduler flag `{f}'"));
        }
        flags |= bit;
    }
    Ok(flags)
}

/// The service part of a rules line (`-t 1.2.3.4:80`, `-f 11 -6`). Marks
/// print as C's signed `%d`, like ipvsadm.
pub fn rule_service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let flag = match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{flag} {}", fmt_addr_port(addr, *port))
        }
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark,
        } => format!("-f {}", *mark as i32),
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark,
        } => format!("-f {} -6", *mark as i32),
    }
}

/// The options of a service line after the service (` -s rr -p 30 ...`),
/// in ipvsadm's order.
fn service_options(svc: &Service) -> String {
    let mut s = format!(" -s {}", svc.scheduler);
    if svc.is_persistent() {
        s.push_str(&format!(" -p {}", svc.timeout));
        if let Some(m) = netmask_text(svc) {
            s.push_str(&format!(" -M {m}"));
        }
    }
    if let Some(pe) = &svc.pe_name {
        s.push_str(&format!(" --pe {pe}"));
    }
    if svc.flags.has(ServiceFlags::ONEPACKET) {
        s.push_str(" -o");
    }
    let flags = sched_flag_names(&svc.scheduler, svc.flags);
    if !flags.is_empty() {
        s.push_str(&format!(" -b {}", flags.join(",")));
    }
    s
}

fn forward_switch(f: Forward) -> &'static str {
    match f {
        Forward::Masquerade => "-m",
        Forward::Tunnel => "-i",
        Forward::Route | Forward::Local => "-g",
        Forward::Bypass => "(null)",
    }
}

fn tunnel_options(d: &Destination) -> String {
    if d.forward != Forward::Tunnel {
        return String::new();
    }
    let csum = if d.tun_flags & TUN_FLAG_REMCSUM != 0 {
        "--tun-remcsum"
    } else if d.tun_flags & TUN_FLAG_CSUM != 0 {
        "--tun-csum"
    } else {
        "--tun-nocsum"
    };
    match d.tun_type {
        TunnelType::Ipip => " --tun-type ipip".into(),
        TunnelType::Gue => format!(" --tun-type gue --tun-port {} {csum}", d.tun_port),
        TunnelType::Gre => format!(" --tun-type gre {csum}"),
    }
}

/// A destination line exactly as `ipvsadm -S -n` prints it (no thresholds:
/// ipvsadm does not save them).
pub fn save_dest_line(key: &ServiceKey, d: &Destination) -> String {
    format!(
        "-a {} -r {} {} -w {}{}",
        rule_service_name(key),
        fmt_addr_port(&d.addr, d.port),
        forward_switch(d.forward),
        d.weight as i32,
        tunnel_options(d)
    )
}

/// `ipvsadm -S -n` for this table (sorted the way ipvsadm sorts).
pub fn render_save(table: &[(Service, Vec<Destination>)]) -> String {
    let (services, dests) = table_order(table);
    let mut out = String::with_capacity(table.len() * 200);
    for i in services {
        let (svc, ds) = &table[i];
        let _ = writeln!(
            out,
            "-A {}{}",
            rule_service_name(&svc.key),
            service_options(svc)
        );
        for &j in &dests[i] {
            out.push_str(&save_dest_line(&svc.key, &ds[j]));
            out.push('\n');
        }
    }
    out
}

/// An [`Op`] prints as the rules line that parses back to it. Unlike
/// `ipvsadm -S`, destination thresholds are kept (`-x`, `-y`).
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(s) => {
                write!(f, "-A {}{}", rule_service_name(&s.key), service_options(s))
            }
            Op::EditService(s) => {
                write!(f, "-E {}{}", rule_service_name(&s.key), service_options(s))
            }
            Op::DeleteService(k) => write!(f, "-D {}", rule_service_name(k)),
            Op::AddDestination(k, d) | Op::EditDestination(k, d) => {
                let flag = if matches!(self, Op::AddDestination(..)) {
                    "-a"
                } else {
                    "-e"
                };
                write!(
                    f,
                    "{flag} {} -r {} {} -w {}",
                    rule_service_name(k),
                    fmt_addr_port(&d.addr, d.port),
                    forward_switch(d.forward),
                    d.weight
                )?;
                if d.upper_threshold != 0 {
                    write!(f, " -x {}", d.upper_threshold)?;
                }
                if d.lower_threshold != 0 {
                    write!(f, " -y {}", d.lower_threshold)?;
                }
                f.write_str(&tunnel_options(d))
            }
            Op::DeleteDestination(k, d) => write!(
                f,
                "-d {} -r {}",
                rule_service_name(k),
                fmt_addr_port(&d.addr, d.port)
            ),
            Op::Flush => f.write_str("-C"),
            Op::Zero(None) => f.write_str("-Z"),
            Op::Zero(Some(k)) => write!(f, "-Z {}", rule_service_name(k)),
            Op::SetTimeouts(t) => write!(f, "--set {} {} {}", t.tcp, t.tcp_fin, t.udp),
        }
    }
}

/// The table as add operations (what restoring `render_save` output does).
pub fn table_to_ops(table: &[(Service, Vec<Destination>)]) -> Vec<Op> {
    let mut out = Vec::new();
    for (s, ds) in table {
        out.push(Op::AddService(s.clone()));
        for d in ds {
            out.push(Op::AddDestination(s.key, d.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
