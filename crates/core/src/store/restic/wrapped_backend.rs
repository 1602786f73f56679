//! The one wrapper dvault puts around a repository backend, for two things rustic_core has no
//! hook for:
//!
//! - **Leaving damaged index files out of listings.** rustic_core 0.13 reads every index file
//!   in one go and gives up at the first one that does not decrypt, so one damaged index file
//!   would make every restore fail, even of snapshots whose data it does not describe. It lists
//!   the index files through the backend, though, so leaving the damaged ones out of the list
//!   lets it build the index from the others (see `Repo::with_index`). Only ids put in the
//!   skip set by dvault itself (after it read them and saw them fail) are left out.
//! - **Counting the bytes written into pack files**, live, for the progress display: rustic_core
//!   reports bytes read while archiving but only totals the bytes added at the end.
//! - **Capping the pack data read at once** (`store/restic/read_budget.rs`): rustic_core's
//!   restore holds up to 20 pack stretches in memory with no option to lower that.
//!
//! Everything else goes straight through.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};

use super::read_budget::{self, ReadBudget};
use crate::repo::ProgressBars;

/// The index files to leave out of listings, shared between [`WrappedBackend`] and its owner.
#[derive(Debug, Clone, Default)]
pub(crate) struct SkipSet(Arc<Mutex<BTreeSet<Id>>>);

impl SkipSet {
    /// Leaves `ids` out of index listings from now on.
    pub(crate) fn skip(&self, ids: impl IntoIterator<Item = Id>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(ids);
    }

    /// Lists every index file again.
    pub(crate) fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn contains(&self, id: &Id) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }
}

/// Wraps a repository backend: index files in the [`SkipSet`] are not listed, and each pack
/// written is told to `progress`.
#[derive(Debug)]
pub(crate) struct WrappedBackend {
    inner: Arc<dyn WriteBackend>,
    skip: SkipSet,
    progress: Option<Arc<dyn ProgressBars>>,
    budget: ReadBudget,
}

impl WrappedBackend {
    /// Wraps `inner`.
    pub(crate) fn new(
        inner: Arc<dyn WriteBackend>,
        skip: SkipSet,
        progress: Option<Arc<dyn ProgressBars>>,
    ) -> Self {
        Self {
            inner,
            skip,
            progress,
            budget: read_budget::configured(),
        }
    }
}

impl ReadBackend for WrappedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let mut list = self.inner.list_with_size(tpe)?;
        if tpe == FileType::Index {
            list.retain(|(id, _)| !self.skip.contains(id));
        }
        Ok(list)
    }

    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        let mut list = self.inner.list(tpe)?;
        if tpe == FileType::Index {
            list.retain(|id| !self.skip.contains(id));
        }
        Ok(list)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        if tpe != FileType::Pack {
            return self.inner.read_partial(tpe, id, cacheable, offset, length);
        }
        self.budget.read(u64::from(length), || {
            self.inner.read_partial(tpe, id, cacheable, offset, length)
        })
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }

    fn needs_warm_up(&self) -> bool {
        self.inner.needs_warm_up()
    }

    fn warm_up(&self, tpe: FileType, id: &Id) -> RusticResult<()> {
        self.inner.warm_up(tpe, id)
    }
}

impl WriteBackend for WrappedBackend {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let size = content.size() as u64;
        let started = std::time::Instant::now();
        self.inner.write_bytes(tpe, id, cacheable, content)?;
        if tpe == FileType::Pack {
            crate::repo::profile::count_pack_write(started);
        }
        if let (FileType::Pack, Some(p)) = (tpe, &self.progress) {
            p.added(size);
        }
        Ok(())
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}
