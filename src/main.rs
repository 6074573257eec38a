//! The `rs-agent` command line. Errors are mapped to the exit codes listed in
//! README.md (see `rs_agent::exit_code`); logs go to stderr, results to stdout.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lvs_common::netns;
use rs_agent::commands::{self, Context, Output};
use rs_agent::config::DEFAULT_CONFIG_PATH;
use rs_agent::state::DEFAULT_STATE_DIR;
use rs_agent::watch::{WatchOptions, watch};
use rs_agent::{Error, exit_code};

/// The exit codes (rs_agent::exit_code), as README.md lists them.
const EXIT_CODES: &str = "\
Exit codes:
  0  success; for check: in sync
  1  check: drift (the output says what)
  2  bad command line or invalid configuration; nothing changed
  3  missing privileges (root or CAP_NET_ADMIN; CAP_SYS_ADMIN for --netns); nothing changed
  4  the system's state forbids the run (VIP on another interface, unknown interface,
     unknown --netns, unreadable rollback record, lock held for over 60 s); nothing changed
  5  a system call failed midway; this run's changes were undone
  6  a system call failed and undoing failed too: the message lists what to fix by hand
  7  reading the system failed (netlink dump, sysctl, netlink socket); nothing changed";

#[derive(Parser)]
#[command(
    name = "rs-agent",
    version,
    about = "Prepares a real server for LVS direct routing: VIPs on lo, ARP sysctls, clean rollback",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Work inside the network namespace /run/netns/NAME (like `ip -n NAME`).
    #[arg(long, global = true, value_name = "NAME")]
    netns: Option<String>,
    /// Directory of the rollback records (one per network namespace).
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Output format of the result on stdout.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
    /// More log output on stderr (-v: what changes, -vv: debugging).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    },
}

fn parse_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.1..=3600.0).contains(&v) => Ok(v),
        _ => Err("expected a number of seconds between 0.1 and 3600".to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            eprintln!("rs-agent: error: {e}");
            if cli.output == Output::Json {
                let report = serde_json::json!({ "error": e.to_string(), "exit_code": code });
                println!("{report}");
            }
            ExitCode::from(code)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RS_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
}

fn run(cli: &Cli) -> Result<u8, Error> {
    // Before any thread exists, so the runtime and every socket live there.
    if let Some(name) = &cli.netns {
        netns::enter(name)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::netlink("starting the runtime", e))?;
    let ctx = Context {
        state_dir: cli.state_dir.clone(),
        output: cli.output,
    };
    runtime.block_on(async {
        match &cli.command {
            Command::Start { config, dry_run } => {
                commands::start(&ctx, config, *dry_run)
                    .await?
                    .print(ctx.output);
                Ok(exit_code::OK)
            }
            Command::Stop { dry_run, .. } => {
                commands::stop(&ctx, *dry_run).await?.print(ctx.output);
                Ok(exit_code::OK)
            }
            Command::Status { config } => {
                let status = commands::report(&ctx, config).await?;
                print_status(&status, ctx.output);
                Ok(exit_code::OK)
            }
            Command::Watch {
                config,
                interval,
                rollback_on_exit,
            } => {
                let options = WatchOptions {
                    config_path: config.clone(),
                    interval: Duration::from_secs_f64(*interval),
                    rollback_on_exit: *rollback_on_exit,
                };
                watch(&ctx, &options).await?;
                Ok(exit_code::OK)
            }
            Command::Check { config } => {
                let status = commands::report(&ctx, config).await?;
                print_status(&status, ctx.output);
                Ok(commands::check_code(&status))
            }
        }
    })
}

fn print_status(status: &rs_agent::status::Status, output: Output) {
    match output {
        Output::Text => print!("{}", status.to_text()),
        Output::Json => println!("{}", serde_json::to_string(status).unwrap_or_default()),
    }
}
