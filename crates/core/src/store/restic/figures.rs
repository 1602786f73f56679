//! Figures of a repository for `dvault report`: its size in storage, each snapshot's backup
//! figures (from the summary restic and rustic write into every snapshot), and what one full
//! restore of a snapshot downloads.

use std::collections::{BTreeMap, BTreeSet};

use rustic_core::repofile::IndexId;
use rustic_core::Id;
use serde::Serialize;

use super::*;

/// What the repository occupies in its storage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageFigures {
    /// Bytes of every file (config, keys, snapshots, index, packs).
    pub bytes: u64,
    /// Of these, bytes of pack files.
    pub pack_bytes: u64,
    /// Number of files (what a full download of the repository costs in requests).
    pub files: u64,
    /// Number of pack files.
    pub packs: u64,
}

/// A dvault snapshot with the figures of the backup that wrote it.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotFigures {
    /// The snapshot.
    pub info: SnapshotInfo,
    /// Plain bytes of its tree.
    pub bytes_processed: u64,
    /// New data the backup added, before compression.
    pub data_added: u64,
    /// New data as stored.
    pub data_added_packed: u64,
    /// Seconds the backup's storing step took (rustic's `backup_duration`).
    pub backup_seconds: f64,
}

/// What restoring one snapshot reads from the storage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreEgress {
    /// Bytes of the blobs it needs, as stored (each blob once).
    pub bytes: u64,
    /// Pack files they are in: about one ranged read each, plus the index and snapshot files.
    pub packs: u64,
    /// Requests: the packs plus the index, snapshot, key and config files read first.
    pub requests: u64,
}

impl Repo {
    /// Sizes of the repository's files, listed from the storage.
    pub fn storage_figures(&self) -> Result<StorageFigures, RepoError> {
        let be = self.cfg.location.backends_for(&self.cfg)?.repository();
        let mut f = StorageFigures::default();
        for tpe in [
            rustic_core::FileType::Key,
            rustic_core::FileType::Snapshot,
            rustic_core::FileType::Index,
            rustic_core::FileType::Pack,
        ] {
            let listed = be
                .list_with_size(tpe)
                .map_err(self.err("listing the repository's files"))?;
            let bytes: u64 = listed.iter().map(|(_, s)| u64::from(*s)).sum();
            f.bytes += bytes;
            f.files += listed.len() as u64;
            if tpe == rustic_core::FileType::Pack {
                f.pack_bytes = bytes;
                f.packs = listed.len() as u64;
            }
        }
        // The config file: one small file every opening reads.
        f.files += 1;
        Ok(f)
    }

    /// Every dvault snapshot (oldest first) with its backup's figures; snapshots written by a
    /// tool that keeps no summary have zeros.
    pub fn snapshot_figures(&self) -> Result<Vec<SnapshotFigures>, RepoError> {
        Ok(self
            .dvault_snapshots()?
            .iter()
            .filter_map(|s| {
                let info = snapshot_info(s)?;
                let sum = s.summary.clone().unwrap_or_default();
                Some(SnapshotFigures {
                    info,
                    bytes_processed: sum.total_bytes_processed,
                    data_added: sum.data_added,
                    data_added_packed: sum.data_added_packed,
                    backup_seconds: sum.backup_duration,
                })
            })
            .collect())
    }

    /// What a full restore of snapshot `id` reads: its tree walked, each blob it needs looked
    /// up in the index files.
    pub fn restore_egress(&self, id: &str) -> Result<RestoreEgress, RepoError> {
        let (snap, _) = self.find_snapshot(id)?;
        let mut located: BTreeMap<Id, (Id, u32)> = BTreeMap::new();
        let mut index_files = 0u64;
        self.with_open(|r| {
            for iid in r.list::<IndexId>().map_err(self.err("listing the index"))? {
                index_files += 1;
                let Ok(index) = r.get_file::<IndexFile>(&iid) else {
                    continue;
                };
                for p in &index.packs {
                    for b in &p.blobs {
                        located.insert(*b.id, (*p.id, b.location.length));
                    }
                }
            }
            Ok(())
        })?;
        let mut blobs: BTreeSet<Id> = BTreeSet::new();
        blobs.insert(*snap.tree);
        self.with_index(|repo| {
            let root = repo
                .node_from_snapshot_and_path(&snap, "")
                .map_err(self.err("reading the snapshot's tree"))?;
            for item in repo
                .ls(&root, &LsOptions::default())
                .map_err(self.err("listing"))?
            {
                let (_, node) = item.map_err(self.err("listing"))?;
                if let Some(t) = &node.subtree {
                    blobs.insert(**t);
                }
                for d in node.content.iter().flatten() {
                    blobs.insert(**d);
                }
            }
            Ok(())
        })?;
        let mut out = RestoreEgress::default();
        let mut packs = BTreeSet::new();
        for b in &blobs {
            if let Some((pack, len)) = located.get(b) {
                out.bytes += u64::from(*len);
                packs.insert(*pack);
            }
        }
        out.packs = packs.len() as u64;
        let snapshots = self.with_open(|r| {
            Ok(r.list::<SnapshotId>()
                .map_err(self.err("listing snapshots"))?
                .count() as u64)
        })?;
        // config + one key + every snapshot and index file + the packs.
        out.requests = 2 + snapshots + index_files + out.packs;
        Ok(out)
    }
}
