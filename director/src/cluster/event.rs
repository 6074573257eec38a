//! What the cluster tells the log: a server's health changed, a sorry
//! server went in or out.

use std::fmt;
use std::net::IpAddr;

use lvs_ipvs::table::{ServiceKey, fmt_addr_port};

/// Something worth one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Server {
        service: ServiceKey,
        server: (IpAddr, u16),
        from: &'static str,
        to: &'static str,
        reason: String,
    },
    Sorry {
        service: ServiceKey,
        sorry: IpAddr,
        active: bool,
        healthy: usize,
        quorum: u32,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Server {
                service,
                server,
                from,
                to,
                reason,
            } => write!(
                f,
                "service {service} server {}: {from} -> {to} ({reason})",
                fmt_addr_port(&server.0, server.1)
            ),
            Event::Sorry {
                service,
                sorry,
                active,
                healthy,
                quorum,
            } => {
                let what = if *active {
                    "quorum lost, sorry server in"
                } else {
                    "quorum back, sorry server out"
                };
                write!(
                    f,
                    "service {service}: {what} ({sorry}; {healthy} healthy, quorum {quorum})"
                )
            }
        }
    }
}
