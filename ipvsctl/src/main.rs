//! ipvsctl: an ipvsadm-compatible command line over the lvs-ipvs library.
//!
//! `list` and `save` print exactly what `ipvsadm -Ln` and `ipvsadm -Sn`
//! print; `restore` validates the whole input before touching the kernel
//! and puts the previous table back if the kernel rejects a line.
//! Exit codes follow ipvsadm: 0 success, 1 listing a missing service,
//! 2 bad command line or rules, 255 kernel error.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lvs_ipvs::listing::{self, Columns, ListFormat};
use lvs_ipvs::rules;
use lvs_ipvs::{Daemon, DaemonState, Destination, Error, Handle, Op, Service};
use serde::Serialize;

mod restore;

#[derive(Parser, Debug)]
#[command(
    name = "ipvsctl",
    version,
    about = "ipvsadm-compatible control of the kernel's IPVS table"
)]
struct Cli {
    /// Work in this network namespace (/run/netns/NAME).
    #[arg(long, global = true, value_name = "NAME")]
    netns: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print the table like `ipvsadm -L -n`.
    List(ListArgs),
    /// Print the rules like `ipvsadm -S -n`.
    Save,
    /// Apply rules (ipvsadm -R syntax) from FILE or standard input,
    /// all-or-nothing.
    Restore {
        /// Rules file (default: standard input).
        file: Option<std::path::PathBuf>,
    },
    /// Delete every service (`ipvsadm -C`).
    Flush,
    /// Zero the counters of all services or of one (`ipvsadm -Z`).
    Zero(Raw),
    /// `ipvsadm -A` with ipvsadm's options (-t|-u|--sctp-service|-f, -s, -p, -M, -b, --pe, -o, -6).
    #[command(name = "add-service", visible_alias = "A")]
    AddService(Raw),
    /// `ipvsadm -E` with ipvsadm's options.
    #[command(name = "edit-service", visible_alias = "E")]
    EditService(Raw),
    /// `ipvsadm -D`.
    #[command(name = "delete-service", visible_alias = "D")]
    DeleteService(Raw),
    /// `ipvsadm -a` (-r, -g|-i|-m, -w, -x, -y, --tun-*).
    #[command(name = "add-server", visible_alias = "a")]
    AddServer(Raw),
    /// `ipvsadm -e`.
    #[command(name = "edit-server", visible_alias = "e")]
    EditServer(Raw),
    /// `ipvsadm -d`.
    #[command(name = "delete-server", visible_alias = "d")]
    DeleteServer(Raw),
    /// `ipvsadm --set TCP TCPFIN UDP`.
    #[command(name = "set-timeouts")]
    SetTimeouts(Raw),
    /// `ipvsadm --start-daemon master|backup`: start a connection-sync daemon.
    #[command(name = "start-daemon")]
    StartDaemon {
        #[arg(value_enum)]
        state: Role,
        /// Multicast interface.
        #[arg(long = "mcast-interface", default_value = "eth0")]
        mcast_interface: String,
        /// Sync id (0 accepts every id on a backup).
        #[arg(long, default_value_t = 0)]
        syncid: u8,
    },
    /// `ipvsadm --stop-daemon master|backup`.
    #[command(name = "stop-daemon")]
    StopDaemon {
        #[arg(value_enum)]
        state: Role,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Role {
    Master,
    Backup,
}

impl From<Role> for DaemonState {
    fn from(r: Role) -> DaemonState {
        match r {
            Role::Master => DaemonState::Master,
            Role::Backup => DaemonState::Backup,
        }
    }
}

/// ipvsadm options, passed through to the rules parser.
#[derive(Args, Debug)]
struct Raw {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IPVSADM_OPTIONS"
    )]
    args: Vec<String>,
}

#[derive(Args, Debug)]
struct ListArgs {
    /// Packet and byte counters.
    #[arg(long, group = "cols")]
    stats: bool,
    /// Rates.
    #[arg(long, group = "cols")]
    rate: bool,
    /// Upper and lower thresholds.
    #[arg(long, group = "cols")]
    thresholds: bool,
    /// Persistent connection counts.
    #[arg(long = "persistent-conn", group = "cols")]
    persistent_conn: bool,
    /// Tunnel information.
    #[arg(long = "tun-info", group = "cols")]
    tun_info: bool,
    /// Exact numbers instead of K, M, G, T.
    #[arg(long, short = 'X')]
    exact: bool,
    /// Kernel order instead of ipvsadm's.
    #[arg(long)]
    nosort: bool,
    /// Print the connection timeouts instead.
    #[arg(long, group = "cols")]
    timeout: bool,
    /// Print the sync daemons instead.
    #[arg(long, group = "cols")]
    daemon: bool,
    /// Only this TCP service.
    #[arg(short = 't', long = "tcp-service", group = "svc")]
    tcp: Option<String>,
    /// Only this UDP service.
    #[arg(short = 'u', long = "udp-service", group = "svc")]
    udp: Option<String>,
    /// Only this SCTP service.
    #[arg(long = "sctp-service", group = "svc")]
    sctp: Option<String>,
    /// Only this firewall-mark service.
    #[arg(
        short = 'f',
        long = "fwmark-service",
        group = "svc",
        allow_hyphen_values = true
    )]
    fwmark: Option<String>,
    /// The firewall-mark service is IPv6.
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
    /// Accepted for ipvsadm compatibility (output is always numeric).
    #[arg(short = 'n', long)]
    numeric: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

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

fn main() -> ExitCode {
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
