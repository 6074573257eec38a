//! Files replaced whole and atomically, safe in directories other users may
//! write to and against a link planted at the final name.
//!
//! The new content goes to a fresh temporary file in the same directory,
//! created with `O_CREAT|O_EXCL|O_NOFOLLOW` (it cannot be an existing file
//! or a link someone prepared), given the intended mode whatever the
//! umask, fsynced and renamed over the final name: `rename` replaces a
//! symbolic link there instead of writing through it. The directory is
//! fsynced so the new name survives a crash.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Replaces the file at `path` with `contents`, mode `mode` (e.g. 0o644),
/// atomically: a reader sees the old file or the new one, never a part,
/// and a link at `path` is replaced, not followed. The directory must
/// exist. On an error the old file is left as it was and no temporary
/// file remains.
pub fn replace(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", path.display()),
        )
    })?;
    let (tmp, mut file) = create_temporary(dir, &name.to_string_lossy())?;
    let written = (|| {
        // fchmod: the mode asked for, not the mode narrowed by the umask.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// A new file `.NAME.PID.N.tmp` in `dir` that did not exist before (O_EXCL;
/// O_NOFOLLOW for good measure), so a name guessed in advance can only make
/// this fail, never redirect the write.
fn create_temporary(dir: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..16 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}{nanos:09}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_with_the_mode_asked_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("healthy");
        replace(&path, b"1\n", 0o644).unwrap();
        replace(&path, b"0\n", 0o644).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644);
        replace(&path, b"x", 0o600).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert_eq!(names(dir.path()), ["healthy"]);
    }

    /// A link planted at the final name is replaced by the file; what it
    /// pointed to is not written.
    #[test]
    fn a_link_at_the_final_name_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("drains.json");
        symlink(&victim, &path).unwrap();
        replace(&path, b"[]", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]");
        // A dangling link too (the classic: make root create a file).
        let elsewhere = dir.path().join("created-by-root");
        let path = dir.path().join("other");
        symlink(&elsewhere, &path).unwrap();
        replace(&path, b"1", 0o644).unwrap();
        assert!(!elsewhere.exists());
    }

    #[test]
    fn a_failure_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails.
        let path = dir.path().join("busy");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "x").unwrap();
        assert!(replace(&path, b"1", 0o644).is_err());
        assert_eq!(names(dir.path()), ["busy"]);
        assert!(replace(&dir.path().join("missing/dir"), b"1", 0o644).is_err());
    }
}
