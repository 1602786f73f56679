//! Listing and finding dvault's snapshots, read one by one when one snapshot file is damaged,
//! and dvault's view of a rustic snapshot ([`SnapshotInfo`]).

use super::*;

impl Repo {
    /// All dvault snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RepoError> {
        Ok(self
            .dvault_snapshots()?
            .iter()
            .filter_map(snapshot_info)
            .collect())
    }

    pub(crate) fn dvault_snapshots(&self) -> Result<Vec<SnapshotFile>, RepoError> {
        Ok(self.snapshot_list()?.good)
    }

    /// The dvault snapshots, oldest first, and the snapshot files that could not be read.
    pub(super) fn snapshot_list(&self) -> Result<SnapshotList, RepoError> {
        let mut list = self.with_open(|r| {
            let all_err = match r.get_all_snapshots() {
                Ok(good) => {
                    return Ok(SnapshotList {
                        good,
                        damaged: Vec::new(),
                    })
                }
                Err(e) => e,
            };
            // rustic_core reads all snapshot files at once and fails at a damaged one; read
            // them one by one so that one damaged file costs only its own snapshot.
            let ids: Vec<SnapshotId> = r
                .list::<SnapshotId>()
                .map_err(self.err("listing snapshots"))?
                .collect();
            let mut good = Vec::new();
            let mut damaged = Vec::new();
            for id in ids {
                match r.get_file::<SnapshotFile>(&id) {
                    Ok(mut s) => {
                        s.id = id;
                        let _ = s.original.get_or_insert(id);
                        good.push(s);
                    }
                    Err(e) => damaged.push((id.to_hex().as_str().to_string(), one_line(&e))),
                }
            }
            if damaged.is_empty() {
                return Err(self.err("listing snapshots")(all_err));
            }
            for (id, why) in &damaged {
                tracing::warn!(
                    "snapshot file snapshots/{id} of {} is damaged ({why}); leaving it out. \
                     Run `dvault check`.",
                    self.cfg.location
                );
            }
            Ok(SnapshotList { good, damaged })
        })?;
        list.good.retain(|s| s.tags.contains(TAG));
        list.good.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(list)
    }

    /// The snapshot of a file with this SHA-256, if one exists.
    pub fn find_by_sha256(&self, sha256: &str) -> Result<Option<SnapshotInfo>, RepoError> {
        Ok(self
            .snapshots()?
            .into_iter()
            .find(|s| s.meta.sha256 == sha256))
    }

    /// The snapshot `id` (a unique prefix, or `latest`).
    pub fn find(&self, id: &str) -> Result<SnapshotInfo, RepoError> {
        Ok(self.find_snapshot(id)?.1)
    }

    pub(crate) fn find_snapshot(
        &self,
        id: &str,
    ) -> Result<(SnapshotFile, SnapshotInfo), RepoError> {
        let SnapshotList {
            good: snaps,
            damaged,
        } = self.snapshot_list()?;
        let found: Vec<_> = if id == "latest" {
            snaps.last().cloned().into_iter().collect()
        } else {
            snaps
                .into_iter()
                .filter(|s| full_id(s).starts_with(id))
                .collect()
        };
        match found.as_slice() {
            [one] => {
                let info =
                    snapshot_info(one).ok_or_else(|| RepoError::NoSuchSnapshot(id.to_string()))?;
                Ok((one.clone(), info))
            }
            [] => match damaged.iter().find(|(full, _)| full.starts_with(id)) {
                Some((full, why)) => Err(RepoError::Invalid(format!(
                    "snapshot {full}: its file snapshots/{full} in {} is damaged ({why}); it \
                     cannot be restored. Other snapshots are not affected; run `dvault check`",
                    self.cfg.location
                ))),
                None => Err(RepoError::NoSuchSnapshot(id.to_string())),
            },
            _ => Err(RepoError::Invalid(format!(
                "snapshot id `{id}` is ambiguous ({} snapshots match); give more digits",
                found.len()
            ))),
        }
    }
}

/// The snapshots of a repository: those that could be read, and the damaged ones (full id and
/// what was wrong), which are left out.
pub(super) struct SnapshotList {
    good: Vec<SnapshotFile>,
    damaged: Vec<(String, String)>,
}

/// Every snapshot of the repository with a label for messages: short id, and the original
/// file name for dvault's own.
pub(super) fn labelled_snapshots<S: rustic_core::Open>(
    repo: &Repository<S>,
) -> Vec<(String, SnapshotFile)> {
    let Ok(all) = repo.get_all_snapshots() else {
        return Vec::new();
    };
    all.into_iter()
        .map(|s| {
            let id = full_id(&s);
            let label = match snapshot_info(&s) {
                Some(info) => format!("{} ({})", &id[..8], info.meta.file_name),
                None => id[..8].to_string(),
            };
            (label, s)
        })
        .collect()
}

/// Tag of snapshots whose tree holds the dedup layout (`crate::layout`). It marks that there is
/// a layout to undo; the layout's version is in its own `index.json` (1 or 2, both read).
pub(crate) const LAYOUT_TAG: &str = "layout:1";

/// dvault's view of a rustic snapshot; `None` when it carries no dvault record.
pub(crate) fn snapshot_info(s: &SnapshotFile) -> Option<SnapshotInfo> {
    let meta: BackupMeta = serde_json::from_str(s.description.as_deref()?).ok()?;
    let id = full_id(s);
    Some(SnapshotInfo {
        short_id: id.chars().take(8).collect(),
        id,
        time: s.time.timestamp().to_string(),
        host: s.hostname.clone(),
        tags: s.tags.iter().cloned().collect(),
        meta,
    })
}
