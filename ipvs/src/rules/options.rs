//! ipvsadm's options, the one table of them: what popt reads
//! ([`OPTIONS`]), the names ipvsadm's messages give them ([`option_name`],
//! [`command_name`]), which command takes which ([`column_use`]); and the
//! checks on tunnel options and scheduler flags.

use crate::table::{ServiceFlags, TunnelType};

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
    /// The rules command of a command option; the error for any other
    /// option (`given`: the first word, as written).
    pub(super) fn from_id(id: &str, given: &str) -> Result<Cmd, String> {
        Ok(match id {
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
                return Err(format!("command `{given}' is not supported in rules"));
            }
            other => {
                return Err(format!(
                    "the first option must be a command, not `{}'",
                    opt_flag(other)
                ));
            }
        })
    }

    /// ipvsadm's name of the command ([`command_name`]).
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
/// id). The id is the short name, or the long name of an option without
/// one; the functions below take ids.
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

/// ipvsadm's option columns (`optnames[]` in ipvsadm.c), in its order:
/// the names its messages give options, and the columns of its table of
/// which command takes which option ([`column_use`]).
pub const COLUMNS: &[&str] = &[
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
    "sched-flags",
    "tun-info",
];

/// The column of an option, by its id in [`OPTIONS`]. `None` for the
/// options ipvsadm does not check against its table: the commands, `-6`
/// and `--sort`.
pub fn option_column(id: &str) -> Option<&'static str> {
    Some(match id {
        "n" => "numeric",
        "c" => "connection",
        "t" | "u" | "sctp" | "f" => "service-address",
        "s" => "scheduler",
        "p" => "persistent",
        "M" => "netmask",
        "r" => "real-server",
        "m" | "i" | "g" => "forwarding-method",
        "w" => "weight",
        "x" => "u-threshold",
        "y" => "l-threshold",
        "X" => "exact",
        "o" => "ops",
        "b" => "sched-flags",
        "6" | "sort" => return None,
        other => COLUMNS.iter().find(|c| **c == other)?,
    })
}

/// An option's name in messages ("Illegal 'weight' option ..."): its
/// column, else its long name (`-6` is "ipv6").
pub fn option_name(id: &str) -> &'static str {
    option_column(id)
        .or_else(|| OPTIONS.iter().find(|o| o.3 == id).map(|o| o.0))
        .unwrap_or("option")
}

/// The command a command option names, as ipvsadm's messages name it
/// (`A` is "add-service"); `None` for an option that is not a command.
pub fn command_name(id: &str) -> Option<&'static str> {
    Some(match id {
        "A" => "add-service",
        "E" => "edit-service",
        "D" => "delete-service",
        "C" => "flush",
        "L" => "list",
        "a" => "add-server",
        "d" => "delete-server",
        "e" => "edit-server",
        "set" => "set",
        "start-daemon" => "start-daemon",
        "stop-daemon" => "stop-daemon",
        "R" => "restore",
        "S" => "save",
        "Z" => "zero",
        "h" => "help",
        "v" => "version",
        _ => return None,
    })
}

/// What a command makes of an option column: one letter of ipvsadm's
/// `commands_v_options` table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ColumnUse {
    /// ' ': may be given.
    Optional,
    /// '+': must be given.
    Required,
    /// 'x': must not be given.
    Illegal,
    /// '1': at most one of the columns so marked.
    OneOf,
}

/// ipvsadm's table of which command (by [`command_name`]) takes which
/// column (one of [`COLUMNS`]).
pub fn column_use(command: &str, column: &str) -> ColumnUse {
    use ColumnUse::*;
    let tun = matches!(
        column,
        "tun-type" | "tun-port" | "tun-nocsum" | "tun-csum" | "tun-remcsum"
    );
    match command {
        "add-service" | "edit-service" => match column {
            "service-address" => Required,
            "scheduler" | "persistent" | "netmask" | "ops" | "pe" | "sched-flags" => Optional,
            _ => Illegal,
        },
        "delete-service" => match column {
            "service-address" => Required,
            _ => Illegal,
        },
        "list" => match column {
            "connection" | "service-address" | "timeout" | "daemon" => OneOf,
            "numeric" | "stats" | "rate" | "thresholds" | "persistent-conn" | "nosort"
            | "exact" | "tun-info" => Optional,
            _ => Illegal,
        },
        "add-server" | "edit-server" => match column {
            "service-address" | "real-server" => Required,
            "forwarding-method" | "weight" | "u-threshold" | "l-threshold" => Optional,
            _ if tun => Optional,
            _ => Illegal,
        },
        "delete-server" => match column {
            "service-address" | "real-server" => Required,
            _ => Illegal,
        },
        "start-daemon" => match column {
            "mcast-interface" | "syncid" => Optional,
            _ => Illegal,
        },
        "stop-daemon" => match column {
            "syncid" => Optional,
            _ => Illegal,
        },
        "save" => match column {
            "numeric" => Optional,
            _ => Illegal,
        },
        "zero" => match column {
            "service-address" => Optional,
            _ => Illegal,
        },
        _ => Illegal,
    }
}

/// Whether a rules command takes an option. `-6` has no column: it goes
/// wherever a service address may, since it only qualifies `-f`.
pub(super) fn allowed(cmd: Cmd, id: &str) -> bool {
    let column = if id == "6" {
        Some("service-address")
    } else {
        option_column(id)
    };
    column.is_some_and(|c| column_use(cmd.name(), c) != ColumnUse::Illegal)
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
