//! The scratch tree as a rustic source whose file metadata does not change from day to day.
//!
//! A restic tree blob lists each entry of a directory with its metadata (mtime, ctime, inode,
//! device) and the ids of its chunks. The peeled tree is written afresh into a new scratch folder
//! for every backup, so that metadata differs every day and every tree blob of the snapshot would
//! be stored again, even for folders whose files are all unchanged. With small chunks those blobs
//! are large (a 100 MB column file lists ~12,000 chunk ids): measured on the simulated medium
//! forum, 0.6-1.3 MB of new tree data per day. Entries here carry a fixed mtime and no atime,
//! ctime, inode or device, so an unchanged folder gives an identical tree blob that deduplicates.
//! Because the metadata is fixed, a parent snapshot must never be used to skip reading files:
//! the backup runs with `force` (read everything), which it effectively did anyway.

use std::path::PathBuf;

use rustic_core::{
    Excludes, LocalSource, LocalSourceFilterOptions, LocalSourceSaveOptions, ReadSource,
    ReadSourceEntry, RusticResult,
};

/// The mtime every stored entry gets: 2000-01-01T00:00:00Z.
const FIXED_MTIME_SECS: i64 = 946_684_800;

type Entry = RusticResult<ReadSourceEntry<<LocalSource as ReadSource>::Open>>;

/// [`LocalSource`] over the scratch tree with the per-run metadata removed.
pub(crate) struct StableSource(LocalSource);

impl StableSource {
    /// A source reading `path` (a folder) like `restic backup` would.
    pub(crate) fn new(path: &std::path::Path) -> RusticResult<Self> {
        let paths = [PathBuf::from(path)];
        Ok(Self(LocalSource::new(
            LocalSourceSaveOptions::default(),
            &Excludes::default(),
            &LocalSourceFilterOptions::default(),
            &paths,
        )?))
    }
}

fn stabilize(entry: Entry) -> Entry {
    entry.map(|mut e| {
        let m = &mut e.node.meta;
        m.mtime = rustic_core::jiff::Timestamp::from_second(FIXED_MTIME_SECS).ok();
        m.atime = None;
        m.ctime = None;
        m.inode = 0;
        m.device_id = 0;
        // With inode 0 everywhere, a link count above 1 would make restore treat files as
        // hard links of one another; peel writes no hard links into the tree.
        m.links = m.links.min(1);
        e
    })
}

impl ReadSource for StableSource {
    type Open = <LocalSource as ReadSource>::Open;
    type Iter = std::iter::Map<<LocalSource as ReadSource>::Iter, fn(Entry) -> Entry>;

    fn size(&self) -> RusticResult<Option<u64>> {
        self.0.size()
    }

    fn entries(&self) -> Self::Iter {
        self.0.entries().map(stabilize as fn(Entry) -> Entry)
    }
}
