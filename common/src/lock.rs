//! An exclusive advisory lock (flock(2)) on a file, one per network
//! namespace, so runs of a tool that change the same namespace (rs-agent's
//! `start`/`stop`/repairs, the director's `apply`/`restore`) go one after
//! the other.
//!
//! Waiting never blocks the async runtime: the lock is tried without
//! blocking and retried after async sleeps (backing off to 100 ms), up to a
//! bound. So a service's other duties (the systemd watchdog, signals) keep
//! running while another process holds the lock. The lock is released when
//! the guard is dropped, or by the kernel when the process dies, so a
//! crashed holder never leaves it stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::netns::{self, NetnsError};

/// The first retry comes this soon: most holders finish within milliseconds.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// Retries never wait longer than this, so a released lock is taken quickly.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The directory of the lock file cannot be created.
    #[error("{}: cannot create directory: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The error of mkdir(2).
        #[source]
        source: io::Error,
    },
    /// The lock file cannot be opened or created.
    #[error("{}: cannot open lock: {source}", path.display())]
    Open {
        /// The lock file.
        path: PathBuf,
        /// The error of open(2).
        #[source]
        source: io::Error,
    },
    /// flock(2) failed for another reason than the lock being held.
    #[error("{}: cannot lock: {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The error of flock(2).
        #[source]
        source: io::Error,
    },
    /// Another process held the lock for longer than the bound.
    #[error("{}: another process held the lock for over {}s", path.display(), waited.as_secs())]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited.
        waited: Duration,
    },
    /// The current network namespace cannot be identified (for
    /// [`netns_file_name`]).
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// A held lock; dropping it releases the lock. The file itself stays (it is
/// empty), so the next holder locks the same inode.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    path: PathBuf,
    // Only held: the flock lives as long as this open file description.
    _file: File,
}

impl LockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `STEM-ID.lock`, with ID the calling thread's network namespace
/// ([`netns::current_id`]): the name of the lock of this namespace.
pub fn netns_file_name(stem: &str) -> Result<String, LockError> {
    Ok(format!("{stem}-{}.lock", netns::current_id()?))
}

/// Takes the exclusive lock on `dir/name`, creating the directory (mode
/// 0700) and the file (0600) if needed, and waiting up to `timeout` for
/// another holder without blocking the runtime. Must be called inside a
/// tokio runtime with time enabled.
#[cfg(feature = "daemon")]
pub async fn acquire(dir: &Path, name: &str, timeout: Duration) -> Result<LockGuard, LockError> {
    let mut waiter = Waiter::new(dir, name, timeout)?;
    loop {
        match waiter.attempt()? {
            Attempt::Held(guard) => return Ok(guard),
            Attempt::Wait(pause) => tokio::time::sleep(pause).await,
        }
    }
}

/// [`acquire`] for programs without an async runtime (one-shot command-line
/// tools): the same bounded wait and backoff, sleeping the calling thread.
pub fn acquire_blocking(dir: &Path, name: &str, timeout: Duration) -> Result<LockGuard, LockError> {
    let mut waiter = Waiter::new(dir, name, timeout)?;
    loop {
        match waiter.attempt()? {
            Attempt::Held(guard) => return Ok(guard),
            Attempt::Wait(pause) => std::thread::sleep(pause),
        }
    }
}

/// The bounded try-and-back-off of [`acquire`] and [`acquire_blocking`],
/// without the sleeping (which differs: async or the thread's).
struct Waiter {
    path: PathBuf,
    file: Option<File>,
    timeout: Duration,
    deadline: std::time::Instant,
    backoff: Duration,
}

enum Attempt {
    Held(LockGuard),
    /// Not free yet: try again after this long.
    Wait(Duration),
}

impl Waiter {
    fn new(dir: &Path, name: &str, timeout: Duration) -> Result<Waiter, LockError> {
        let (path, file) = open(dir, name)?;
        Ok(Waiter {
            path,
            file: Some(file),
            timeout,
            deadline: std::time::Instant::now() + timeout,
            backoff: FIRST_BACKOFF,
        })
    }

    fn attempt(&mut self) -> Result<Attempt, LockError> {
        let path = || self.path.clone();
        let file = self
            .file
            .as_ref()
            .expect("a held lock is not attempted again");
        match file.try_lock() {
            Ok(()) => {
                let file = self.file.take().expect("checked above");
                return Ok(Attempt::Held(LockGuard {
                    path: path(),
                    _file: file,
                }));
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(LockError::Lock {
                    path: path(),
                    source,
                });
            }
        }
        let now = std::time::Instant::now();
        if now >= self.deadline {
            return Err(LockError::Timeout {
                path: path(),
                waited: self.timeout,
            });
        }
        let pause = self.backoff.min(self.deadline - now);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(Attempt::Wait(pause))
    }
}

/// Takes the lock on `dir/name` if it is free; `None` when another holds it.
pub fn try_acquire(dir: &Path, name: &str) -> Result<Option<LockGuard>, LockError> {
    let (path, file) = open(dir, name)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(LockGuard { path, _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(LockError::Lock { path, source }),
    }
}

fn open(dir: &Path, name: &str) -> Result<(PathBuf, File), LockError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| LockError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| LockError::Open {
            path: path.clone(),
            source,
        })?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "daemon")]
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn exclusive_per_name_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        let held = try_acquire(&sub, "a.lock").unwrap().unwrap();
        assert_eq!(held.path(), sub.join("a.lock"));
        assert!(try_acquire(&sub, "a.lock").unwrap().is_none());
        // Another name is another lock.
        let _b = try_acquire(&sub, "b.lock").unwrap().unwrap();
        drop(held);
        assert!(try_acquire(&sub, "a.lock").unwrap().is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sub).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn blocking_acquire_waits_for_the_holder_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let held = try_acquire(dir.path(), "s.lock").unwrap().unwrap();
        let e = acquire_blocking(dir.path(), "s.lock", Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, LockError::Timeout { .. }), "{e}");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(held);
        });
        let got = acquire_blocking(dir.path(), "s.lock", Duration::from_secs(30));
        release.join().unwrap();
        assert!(got.is_ok(), "{got:?}");
    }

    #[cfg(feature = "daemon")]
    #[test]
    fn acquire_times_out_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let _held = try_acquire(dir.path(), "x.lock").unwrap().unwrap();
        let e = runtime()
            .block_on(acquire(dir.path(), "x.lock", Duration::from_millis(50)))
            .unwrap_err();
        assert!(matches!(e, LockError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("x.lock"), "{e}");
    }

    #[cfg(feature = "daemon")]
    #[test]
    fn waiting_does_not_block_the_runtime() {
        // The holder releases the lock from a task of the same
        // single-threaded runtime: that only works if waiting yields.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let held = try_acquire(&path, "n.lock").unwrap().unwrap();
        let got = runtime().block_on(async move {
            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                drop(held);
            });
            let guard = acquire(&path, "n.lock", Duration::from_secs(30)).await;
            release.await.unwrap();
            guard
        });
        assert!(got.is_ok());
    }

    #[test]
    fn netns_file_name_names_the_namespace() {
        let name = netns_file_name("netns").unwrap();
        assert!(name.starts_with("netns-cookie-") || name.starts_with("netns-inode-"));
        assert!(name.ends_with(".lock"), "{name}");
    }
}
