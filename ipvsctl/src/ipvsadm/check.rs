//! ipvsadm's option bookkeeping: one command, each option at most once
//! ("multiple 'X' options specified"), then `generic_opt_check`: lvs-ipvs'
//! copy of ipvsadm's table of which command takes which option
//! ([`column_use`]), checked column by column in ipvsadm's order, so that
//! the first complaint is ipvsadm's.

use lvs_ipvs::rules::argv::Opt;
use lvs_ipvs::rules::options::{COLUMNS, ColumnUse, column_use, command_name, option_column};

/// While parsing (argv order): a second command is an invalid option, a
/// repeated column is "multiple". Then the table check.
pub fn check(cmd: &str, opts: &[Opt]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for o in opts {
        if command_name(o.id).is_some() {
            return Err(format!("invalid option `{}'", o.given));
        }
        if let Some(c) = option_column(o.id) {
            if seen.contains(&c) {
                return Err(format!("multiple '{c}' options specified"));
            }
            seen.push(c);
        }
    }
    let mut last: Option<&str> = None;
    for col in COLUMNS {
        let r = column_use(cmd, col);
        if !seen.contains(col) {
            if r == ColumnUse::Required {
                return Err(format!(
                    "You need to supply the '{col}' option for the '{cmd}' command"
                ));
            }
            continue;
        }
        match (r, last) {
            (ColumnUse::Illegal, _) => {
                return Err(format!("Illegal '{col}' option with the '{cmd}' command"));
            }
            (ColumnUse::OneOf, None) => last = Some(col),
            (ColumnUse::OneOf, Some(first)) => {
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
    use lvs_ipvs::rules::argv::parse;

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
