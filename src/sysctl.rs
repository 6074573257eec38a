//! The per-interface conf sysctls, read and written through
//! /proc/sys/net/ipv{4,6}/conf of the calling thread's network namespace.
//! Paths come from [`SysctlKey::path`], so names with dots (eth0.100) need
//! no dotted-notation escaping.

use crate::domain::{Family, SysctlKey};
use crate::error::Error;

pub fn read(key: &SysctlKey) -> Result<i32, Error> {
    let text = std::fs::read_to_string(key.path()).map_err(|source| Error::Sysctl {
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

/// The entries of /proc/sys/net/<family>/conf: every interface, plus `all`
/// and `default`, sorted.
pub fn conf_entries(family: Family) -> Result<Vec<String>, Error> {
    let dir = std::fs::read_dir(family.conf_dir()).map_err(|source| Error::Sysctl {
        key: family.conf_dir().to_string(),
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
