//! ipvsadm's options: the table popt reads, which command allows which
//! option group, and the checks on tunnel options and scheduler flags.

use super::*;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Cmd {
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
    pub(super) fn name(self) -> &'static str {
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

/// How an ipvsadm option takes its value (popt's argument kinds).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Arg {
    No,
    Required,
    Optional,
}

/// ipvsadm 1.31's option table: (long name, short name, argument, option
/// id). The one copy: rules files and ipvsctl's ipvsadm mode both read it.
pub const OPTIONS: &[(&str, Option<char>, Arg, &str)] = &[
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
pub(super) fn opt_name(id: &str) -> &'static str {
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
pub(super) fn allowed(cmd: Cmd, group: &str) -> bool {
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

pub(super) fn opt_flag(id: &str) -> String {
    if id.len() == 1 {
        format!("-{id}")
    } else {
        format!("--{id}")
    }
}

pub(super) fn check_tunnel_options(t: TunnelType, opts: &[&str]) -> Result<(), String> {
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
