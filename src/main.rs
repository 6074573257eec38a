//! The `rs-agent` command line. Errors are mapped to the exit codes listed in
//! README.md (see `rs_agent::exit_code`); logs go to stderr, results to stdout.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lvs_common::{logging, netns};
use rs_agent::agent_check::Settings as AgentSettings;
use rs_agent::cli::{Cli, Command};
use rs_agent::commands::{self, Context, Output};
use rs_agent::watch::{WatchOptions, watch};
use rs_agent::{Error, exit_code};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e.exit_code();
            eprintln!("rs-agent: error: {e}");
            match cli.output {
                Output::Json => {
                    let report = serde_json::json!({ "error": e.to_string(), "exit_code": code });
                    println!("{report}");
                }
                // The textfile collector then shows the failure instead of
                // stale values (the cron line writes stdout whatever the code).
                Output::Prometheus => {
                    println!(
                        "# rs-agent check failed (exit {code}): {}",
                        e.to_string().replace('\n', " ")
                    );
                    println!("# HELP rs_agent_check_error 1 when rs-agent check could not run.");
                    println!("# TYPE rs_agent_check_error gauge");
                    println!("rs_agent_check_error 1");
                }
                Output::Text => {}
            }
            ExitCode::from(code)
        }
    }
}

/// Warnings and errors by default (a command's output is its result), more
/// with -v; RS_AGENT_LOG (or RUST_LOG) overrides. No timestamps: journald
/// stamps the watch's lines, and a command's need none.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let options = logging::Options {
        env_var: Some("RS_AGENT_LOG"),
        timestamps: false,
    };
    // Only fails if a subscriber is set already: none is, this early.
    let _ = logging::init(level, options);
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
        persist_dir: cli.persist_dir.clone(),
        output: cli.output,
    };
    if cli.output == Output::Prometheus && !matches!(cli.command, Command::Check { .. }) {
        return Err(Error::Usage(
            "--output prometheus is for check only".to_string(),
        ));
    }
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
                agent_listen,
                agent_on_drift,
                agent_allow,
                agent_verbose,
                no_repair,
            } => {
                let options = WatchOptions {
                    config_path: config.clone(),
                    interval: Duration::from_secs_f64(*interval),
                    rollback_on_exit: *rollback_on_exit,
                    agent_listen: *agent_listen,
                    agent: AgentSettings {
                        on_drift: *agent_on_drift,
                        allow: agent_allow.clone(),
                        verbose: *agent_verbose,
                    },
                    repair: !*no_repair,
                };
                watch(&ctx, &options).await?;
                Ok(exit_code::OK)
            }
            Command::Drain { reason, persistent } => {
                commands::drain(&ctx, reason.as_deref(), *persistent)?.print(ctx.output);
                Ok(exit_code::OK)
            }
            Command::Undrain => {
                commands::undrain(&ctx)?.print(ctx.output);
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
        Output::Prometheus => print!("{}", status.to_prometheus()),
    }
}
