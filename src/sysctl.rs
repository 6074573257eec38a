//! The ARP sysctls, read and written through /proc/sys/net/ipv4/conf of the
//! calling thread's network namespace. Paths are built from the interface name
//! directly, so names with dots (eth0.100) need no dotted-notation escaping.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;

const CONF_DIR: &str = "/proc/sys/net/ipv4/conf";

/// The two ARP sysctls the agent manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArpKey {
    #[serde(rename = "arp_ignore")]
    Ignore,
    #[serde(rename = "arp_announce")]
    Announce,
}

impl ArpKey {
    pub const ALL: [ArpKey; 2] = [ArpKey::Ignore, ArpKey::Announce];

    pub fn file_name(self) -> &'static str {
        match self {
            ArpKey::Ignore => "arp_ignore",
            ArpKey::Announce => "arp_announce",
        }
    }

    /// The key's name in the `[arp]` table of the configuration.
    pub fn config_name(self) -> &'static str {
        match self {
            ArpKey::Ignore => "ignore",
            ArpKey::Announce => "announce",
        }
    }
}

/// One sysctl: `net.ipv4.conf.<interface>.<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SysctlKey {
    pub interface: String,
    pub key: ArpKey,
}

impl SysctlKey {
    pub fn new(interface: &str, key: ArpKey) -> Self {
        SysctlKey {
            interface: interface.to_string(),
            key,
        }
    }

    pub fn path(&self) -> PathBuf {
        [CONF_DIR, &self.interface, self.key.file_name()]
            .iter()
            .collect()
    }
}

impl fmt::Display for SysctlKey {
    /// sysctl(8) notation; a dot inside an interface name is written as `/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "net.ipv4.conf.{}.{}",
            self.interface.replace('.', "/"),
            self.key.file_name()
        )
    }
}

/// Whether `name` can be an entry of /proc/sys/net/ipv4/conf: a kernel
/// interface name (1 to 15 bytes, no `/` or whitespace, not `.` or `..`).
pub fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

pub fn read(key: &SysctlKey) -> Result<i32, Error> {
    let path = key.path();
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Sysctl {
        key: key.to_string(),
        action: "read",
        source,
    })?;
    text.trim().parse().map_err(|_| Error::Sysctl {
        key: key.to_string(),
        action: "parse",
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected content {:?}", text.trim()),
        ),
    })
}

pub fn write(key: &SysctlKey, value: i32) -> Result<(), Error> {
    std::fs::write(key.path(), format!("{value}\n")).map_err(|source| Error::Sysctl {
        key: key.to_string(),
        action: "write",
        source,
    })
}

/// The entries of /proc/sys/net/ipv4/conf: every interface, plus `all` and `default`.
pub fn conf_entries() -> Result<Vec<String>, Error> {
    let dir = std::fs::read_dir(CONF_DIR).map_err(|source| Error::Sysctl {
        key: CONF_DIR.to_string(),
        action: "list",
        source,
    })?;
    let mut names: Vec<String> = dir
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_interface_names_map_to_exact_paths() {
        let key = SysctlKey::new("eth0.100", ArpKey::Ignore);
        assert_eq!(
            key.path(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/arp_ignore")
        );
        assert_eq!(key.to_string(), "net.ipv4.conf.eth0/100.arp_ignore");
        assert_eq!(
            SysctlKey::new("all", ArpKey::Announce).to_string(),
            "net.ipv4.conf.all.arp_announce"
        );
    }

    #[test]
    fn interface_name_rules() {
        for good in ["all", "default", "lo", "eth0.100", "enp0s31f6", "a-b_c@d"] {
            assert!(valid_interface_name(good), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "eth0:1", "sixteen-chars-xx"] {
            assert!(!valid_interface_name(bad), "{bad}");
        }
    }
}
