//! A cap on the pack data a restore holds in memory at once.
//!
//! rustic_core 0.13 restores with a fixed pool of 20 reader threads (`MAX_READER_THREADS_NUM`
//! in its `commands/restore.rs`), each reading a whole stretch of a pack (adjacent blobs
//! coalesced, up to a full data pack: 32 MiB and more, growing with the repository) and keeping
//! it until every blob in it is decrypted. Restoring an early day of a month-old repository
//! touches many packs, most of them only in part, so 20 such stretches at once made the peak
//! RSS of a restore grow with the repository's age (333 MB for day 1 of a 31-day repository,
//! issue 19), with no option to lower it.
//!
//! The backend wrapper is the one place dvault sees those reads. Each pack read takes its length
//! from this budget before it starts and gives it back when the last copy of the returned
//! buffer is dropped (the buffer owns its share), so the bytes of pack data alive at once stay
//! under the budget whatever rustic does with its threads. A reader waiting for budget holds
//! none, and a holder never waits for anything while holding, so no cycle can form. A read
//! larger than the whole budget takes all of it (it still runs, alone).

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use bytes::Bytes;

/// Bytes of pack data held at once: four full default data packs, a third of the 20 reads
/// rustic_core would otherwise hold. Reading ahead of decryption gains nothing beyond a few
/// reads in flight on 2 to 8 cores.
pub(crate) const DEFAULT_BYTES: u64 = 128 * 1024 * 1024;

/// The budget to use: `DVAULT_READ_BUDGET_MB` (MiB; a tuning knob for benchmarks and for a
/// host with very little memory) or [`DEFAULT_BYTES`].
pub(crate) fn configured() -> ReadBudget {
    let mib = std::env::var("DVAULT_READ_BUDGET_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    ReadBudget::new(mib.map_or(DEFAULT_BYTES, |m| m.saturating_mul(1024 * 1024)))
}

/// The shared budget. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct ReadBudget(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    total: u64,
    free: Mutex<u64>,
    freed: Condvar,
}

impl ReadBudget {
    /// A budget of `total` bytes (at least 1).
    pub(crate) fn new(total: u64) -> Self {
        let total = total.max(1);
        Self(Arc::new(Inner {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
        }))
    }

    /// Waits for `len` bytes of the budget (all of it if `len` is larger), runs `read`, and
    /// returns its buffer owning the share; a failed read gives the share back at once.
    pub(crate) fn read<E>(
        &self,
        len: u64,
        read: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let share = Share::take(self.0.clone(), len.min(self.0.total));
        let data = read()?;
        Ok(Bytes::from_owner(Held {
            data,
            _share: share,
        }))
    }

    /// Bytes of the budget not held now (for tests).
    #[cfg(test)]
    fn free(&self) -> u64 {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A part of the budget, given back when dropped.
#[derive(Debug)]
struct Share {
    budget: Arc<Inner>,
    bytes: u64,
}

impl Share {
    fn take(budget: Arc<Inner>, bytes: u64) -> Self {
        let mut free = budget.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free < bytes {
            free = budget
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= bytes;
        drop(free);
        Self { budget, bytes }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        *self
            .budget
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += self.bytes;
        self.budget.freed.notify_all();
    }
}

/// A buffer read under the budget, with the share it holds.
struct Held {
    data: Bytes,
    _share: Share,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn the_share_is_held_until_the_last_copy_of_the_buffer_is_dropped() {
        let b = ReadBudget::new(100);
        let data = b
            .read(60, || Ok::<_, ()>(Bytes::from(vec![7u8; 60])))
            .unwrap();
        let copy = data.slice(10..20);
        assert_eq!(b.free(), 40);
        drop(data);
        assert_eq!(b.free(), 40, "a slice still holds the buffer");
        assert_eq!(&copy[..], &[7u8; 10]);
        drop(copy);
        assert_eq!(b.free(), 100);
    }

    #[test]
    fn a_failed_read_gives_its_share_back() {
        let b = ReadBudget::new(100);
        assert!(b.read(80, || Err::<Bytes, _>("no")).is_err());
        assert_eq!(b.free(), 100);
    }

    #[test]
    fn reads_at_once_never_hold_more_than_the_budget_and_an_oversized_read_still_runs() {
        let b = ReadBudget::new(100);
        let held = Arc::new(AtomicU64::new(0));
        let peak = Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for i in 0..20u64 {
                let (b, held, peak) = (b.clone(), held.clone(), peak.clone());
                s.spawn(move || {
                    // One read larger than the budget among reads of 30 to 49 bytes.
                    let len = if i == 7 { 500 } else { 30 + i };
                    let data = b
                        .read(len, || Ok::<_, ()>(Bytes::from(vec![0u8; len as usize])))
                        .unwrap();
                    let now = held.fetch_add(len.min(100), Ordering::SeqCst) + len.min(100);
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    held.fetch_sub(len.min(100), Ordering::SeqCst);
                    drop(data);
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 100, "peak {peak:?}");
        assert_eq!(b.free(), 100);
    }
}
