//! The director-wide keys of the file, for `lvs-director run`: `[announce]`
//! (the VIPs on a dummy interface for a routing daemon to export),
//! `health_file` (quorum for keepalived's `track_file`), `[sysctl]` (the
//! IPVS settings of the namespace), `[sync]` (the kernel's
//! connection-sync daemons) and `script_user` (who exec checks run as).
//! `lvs-director apply` ignores them.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::ConfigError;
use crate::raw::{RawAnnounce, RawSync, RawSysctl};
use crate::validate::Validator;

/// Where the daemon writes its quorum for keepalived unless the file says,
/// with the default control socket (see [`HealthFile::Beside`]).
pub const DEFAULT_HEALTH_FILE: &str = "/run/lvs-director/healthy";
pub const DEFAULT_HOLD_DOWN: Duration = Duration::from_secs(5);
pub const DEFAULT_WITHDRAW_GRACE: Duration = Duration::from_secs(2);
/// Longest hold_down / withdraw_grace accepted: beyond an hour a typo is
/// more likely than an intent (and a stop must not hang for days).
const MAX_HOLD_DOWN: f64 = 3600.0;
const MAX_WITHDRAW_GRACE: f64 = 300.0;

/// The director-wide part of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeConfig {
    pub announce: Option<Announce>,
    pub health_file: HealthFile,
    /// `net.ipv4.vs.NAME = value`, in [`SYSCTLS`] order.
    pub sysctl: Vec<(&'static str, u32)>,
    pub sync: Option<SyncConfig>,
    /// `script_user`: who exec checks run as (None: lvs-director's default,
    /// `lvs-check` where it exists, else `nobody`). Whether the user exists
    /// is the director's to find out, at start and reload: hence the
    /// position.
    pub script_user: Option<ScriptUser>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUser {
    pub name: String,
    pub at: crate::Position,
}

/// Where the quorum file goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HealthFile {
    /// No key: beside the control socket, named after it, so two daemons
    /// (`--netns`, tests with their own `--control`) never share one:
    /// `/run/lvs-director/control.sock` -> `/run/lvs-director/healthy`,
    /// `control-NAME.sock` -> `healthy-NAME`, other `X.sock` -> `X.healthy`.
    #[default]
    Beside,
    /// `health_file = ""`.
    Off,
    At(PathBuf),
}

impl HealthFile {
    /// The file for a daemon whose control socket is `control`.
    pub fn path(&self, control: &std::path::Path) -> Option<PathBuf> {
        match self {
            HealthFile::Off => None,
            HealthFile::At(p) => Some(p.clone()),
            HealthFile::Beside => {
                let name = control.file_name()?.to_string_lossy();
                let stem = name.strip_suffix(".sock").unwrap_or(&name);
                Some(match stem.strip_prefix("control") {
                    Some(rest) => control.with_file_name(format!("healthy{rest}")),
                    None => control.with_file_name(format!("{stem}.healthy")),
                })
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub interface: String,
    pub hold_down: Duration,
    pub withdraw_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncRole {
    Master,
    Backup,
    Both,
}

impl SyncRole {
    pub fn name(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
            SyncRole::Both => "both",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    pub role: SyncRole,
    pub interface: String,
    pub syncid: u8,
}

/// The IPVS sysctls the file may set, with the largest value each takes
/// (conn_reuse_mode is a bit mask of 1 and 2).
pub const SYSCTLS: [(&str, u32); 7] = [
    ("sloppy_tcp", 1),
    ("sloppy_sctp", 1),
    ("expire_nodest_conn", 1),
    ("expire_quiescent_template", 1),
    ("conn_reuse_mode", 3),
    ("schedule_icmp", 1),
    ("backup_only", 1),
];

/// Linux's rule for interface names (dev_valid_name): 1 to 15 bytes, not
/// "." or "..", no '/', ':' or white space.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

impl Validator<'_> {
    pub(super) fn node(
        &self,
        announce: Option<Spanned<RawAnnounce>>,
        health_file: Option<Spanned<String>>,
        sysctl: Option<RawSysctl>,
        sync: Option<Spanned<RawSync>>,
        script_user: Option<Spanned<String>>,
    ) -> Result<NodeConfig, ConfigError> {
        let mut node = NodeConfig::default();
        if let Some(u) = script_user {
            node.script_user = Some(self.script_user(&u)?);
        }
        if let Some(a) = announce {
            node.announce = Some(self.announce(a.into_inner())?);
        }
        if let Some(h) = health_file {
            node.health_file = self.health_file(&h)?;
        }
        if let Some(table) = sysctl {
            node.sysctl = self.sysctl(table)?;
        }
        if let Some(s) = sync {
            node.sync = Some(self.sync(s.into_inner())?);
        }
        Ok(node)
    }

    fn announce(&self, a: RawAnnounce) -> Result<Announce, ConfigError> {
        let interface = self.ifname(&a.interface)?;
        let hold_down = self.node_seconds(a.hold_down.as_ref(), "hold_down", MAX_HOLD_DOWN)?;
        let withdraw_grace = self.node_seconds(
            a.withdraw_grace.as_ref(),
            "withdraw_grace",
            MAX_WITHDRAW_GRACE,
        )?;
        Ok(Announce {
            interface,
            hold_down: hold_down.unwrap_or(DEFAULT_HOLD_DOWN),
            withdraw_grace: withdraw_grace.unwrap_or(DEFAULT_WITHDRAW_GRACE),
        })
    }

    fn health_file(&self, h: &Spanned<String>) -> Result<HealthFile, ConfigError> {
        let text = h.get_ref();
        if text.is_empty() {
            Ok(HealthFile::Off)
        } else if !text.starts_with('/') || text.ends_with('/') {
            self.err(
                h.span(),
                format!("health_file {text:?} is not an absolute file path (\"\" for none)"),
            )
        } else {
            Ok(HealthFile::At(PathBuf::from(text)))
        }
    }

    /// The `[sysctl]` settings in [`SYSCTLS`] order.
    fn sysctl(&self, table: RawSysctl) -> Result<Vec<(&'static str, u32)>, ConfigError> {
        let mut sysctl = Vec::new();
        for (key, value) in table {
            let Some(&(name, max)) = SYSCTLS.iter().find(|(n, _)| *n == key.get_ref()) else {
                let names: Vec<&str> = SYSCTLS.iter().map(|(n, _)| *n).collect();
                return self.err(
                    key.span(),
                    format!(
                        "[sysctl] {:?} is not one of {} (net.ipv4.vs.*)",
                        key.get_ref(),
                        names.join(", ")
                    ),
                );
            };
            let n = value
                .get_ref()
                .as_integer()
                .filter(|n| (0..=i64::from(max)).contains(n));
            let Some(n) = n else {
                return self.err(
                    value.span(),
                    format!(
                        "[sysctl] {name} = {} is not an integer in 0..={max}",
                        value.get_ref()
                    ),
                );
            };
            sysctl.push((name, n as u32));
        }
        sysctl.sort_by_key(|(n, _)| SYSCTLS.iter().position(|(s, _)| s == n));
        Ok(sysctl)
    }

    /// A name the C library could look up: what useradd takes, in short.
    fn script_user(&self, u: &Spanned<String>) -> Result<ScriptUser, ConfigError> {
        let name = u.get_ref();
        let fits = !name.is_empty()
            && name.len() <= 32
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
        if !fits {
            return self.err(
                u.span(),
                format!("script_user {name:?} is not a user name (1 to 32 of a-z, 0-9, _ - . $)"),
            );
        }
        Ok(ScriptUser {
            name: name.clone(),
            at: self.position(u.span().start),
        })
    }

    fn sync(&self, s: RawSync) -> Result<SyncConfig, ConfigError> {
        let role = match s.role.get_ref().as_str() {
            "master" => SyncRole::Master,
            "backup" => SyncRole::Backup,
            "both" => SyncRole::Both,
            other => {
                return self.err(
                    s.role.span(),
                    format!("[sync] role {other:?} is not one of \"master\", \"backup\", \"both\""),
                );
            }
        };
        let interface = self.ifname(&s.interface)?;
        let syncid = match &s.syncid {
            None => 0,
            Some(id) => self.int::<u8>(id, "syncid", 0, 255)?,
        };
        Ok(SyncConfig {
            role,
            interface,
            syncid,
        })
    }

    fn ifname(&self, name: &Spanned<String>) -> Result<String, ConfigError> {
        let n = name.get_ref();
        if valid_ifname(n) {
            Ok(n.clone())
        } else {
            self.err(
                name.span(),
                format!(
                    "interface {n:?} is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)"
                ),
            )
        }
    }

    fn node_seconds(
        &self,
        v: Option<&Spanned<toml::Value>>,
        name: &str,
        max: f64,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let s = match v.get_ref() {
            toml::Value::Float(f) => *f,
            toml::Value::Integer(i) => *i as f64,
            other => {
                return self.err(
                    v.span(),
                    format!("{name} = {other} is not a number of seconds"),
                );
            }
        };
        if !(0.0..=max).contains(&s) {
            return self.err(
                v.span(),
                format!("{name} = {s} is out of range (0..={max} seconds)"),
            );
        }
        Ok(Some(Duration::from_secs_f64(s)))
    }
}
