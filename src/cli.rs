//! The clap definition of the `rs-agent` command line: parsed by the binary,
//! and the source of its man page and shell completions (packaging/gen-docs).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::agent_check::{AllowNet, OnDrift};
use crate::commands::Output;
use crate::config::DEFAULT_CONFIG_PATH;
use crate::drain::DEFAULT_PERSIST_DIR;
use crate::state::DEFAULT_STATE_DIR;

/// The clap command of rs-agent.
pub fn command() -> clap::Command {
    Cli::command()
}

/// The exit codes (rs_agent::exit_code), as README.md lists them.
const EXIT_CODES: &str = "\
Exit codes:
  0  success; for check: in sync
  1  check: drift (the output says what)
  2  bad command line or invalid configuration; nothing changed
  3  missing privileges (root or CAP_NET_ADMIN; CAP_SYS_ADMIN for --netns); nothing changed
  4  the system's state forbids the run (VIP on another interface, unknown interface,
     unknown --netns, unreadable rollback record, lock held for over 60 s, kernel
     without the tunnel's module, FOU port taken, agent endpoint address in use);
     nothing changed
  5  a system call failed midway; this run's changes were undone
  6  a system call failed and undoing failed too: the message lists what to fix by hand
  7  reading the system failed (netlink dump, sysctl, netlink socket); nothing changed";

#[derive(Parser)]
#[command(
    name = "rs-agent",
    version,
    about = "Prepares a real server for LVS direct routing or tunnel mode: VIPs on lo, ARP sysctls, tunnel receive side, drain, clean rollback",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Work inside the network namespace /run/netns/NAME (like `ip -n NAME`).
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,
    /// Directory of the rollback records (one per network namespace).
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Directory of the drains kept across reboots (drain --persistent).
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_PERSIST_DIR)]
    pub persist_dir: PathBuf,
    /// Output format of the result on stdout (prometheus: check only).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub output: Output,
    /// More log output on stderr (-v: what changes, -vv: debugging).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Converge to the configuration: ARP sysctls set, every VIP on lo.
    Start {
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Print what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Undo what rs-agent did in this namespace, from its rollback record.
    Stop {
        /// Accepted for symmetry with start; stop works from the record alone.
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Show desired against actual: VIPs, sysctls, ARP in force per interface.
    Status {
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Probe for monitoring: exit 0 in sync, 1 on drift, another code on error.
    Check {
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Converge like start, then stay in the foreground repairing drift.
    Watch {
        #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Seconds between checks of the ARP sysctls (they emit no event).
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_interval)]
        interval: f64,
        /// On SIGTERM or SIGINT, undo everything as `stop` does before exiting.
        #[arg(long)]
        rollback_on_exit: bool,
        /// Answer HAProxy-style agent checks (up, drain, down) on this TCP
        /// address, e.g. 198.51.100.11:5555 or [2001:db8::11]:5555.
        #[arg(long, value_name = "ADDR:PORT")]
        agent_listen: Option<SocketAddr>,
        /// The agent endpoint's answer while out of sync but not broken.
        #[arg(long, value_enum, default_value = "up", requires = "agent_listen")]
        agent_on_drift: OnDrift,
        /// Answer only clients from this address or network (ADDR or
        /// ADDR/PREFIX, repeatable), e.g. the directors; others are closed
        /// unanswered. Unset: everyone is answered.
        #[arg(long, value_name = "ADDR[/PREFIX]", requires = "agent_listen")]
        agent_allow: Vec<AllowNet>,
        /// Send the full reason of a down (it names VIPs and interfaces);
        /// without it the line only says down and the log has the detail.
        #[arg(long, requires = "agent_listen")]
        agent_verbose: bool,
        /// Only observe and answer the agent endpoint; change nothing.
        #[arg(long, requires = "agent_listen", conflicts_with = "rollback_on_exit")]
        no_repair: bool,
    },
    /// Ask for no new connections: the agent endpoint answers `drain`.
    Drain {
        /// Shown by status and logged.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Keep the drain across reboots (in --persist-dir), not only until
        /// the next boot (in --state-dir, under /run).
        #[arg(long)]
        persistent: bool,
    },
    /// Lift a drain (runtime and persistent).
    Undrain,
}

pub fn parse_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.1..=3600.0).contains(&v) => Ok(v),
        _ => Err("expected a number of seconds between 0.1 and 3600".to_string()),
    }
}
