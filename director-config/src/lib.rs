//! The director's TOML configuration: read with serde into a raw form that
//! keeps source positions, then validated into [`DirectorConfig`]. Every
//! error names `file:line:column`; nothing is applied unless the whole file
//! is valid.
//!
//! ```toml
//! [[service]]
//! vip = "10.1.252.73"        # the virtual IP (also what rs-agent puts on lo)
//! protocol = "tcp"           # tcp (default), udp or sctp
//! port = 80                  # one port; 0 = every port (needs persistence)
//! scheduler = "wrr"          # default wlc
//!
//! [[service.server]]
//! address = "10.1.252.74"
//! forward = "dr"             # dr (default), tun or nat
//! weight = 1
//!
//! [[service]]
//! vip = "10.1.252.73"
//! ports = [80, 3306]         # a port group: one firewall-mark service
//! mark = 11                  # optional; derived from VIP, protocol and ports if absent
//! persistence = 60           # seconds
//! ```
//!
//! The modules, in the order a file goes through them:
//! - `load`: cuts the file into parts (the text before the first
//!   `[[service]]`, then one part per service) and parses them one at a
//!   time; runs the checks that span services (duplicate keys and ports,
//!   derived marks); on a reload, takes over the services of unchanged parts;
//! - `raw`: every key of the file as serde reads it, with its span;
//! - `validate`: the `Validator`, which turns a span into `file:line:column`;
//!   `service`, `parts`, `checks` and `node` validate with it;
//! - `service`: one `[[service]]` on its own: address and ports, scheduler
//!   and flags, persistence, servers and checks, health keys;
//! - `parts`: one real server, a service's health keys, VIP and scheduler
//!   names;
//! - `checks`: `[service.check]` and `[service.server.check]`, merged into
//!   one [`CheckSpec`](check::CheckSpec) per server;
//! - `node`: the director-wide keys (`[announce]`, `health_file`,
//!   `[sysctl]`, `[sync]`, `script_user`) into [`NodeConfig`];
//! - `validated`: what a valid file becomes ([`DirectorConfig`],
//!   [`ServiceConfig`], [`PortGroup`]) and what is derived from it ([`vips`],
//!   [`derived_mark`]);
//! - [`check`]: what a health check is; public, for lvs-director to run them.

pub mod check;
mod checks;
mod load;
mod node;
mod parts;
mod raw;
mod service;
mod validate;
mod validated;

pub use load::{Reuse, load, load_reusing, parse, parse_reusing};

pub use node::{
    Announce, DEFAULT_HEALTH_FILE, HealthFile, NodeConfig, SYSCTLS, ScriptUser, SyncConfig,
    SyncRole, valid_ifname,
};

pub use service::{DEFAULT_SCHEDULER, MAX_PERSISTENCE};

pub use validated::{
    AUTO_MARK_BASE, AUTO_MARK_SPAN, DirectorConfig, ExecProgram, OnFailure, PortGroup, Position,
    ServiceConfig, derived_mark, protocol_name, vips,
};

/// A configuration error with its position in the file (`file:line:column:
/// message`; the whole file when its line is 0): lvs-common's, shared with
/// rs-agent.
pub use lvs_common::config_error::ConfigError;

/// Where the systemd unit reads the director's configuration.
pub const DEFAULT_DIRECTOR_CONFIG: &str = "/etc/lvs-director/director.toml";

#[cfg(test)]
mod tests;
