//! The agent endpoint of `rs-agent watch --agent-listen ADDR:PORT`: every
//! TCP connection gets one line and is closed, in the format of HAProxy's
//! agent-check (which lvs-director's `type = "agent"` check reads too):
//!
//! - `down#REASON`: a VIP is missing, an interface would answer ARP for a
//!   VIP, or the tunnel's receive side is broken: this server would drop or
//!   steal traffic;
//! - `drain`: drained (`rs-agent drain`), or out of sync with
//!   `--agent-on-drift drain`;
//! - `up`: otherwise.
//!
//! The endpoint reads nothing from the client. It runs on a thread of its
//! own with a blocking listener: one connection at a time, answered from
//! the watch's last verdict (kept current by events, repairs and the
//! interval) and the drain files (read per connection, so `rs-agent drain`
//! counts at once). Writing one short line into a fresh socket never
//! waits, so each connection costs microseconds and at most one is open:
//! concurrency is bounded by construction, and a flood only queues in the
//! listen backlog.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, warn};

use crate::drain::DrainFiles;
use crate::error::Error;

/// The longest line sent, newline included: lvs-director reads at most 64
/// bytes, HAProxy more.
pub const MAX_LINE: usize = 60;

/// Pending connections the kernel keeps for the endpoint.
const BACKLOG: u32 = 1024;

/// What to answer while out of sync but not broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnDrift {
    /// Keep answering `up` (the watch repairs the drift).
    #[default]
    Up,
    /// Answer `drain`: no new connections until the drift is gone.
    Drain,
}

/// One answer of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Up,
    Drain,
    /// With the first reason.
    Down(String),
}

impl Answer {
    pub fn word(&self) -> &'static str {
        match self {
            Answer::Up => "up",
            Answer::Drain => "drain",
            Answer::Down(_) => "down",
        }
    }

    /// The line sent: `up\n`, `drain\n` or `down#REASON\n`, at most
    /// [`MAX_LINE`] bytes, ASCII only (the reason cut short if needed).
    pub fn line(&self) -> String {
        match self {
            Answer::Down(reason) if !reason.is_empty() => {
                let room = MAX_LINE - "down#\n".len();
                let reason: String = reason
                    .chars()
                    .map(|c| {
                        if c.is_ascii_graphic() || c == ' ' {
                            c
                        } else {
                            '?'
                        }
                    })
                    .take(room)
                    .collect();
                format!("down#{}\n", reason.trim_end())
            }
            other => format!("{}\n", other.word()),
        }
    }
}

/// The answer for a state: broken wins over drained, drained over drift.
pub fn answer(broken: Option<&str>, in_sync: bool, drained: bool, on_drift: OnDrift) -> Answer {
    if let Some(reason) = broken {
        Answer::Down(reason.to_string())
    } else if drained || (!in_sync && on_drift == OnDrift::Drain) {
        Answer::Drain
    } else {
        Answer::Up
    }
}

/// The watch's last look at the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The first reason this server would drop or steal traffic.
    pub broken: Option<String>,
    pub in_sync: bool,
}

impl Verdict {
    /// Before the first look, or when looking failed.
    pub fn unknown(why: &str) -> Verdict {
        Verdict {
            broken: Some(why.to_string()),
            in_sync: false,
        }
    }
}

/// A bound listener, not answering yet.
pub struct Bound {
    listener: TcpListener,
    address: SocketAddr,
}

/// Binds `address` in the calling thread's network namespace. Must be
/// called inside the tokio runtime (the socket is set up through tokio's
/// API for a larger backlog); the endpoint itself needs no runtime.
pub fn bind(address: SocketAddr) -> Result<Bound, Error> {
    let error = |source| Error::Listen {
        address: address.to_string(),
        source,
    };
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(error)?;
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(address).map_err(error)?;
    let listener = socket
        .listen(BACKLOG)
        .map_err(error)?
        .into_std()
        .map_err(error)?;
    listener.set_nonblocking(false).map_err(error)?;
    let address = listener.local_addr().map_err(error)?;
    Ok(Bound { listener, address })
}

/// The running endpoint; dropping it leaves the thread answering until the
/// process exits.
pub struct Endpoint {
    verdict: Arc<Mutex<Verdict>>,
    pub address: SocketAddr,
}

impl Endpoint {
    /// Starts answering on a thread of its own.
    pub fn start(
        bound: Bound,
        drain: DrainFiles,
        on_drift: OnDrift,
        first: Verdict,
    ) -> Result<Endpoint, Error> {
        let verdict = Arc::new(Mutex::new(first));
        let shared = Arc::clone(&verdict);
        let Bound { listener, address } = bound;
        std::thread::Builder::new()
            .name("agent-endpoint".into())
            .spawn(move || serve(listener, &shared, &drain, on_drift))
            .map_err(|source| Error::Listen {
                address: address.to_string(),
                source,
            })?;
        Ok(Endpoint { verdict, address })
    }

    /// Replaces the verdict the endpoint answers from.
    pub fn update(&self, verdict: Verdict) {
        let mut current = self.verdict.lock().unwrap_or_else(|e| e.into_inner());
        if *current != verdict {
            debug!("agent endpoint: {verdict:?}");
            *current = verdict;
        }
    }
}

fn serve(listener: TcpListener, verdict: &Mutex<Verdict>, drain: &DrainFiles, on_drift: OnDrift) {
    let mut drain_warned = false;
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or memory: wait instead of spinning.
                warn!("agent endpoint: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let drained = match drain.load() {
            Ok(d) => d.is_some(),
            Err(e) => {
                // The operator tried to drain: err on the side of no new connections.
                if !drain_warned {
                    warn!("agent endpoint answers drain: {e}");
                    drain_warned = true;
                }
                true
            }
        };
        let current = verdict.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let line = answer(
            current.broken.as_deref(),
            current.in_sync,
            drained,
            on_drift,
        )
        .line();
        let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
        let _ = stream.write_all(line.as_bytes());
        let _ = stream.shutdown(Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_by_state() {
        assert_eq!(answer(None, true, false, OnDrift::Up), Answer::Up);
        assert_eq!(answer(None, false, false, OnDrift::Up), Answer::Up);
        assert_eq!(answer(None, false, false, OnDrift::Drain), Answer::Drain);
        assert_eq!(answer(None, true, true, OnDrift::Up), Answer::Drain);
        assert_eq!(
            answer(
                Some("VIP 203.0.113.10 is not on lo"),
                false,
                true,
                OnDrift::Drain
            ),
            Answer::Down("VIP 203.0.113.10 is not on lo".into())
        );
    }

    #[test]
    fn lines_are_short_ascii_and_end_in_newline() {
        assert_eq!(Answer::Up.line(), "up\n");
        assert_eq!(Answer::Drain.line(), "drain\n");
        assert_eq!(
            Answer::Down("VIP 203.0.113.10 is not on lo".into()).line(),
            "down#VIP 203.0.113.10 is not on lo\n"
        );
        let long = Answer::Down(format!("é{}", "x".repeat(200))).line();
        assert!(long.len() <= MAX_LINE, "{long}");
        assert!(
            long.starts_with("down#?x") && long.ends_with("x\n"),
            "{long}"
        );
        assert_eq!(Answer::Down(String::new()).line(), "down\n");
    }
}
