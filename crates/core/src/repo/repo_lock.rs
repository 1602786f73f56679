//! The repository's own lock, in restic's format, so that writers exclude each other across
//! hosts, state folders, spellings of the location and the stock `restic`.
//!
//! Behaviour taken from restic (`internal/repository/lock.go`, `lock_file.go`; restic 0.14's
//! `internal/restic/lock.go` is the same protocol):
//! - a lock is a file `locks/<id>` holding `{time, exclusive, hostname, username, pid, uid,
//!   gid}` (see `lock_store.rs` for the encryption); forget and prune take an exclusive lock,
//!   the other commands a shared one. An exclusive lock conflicts with every other lock, a
//!   shared one only with exclusive ones;
//! - taking a lock: look for conflicting locks, write ours, wait 200 ms, look again (two
//!   processes that wrote at the same moment both see each other; both step back);
//! - a held lock is refreshed every 5 minutes (a new file with a new time, then the old one is
//!   removed) and removed when the work is done;
//! - a lock is stale when its time is more than 30 minutes old, or when it was written on this
//!   host by a process that no longer exists. restic removes stale locks only in `restic
//!   unlock`; dvault does the same removal when a stale lock stands in its way (it would
//!   otherwise block an unattended timer for good after a killed run). Unlike restic, which
//!   signals the pid with SIGHUP, liveness is probed with signal 0, and a live process of
//!   another user counts as alive.
//!
//! A conflicting live lock makes dvault wait up to the configured time and then fail with
//! [`Locked`] (exit code 11) naming the holder. A lock dvault cannot remove (an append-only
//! REST server refuses deletion) is left behind with a warning, as restic does ("error while
//! unlocking"): it turns stale 30 minutes after its last refresh, at once for this host.
//!
//! This file takes a lock (look, write, settle, look again; wait and step back on a conflict);
//! `repo_lock/record.rs` is the lock file's record and the staleness rule, `repo_lock/held.rs`
//! a lock held: refreshed, then removed.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock_store::{LockStore, Sealer};

mod held;
mod record;

pub use held::HeldLock;
use held::Inner;
use record::user;
pub use record::{is_stale, LockRecord, STALE_AFTER};

/// How often a held lock is refreshed (restic's `refreshInterval`).
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// Pause between writing a lock and looking for competitors again (restic's
/// `waitBeforeLockCheck`).
const SETTLE: Duration = Duration::from_millis(200);

/// Another process holds a conflicting lock of the repository (exit code 11).
#[derive(Debug, thiserror::Error)]
#[error(
    "repository {repository} is locked by another process ({holder}; lock {id}); waited {}s. \
     A lock turns stale 30 minutes after its holder stopped refreshing it",
    waited.as_secs()
)]
pub struct Locked {
    /// The repository.
    pub repository: String,
    /// The holder, from its lock file.
    pub holder: String,
    /// The holder's lock id.
    pub id: String,
    /// How long this process waited.
    pub waited: Duration,
}

/// What the lock is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Reading only (check, restore): shared, and when the repository refuses the lock file
    /// (read-only medium) the work goes on without it, with a warning.
    Read,
    /// Adding data (backup): shared.
    Append,
    /// Removing data (forget, prune): exclusive.
    Exclusive,
}

/// Failure to take a lock.
#[derive(Debug, thiserror::Error)]
pub enum LockFailure {
    /// A live conflicting lock.
    #[error(transparent)]
    Locked(#[from] Locked),
    /// The `locks/` folder could not be read or written.
    #[error("repository lock: {0}")]
    Storage(String),
}

/// Takes the lock of `kind` in the repository of `cfg`, whose master key's parts (AES key,
/// Poly1305 `k` and `r`) and format version are given. `None`: a [`LockKind::Read`] lock
/// that the repository refused to store (the reading goes on without it).
pub(crate) fn take(
    cfg: &super::RepoConfig,
    key: (&[u8], &[u8], &[u8]),
    version: u32,
    kind: LockKind,
) -> Result<Option<HeldLock>, super::RepoError> {
    let location = cfg.location.to_string();
    let storage = |message: String| super::RepoError::Engine {
        location: location.clone(),
        action: "taking the repository lock".into(),
        message,
    };
    let sealer = Sealer::new(key.0, key.1, key.2, version).map_err(storage)?;
    let store = LockStore::new(cfg).map_err(storage)?;
    match acquire(store, sealer, kind, &location, cfg.lock_wait, REFRESH_EVERY) {
        Ok(l) => Ok(Some(l)),
        Err(LockFailure::Locked(l)) => Err(l.into()),
        Err(LockFailure::Storage(e)) if kind == LockKind::Read => {
            tracing::warn!("reading {location} without a repository lock: {e}");
            Ok(None)
        }
        Err(LockFailure::Storage(e)) => Err(storage(e)),
    }
}

/// Takes a lock of `kind` in `store`, waiting up to `wait` for conflicting locks to go away,
/// and refreshes it every `refresh` until dropped. `repository` names it in messages.
pub(crate) fn acquire(
    store: LockStore,
    sealer: Sealer,
    kind: LockKind,
    repository: &str,
    wait: Duration,
    refresh: Duration,
) -> Result<HeldLock, LockFailure> {
    let (username, uid, gid) = user();
    let record = LockRecord {
        time: jiff::Timestamp::now(),
        exclusive: kind == LockKind::Exclusive,
        hostname: crate::lock::hostname(),
        username,
        pid: i64::from(std::process::id()),
        uid,
        gid,
    };
    let inner = Arc::new(Inner {
        store,
        sealer,
        current: Mutex::new((record.clone(), None)),
    });
    // Registered before the first lock file is written: a signal during the wait below must
    // not leave it behind.
    let e = Arc::clone(&inner);
    let on_exit = crate::interrupt::on_exit(Box::new(move || e.release()));
    if let Err(e) = wait_for_lock(&inner, &record, repository, wait) {
        inner.release();
        crate::interrupt::cancel_on_exit(on_exit);
        return Err(e);
    }
    let (stop, stopped) = mpsc::channel::<()>();
    let t = Arc::clone(&inner);
    let thread = std::thread::Builder::new()
        .name("repo-lock-refresh".into())
        .spawn(move || loop {
            match stopped.recv_timeout(refresh) {
                Err(RecvTimeoutError::Timeout) => t.refresh(),
                _ => return,
            }
        })
        .ok();
    Ok(HeldLock {
        inner,
        stop: Some(stop),
        thread,
        on_exit,
    })
}

/// restic's `newLock` with retries: look for conflicts, write our lock, settle, look again;
/// on a conflict step back and wait (up to `wait`). On success `inner.current` names our lock.
fn wait_for_lock(
    inner: &Inner,
    record: &LockRecord,
    repository: &str,
    wait: Duration,
) -> Result<(), LockFailure> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(500);
    let mut waited_before = None;
    loop {
        let conflict = match conflict(inner, record.exclusive, None)? {
            Some(c) => Some(c),
            None => {
                let mut rec = record.clone();
                rec.time = jiff::Timestamp::now();
                let id = inner.write(&rec).map_err(LockFailure::Storage)?;
                *inner.current.lock().unwrap_or_else(|e| e.into_inner()) = (rec, Some(id.clone()));
                std::thread::sleep(SETTLE);
                match conflict(inner, record.exclusive, Some(&id))? {
                    None => return Ok(()),
                    Some(c) => {
                        inner.release_quietly();
                        Some(c)
                    }
                }
            }
        };
        if let Some((id, holder)) = conflict {
            let waited = start.elapsed();
            if waited >= wait {
                return Err(Locked {
                    repository: repository.to_string(),
                    holder: holder.to_string(),
                    id: id[..8].to_string(),
                    waited,
                }
                .into());
            }
            if waited_before.replace(true).is_none() {
                tracing::warn!(
                    "repository {repository} is locked ({holder}); waiting up to {}s for it",
                    wait.as_secs()
                );
            }
            // A little jitter, so two processes that stepped back together do not collide
            // again at the same moment.
            let jitter = Duration::from_millis(u64::from(std::process::id() % 200));
            std::thread::sleep((pause + jitter).min(wait - waited));
            pause = (pause * 2).min(Duration::from_secs(10));
        }
    }
}

/// The first live lock that conflicts with a lock of ours (exclusive or not), other than
/// `ours`. Stale conflicting locks are removed on the way (see the module docs); locks that
/// cannot be read are passed over, as restic 0.14 does.
fn conflict(
    inner: &Inner,
    exclusive: bool,
    ours: Option<&str>,
) -> Result<Option<(String, LockRecord)>, LockFailure> {
    let list = inner.store.list().map_err(LockFailure::Storage)?;
    for (id, size) in list {
        // restic ignores empty lock files: some backends leave them after an interrupted upload.
        if Some(id.as_str()) == ours || size == 0 {
            continue;
        }
        let data = match inner.store.read(&id) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => return Err(LockFailure::Storage(e)),
        };
        let rec: LockRecord = match inner
            .sealer
            .open(&data)
            .and_then(|j| serde_json::from_slice(&j).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("passing over unreadable repository lock {id}: {e}");
                continue;
            }
        };
        if !(exclusive || rec.exclusive) {
            continue;
        }
        if is_stale(&rec, &id) {
            match inner.store.remove(&id) {
                Ok(()) => tracing::warn!("removed a stale repository lock ({rec})"),
                Err(e) => tracing::warn!("passing over a stale repository lock ({rec}): {e}"),
            }
            continue;
        }
        return Ok(Some((id, rec)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &std::path::Path) -> (LockStore, Sealer) {
        let sealer = Sealer::new(&[3; 32], &[4; 16], &[5; 16], 2).unwrap();
        (LockStore::Local(dir.join("locks")), sealer)
    }

    fn ids(dir: &std::path::Path) -> Vec<String> {
        let (s, _) = store(dir);
        s.list().unwrap().into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn a_held_lock_is_refreshed_and_removed_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let (s, k) = store(d.path());
        let l = acquire(
            s,
            k,
            LockKind::Append,
            "r",
            Duration::ZERO,
            Duration::from_millis(150),
        )
        .unwrap();
        let first = l.id().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let now = l.id().unwrap();
        assert_ne!(first, now, "refreshed: a new file");
        assert_eq!(ids(d.path()), [now], "and the old one removed");
        drop(l);
        assert!(ids(d.path()).is_empty());
    }

    #[test]
    fn exclusive_conflicts_with_shared_and_stale_locks_give_way() {
        let d = tempfile::tempdir().unwrap();
        let (s, k) = store(d.path());
        let shared = acquire(s, k, LockKind::Append, "r", Duration::ZERO, REFRESH_EVERY).unwrap();
        let (s, k) = store(d.path());
        // Two shared locks live side by side.
        let shared2 = acquire(s, k, LockKind::Read, "r", Duration::ZERO, REFRESH_EVERY).unwrap();
        let (s, k) = store(d.path());
        let e = acquire(
            s,
            k,
            LockKind::Exclusive,
            "r",
            Duration::ZERO,
            REFRESH_EVERY,
        );
        assert!(matches!(e, Err(LockFailure::Locked(_))));
        drop((shared, shared2));

        // A lock of another host not refreshed for 31 minutes is stale; one of 29 is not.
        let (s, k) = store(d.path());
        let old = |minutes: i64| LockRecord {
            time: jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes),
            exclusive: false,
            hostname: "elsewhere".into(),
            username: "u".into(),
            pid: 1,
            uid: 0,
            gid: 0,
        };
        let (id, data) = k.seal(&serde_json::to_vec(&old(29)).unwrap()).unwrap();
        s.write(&id, &data).unwrap();
        let (s2, k2) = store(d.path());
        let e = acquire(
            s2,
            k2,
            LockKind::Exclusive,
            "r",
            Duration::ZERO,
            REFRESH_EVERY,
        );
        let Err(LockFailure::Locked(l)) = e else {
            panic!("a fresh lock of another host must block")
        };
        assert!(l.to_string().contains("pid 1 on elsewhere by u"), "{l}");
        s.remove(&id).unwrap();
        let (id, data) = k.seal(&serde_json::to_vec(&old(31)).unwrap()).unwrap();
        s.write(&id, &data).unwrap();
        let (s2, k2) = store(d.path());
        let l = acquire(
            s2,
            k2,
            LockKind::Exclusive,
            "r",
            Duration::ZERO,
            REFRESH_EVERY,
        )
        .unwrap();
        assert_eq!(
            ids(d.path()),
            [l.id().unwrap()],
            "the stale lock was removed"
        );
    }
}
