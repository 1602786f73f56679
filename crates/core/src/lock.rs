//! One run at a time per repository, on this host.
//!
//! The lock is an exclusive `flock` on `<state_dir>/locks/<hash of the location>.lock` (std's
//! `File::try_lock`). The kernel drops it when the holder dies, however it dies, so a killed run
//! can never block the next one. Inside the file the holder writes its pid, host, start time
//! and repository, so a second run can say who holds the lock; when a run gets the lock and
//! finds such a record left behind, the previous holder died without cleaning up: that record is
//! reported as stale and replaced.
//!
//! Callers key the lock by [`location_key`] (one spelling per repository), and the CLI and
//! `dvault run` share one default state folder ([`crate::defaults::default_state_dir`]).
//!
//! This lock only orders runs on one host; the repository's own lock files (restic format) guard
//! against other hosts.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who holds (or held) a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// Start time, seconds since the Unix epoch.
    pub started: u64,
    /// The repository location the lock is for.
    pub repository: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ts = jiff::Timestamp::from_second(self.started as i64)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| self.started.to_string());
        write!(f, "pid {} on {} since {}", self.pid, self.host, ts)
    }
}

/// Whether `e` is (or wraps) a lock held by another process, this host's lock or the
/// repository's own (restic's lock files), the case that exits with 11.
pub fn is_held(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<LockError>()
            .is_some_and(|l| matches!(l, LockError::Held { .. }))
            || c.downcast_ref::<crate::repo::repo_lock::Locked>().is_some()
            || c.downcast_ref::<crate::repo::RepoError>()
                .is_some_and(|r| matches!(r, crate::repo::RepoError::Locked(_)))
    })
}

/// Lock errors.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the lock and the wait ran out.
    #[error("repository {repository} is locked by another dvault run ({holder}); waited {waited:?}; lock file {}", path.display())]
    Held {
        /// The repository.
        repository: String,
        /// Who holds it, as far as the file says.
        holder: String,
        /// How long we waited.
        waited: Duration,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be created or written.
    #[error("lock file {}: {message}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// A held repository lock; released when dropped (and by the kernel if the process dies).
#[derive(Debug)]
pub struct RepoLock {
    file: File,
    path: PathBuf,
    /// A record left by a holder that died, found when taking the lock.
    pub stale: Option<Holder>,
}

impl RepoLock {
    /// Takes the lock for `repository`, waiting up to `wait` (polling; `flock` has no timeout).
    pub fn acquire(state_dir: &Path, repository: &str, wait: Duration) -> Result<Self, LockError> {
        let path = lock_path(state_dir, repository);
        let io = |message: String| LockError::Io {
            path: path.clone(),
            message,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| io(format!("cannot create directory: {e}")))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(format!("cannot open: {e}")))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= wait {
                        let holder = read_holder(&mut file)
                            .map(|h| h.to_string())
                            .unwrap_or_else(|| "holder unknown".into());
                        return Err(LockError::Held {
                            repository: repository.to_string(),
                            holder,
                            waited: start.elapsed(),
                            path,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(200).min(wait));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(format!("flock: {e}"))),
            }
        }
        // We hold the lock: any record in the file is from a holder that is gone.
        let stale = read_holder(&mut file);
        let me = Holder {
            pid: std::process::id(),
            host: hostname(),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            repository: repository.to_string(),
        };
        let record = serde_json::to_string(&me).map_err(|e| io(e.to_string()))?;
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(record.as_bytes()))
            .and_then(|_| file.sync_data())
            .map_err(|e| io(format!("cannot write holder record: {e}")))?;
        Ok(RepoLock { file, path, stale })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // Empty the record first so the next run does not report us as stale; the file itself
        // stays (removing it would race with a waiter that already opened it).
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// What a store is keyed by on this host: a repository location in its canonical spelling
/// (see [`crate::repo::Location::canonical`]), a `tarsnap:KEYFILE` with the key file's path
/// made absolute and resolved. Everything that names a lock goes through here, so that two
/// spellings of one repository take one lock.
pub fn location_key(store: &str) -> String {
    if let Some(keyfile) = store.strip_prefix("tarsnap:") {
        let p = crate::repo::backend::canonical_path(Path::new(keyfile));
        return format!("tarsnap:{}", p.display());
    }
    crate::repo::Location::parse(store).map_or_else(|_| store.to_string(), |l| l.canonical())
}

/// The lock file for a repository location.
pub fn lock_path(state_dir: &Path, repository: &str) -> PathBuf {
    let digest = Sha256::digest(repository.as_bytes());
    state_dir
        .join("locks")
        .join(format!("{}.lock", &hex::encode(digest)[..16]))
}

/// Reads the holder record from a lock file without locking it (for messages).
pub fn holder_of(state_dir: &Path, repository: &str) -> Option<Holder> {
    let mut f = File::open(lock_path(state_dir, repository)).ok()?;
    read_holder(&mut f)
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// This machine's host name (from the kernel; `unknown` if it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
