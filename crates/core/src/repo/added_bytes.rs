//! Counts the bytes a repository operation writes into pack files, live, for the progress
//! display. rustic_core reports bytes read while archiving but only totals the bytes added at
//! the end; wrapping the backend is the one place that sees every pack as it is written.

use std::sync::Arc;

use bytes::Bytes;
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};

use super::ProgressBars;

/// A backend that passes everything through and tells `progress` about each pack written.
#[derive(Debug)]
pub(crate) struct AddedBytes {
    inner: Arc<dyn WriteBackend>,
    progress: Arc<dyn ProgressBars>,
}

impl AddedBytes {
    /// Wraps `inner`.
    pub(crate) fn wrap(
        inner: Arc<dyn WriteBackend>,
        progress: Arc<dyn ProgressBars>,
    ) -> Arc<dyn WriteBackend> {
        Arc::new(Self { inner, progress })
    }
}

impl ReadBackend for AddedBytes {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.inner.list_with_size(tpe)
    }
    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.inner.list(tpe)
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
        self.inner.read_partial(tpe, id, cacheable, offset, length)
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

impl WriteBackend for AddedBytes {
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
        self.inner.write_bytes(tpe, id, cacheable, content)?;
        if tpe == FileType::Pack {
            self.progress.added(size);
        }
        Ok(())
    }
    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}
