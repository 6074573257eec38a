//! lvs-director: the LVS director's command line.
//!
//! `apply` converges the kernel's IPVS table and the port-group nftables
//! table to a TOML file once; `run` does so and then keeps the real servers
//! checked (`cli_run`), `drain`/`undrain`/`status` talk to it. Exit codes:
//! `lvs_director::exit::Exit`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use lvs_director as director;
use lvs_director::cli::{ApplyArgs, Cli, Cmd, Output};
use lvs_director::exit::Exit;
use lvs_ipvs::Handle;

mod cli_run;

/// A failure and how the process exits on it.
struct Fail {
    exit: Exit,
    message: String,
}

impl Fail {
    fn usage(message: impl Into<String>) -> Fail {
        Fail {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
    fn kernel(message: impl Into<String>) -> Fail {
        Fail {
            exit: Exit::Kernel,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every subcommand logs the same way (`apply` too: the library warns).
    let _ = lvs_common::logging::init(
        "info",
        lvs_common::logging::Options {
            env_var: Some("LVS_DIRECTOR_LOG"),
            timestamps: true,
        },
    );
    let result = match &cli.command {
        Cmd::Apply(a) => apply(&cli.netns, a),
        Cmd::Run(a) => {
            one_malloc_arena();
            return with_runtime(|rt| cli_run::run(rt, cli.netns.as_deref(), a));
        }
        Cmd::Drain(a) => {
            return with_runtime(|rt| cli_run::drain(rt, cli.netns.as_deref(), a, true));
        }
        Cmd::Undrain(a) => {
            return with_runtime(|rt| cli_run::drain(rt, cli.netns.as_deref(), a, false));
        }
        Cmd::Withdraw(a) => {
            return with_runtime(|rt| cli_run::withdraw(rt, cli.netns.as_deref(), a, true));
        }
        Cmd::Announce(a) => {
            return with_runtime(|rt| cli_run::withdraw(rt, cli.netns.as_deref(), a, false));
        }
        Cmd::Status(a) => return with_runtime(|rt| cli_run::status(rt, cli.netns.as_deref(), a)),
    };
    match result {
        Ok(()) => Exit::Ok.into(),
        Err(f) => {
            eprintln!("{}", f.message);
            f.exit.into()
        }
    }
}

/// The daemon's three threads (the loop, the kernel's changes and reads)
/// share one glibc malloc arena: with one each, the memory a table read
/// freed on one thread stayed resident beside the loop's (the daemon's peak
/// is what sizes a director's memory). They rarely allocate at once.
///
/// Blocks of 256 KiB and more (a table read, the model's vectors) are
/// mapped on their own and unmapped when freed. Left to itself, glibc
/// raises that threshold to the largest block freed so far, and the next
/// model or table read then grows the heap around the live one.
fn one_malloc_arena() {
    lvs_director::sys::malloc_tunables(256 << 10);
}

/// The daemon and its control commands run on a single-threaded tokio
/// runtime; `apply` needs none.
fn with_runtime(f: impl FnOnce(&tokio::runtime::Runtime) -> ExitCode) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => f(&rt),
        Err(e) => {
            eprintln!("lvs-director: {e}");
            Exit::Kernel.into()
        }
    }
}

/// `lvs-director apply`: a bad file changes nothing (exit 2), nor does a
/// daemon answering on the control socket (exit 4, unless `--force`); a
/// failed change puts the previous IPVS table back (exit 255).
fn apply(netns: &Option<String>, a: &ApplyArgs) -> Result<(), Fail> {
    let config = director::load(&a.file).map_err(|e| Fail::usage(e.to_string()))?;
    if !a.dry_run {
        let socket = a
            .control
            .clone()
            .unwrap_or_else(|| director::control::default_path(netns.as_deref()));
        director::control::may_apply(&socket, a.force).map_err(|e| Fail {
            exit: Exit::Unavailable,
            message: format!("lvs-director apply: {e}"),
        })?;
    }
    // One run at a time per namespace (ipvsctl restore and the daemon take
    // the same lock): the rollback must see only this run's changes. A dry
    // run changes nothing and needs none.
    let _lock = if a.dry_run {
        None
    } else {
        Some(
            lvs_ipvs::lock_table(netns.as_deref(), None, lvs_ipvs::netns::LOCK_TIMEOUT)
                .map_err(|e| Fail::kernel(format!("lvs-director apply: {e}")))?,
        )
    };
    // Like ipvsadm: loads ip_vs once if the kernel has no IPVS yet.
    let h = Handle::connect(netns.as_deref())
        .map_err(|e| Fail::kernel(format!("lvs-director: {e}")))?;
    let nft = director::Nft::new(netns.as_ref().map(|n| format!("/run/netns/{n}").into()));
    let opts = director::ApplyOptions {
        dry_run: a.dry_run,
        prune: a.prune,
        remove: a.remove,
    };
    let report = director::apply(&h, &nft, &config, opts)
        .map_err(|e| Fail::kernel(format!("lvs-director apply: {e}")))?;
    let text = match a.output {
        Output::Text => report.render_text(),
        Output::Json => {
            serde_json::to_string_pretty(&report).map_err(|e| Fail::usage(e.to_string()))? + "\n"
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(())
}
