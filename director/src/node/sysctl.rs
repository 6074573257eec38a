//! `[sysctl]`: net.ipv4.vs.* of the daemon's namespace, set at start and
//! reload, restored on a clean stop. The values found before the first
//! change are recorded in a file first (next to the control socket); a
//! daemon that finds a record at start (the last run did not stop cleanly)
//! keeps its originals rather than reading back its own values as them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::addr::in_netns;
use super::health_file::write_atomic;

/// Why the IPVS sysctls could not be set or restored.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("reading net.ipv4.vs: {0}")]
    Read(#[source] std::io::Error),
    /// The message names the sysctl (see `write`).
    #[error("{0}")]
    Write(#[source] std::io::Error),
    /// The record of the values found before the daemon changed them.
    #[error("{}: {source}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Original values by sysctl name (net.ipv4.vs.NAME), as read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub originals: BTreeMap<String, String>,
}

/// What one application does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Not recorded yet: read and recorded before anything is set.
    pub record: Vec<&'static str>,
    pub set: Vec<(&'static str, u32)>,
    /// Left the file: their originals go back, then they leave the record.
    pub restore: Vec<(String, String)>,
}

/// The pure part: the record against the wanted values.
pub fn changes(record: &Record, wanted: &[(&'static str, u32)]) -> Changes {
    Changes {
        record: wanted
            .iter()
            .filter(|(n, _)| !record.originals.contains_key(*n))
            .map(|(n, _)| *n)
            .collect(),
        set: wanted.to_vec(),
        restore: record
            .originals
            .iter()
            .filter(|(n, _)| !wanted.iter().any(|(w, _)| w == n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
    }
}

fn proc_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/vs/{name}"))
}

fn read(name: &str) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(proc_path(name))?.trim().to_string())
}

fn write(name: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(proc_path(name), format!("{value}\n"))
        .map_err(|e| std::io::Error::new(e.kind(), format!("net.ipv4.vs.{name}: {e}")))
}

pub struct Sysctls {
    record_path: PathBuf,
    netns: Option<String>,
    record: Record,
}

impl Sysctls {
    /// Loads the record of a run that did not stop cleanly, if any
    /// (returned as a note for the log).
    pub fn open(record_path: PathBuf, netns: Option<String>) -> (Sysctls, Option<String>) {
        let mut note = None;
        let record = match std::fs::read_to_string(&record_path) {
            Ok(text) => match serde_json::from_str::<Record>(&text) {
                Ok(r) => {
                    note = Some(format!(
                        "{}: the last run did not stop cleanly; its recorded originals are kept",
                        record_path.display()
                    ));
                    r
                }
                Err(e) => {
                    note = Some(format!(
                        "{}: unreadable record ({e}); values read now count as originals",
                        record_path.display()
                    ));
                    Record::default()
                }
            },
            Err(_) => Record::default(),
        };
        (
            Sysctls {
                record_path,
                netns,
                record,
            },
            note,
        )
    }

    fn save(&self) -> std::io::Result<()> {
        if self.record.originals.is_empty() {
            match std::fs::remove_file(&self.record_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            let text = serde_json::to_string_pretty(&self.record).map_err(std::io::Error::other)?;
            write_atomic(&self.record_path, &text)
        }
    }

    /// Makes the namespace hold `wanted`; returns one log line per change.
    /// Stops at the first error (the record is saved before any write, so
    /// what was set can still be restored).
    pub fn apply(&mut self, wanted: &[(&'static str, u32)]) -> Result<Vec<String>, SysctlError> {
        let c = changes(&self.record, wanted);
        if c.set.is_empty() && c.restore.is_empty() {
            return Ok(Vec::new());
        }
        let netns = self.netns.clone();
        let read_all = c.record.clone();
        let originals = in_netns(netns.as_deref(), move || {
            read_all
                .into_iter()
                .map(|n| read(n).map(|v| (n.to_string(), v)))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .and_then(|r| r)
        .map_err(SysctlError::Read)?;
        if !originals.is_empty() {
            self.record.originals.extend(originals);
            self.save().map_err(|e| self.record_error(e))?;
        }
        let set = c.set.clone();
        let restore = c.restore.clone();
        let lines = in_netns(netns.as_deref(), move || {
            let mut lines = Vec::new();
            for (n, v) in &restore {
                write(n, v)?;
                lines.push(format!(
                    "net.ipv4.vs.{n} = {v} (restored: no longer in the file)"
                ));
            }
            for (n, v) in &set {
                if read(n)? != v.to_string() {
                    write(n, &v.to_string())?;
                    lines.push(format!("net.ipv4.vs.{n} = {v}"));
                }
            }
            Ok::<_, std::io::Error>(lines)
        })
        .and_then(|r| r)
        .map_err(SysctlError::Write)?;
        for (n, _) in &c.restore {
            self.record.originals.remove(n);
        }
        if !c.restore.is_empty() {
            self.save().map_err(|e| self.record_error(e))?;
        }
        Ok(lines)
    }

    fn record_error(&self, source: std::io::Error) -> SysctlError {
        SysctlError::Record {
            path: self.record_path.clone(),
            source,
        }
    }

    /// Whether originals are recorded (a record found at start, or values
    /// set since).
    pub fn recorded(&self) -> bool {
        !self.record.originals.is_empty()
    }

    /// Puts every recorded original back and removes the record.
    pub fn restore(&mut self) -> Result<Vec<String>, SysctlError> {
        let all: Vec<(String, String)> = std::mem::take(&mut self.record.originals)
            .into_iter()
            .collect();
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let back = all.clone();
        let result = in_netns(self.netns.as_deref(), move || {
            back.iter()
                .map(|(n, v)| write(n, v).map(|()| format!("net.ipv4.vs.{n} = {v} (restored)")))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .and_then(|r| r);
        match result {
            Ok(lines) => {
                self.save().map_err(|e| self.record_error(e))?;
                Ok(lines)
            }
            Err(e) => {
                // Kept for the next run to restore.
                self.record.originals = all.into_iter().collect();
                Err(SysctlError::Write(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Record {
        Record {
            originals: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn first_run_records_everything_it_sets() {
        let c = changes(&Record::default(), &[("sloppy_tcp", 1), ("backup_only", 0)]);
        assert_eq!(c.record, vec!["sloppy_tcp", "backup_only"]);
        assert_eq!(c.set, vec![("sloppy_tcp", 1), ("backup_only", 0)]);
        assert!(c.restore.is_empty());
    }

    #[test]
    fn a_record_left_by_a_crash_is_not_read_again() {
        // The last run set sloppy_tcp=1 and died: its original 0 stays the
        // original, the 1 the kernel holds now is not recorded.
        let c = changes(&rec(&[("sloppy_tcp", "0")]), &[("sloppy_tcp", 1)]);
        assert!(c.record.is_empty());
        assert_eq!(c.set, vec![("sloppy_tcp", 1)]);
    }

    #[test]
    fn a_key_leaving_the_file_is_restored() {
        let c = changes(
            &rec(&[("sloppy_tcp", "0"), ("expire_nodest_conn", "0")]),
            &[("sloppy_tcp", 1)],
        );
        assert_eq!(
            c.restore,
            vec![("expire_nodest_conn".to_string(), "0".to_string())]
        );
        let none = changes(&rec(&[]), &[]);
        assert_eq!(none, Changes::default());
    }
}
