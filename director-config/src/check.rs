//! What a health check is, as validated from the director file: the
//! configuration builds these; lvs-director's `check` module runs them.

use std::path::PathBuf;
use std::time::Duration;

/// One check, fully resolved for one real server (the service's
/// `[service.check]` with the server's `[service.server.check]` override
/// applied and defaults filled in).
///
/// Two servers with equal `(address, CheckSpec)` share one running check:
/// the same check of the same address used by several services runs once
/// per interval. Hence `Eq + Hash`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckSpec {
    pub kind: CheckKind,
    /// Seconds between the starts of two checks of one server.
    pub interval: Duration,
    /// A check that has not succeeded after this long has failed.
    pub timeout: Duration,
    /// Consecutive successes to become healthy.
    pub rise: u32,
    /// Consecutive failures to become failed.
    pub fall: u32,
    /// Port to check (default: the server's port; the service port in DR).
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// Always healthy.
    None,
    /// A TCP connect (and close) within the timeout.
    Tcp,
    /// `type = "tcp"` with `half_open = true`: a SYN from a raw socket; a
    /// SYN-ACK within the timeout is up, a RST "connection refused". No
    /// connection is established, the application never sees it. Runs as
    /// [`CheckKind::Tcp`] where raw sockets are unavailable.
    TcpHalfOpen,
    /// An HTTP(S) GET.
    Http(HttpCheck),
    /// A command, never through a shell; exit 0 = healthy. Placeholders
    /// `{address}` and `{port}` in the arguments are filled in.
    Exec { command: Vec<String> },
    /// The real server's own verdict from `rs-agent watch --agent-listen`:
    /// one line `up`, `drain` or `down`.
    Agent,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HttpCheck {
    /// true for https.
    pub tls: bool,
    pub path: String,
    /// Accepted status codes as inclusive ranges (default 200-399).
    pub expect_status: Vec<(u16, u16)>,
    /// A substring the body must contain.
    pub expect_body: Option<String>,
    /// Host header and TLS SNI (default: the address).
    pub host: Option<String>,
    /// Verify the server's certificate (https; default true).
    pub verify_tls: bool,
    /// Extra CA bundle (PEM) for verification, besides the system's roots.
    pub ca_file: Option<PathBuf>,
}
