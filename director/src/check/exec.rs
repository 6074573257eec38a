//! The exec check: a command run without a shell, in a process group of its
//! own, killed with everything it started when it overruns, always reaped.
//! The child cannot become root: it runs as the script user (as root; see
//! `sys::drop_privileges`), with no capabilities, `no_new_privs`, 1024 open
//! files and an environment of `PATH`, `LVS_ADDRESS` and `LVS_PORT` alone
//! (not the daemon's `NOTIFY_SOCKET` and the like).

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};
use tokio::time::{Instant, sleep_until};

use super::CheckOutcome;
use super::reason::{io_reason, out_of_local_resources, printable, timeout_reason};
use crate::sys;

/// Bytes of stderr kept for the reason; the rest is read and discarded so a
/// chatty command never blocks on a full pipe.
pub(crate) const STDERR_CAP: usize = 4096;
/// The longest first line of stderr put in a reason.
const REASON_LINE_CAP: usize = 200;
/// How long to wait for a SIGKILLed child to be reaped before leaving it to
/// tokio's background reaper (a process stuck in uninterruptible sleep).
const REAP_GRACE: Duration = Duration::from_secs(5);

/// Runs `command` with `{address}` and `{port}` filled in; exit 0 = up.
pub(crate) async fn run(command: &[String], target: SocketAddr, timeout: Duration) -> CheckOutcome {
    let deadline = Instant::now() + timeout;
    let Some((program, args)) = command.split_first() else {
        return CheckOutcome::Down("exec: empty command".into());
    };
    let (address, port) = (target.ip().to_string(), target.port().to_string());
    let fill = |arg: &String| arg.replace("{address}", &address).replace("{port}", &port);
    let who = match sys::script_identity() {
        Ok(who) => who,
        // No user to run it as: the director's problem, not the server's.
        Err(e) => {
            return CheckOutcome::Skipped(format!("cannot start {program}: {}", io_reason(&e)));
        }
    };
    let mut cmd = Command::new(fill(program));
    cmd.args(args.iter().map(fill))
        .env_clear()
        .env("PATH", sys::SCRIPT_PATH)
        .env("LVS_ADDRESS", &address)
        .env("LVS_PORT", &port)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own group, so that one killpg reaches whatever it started.
        .process_group(0)
        // If this future is dropped (the daemon stops or drops the check),
        // the child is killed and tokio reaps it; GroupKill gets the rest.
        .kill_on_drop(true);
    sys::drop_privileges(&mut cmd, &who);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        // EAGAIN: the process limit, the director's shortage as EMFILE is.
        Err(e) if out_of_local_resources(&e) || e.raw_os_error() == Some(libc::EAGAIN) => {
            return CheckOutcome::Skipped(format!("cannot start {program}: {}", io_reason(&e)));
        }
        Err(e) => return CheckOutcome::Down(format!("cannot run {program}: {}", io_reason(&e))),
    };
    // Declared after `child`, so dropped before it: the group is killed
    // while its leader is still unreaped (its id cannot be reused).
    let mut group = GroupKill(child.id().map(|pid| pid as libc::pid_t));
    let mut stderr = Capture::new(child.stderr.take());

    let status = loop {
        tokio::select! {
            status = child.wait() => break Some(status),
            () = stderr.read_some(), if !stderr.done => {}
            () = sleep_until(deadline) => break None,
        }
    };
    // Whatever it left behind (a daemonised grandchild holding stderr open)
    // goes too: a check is one bounded run, not a way to start services.
    group.kill();
    let status = match status {
        Some(Ok(status)) => status,
        Some(Err(e)) => return CheckOutcome::Down(format!("exec: wait: {}", io_reason(&e))),
        None => {
            let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
            return CheckOutcome::Down(timeout_reason(timeout));
        }
    };
    // The writers are dead: the pipe ends soon. The deadline still bounds
    // this against one that escaped the group (setsid).
    while !stderr.done {
        tokio::select! {
            () = stderr.read_some() => {}
            () = sleep_until(deadline) => break,
        }
    }
    outcome(status, &stderr.kept)
}

fn outcome(status: ExitStatus, stderr: &[u8]) -> CheckOutcome {
    let what = match (status.code(), status.signal()) {
        (Some(0), _) => return CheckOutcome::Up,
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    };
    match first_line(stderr) {
        Some(line) => CheckOutcome::Down(format!("{what}: {line}")),
        None => CheckOutcome::Down(what),
    }
}

/// The first non-blank line, trimmed, its control characters escaped, and
/// cut to [`REASON_LINE_CAP`] bytes (on a character boundary).
fn first_line(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = printable(line);
    let mut end = line.len().min(REASON_LINE_CAP);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].to_string())
}

/// SIGKILL to a process group, at most once, and on drop if not done.
struct GroupKill(Option<libc::pid_t>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            crate::sys::kill_group(pgid);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a child's stderr: the first [`STDERR_CAP`] bytes kept, the rest
/// discarded.
struct Capture {
    pipe: Option<ChildStderr>,
    kept: Vec<u8>,
    done: bool,
}

impl Capture {
    fn new(pipe: Option<ChildStderr>) -> Self {
        let done = pipe.is_none();
        Self {
            pipe,
            kept: Vec::new(),
            done,
        }
    }

    /// One read (cancel-safe: a read that did not complete consumed
    /// nothing).
    async fn read_some(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            self.done = true;
            return;
        };
        let mut buf = [0u8; 1024];
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => {
                self.done = true;
                // Close our end now rather than with the check.
                self.pipe = None;
            }
            Ok(n) => {
                let room = STDERR_CAP - self.kept.len();
                self.kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}
