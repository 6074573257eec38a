//! Drain: the operator's request that this real server take no new
//! connections (`rs-agent drain`), kept per network namespace next to the
//! rollback record, answered `drain` by the agent endpoint and shown by
//! `status`.
//!
//! Where it lives decides how long it lasts:
//! - `STATE_DIR/netns-ID.drain.json` (ID the namespace cookie, as for the
//!   record): survives restarts of the agent, gone at reboot with /run;
//! - with `--persistent`, also `PERSIST_DIR/drain-KEY.json`, KEY `host` for
//!   the machine's own namespace or `netns-NAME` for one under /run/netns
//!   (a cookie changes at every boot, a name does not): survives reboots.
//!
//! `undrain` removes both. Reading takes the runtime file, else the
//! persistent one (after a reboot only the persistent one is left).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, RecordError};

/// Where `--persistent` drains are kept unless `--persist-dir` says otherwise.
pub const DEFAULT_PERSIST_DIR: &str = "/var/lib/rs-agent";

/// Longest reason kept, in bytes (it is shown, not parsed).
pub const MAX_REASON: usize = 200;

/// A drain in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was asked for, in seconds since the Unix epoch.
    pub since: u64,
    /// Whether it survives a reboot.
    pub persistent: bool,
}

/// The drain files of one network namespace.
#[derive(Debug, Clone)]
pub struct DrainFiles {
    pub runtime: PathBuf,
    /// None when the namespace has no stable name (neither the machine's
    /// own nor one under /run/netns): `--persistent` is refused there.
    pub persistent: Option<PathBuf>,
}

impl DrainFiles {
    /// The files of the calling thread's namespace, `netns_id` being its
    /// cookie id (`lvs_common::netns::current_id`).
    pub fn locate(state_dir: &Path, persist_dir: &Path, netns_id: &str) -> DrainFiles {
        DrainFiles {
            runtime: state_dir.join(format!("netns-{netns_id}.drain.json")),
            persistent: namespace_key().map(|key| persist_dir.join(format!("drain-{key}.json"))),
        }
    }

    /// The drain in force, if any.
    pub fn load(&self) -> Result<Option<Drain>, Error> {
        if let Some(drain) = read(&self.runtime)? {
            return Ok(Some(drain));
        }
        match &self.persistent {
            Some(path) => read(path),
            None => Ok(None),
        }
    }

    /// Drains; returns whether anything changed. A drain already in force
    /// keeps its start time; a new reason or `persistent` updates it.
    pub fn drain(&self, reason: Option<&str>, persistent: bool) -> Result<(Drain, bool), Error> {
        let current = self.load()?;
        let reason = reason.map(clean_reason);
        let persistent = persistent || current.as_ref().is_some_and(|d| d.persistent);
        let drain = Drain {
            reason: reason.or_else(|| current.as_ref().and_then(|d| d.reason.clone())),
            since: current.as_ref().map_or_else(now, |d| d.since),
            persistent,
        };
        if current.as_ref() == Some(&drain) && read(&self.runtime)?.is_some() {
            return Ok((drain, false));
        }
        if persistent {
            let path = self.persistent.as_ref().ok_or_else(|| {
                Error::Conflict(
                    "--persistent needs a network namespace with a stable name: the machine's own, or one under /run/netns".into(),
                )
            })?;
            write(path, &drain)?;
        }
        write(&self.runtime, &drain)?;
        Ok((drain, true))
    }

    /// Undrains; returns whether a drain was in force.
    pub fn undrain(&self) -> Result<bool, Error> {
        let mut changed = remove(&self.runtime)?;
        if let Some(path) = &self.persistent {
            changed |= remove(path)?;
        }
        Ok(changed)
    }
}

/// A reason as shown: one line, printable, bounded.
fn clean_reason(reason: &str) -> String {
    let mut text: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text.trim().to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn error(path: &Path, source: RecordError) -> Error {
    Error::DrainState {
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<Option<Drain>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| error(path, RecordError::Parse(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(error(path, RecordError::Read(e))),
    }
}

/// Atomic replace (write, fsync, rename), directory created if needed.
fn write(path: &Path, drain: &Drain) -> Result<(), Error> {
    let mut text =
        serde_json::to_string_pretty(drain).map_err(|e| error(path, RecordError::Encode(e)))?;
    text.push('\n');
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        crate::state::replace_file(path, &text)
    })();
    result.map_err(|e| error(path, RecordError::Write(e)))
}

fn remove(path: &Path) -> Result<bool, Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(error(path, RecordError::Remove(e))),
    }
}

use std::os::unix::fs::DirBuilderExt;

/// A name for the calling thread's network namespace that outlives a
/// reboot: `netns-NAME` if it is mounted as /run/netns/NAME (`ip netns`),
/// `host` if it is the namespace of PID 1; None otherwise.
pub fn namespace_key() -> Option<String> {
    let own = std::fs::metadata("/proc/thread-self/ns/net").ok()?;
    let same = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.dev() == own.dev() && m.ino() == own.ino())
    };
    if let Ok(entries) = std::fs::read_dir(lvs_common::netns::RUN_DIR) {
        let mut names: Vec<_> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        if let Some(name) = names.into_iter().find(|n| {
            lvs_common::netns::valid_name(n) && same(&Path::new(lvs_common::netns::RUN_DIR).join(n))
        }) {
            return Some(format!("netns-{name}"));
        }
    }
    same(Path::new("/proc/1/ns/net")).then(|| "host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> DrainFiles {
        DrainFiles {
            runtime: dir.join("run/netns-cookie-9.drain.json"),
            persistent: Some(dir.join("lib/drain-netns-x.json")),
        }
    }

    #[test]
    fn drain_undrain_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        assert_eq!(f.load().unwrap(), None);
        let (d, changed) = f.drain(Some("kernel\nupdate"), false).unwrap();
        assert!(changed);
        assert_eq!(d.reason.as_deref(), Some("kernel update"));
        assert!(!d.persistent);
        assert!(!dir.path().join("lib").exists());
        // The same again: no change; the start time stays.
        let (again, changed) = f.drain(None, false).unwrap();
        assert!(!changed);
        assert_eq!(again, d);
        // Persistent: both files.
        let (p, changed) = f.drain(None, true).unwrap();
        assert!(changed && p.persistent && p.since == d.since);
        // After a "reboot" (the runtime file gone) the persistent one holds.
        std::fs::remove_file(&f.runtime).unwrap();
        assert_eq!(f.load().unwrap(), Some(p));
        assert!(f.undrain().unwrap());
        assert_eq!(f.load().unwrap(), None);
        assert!(!f.undrain().unwrap());
    }

    #[test]
    fn persistent_needs_a_stable_name_and_reasons_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let f = DrainFiles {
            persistent: None,
            ..files(dir.path())
        };
        let e = f.drain(None, true).unwrap_err().to_string();
        assert!(e.contains("--persistent needs"), "{e}");
        assert_eq!(f.load().unwrap(), None);
        let long = "é".repeat(300);
        let (d, _) = f.drain(Some(&long), false).unwrap();
        assert!(d.reason.unwrap().len() <= MAX_REASON);
        std::fs::write(&f.runtime, "{broken").unwrap();
        assert!(f.load().is_err());
    }
}
