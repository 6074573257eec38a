//! The clap definition of ipvsctl's subcommands: the crate's library, used
//! by the binary and by packaging/gen-docs (man page, completions, from
//! [`command`]). ipvsadm mode (src/ipvsadm/) does not go through clap: it
//! parses argv the way ipvsadm 1.31 does.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use lvs_ipvs::DaemonState;

/// What `ipvsctl --help` prints after the subcommands.
pub const AFTER_HELP: &str = "\
ipvsadm mode: invoked as `ipvsadm`, `ipvsadm-save` or `ipvsadm-restore` (a
symlink or hard link to ipvsctl), or with an ipvsadm option as its first
argument (`ipvsctl -A -t 203.0.113.10:80 -s rr`, `ipvsctl -Lnc`), ipvsctl
accepts ipvsadm 1.31's command lines (short, clustered and long options,
-L/-l, -c, --sort, --exact, -6, --ops, --pe, -b, -R, -S, -h, -v, sync
daemons) with ipvsadm's output, error messages and exit codes (0 ok, 1
missing service on a listing, 2 bad command line, 255 kernel error).
Addresses and ports are numeric only: names are neither resolved in input
nor printed (as if -n were always given).";

/// The clap command of ipvsctl (subcommand mode).
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Parser, Debug)]
#[command(
    name = "ipvsctl",
    version,
    after_help = AFTER_HELP,
    about = "ipvsadm-compatible control of the kernel's IPVS table"
)]
pub struct Cli {
    /// Work in this network namespace (/run/netns/NAME).
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
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
pub enum Role {
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
pub struct Raw {
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IPVSADM_OPTIONS"
    )]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Packet and byte counters.
    #[arg(long, group = "cols")]
    pub stats: bool,
    /// Rates.
    #[arg(long, group = "cols")]
    pub rate: bool,
    /// Upper and lower thresholds.
    #[arg(long, group = "cols")]
    pub thresholds: bool,
    /// Persistent connection counts.
    #[arg(long = "persistent-conn", group = "cols")]
    pub persistent_conn: bool,
    /// Tunnel information.
    #[arg(long = "tun-info", group = "cols")]
    pub tun_info: bool,
    /// Exact numbers instead of K, M, G, T.
    #[arg(long, short = 'X')]
    pub exact: bool,
    /// Kernel order instead of ipvsadm's.
    #[arg(long)]
    pub nosort: bool,
    /// Print the connection timeouts instead.
    #[arg(long, group = "cols")]
    pub timeout: bool,
    /// Print the sync daemons instead.
    #[arg(long, group = "cols")]
    pub daemon: bool,
    /// Only this TCP service.
    #[arg(short = 't', long = "tcp-service", group = "svc")]
    pub tcp: Option<String>,
    /// Only this UDP service.
    #[arg(short = 'u', long = "udp-service", group = "svc")]
    pub udp: Option<String>,
    /// Only this SCTP service.
    #[arg(long = "sctp-service", group = "svc")]
    pub sctp: Option<String>,
    /// Only this firewall-mark service.
    #[arg(
        short = 'f',
        long = "fwmark-service",
        group = "svc",
        allow_hyphen_values = true
    )]
    pub fwmark: Option<String>,
    /// The firewall-mark service is IPv6.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Accepted for ipvsadm compatibility (output is always numeric).
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}
