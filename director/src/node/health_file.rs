//! The quorum file for keepalived's `track_file`: `0` while every service
//! has quorum (keepalived's `weight 0`: zero is OK), `1` otherwise and once
//! the daemon stops. Written whole under a temporary name and renamed, so
//! keepalived never reads half a file; rewritten only on a change.

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

/// Replaces `path` with `text` (mode 0644: keepalived's checker may run
/// unprivileged) through [`lvs_common::file::replace`]: the file lives in a
/// directory the operator chose, where a link planted at its name must not
/// make the daemon (root) write elsewhere.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    lvs_common::file::replace(path, text.as_bytes(), 0o644)
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
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["healthy"]);
    }

    /// A link planted at the file's name (or at the old fixed temporary
    /// name) does not make the daemon write through it.
    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("passwd");
        std::fs::write(&victim, "root:x:0:0\n").unwrap();
        let path = dir.path().join("healthy");
        symlink(&victim, &path).unwrap();
        symlink(&victim, dir.path().join("healthy.tmp")).unwrap();
        let mut h = HealthFile::new(path.clone());
        assert!(h.set(true).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:x:0:0\n");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n");
    }
}
