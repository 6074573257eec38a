//! ipvsadm's option bookkeeping: one command, each option at most once
//! ("multiple 'X' options specified"), and its table of which command
//! takes which option (`generic_opt_check`: '+' required, 'x' illegal,
//! '1' at most one of them), checked column by column in ipvsadm's order.

use super::argv::Opt;

/// ipvsadm's option columns, in its order.
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

/// The column of an option id (None: no column, like -6 and --sort).
pub fn column(id: &str) -> Option<&'static str> {
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

/// The command name of a command option id, as ipvsadm names it.
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

/// What the command makes of a column: '+', 'x', '1' or ' '.
fn rule(cmd: &str, col: &str) -> char {
    let tun = matches!(
        col,
        "tun-type" | "tun-port" | "tun-nocsum" | "tun-csum" | "tun-remcsum"
    );
    match cmd {
        "add-service" | "edit-service" => match col {
            "service-address" => '+',
            "scheduler" | "persistent" | "netmask" | "ops" | "pe" | "sched-flags" => ' ',
            _ => 'x',
        },
        "delete-service" => match col {
            "service-address" => '+',
            _ => 'x',
        },
        "list" => match col {
            "connection" | "service-address" | "timeout" | "daemon" => '1',
            "numeric" | "stats" | "rate" | "thresholds" | "persistent-conn" | "nosort"
            | "exact" | "tun-info" => ' ',
            _ => 'x',
        },
        "add-server" | "edit-server" => match col {
            "service-address" | "real-server" => '+',
            "forwarding-method" | "weight" | "u-threshold" | "l-threshold" => ' ',
            _ if tun => ' ',
            _ => 'x',
        },
        "delete-server" => match col {
            "service-address" | "real-server" => '+',
            _ => 'x',
        },
        "start-daemon" => match col {
            "mcast-interface" | "syncid" => ' ',
            _ => 'x',
        },
        "stop-daemon" => match col {
            "syncid" => ' ',
            _ => 'x',
        },
        "save" => match col {
            "numeric" => ' ',
            _ => 'x',
        },
        "zero" => match col {
            "service-address" => ' ',
            _ => 'x',
        },
        _ => 'x',
    }
}

/// While parsing (argv order): a second command is an invalid option, a
/// repeated column is "multiple". Then the table check.
pub fn check(cmd: &str, opts: &[Opt]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for o in opts {
        if command_name(o.id).is_some() {
            return Err(format!("invalid option `{}'", o.given));
        }
        if let Some(c) = column(o.id) {
            if seen.contains(&c) {
                return Err(format!("multiple '{c}' options specified"));
            }
            seen.push(c);
        }
    }
    let mut last: Option<&str> = None;
    for col in COLUMNS {
        let r = rule(cmd, col);
        if !seen.contains(col) {
            if r == '+' {
                return Err(format!(
                    "You need to supply the '{col}' option for the '{cmd}' command"
                ));
            }
            continue;
        }
        match (r, last) {
            ('x', _) => return Err(format!("Illegal '{col}' option with the '{cmd}' command")),
            ('1', None) => last = Some(col),
            ('1', Some(first)) => {
                return Err(format!(
                    "The option '{col}' conflicts with the '{first}' option in the '{cmd}' command"
                ));
            }
            _ => {}
        }
    }
    if cmd == "list" {
        let has = |c: &str| seen.contains(&c);
        let columns = has("stats") || has("rate") || has("thresholds");
        if ((has("connection") || has("timeout") || has("daemon")) && columns)
            || ((has("timeout") || has("daemon")) && has("persistent-conn"))
        {
            return Err("options conflicts in the list command".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvsadm::argv::parse;

    fn run(line: &str) -> Result<(), String> {
        let w: Vec<String> = line.split_whitespace().map(String::from).collect();
        let p = parse(&w);
        check(command_name(p.opts[0].id).unwrap(), &p.opts[1..])
    }

    #[test]
    fn ipvsadm_messages() {
        assert_eq!(
            run("-A -t 1.2.3.4:80 -c").unwrap_err(),
            "Illegal 'connection' option with the 'add-service' command"
        );
        assert_eq!(
            run("-A -D -t 1.2.3.4:80").unwrap_err(),
            "invalid option `-D'"
        );
        assert_eq!(
            run("-Ln -n").unwrap_err(),
            "multiple 'numeric' options specified"
        );
        assert_eq!(
            run("-L --timeout --daemon").unwrap_err(),
            "The option 'daemon' conflicts with the 'timeout' option in the 'list' command"
        );
        assert_eq!(
            run("-Lnc -t 1.2.3.4:80").unwrap_err(),
            "The option 'service-address' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(
            run("-Lnc --stats").unwrap_err(),
            "options conflicts in the list command"
        );
        assert!(run("-Lnc --persistent-conn").is_ok());
        assert!(run("-Lnc --tun-info").is_ok());
        assert_eq!(
            run("--stop-daemon backup --mcast-interface d0").unwrap_err(),
            "Illegal 'mcast-interface' option with the 'stop-daemon' command"
        );
        assert_eq!(
            run("-a -t 1.2.3.4:80").unwrap_err(),
            "You need to supply the 'real-server' option for the 'add-server' command"
        );
    }
}
