//! ipvsctl: an ipvsadm-compatible command line over the lvs-ipvs library.
//!
//! `list` and `save` print exactly what `ipvsadm -Ln` and `ipvsadm -Sn`
//! print; `restore` validates the whole input before touching the kernel
//! and puts the previous table back if the kernel rejects a line.
//! Exit codes follow ipvsadm: 0 success, 1 listing a missing service,
//! 2 bad command line or rules, 255 kernel error.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use lvs_ipvs::listing::{self, Columns, ListFormat};
use lvs_ipvs::rules;
use lvs_ipvs::{Daemon, Destination, Error, Handle, Op, Service};
use serde::Serialize;

use ipvsctl as cli;
mod ipvsadm;
mod restore;

use cli::{Cli, Cmd, ListArgs, Output, Raw};

/// A failure with ipvsadm's exit code.
pub(crate) struct Fail {
    code: u8,
    message: String,
}

impl Fail {
    pub(crate) fn usage(message: impl Into<String>) -> Fail {
        Fail {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        let code = match e {
            Error::InvalidNetnsName(_) => 2,
            _ => 255,
        };
        Fail {
            code,
            message: e.to_string(),
        }
    }
}

/// The ipvsctl options that keep subcommand mode when they come first.
fn own_option(a: &str) -> bool {
    a.starts_with("--netns") || matches!(a, "--help" | "-h" | "--version" | "-V")
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let prog = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("ipvsctl")
        .to_string();
    let by_name = matches!(
        prog.as_str(),
        "ipvsadm" | "ipvsadm-save" | "ipvsadm-restore"
    );
    let by_option = argv
        .get(1)
        .is_some_and(|a| a.starts_with('-') && !own_option(a));
    if by_name || by_option {
        return ExitCode::from(ipvsadm::main(&prog, &argv[1..]));
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Open the handle like ipvsadm (loading ip_vs once if needed).
pub(crate) fn connect(netns: &Option<String>) -> Result<Handle, Fail> {
    Ok(Handle::connect(netns.as_deref())?)
}

/// Take the namespace's table lock, so this run's changes (and a restore's
/// undo) never interleave with another ipvsctl or lvs-director run.
pub(crate) fn lock(netns: &Option<String>) -> Result<lvs_ipvs::LockGuard, Fail> {
    lvs_ipvs::lock_table(netns.as_deref(), None, lvs_ipvs::netns::LOCK_TIMEOUT).map_err(|e| Fail {
        code: 255,
        message: format!("ipvsctl: {e}"),
    })
}

fn parse_raw(prefix: &str, raw: &Raw) -> Result<Op, Fail> {
    let mut words = vec![prefix.to_string()];
    words.extend(raw.args.iter().cloned());
    rules::parse_words(&words).map_err(|e| Fail::usage(e.message))
}

fn run(cli: Cli) -> Result<(), Fail> {
    let single = |prefix: &str, raw: &Raw| parse_raw(prefix, raw);
    let op = match &cli.command {
        Cmd::List(a) => return list(&cli.netns, a),
        Cmd::Save => {
            let h = connect(&cli.netns)?;
            let table = h.table()?;
            print(&rules::render_save(&table));
            return Ok(());
        }
        Cmd::Restore { file } => return restore::restore(&cli.netns, file.as_deref()),
        Cmd::Flush => Op::Flush,
        Cmd::Zero(r) => single("-Z", r)?,
        Cmd::AddService(r) => single("-A", r)?,
        Cmd::EditService(r) => single("-E", r)?,
        Cmd::DeleteService(r) => single("-D", r)?,
        Cmd::AddServer(r) => single("-a", r)?,
        Cmd::EditServer(r) => single("-e", r)?,
        Cmd::DeleteServer(r) => single("-d", r)?,
        Cmd::SetTimeouts(r) => single("--set", r)?,
        Cmd::StartDaemon {
            state,
            mcast_interface,
            syncid,
        } => {
            let _lock = lock(&cli.netns)?;
            let h = connect(&cli.netns)?;
            let d = Daemon::new((*state).into(), mcast_interface.clone(), u32::from(*syncid));
            return Ok(h.start_daemon(&d)?);
        }
        Cmd::StopDaemon { state } => {
            let _lock = lock(&cli.netns)?;
            let h = connect(&cli.netns)?;
            return Ok(h.stop_daemon((*state).into())?);
        }
    };
    let _lock = lock(&cli.netns)?;
    let h = connect(&cli.netns)?;
    h.apply(&op).map_err(|e| Fail {
        code: 255,
        message: format!("{} ({e})", e.ipvsadm_message()),
    })
}

fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}

#[derive(Serialize)]
struct JsonService<'a> {
    #[serde(flatten)]
    service: &'a Service,
    destinations: &'a [Destination],
}

#[derive(Serialize)]
struct JsonTable<'a> {
    version: String,
    conn_tab_size: u32,
    services: Vec<JsonService<'a>>,
}

fn list(netns: &Option<String>, a: &ListArgs) -> Result<(), Fail> {
    let columns = if a.stats {
        Columns::Stats
    } else if a.rate {
        Columns::Rate
    } else if a.thresholds {
        Columns::Thresholds
    } else if a.persistent_conn {
        Columns::PersistentConn
    } else if a.tun_info {
        Columns::TunInfo
    } else {
        Columns::Plain
    };
    let fmt = ListFormat {
        columns,
        exact: a.exact,
        nosort: a.nosort,
    };
    // One service selected ipvsadm-style?
    let selector = if let Some(s) = &a.tcp {
        Some(format!("-t {s}"))
    } else if let Some(s) = &a.udp {
        Some(format!("-u {s}"))
    } else if let Some(s) = &a.sctp {
        Some(format!("--sctp-service {s}"))
    } else {
        a.fwmark
            .as_ref()
            .map(|m| format!("-f {m}{}", if a.ipv6 { " -6" } else { "" }))
    };
    let key = match &selector {
        Some(sel) => match rules::parse_command(&format!("-D {sel}")) {
            Ok(Op::DeleteService(k)) => Some(k),
            Ok(_) => unreachable!(),
            Err(e) => return Err(Fail::usage(e.message)),
        },
        None => None,
    };
    let h = connect(netns)?;
    if a.timeout {
        print(&listing::render_timeouts(&h.timeouts()?));
        return Ok(());
    }
    if a.daemon {
        print(&listing::render_daemons(&h.daemons()?));
        return Ok(());
    }
    let info = h.info()?;
    let table = match key {
        Some(k) => {
            let svc = match h.service(&k) {
                Ok(s) => s,
                Err(Error::NoSuchService { .. }) => {
                    return Err(Fail {
                        code: 1,
                        message: "No such service".into(),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let dests = h.destinations(&k)?;
            vec![(svc, dests)]
        }
        None => h.table()?,
    };
    if a.output == Output::Json {
        let mut t = table.clone();
        if !a.nosort {
            listing::sort_table(&mut t);
        }
        let doc = JsonTable {
            version: info.version_string(),
            conn_tab_size: info.conn_tab_size,
            services: t
                .iter()
                .map(|(s, d)| JsonService {
                    service: s,
                    destinations: d,
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| Fail::usage(e.to_string()))?;
        print(&format!("{text}\n"));
        return Ok(());
    }
    if key.is_some() {
        print(&listing::render_services(&table, &fmt));
    } else {
        print(&listing::render_list(&info, &table, &fmt));
    }
    Ok(())
}
