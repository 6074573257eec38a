//! The rollback record: what the agent changed in one network namespace, so
//! `stop` can undo exactly that. One JSON file per namespace under the state
//! directory (tmpfs /run by default: it vanishes at reboot together with the
//! addresses and sysctls it describes), replaced atomically (write, fsync,
//! rename), and guarded by an exclusive lock so concurrent runs serialize.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::netlink::AddressSpec;
use crate::sysctl::SysctlKey;

pub const DEFAULT_STATE_DIR: &str = "/run/rs-agent";

const FORMAT_VERSION: u32 = 1;

/// How long a run waits for another run in the same namespace to finish.
const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub version: u32,
    /// Sysctls the agent changed: the value before its first change, and the
    /// value it wrote last.
    #[serde(default)]
    pub sysctls: Vec<SysctlEntry>,
    /// Addresses the agent added to `lo` (never ones that were there before).
    #[serde(default)]
    pub addresses: Vec<AddressSpec>,
    /// `lo` was down and the agent brought it up.
    #[serde(default)]
    pub lo_brought_up: bool,
}

// No deny_unknown_fields here: serde does not support it together with flatten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlEntry {
    #[serde(flatten)]
    pub key: SysctlKey,
    pub original: i32,
    pub written: i32,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.sysctls.is_empty() && self.addresses.is_empty() && !self.lo_brought_up
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
        let mut known: HashSet<IpAddr> = merged.addresses.iter().map(|a| a.address).collect();
        for spec in &other.addresses {
            if known.insert(spec.address) {
                merged.addresses.push(spec.clone());
            }
        }
        merged.lo_brought_up |= other.lo_brought_up;
        merged
    }
}

/// The record file of one namespace, opened under its lock.
pub struct Store {
    path: PathBuf,
    // Held for the lifetime of the store: the lock is released on drop.
    _lock: Option<File>,
}

impl Store {
    fn record_path(dir: &Path, netns_id: &str) -> PathBuf {
        dir.join(format!("netns-{netns_id}.json"))
    }

    /// Opens the record for changes: creates the directory if needed and takes
    /// the namespace's exclusive lock, waiting (bounded) for another run.
    pub fn lock(dir: &Path, netns_id: &str) -> Result<Store, Error> {
        let state_error = |path: &Path, message: String| Error::State {
            path: path.to_path_buf(),
            message,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| state_error(dir, format!("cannot create directory: {e}")))?;
        let lock_path = dir.join(format!("netns-{netns_id}.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| state_error(&lock_path, format!("cannot open lock: {e}")))?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(state_error(
                        &lock_path,
                        format!(
                            "another rs-agent run held the lock for over {}s",
                            LOCK_TIMEOUT.as_secs()
                        ),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(state_error(&lock_path, format!("cannot lock: {e}")));
                }
            }
        }
        Ok(Store {
            path: Self::record_path(dir, netns_id),
            _lock: Some(lock),
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

    /// The current record; an empty one when the agent has not changed anything.
    pub fn load(&self) -> Result<Record, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Record {
                    version: FORMAT_VERSION,
                    ..Record::default()
                });
            }
            Err(e) => return Err(self.error(format!("cannot read: {e}"))),
        };
        let record: Record = serde_json::from_str(&text)
            .map_err(|e| self.error(format!("unreadable ({e}); move it away to start afresh")))?;
        if record.version != FORMAT_VERSION {
            return Err(self.error(format!(
                "format version {} is not supported (expected {FORMAT_VERSION})",
                record.version
            )));
        }
        Ok(record)
    }

    /// Replaces the record atomically; an empty record removes the file.
    pub fn save(&self, record: &Record) -> Result<(), Error> {
        if record.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => self.sync_dir(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.error(format!("cannot remove: {e}"))),
            };
        }
        let record = Record {
            version: FORMAT_VERSION,
            ..record.clone()
        };
        let mut text = serde_json::to_string_pretty(&record)
            .map_err(|e| self.error(format!("cannot encode: {e}")))?;
        text.push('\n');
        let temporary = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        };
        write().map_err(|e| self.error(format!("cannot write: {e}")))?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<(), Error> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.error(format!("cannot sync directory: {e}")))
    }

    fn error(&self, message: String) -> Error {
        Error::State {
            path: self.path.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sysctl::ArpKey;

    fn sample() -> Record {
        Record {
            version: FORMAT_VERSION,
            sysctls: vec![SysctlEntry {
                key: SysctlKey::new("eth0.100", ArpKey::Ignore),
                original: 0,
                written: 1,
            }],
            addresses: vec![AddressSpec {
                address: "10.1.252.73".parse().unwrap(),
                prefix_len: 32,
                label: Some("lo:0".into()),
            }],
            lo_brought_up: false,
        }
    }

    #[test]
    fn save_load_round_trip_and_empty_removes_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::lock(dir.path(), "cookie-7").unwrap();
        assert_eq!(
            store.load().unwrap(),
            Record {
                version: 1,
                ..Record::default()
            }
        );
        store.save(&sample()).unwrap();
        assert_eq!(store.load().unwrap(), sample());
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"interface\": \"eth0.100\""), "{text}");
        assert!(text.contains("\"key\": \"arp_ignore\""), "{text}");
        store.save(&Record::default()).unwrap();
        assert!(!store.path().exists());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["netns-cookie-7.lock"]);
    }

    #[test]
    fn corrupt_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::lock(dir.path(), "x").unwrap();
        std::fs::write(store.path(), "{not json").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("netns-x.json"), "{e}");
        assert!(e.contains("unreadable"), "{e}");
    }

    #[test]
    fn lock_is_exclusive_per_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::lock(dir.path(), "a").unwrap();
        let lock_path = dir.path().join("netns-a.lock");
        let other = File::open(&lock_path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        // Another namespace's lock is independent.
        let _b = Store::lock(dir.path(), "b").unwrap();
        drop(first);
        other.try_lock().unwrap();
    }

    #[test]
    fn union_keeps_first_values() {
        let a = sample();
        let mut b = Record::default();
        b.sysctls.push(SysctlEntry {
            key: SysctlKey::new("eth0.100", ArpKey::Ignore),
            original: 5,
            written: 5,
        });
        b.sysctls.push(SysctlEntry {
            key: SysctlKey::new("all", ArpKey::Announce),
            original: 0,
            written: 2,
        });
        b.lo_brought_up = true;
        let u = a.union(&b);
        assert_eq!(u.sysctls.len(), 2);
        assert_eq!(u.sysctls[0].original, 0);
        assert_eq!(u.addresses.len(), 1);
        assert!(u.lo_brought_up);
    }
}
