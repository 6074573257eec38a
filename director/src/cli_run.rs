//! The daemon's subcommands: `run` (the daemon itself) and the control
//! clients `drain`, `undrain`, `withdraw`, `announce` and `status`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use lvs_director::control::{self, Reply, Request};
use lvs_director::daemon::{self, Options};
use lvs_director::exit::Exit;

use lvs_director::cli::{ControlArgs, DrainArgs, Output, RunArgs, StatusArgs};

/// `lvs-director run`: 0 after SIGTERM/SIGINT, 2 for a bad file or
/// command line, 4 when the control socket or metrics address is taken,
/// 255 when the kernel cannot be used.
pub fn run(rt: &tokio::runtime::Runtime, netns: Option<&str>, a: &RunArgs) -> ExitCode {
    if !(0.5..=86400.0).contains(&a.sync_interval) {
        eprintln!("lvs-director run: --sync-interval must be 0.5 to 86400 seconds");
        return Exit::Usage.into();
    }
    // The whole daemon works inside the namespace (the checks too, so they
    // leave from the director's side): enter it before any thread starts.
    if let Some(ns) = netns
        && let Err(e) = lvs_common::netns::enter(ns)
    {
        eprintln!("lvs-director run: {e}");
        return Exit::Unavailable.into();
    }
    // What the daemon holds only for its exec checks' children stays
    // permitted, not effective: its own work needs CAP_NET_ADMIN and
    // CAP_NET_RAW alone. Before any other thread exists (per-thread sets).
    if let Err(e) = lvs_director::sys::lower_effective() {
        tracing::warn!("capabilities: cannot lower the effective set: {e}");
    }
    let opts = Options {
        config: a.config.clone(),
        netns: None,
        control: a
            .control
            .clone()
            .unwrap_or_else(|| control::default_path(netns)),
        metrics: a.metrics,
        prune: a.prune,
        sync_interval: Duration::from_secs_f64(a.sync_interval),
        max_in_flight: a.max_in_flight,
    };
    match rt.block_on(daemon::run(opts)) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            tracing::error!("{e}");
            e.exit().into()
        }
    }
}

/// Sends one request; prints the reply (JSON or text). Exit 0 when the
/// daemon said ok, 1 when it refused, 4 when it cannot be reached.
fn ask(
    rt: &tokio::runtime::Runtime,
    netns: Option<&str>,
    path: &Option<PathBuf>,
    req: Request,
    output: Output,
) -> ExitCode {
    let path = path.clone().unwrap_or_else(|| control::default_path(netns));
    let reply = match rt.block_on(control::request(&path, &req)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("lvs-director: {e}");
            return Exit::Unavailable.into();
        }
    };
    let ok = reply.ok();
    let text = match (output, &reply) {
        (Output::Json, _) => serde_json::to_string_pretty(&reply).unwrap_or_default() + "\n",
        (Output::Text, Reply::Refused { error, .. }) => {
            eprintln!("lvs-director: {error}");
            return Exit::Refused.into();
        }
        (Output::Text, Reply::Status { status, .. }) => status.to_text(),
        // Quoted, as the JSON string it was printed as before replies were typed.
        (Output::Text, Reply::Done { message, .. }) => {
            format!("ok: {}\n", serde_json::Value::from(message.as_str()))
        }
        (Output::Text, Reply::Changed { changed, .. }) => {
            format!("ok: {changed} services changed\n")
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if ok {
        Exit::Ok.into()
    } else {
        Exit::Refused.into()
    }
}

pub fn drain(
    rt: &tokio::runtime::Runtime,
    netns: Option<&str>,
    a: &DrainArgs,
    on: bool,
) -> ExitCode {
    let (service, server) = (a.service.clone(), a.server.clone());
    // Refuse a malformed selector here, before bothering the daemon.
    if let Err(e) = control::parse_service(&service).and_then(|_| control::parse_server(&server)) {
        eprintln!("lvs-director: {e}");
        return Exit::Usage.into();
    }
    let req = if on {
        Request::Drain { service, server }
    } else {
        Request::Undrain { service, server }
    };
    ask(rt, netns, &a.control, req, Output::Text)
}

/// `withdraw` (on) or `announce` (off) the whole director.
pub fn withdraw(
    rt: &tokio::runtime::Runtime,
    netns: Option<&str>,
    a: &ControlArgs,
    on: bool,
) -> ExitCode {
    let req = if on {
        Request::Withdraw
    } else {
        Request::Announce
    };
    ask(rt, netns, &a.control, req, Output::Text)
}

pub fn status(rt: &tokio::runtime::Runtime, netns: Option<&str>, a: &StatusArgs) -> ExitCode {
    ask(rt, netns, &a.control, Request::Status, a.output)
}
