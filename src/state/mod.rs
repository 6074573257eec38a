//! The rollback record: what the agent changed in one network namespace, so
//! `stop` can undo exactly that. One JSON file per namespace under the state
//! directory (tmpfs /run by default: it vanishes at reboot together with the
//! addresses and sysctls it describes), replaced atomically (write, fsync,
//! rename), and guarded by an exclusive lock so concurrent runs serialize.
//!
//! Format version 2 names the interface of every address and the family of
//! every sysctl; version 1 (rs-agent before it) is read and migrated
//! ([`v1`]), so an agent upgraded while its changes are in place still
//! undoes them. Version 3 adds what tunnel mode creates (FOU ports, tunnel
//! devices); a record that holds none of that is still written as version
//! 2, which the previous release reads, so going back stays possible.

pub mod v1;

use std::collections::HashSet;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lvs_common::lock::{self, LockGuard};
use serde::{Deserialize, Serialize};

use crate::domain::{AddressSpec, FouPort, SysctlKey, valid_interface_name, valid_sysctl_name};
use crate::error::Error;
pub use crate::error::RecordError;

pub const DEFAULT_STATE_DIR: &str = "/run/rs-agent";

/// The newest version this agent reads and writes.
pub const FORMAT_VERSION: u64 = 3;

/// The version of records without tunnel-mode entries.
pub const FORMAT_VERSION_DR: u64 = 2;

/// How long a run waits for another run in the same namespace to finish.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Replaces the file at `path` with `text` atomically, mode 0600 (only
/// root reads what the agent keeps): lvs-common's replace, which never
/// follows a link planted at the name and syncs the directory.
pub(crate) fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    lvs_common::file::replace(path, text.as_bytes(), 0o600)
}

/// What the agent changed, and what was there before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Sysctls the agent changed: the value before its first change, and the
    /// value it wrote last.
    #[serde(default)]
    pub sysctls: Vec<SysctlEntry>,
    /// Addresses the agent added (never ones that were there before), each
    /// with the interface it added it to.
    #[serde(default)]
    pub addresses: Vec<AddressEntry>,
    /// Interfaces that were down and that the agent brought up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links_brought_up: Vec<String>,
    /// Interfaces the agent created (a catch-all tunnel device where the
    /// namespace has no fallback device). Format 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links_created: Vec<String>,
    /// FOU receive ports the agent added (GUE). Format 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fou_ports: Vec<FouPort>,
}

// No deny_unknown_fields here: serde does not support it together with flatten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlEntry {
    #[serde(flatten)]
    pub key: SysctlKey,
    pub original: i32,
    pub written: i32,
}

/// An address the agent added, and where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressEntry {
    pub interface: String,
    #[serde(flatten)]
    pub spec: AddressSpec,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.sysctls.is_empty()
            && self.addresses.is_empty()
            && self.links_brought_up.is_empty()
            && !self.has_tunnel_entries()
    }

    /// Whether the record holds what only format 3 can say.
    pub fn has_tunnel_entries(&self) -> bool {
        !self.links_created.is_empty() || !self.fou_ports.is_empty()
    }

    /// The format version this record is written in: the oldest that can
    /// hold it.
    pub fn format_version(&self) -> u64 {
        if self.has_tunnel_entries() {
            FORMAT_VERSION
        } else {
            FORMAT_VERSION_DR
        }
    }

    pub fn sysctl(&self, key: &SysctlKey) -> Option<&SysctlEntry> {
        self.sysctls.iter().find(|e| &e.key == key)
    }

    /// Everything either record mentions; written before a run changes the
    /// system, so a run cut short still leaves a record that covers it.
    pub fn union(&self, other: &Record) -> Record {
        let mut merged = self.clone();
        for entry in &other.sysctls {
            if merged.sysctl(&entry.key).is_none() {
                merged.sysctls.push(entry.clone());
            }
        }
        let mut known: HashSet<IpAddr> = merged.addresses.iter().map(|a| a.spec.address).collect();
        for entry in &other.addresses {
            if known.insert(entry.spec.address) {
                merged.addresses.push(entry.clone());
            }
        }
        for name in &other.links_brought_up {
            if !merged.links_brought_up.contains(name) {
                merged.links_brought_up.push(name.clone());
            }
        }
        for name in &other.links_created {
            if !merged.links_created.contains(name) {
                merged.links_created.push(name.clone());
            }
        }
        for port in &other.fou_ports {
            if !merged.fou_ports.contains(port) {
                merged.fou_ports.push(*port);
            }
        }
        merged
    }

    /// Parses a record file of any supported version.
    pub fn from_json(text: &str) -> Result<Record, RecordError> {
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(RecordError::Parse)?;
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| RecordError::Invalid("no format version".into()))?;
        let record = match version {
            1 => v1::migrate(serde_json::from_value(value).map_err(RecordError::Parse)?),
            // Format 3 only adds fields (with defaults): one reader for both.
            FORMAT_VERSION_DR | FORMAT_VERSION => {
                if let Some(map) = value.as_object_mut() {
                    map.remove("version");
                }
                let record: Record = serde_json::from_value(value).map_err(RecordError::Parse)?;
                if version == FORMAT_VERSION_DR && record.has_tunnel_entries() {
                    return Err(RecordError::Invalid(
                        "format 2 cannot hold FOU ports or created links".into(),
                    ));
                }
                record
            }
            found => {
                return Err(RecordError::Version {
                    found,
                    newest: FORMAT_VERSION,
                });
            }
        };
        record.validate()?;
        Ok(record)
    }

    /// The record file's text, in the oldest format version that holds it.
    pub fn to_json(&self) -> Result<String, RecordError> {
        #[derive(Serialize)]
        struct Versioned<'a> {
            version: u64,
            #[serde(flatten)]
            record: &'a Record,
        }
        let mut text = serde_json::to_string_pretty(&Versioned {
            version: self.format_version(),
            record: self,
        })
        .map_err(RecordError::Encode)?;
        text.push('\n');
        Ok(text)
    }

    /// Interface names end up in /proc paths and netlink requests: a record
    /// (root-only, but still a file) must not smuggle anything else in.
    fn validate(&self) -> Result<(), RecordError> {
        if self.fou_ports.iter().any(|p| p.port == 0) {
            return Err(RecordError::Invalid("FOU port 0".into()));
        }
        for entry in &self.sysctls {
            if !valid_interface_name(&entry.key.interface) || !valid_sysctl_name(&entry.key.name) {
                return Err(RecordError::Invalid(format!(
                    "{} is not a conf sysctl",
                    entry.key
                )));
            }
        }
        let names = self
            .addresses
            .iter()
            .map(|a| &a.interface)
            .chain(&self.links_brought_up)
            .chain(&self.links_created);
        for name in names {
            if !valid_interface_name(name) {
                return Err(RecordError::Invalid(format!(
                    "{name:?} is not an interface name"
                )));
            }
        }
        Ok(())
    }
}

/// The record file of one namespace, opened under its lock.
pub struct Store {
    path: PathBuf,
    // Held for the lifetime of the store: the lock is released on drop.
    _lock: Option<LockGuard>,
}

impl Store {
    fn record_path(dir: &Path, netns_id: &str) -> PathBuf {
        dir.join(format!("netns-{netns_id}.json"))
    }

    /// Opens the record for changes: creates the directory if needed and takes
    /// the namespace's exclusive lock, waiting (bounded, without blocking the
    /// runtime) for another run.
    pub async fn lock(dir: &Path, netns_id: &str) -> Result<Store, Error> {
        let guard = lock::acquire(dir, &format!("netns-{netns_id}.lock"), LOCK_TIMEOUT).await?;
        Ok(Store {
            path: Self::record_path(dir, netns_id),
            _lock: Some(guard),
        })
    }

    /// Opens the record for reading only (status, check): no lock, no
    /// directory creation. Renames are atomic, so a reader sees either the
    /// old or the new record.
    pub fn read_only(dir: &Path, netns_id: &str) -> Store {
        Store {
            path: Self::record_path(dir, netns_id),
            _lock: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// False when the record (or its directory) exists but this process may
    /// not read it, as for an unprivileged monitoring probe.
    pub fn readable(&self) -> bool {
        match File::open(&self.path) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::PermissionDenied,
        }
    }

    /// The current record (migrated if an older agent wrote it); an empty
    /// one when the agent has not changed anything.
    pub fn load(&self) -> Result<Record, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(e) => return Err(self.error(RecordError::Read(e))),
        };
        Record::from_json(&text).map_err(|e| self.error(e))
    }

    /// Replaces the record atomically; an empty record removes the file.
    pub fn save(&self, record: &Record) -> Result<(), Error> {
        if record.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => self.sync_dir(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.error(RecordError::Remove(e))),
            };
        }
        let text = record.to_json().map_err(|e| self.error(e))?;
        replace_file(&self.path, &text).map_err(|e| self.error(RecordError::Write(e)))
    }

    fn sync_dir(&self) -> Result<(), Error> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.error(RecordError::SyncDir(e)))
    }

    fn error(&self, source: RecordError) -> Error {
        Error::State {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
