//! The clap definition of the `lvs-director` command line: parsed by the
//! binary, and the source of its man page and shell completions
//! (packaging/gen-docs).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// The clap command of lvs-director.
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Parser, Debug)]
#[command(
    name = "lvs-director",
    version,
    about = "The LVS director: IPVS services and real servers from a TOML file"
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
    /// Make the director match a TOML file once (services, port groups, real
    /// servers): changes are edits in place; prints the plan.
    Apply(ApplyArgs),
    /// Run in the foreground: converge as apply does, then check every real
    /// server and keep its weight (0 while failed); SIGHUP reloads.
    Run(RunArgs),
    /// Drain a real server by hand (weight 0) through the running daemon.
    Drain(DrainArgs),
    /// Lift a drain set by `drain`.
    Undrain(DrainArgs),
    /// Take the whole director out of service: every VIP of [announce] off
    /// its interface (held on lo for withdraw_grace), the health file 1;
    /// the table and the checks stay. Until `announce` or a restart.
    Withdraw(ControlArgs),
    /// Undo `withdraw`: servable VIPs go back on the interface at once.
    Announce(ControlArgs),
    /// The running daemon's services and servers: health, weight, last check.
    Status(StatusArgs),
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Director configuration (see director/README.md).
    pub file: PathBuf,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete services that are not in the file.
    #[arg(long)]
    pub prune: bool,
    /// Delete the file's services and the nftables table instead.
    #[arg(long, conflicts_with = "prune")]
    pub remove: bool,
    /// Output format of the plan.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Change the table even while a daemon (`run`) answers on the control
    /// socket: it would undo the daemon's health decisions until its next
    /// sync.
    #[arg(long)]
    pub force: bool,
    /// The control socket of a daemon that refuses the apply (default as
    /// for `run`).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Director configuration (see director/README.md).
    #[arg(long, value_name = "FILE", default_value = crate::DEFAULT_DIRECTOR_CONFIG)]
    pub config: PathBuf,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Control socket (default /run/lvs-director/control.sock, or
    /// control-NAME.sock with --netns NAME).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Also delete services that are not in the file.
    #[arg(long)]
    pub prune: bool,
    /// Seconds between two full syncs (read the table, correct drift,
    /// retry refused changes).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub sync_interval: f64,
    /// Checks running at once at most.
    #[arg(long, value_name = "N", default_value_t = crate::check::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
}

#[derive(Args, Debug)]
pub struct DrainArgs {
    /// The service: tcp:VIP:PORT (or VIP:PORT), udp:VIP:PORT, fwmark:MARK, or * for all.
    pub service: String,
    /// The real server: ADDRESS or ADDRESS:PORT.
    pub server: String,
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ControlArgs {
    /// The daemon's control socket (default as for `run`).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}
