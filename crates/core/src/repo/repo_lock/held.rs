//! A lock this process holds: the lock file written and refreshed every few minutes by a
//! thread, removed when dropped or when a signal ends the process, and the registry of the
//! lock ids held now (a lock of this pid that is not in it is a leftover, hence stale). Apart
//! from `repo_lock.rs`, which decides when a lock may be taken, because holding one is its own
//! life cycle.

use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::super::lock_store::{LockStore, Sealer};
use super::LockRecord;

/// Ids of the locks this process holds now (a lock of this pid and host that is not among
/// them is a leftover this process could not remove, hence stale).
static HELD: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn held(f: impl FnOnce(&mut HashSet<String>)) {
    let mut g = HELD.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashSet::new));
}

pub(super) fn is_held_here(id: &str) -> bool {
    let g = HELD.lock().unwrap_or_else(|e| e.into_inner());
    g.as_ref().is_some_and(|s| s.contains(id))
}

pub(super) struct Inner {
    pub(super) store: LockStore,
    pub(super) sealer: Sealer,
    /// The record and the id of the file that holds it now (`None` once removed).
    pub(super) current: Mutex<(LockRecord, Option<String>)>,
}

impl Inner {
    pub(super) fn write(&self, record: &LockRecord) -> Result<String, String> {
        let json = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let (id, data) = self.sealer.seal(&json)?;
        self.store.write(&id, &data)?;
        held(|s| {
            s.insert(id.clone());
        });
        Ok(id)
    }

    pub(super) fn remove(&self, id: &str) -> Result<(), String> {
        let r = self.store.remove(id);
        held(|s| {
            s.remove(id);
        });
        r
    }

    /// Writes a new lock file with the current time, then removes the old one.
    pub(super) fn refresh(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let Some(old) = cur.1.clone() else { return };
        let mut rec = cur.0.clone();
        rec.time = jiff::Timestamp::now();
        match self.write(&rec) {
            Ok(id) => {
                *cur = (rec, Some(id));
                if let Err(e) = self.remove(&old) {
                    tracing::warn!("could not remove the previous repository lock: {e}");
                }
            }
            Err(e) => tracing::warn!("could not refresh the repository lock: {e}"),
        }
    }

    /// Removes our lock file after stepping back from a conflict (no warning: a lock that
    /// stays is ours and stale as soon as this process ends).
    pub(super) fn release_quietly(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = cur.1.take() {
            let _ = self.remove(&id);
        }
    }

    /// Removes the lock file (once).
    pub(super) fn release(&self) {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = cur.1.take() {
            if let Err(e) = self.remove(&id) {
                tracing::warn!(
                    "could not remove the repository lock {id} ({e}); it turns stale 30 minutes \
                     from now (at once for this host), or remove it with `restic unlock`"
                );
            }
        }
    }
}

/// A held repository lock: refreshed by a thread, removed when dropped and when a signal ends
/// the process (see `interrupt.rs`).
pub struct HeldLock {
    pub(super) inner: Arc<Inner>,
    pub(super) stop: Option<mpsc::Sender<()>>,
    pub(super) thread: Option<JoinHandle<()>>,
    pub(super) on_exit: u64,
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldLock({:?})", self.id())
    }
}

impl HeldLock {
    /// The id of the lock file held now.
    pub fn id(&self) -> Option<String> {
        let cur = self.inner.current.lock().unwrap_or_else(|e| e.into_inner());
        cur.1.clone()
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.inner.release();
        crate::interrupt::cancel_on_exit(self.on_exit);
    }
}
