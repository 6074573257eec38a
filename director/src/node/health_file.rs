//! The quorum file for keepalived's `track_file`: `0` while every service
//! has quorum (keepalived's `weight 0`: zero is OK), `1` otherwise and once
//! the daemon stops. Written whole under a temporary name and renamed, so
//! keepalived never reads half a file; rewritten only on a change.

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct HealthFile {
    path: PathBuf,
    /// What the file holds, as far as this daemon knows.
    written: Option<bool>,
}

impl HealthFile {
    pub fn new(path: PathBuf) -> HealthFile {
        HealthFile {
            path,
            written: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the file say `healthy`. Returns whether it was written.
    pub fn set(&mut self, healthy: bool) -> std::io::Result<bool> {
        if self.written == Some(healthy) {
            return Ok(false);
        }
        write_atomic(&self.path, if healthy { "0\n" } else { "1\n" })?;
        self.written = Some(healthy);
        Ok(true)
    }
}

pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_while_healthy_one_otherwise_written_on_change_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/healthy");
        let mut h = HealthFile::new(path.clone());
        assert!(h.set(false).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n");
        assert!(h.set(true).unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n");
        assert!(!h.set(true).unwrap());
        assert!(!dir.path().join("sub/healthy.tmp").exists());
    }
}
