//! `dvault stats`: how big the repository is, what it holds, and what deduplication saves.
//!
//! The ratio an admin wants is "how many bytes of Discourse backups per byte of storage": the
//! original files' sizes (as recorded in each snapshot) over the bytes the repository's files
//! take (packs, index, snapshots, keys, config: what the storage bills). restic's `stats` gives
//! the pieces under other names (`restore-size`, `raw-data`); they are listed here too.

use serde::{Deserialize, Serialize};

use super::repo_lock::LockKind;
use super::{Repo, RepoError};

/// Figures of one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoStats {
    /// Where the repository is (password hidden).
    pub location: String,
    /// dvault snapshots.
    pub snapshots: u64,
    /// Snapshots of other tools in the same repository (not counted below).
    pub other_snapshots: u64,
    /// Sum of the original backup files' sizes over the dvault snapshots.
    pub original_bytes: u64,
    /// Sum of the peeled trees' sizes (what a plain `restic restore` writes), as each backup
    /// recorded it.
    pub peeled_bytes: u64,
    /// Distinct data blobs and their size before compression (restic's `raw-data`).
    pub unique_blobs: u64,
    /// Bytes of the distinct blobs before compression and encryption.
    pub unique_bytes: u64,
    /// Bytes of the pack files.
    pub pack_bytes: u64,
    /// Pack files.
    pub packs: u64,
    /// Bytes of the repository's files: packs, index, snapshots and keys (the small config
    /// file and transient lock files aside).
    pub stored_bytes: u64,
    /// `original_bytes / stored_bytes`: bytes of backups kept per byte stored (0 when empty).
    pub dedup_ratio: f64,
}

impl Repo {
    /// Counts the repository's snapshots, blobs and files.
    pub fn stats(&self) -> Result<RepoStats, RepoError> {
        let _lock = self.lock(LockKind::Read)?;
        let (all, files, index) = self.with_open(|r| {
            let all = r
                .get_all_snapshots()
                .map_err(self.err("reading the snapshots"))?;
            let files = r.infos_files().map_err(self.err("listing the files"))?;
            let index = r.infos_index().map_err(self.err("reading the index"))?;
            Ok((all.len() as u64, files, index))
        })?;
        let dvault = self.dvault_snapshots()?;
        let infos: Vec<_> = dvault
            .iter()
            .filter_map(super::restic::snapshot_info)
            .collect();
        let original_bytes = infos.iter().map(|i| i.meta.size).sum::<u64>();
        let peeled_bytes = dvault
            .iter()
            .filter_map(|s| s.summary.as_ref())
            .map(|s| s.total_bytes_processed)
            .sum();
        let data = index
            .blobs
            .iter()
            .filter(|b| b.blob_type == rustic_core::repofile::BlobType::Data);
        let (unique_blobs, unique_bytes) =
            data.fold((0, 0), |(n, b), i| (n + i.count, b + i.data_size));
        let pack = files
            .repo
            .iter()
            .find(|f| f.tpe == rustic_core::FileType::Pack);
        let stored_bytes = files.repo.iter().map(|f| f.size).sum::<u64>();
        Ok(RepoStats {
            location: self.location().to_string(),
            snapshots: dvault.len() as u64,
            other_snapshots: all.saturating_sub(dvault.len() as u64),
            original_bytes,
            peeled_bytes,
            unique_blobs,
            unique_bytes,
            pack_bytes: pack.map_or(0, |p| p.size),
            packs: pack.map_or(0, |p| p.count),
            stored_bytes,
            dedup_ratio: ratio(original_bytes, stored_bytes),
        })
    }
}

fn ratio(original: u64, stored: u64) -> f64 {
    if stored == 0 {
        return 0.0;
    }
    original as f64 / stored as f64
}
