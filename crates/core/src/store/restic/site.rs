//! The [`Store`] of a config site whose backups go to a restic-format repository: `dvault
//! run`'s steps in terms of [`Repo`]; retention and the check's summary touch only the site's
//! own snapshots and words.

use std::path::Path;

use crate::retention::Retention;
use crate::source::Picked;
use crate::store::{Original, RestoreError, Store, Stored};

use super::Repo;

/// [`Store`] over the restic-format repository, for one config site.
pub(crate) struct RepoStore {
    repo: Repo,
    /// The config's site name: recorded in each snapshot, and retention touches only its own.
    site: String,
}

impl RepoStore {
    /// The store of config site `site` in `repo`.
    pub(crate) fn new(repo: Repo, site: &str) -> Self {
        RepoStore {
            repo,
            site: site.to_string(),
        }
    }
}

impl Store for RepoStore {
    fn find_sha256(&self, sha256: &str) -> anyhow::Result<Option<String>> {
        Ok(self.repo.find_by_sha256(sha256)?.map(|s| s.short_id))
    }

    fn store(&self, picked: &Picked, sha256: &str) -> anyhow::Result<Stored> {
        use crate::repo::BackupOutcome;
        use crate::snapshot::{self, BackupMeta, DiscourseName};
        let file_name = &picked.name.file_name;
        // The SHA-256 was just computed from this file; reading it a third time to fill in
        // the metadata would only cost time.
        let meta = BackupMeta {
            file_name: file_name.clone(),
            size: picked.size,
            sha256: sha256.to_string(),
            format: picked.name.format,
            discourse: DiscourseName::from(&picked.name),
            host: snapshot::hostname(),
            source: picked.origin.clone(),
            site: Some(self.site.clone()),
            uploads: None,
            peel: None,
        };
        Ok(match self.repo.backup_file(&picked.path, &meta)? {
            BackupOutcome::Stored(s) => Stored {
                snapshot: s.snapshot.short_id,
                bytes_read: picked.size,
                bytes_added: s.bytes_added_packed,
            },
            // Another host stored the same file between our lookup and now.
            BackupOutcome::AlreadyStored { snapshot } => Stored {
                snapshot: snapshot.short_id,
                bytes_read: picked.size,
                bytes_added: 0,
            },
        })
    }

    fn snapshot_count(&self) -> anyhow::Result<u64> {
        Ok(self.repo.snapshots()?.len() as u64)
    }

    fn newest_stored(&self, source_prefix: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .repo
            .snapshots()?
            .into_iter()
            .filter(|s| match &s.meta.site {
                Some(site) => *site == self.site,
                None => s.meta.source.starts_with(source_prefix),
            })
            .filter_map(|s| s.meta.discourse.taken)
            .max())
    }

    fn forget(&self, r: &Retention) -> anyhow::Result<String> {
        let report = self.repo.forget(&r.for_site(&self.site), false)?;
        let kept = report.decisions.iter().filter(|d| d.keep).count();
        let mut s = format!("kept {kept}, removed {}", report.removed.len());
        if let Some(b) = report.pruned_bytes {
            s.push_str(&format!(", pruned {b} bytes"));
        }
        Ok(s)
    }

    fn check(&self, read_data_percent: Option<f64>) -> anyhow::Result<String> {
        use crate::repo::ReadData;
        let read = match read_data_percent {
            None => ReadData::None,
            Some(p) if p >= 100.0 => ReadData::All,
            Some(p) => ReadData::Percent(p),
        };
        let report = self.repo.check(read)?;
        if !report.is_ok() {
            anyhow::bail!(
                "{} error(s): {}",
                report.errors.len(),
                report.errors.join("; ")
            );
        }
        let c = &report.checked;
        let mut s = format!(
            "no errors in {} snapshots and {} packs ({}); pack data read: {}",
            c.snapshots,
            c.packs,
            crate::figures::bytes(c.pack_bytes),
            c.read_data
        );
        if !report.warnings.is_empty() {
            s.push_str(&format!(
                ", {} warning(s): {}",
                report.warnings.len(),
                report.warnings.join("; ")
            ));
        }
        Ok(s)
    }

    fn repository(&self) -> Option<&Repo> {
        Some(&self.repo)
    }

    fn restore_original(&self, snapshot: &str, dir: &Path) -> Result<Original, RestoreError> {
        let info = self
            .repo
            .find(snapshot)
            .map_err(|e| RestoreError::Unknown(e.into()))?;
        let name = Path::new(&info.meta.file_name)
            .file_name()
            .map_or_else(|| "backup".into(), |n| n.to_os_string());
        let path = dir.join(name);
        // restore_file checks the rebuilt file's SHA-256 against the snapshot's record.
        match self.repo.restore_file(&info.id, &path) {
            Ok(info) => Ok(Original {
                path,
                file_name: info.meta.file_name,
                sha256: info.meta.sha256,
                snapshot: info.short_id,
            }),
            Err(e) => Err(RestoreError::Unreadable {
                file_name: info.meta.file_name,
                error: e.into(),
            }),
        }
    }
}
