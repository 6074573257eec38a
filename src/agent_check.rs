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
//! The endpoint reads nothing from the client. It runs on a pool of
//! [`WORKERS`] threads of its own, each blocking in `accept` on the same
//! listener: at most that many connections are open at once, and the rest
//! wait in the listen backlog (bounded, [`BACKLOG`]) rather than being
//! closed, since a director whose check is closed unanswered counts the
//! server down, which is what a flood would want. Each answer comes from
//! the watch's last verdict (kept current by events, repairs and the
//! interval) and the drain files (read per connection, so `rs-agent drain`
//! counts at once), and its write has a deadline: a connection costs
//! microseconds, and one slow or stalled client holds one worker at most
//! for [`WRITE_DEADLINE`], never the director's check.
//!
//! `--agent-allow` lists who may ask: a connection from elsewhere is
//! closed without a word (before the drain files are read). `down#`
//! reasons name VIPs and interfaces, which are nobody else's business: by
//! default the line says only [`TERSE_DOWN`], the detail goes to the log,
//! and `--agent-verbose` sends it.

use std::io::Write;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::drain::DrainFiles;
use crate::error::Error;

/// The longest line sent, newline included: lvs-director reads at most 64
/// bytes, HAProxy more.
pub const MAX_LINE: usize = 60;

/// Pending connections the kernel keeps for the endpoint.
pub const BACKLOG: u32 = 1024;

/// Connections answered at once. Answering never waits on the client but
/// for the write (one line into an empty socket buffer, which does not
/// block in practice), so a few threads would do; 16 leave room for a
/// stalled disk under the drain files while costing a few hundred KiB.
pub const WORKERS: usize = 16;

/// The longest a worker spends writing one answer.
pub const WRITE_DEADLINE: Duration = Duration::from_millis(200);

/// A worker's stack: it formats one line.
const WORKER_STACK: usize = 64 << 10;

/// The `down#` reason sent without `--agent-verbose`: it names no VIP,
/// address or interface.
pub const TERSE_DOWN: &str = "this server would drop or steal traffic";

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
    /// The first reason this server would drop or steal traffic, in full
    /// (logged; sent with `--agent-verbose` only).
    pub broken: Option<String>,
    /// What is sent for `broken` otherwise.
    pub terse: &'static str,
    pub in_sync: bool,
}

impl Verdict {
    /// From the watch's look: `broken` names VIPs and interfaces.
    pub fn looked(broken: Option<String>, in_sync: bool) -> Verdict {
        Verdict {
            broken,
            terse: TERSE_DOWN,
            in_sync,
        }
    }

    /// Before the first look, when looking failed, or while stopping: a
    /// reason that names nothing, sent as is.
    pub fn unknown(why: &'static str) -> Verdict {
        Verdict {
            broken: Some(why.to_string()),
            terse: why,
            in_sync: false,
        }
    }

    /// The reason to send for `broken`, if any.
    pub fn reason(&self, verbose: bool) -> Option<&str> {
        self.broken
            .as_deref()
            .map(|detail| if verbose { detail } else { self.terse })
    }
}

/// One `--agent-allow` entry: an address, or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowNet {
    network: IpAddr,
    prefix: u8,
}

impl AllowNet {
    /// Whether `peer` is in this network; an IPv4 client of a dual-stack
    /// listener (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub fn contains(&self, peer: IpAddr) -> bool {
        match (self.network, peer.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for AllowNet {
    type Err = String;

    /// `ADDR` or `ADDR/PREFIX`; host bits set under the prefix are refused
    /// (`10.1.2.3/8` is more likely a typo than a wish for all of 10/8).
    fn from_str(text: &str) -> Result<AllowNet, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let written: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IP address"))?;
        // Matched as IPv4, like the clients it stands for.
        let network = written.to_canonical();
        if network != written && prefix.is_some() {
            return Err(format!("{text}: write an IPv4 network in IPv4"));
        }
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= bits)
                .ok_or_else(|| format!("prefix {p:?}: not a number from 0 to {bits}"))?,
        };
        let net = AllowNet { network, prefix };
        if !net.contains(network) {
            return Err(format!(
                "{text}: address bits set past the /{prefix} (the network is written with them zero)"
            ));
        }
        Ok(net)
    }
}

/// Who may ask: everyone when empty.
pub fn allowed(allow: &[AllowNet], peer: IpAddr) -> bool {
    allow.is_empty() || allow.iter().any(|net| net.contains(peer))
}

/// How the endpoint answers.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub on_drift: OnDrift,
    /// `--agent-allow`; empty answers everyone.
    pub allow: Vec<AllowNet>,
    /// `--agent-verbose`: `down#` with the full reason.
    pub verbose: bool,
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

/// The running endpoint; dropping it leaves the workers answering until
/// the process exits.
pub struct Endpoint {
    verdict: Arc<Mutex<Verdict>>,
    pub address: SocketAddr,
}

impl Endpoint {
    /// Starts answering on [`WORKERS`] threads of its own.
    pub fn start(
        bound: Bound,
        drain: DrainFiles,
        settings: Settings,
        first: Verdict,
    ) -> Result<Endpoint, Error> {
        log_down(None, &first);
        let verdict = Arc::new(Mutex::new(first));
        let Bound { listener, address } = bound;
        let error = |source| Error::Listen {
            address: address.to_string(),
            source,
        };
        let shared = Arc::new(Shared {
            verdict: Arc::clone(&verdict),
            drain,
            settings,
        });
        for i in 0..WORKERS {
            let listener = listener.try_clone().map_err(error)?;
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("agent-endpoint-{i}"))
                .stack_size(WORKER_STACK)
                .spawn(move || serve(&listener, &shared))
                .map_err(error)?;
        }
        Ok(Endpoint { verdict, address })
    }

    /// Replaces the verdict the endpoint answers from.
    pub fn update(&self, verdict: Verdict) {
        let mut current = self.verdict.lock().unwrap_or_else(|e| e.into_inner());
        if *current != verdict {
            debug!("agent endpoint: {verdict:?}");
            log_down(Some(&current), &verdict);
            *current = verdict;
        }
    }
}

/// The full reason of a `down` goes to the log, as the line may not carry it.
fn log_down(before: Option<&Verdict>, now: &Verdict) {
    let was = before.and_then(|v| v.broken.as_deref());
    match now.broken.as_deref() {
        Some(detail) if was != Some(detail) => info!("agent endpoint answers down: {detail}"),
        None if was.is_some() => info!("agent endpoint no longer answers down"),
        _ => {}
    }
}

/// What every worker answers from.
struct Shared {
    verdict: Arc<Mutex<Verdict>>,
    drain: DrainFiles,
    settings: Settings,
}

fn serve(listener: &TcpListener, shared: &Shared) {
    let Shared {
        verdict,
        drain,
        settings,
    } = shared;
    let mut drain_warned = false;
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, peer)) if allowed(&settings.allow, peer.ip()) => stream,
            // Closed unanswered: what is refused is not worth a log line
            // (a flood would fill the log).
            Ok((_, peer)) => {
                debug!("agent endpoint: {peer} is not in --agent-allow");
                continue;
            }
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
            current.reason(settings.verbose),
            current.in_sync,
            drained,
            settings.on_drift,
        )
        .line();
        let _ = stream.set_write_timeout(Some(WRITE_DEADLINE));
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

    #[test]
    fn reasons_are_terse_unless_verbose() {
        let broken = Verdict::looked(Some("VIP 203.0.113.10 is not on lo".into()), false);
        assert_eq!(broken.reason(false), Some(TERSE_DOWN));
        assert_eq!(broken.reason(true), Some("VIP 203.0.113.10 is not on lo"));
        let line = answer(broken.reason(false), false, false, OnDrift::Up).line();
        assert_eq!(line, format!("down#{TERSE_DOWN}\n"));
        assert!(!line.contains("203.0.113") && !line.contains(" lo"));
        // The agent's own states name nothing and are sent as they are.
        let stopping = Verdict::unknown("rs-agent watch is stopping");
        assert_eq!(stopping.reason(false), Some("rs-agent watch is stopping"));
        let fine = Verdict::looked(None, true);
        assert_eq!(fine.reason(false), None);
        assert!(TERSE_DOWN.len() + "down#\n".len() <= MAX_LINE);
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn allow_entries_parse_and_match() {
        let one: AllowNet = "198.51.100.1".parse().unwrap();
        assert!(one.contains(ip("198.51.100.1")));
        assert!(!one.contains(ip("198.51.100.2")));
        assert!(one.contains(ip("::ffff:198.51.100.1")));
        assert!(!one.contains(ip("2001:db8::1")));

        let net: AllowNet = "2001:db8::/64".parse().unwrap();
        assert!(net.contains(ip("2001:db8::1")));
        assert!(net.contains(ip("2001:db8::ffff:ffff:ffff:ffff")));
        assert!(!net.contains(ip("2001:db8:0:1::1")));
        assert!(!net.contains(ip("198.51.100.1")));

        let v4: AllowNet = "10.0.0.0/8".parse().unwrap();
        assert!(v4.contains(ip("10.255.0.1")) && !v4.contains(ip("11.0.0.1")));
        let all: AllowNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.7")) && !all.contains(ip("::1")));
        let all6: AllowNet = "::/0".parse().unwrap();
        assert!(all6.contains(ip("::1")));
        let mapped: AllowNet = "::ffff:192.0.2.1".parse().unwrap();
        assert!(mapped.contains(ip("192.0.2.1")));

        for bad in [
            "10.1.2.3/8",
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "host.example",
            "10.0.0.0/-1",
            "::ffff:10.0.0.0/104",
        ] {
            assert!(bad.parse::<AllowNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_empty_allow_list_answers_everyone() {
        assert!(allowed(&[], ip("203.0.113.7")));
        let list = [
            "198.51.100.1".parse().unwrap(),
            "2001:db8::/64".parse().unwrap(),
        ];
        assert!(allowed(&list, ip("198.51.100.1")));
        assert!(allowed(&list, ip("2001:db8::9")));
        assert!(!allowed(&list, ip("198.51.100.2")));
        assert!(!allowed(&list, ip("::1")));
    }
}
