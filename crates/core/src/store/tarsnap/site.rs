//! The [`Store`] of a config site whose backups go to Tarsnap: what is stored is known from the
//! host's ledger (a write-only key cannot list archives); retention runs only where the admin
//! key is, by the site's own `tarsnap.keep_*` rules.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};

use super::ledger::{Ledger, LedgerEntry};
use super::{TarsnapConfig, TarsnapStore};
use crate::retention::Retention;
use crate::source::Picked;
use crate::store::{Original, RestoreError, Store, Stored};

/// [`Store`] over Tarsnap: what is stored is known from the host's ledger (a write-only key
/// cannot list archives); retention runs only where the admin key is.
pub(crate) struct TarsnapSiteStore {
    site: String,
    store: TarsnapStore,
    ledger: PathBuf,
}

impl TarsnapSiteStore {
    /// The store of config site `site`, with its ledger in `state_dir`.
    pub(crate) fn new(site: &str, cfg: &TarsnapConfig, state_dir: &Path) -> Self {
        TarsnapSiteStore {
            site: site.to_string(),
            store: TarsnapStore::new(cfg.clone()),
            ledger: Ledger::path(state_dir, site),
        }
    }
}

impl Store for TarsnapSiteStore {
    fn find_sha256(&self, sha256: &str) -> anyhow::Result<Option<String>> {
        Ok(Ledger::load(&self.ledger)?
            .find(sha256)
            .map(|e| e.archive.clone()))
    }

    fn store(&self, picked: &Picked, sha256: &str) -> anyhow::Result<Stored> {
        let time = picked.name.time.as_deref().with_context(|| {
            format!(
                "{}: no time in the name and no modification time",
                picked.origin
            )
        })?;
        let done = self
            .store
            .backup_at(&self.site, &picked.path, &picked.name.file_name, time)?;
        if done.original.sha256 != sha256 {
            anyhow::bail!(
                "{}: changed while it was stored (SHA-256 {} before, {} in the stream); \
                 archive {} holds the later bytes",
                picked.origin,
                sha256,
                done.original.sha256,
                done.archive
            );
        }
        let mut ledger = Ledger::load(&self.ledger)?;
        ledger.archives.push(LedgerEntry {
            archive: done.archive.clone(),
            file_name: picked.name.file_name.clone(),
            size: picked.size,
            sha256: sha256.to_string(),
        });
        ledger.save(&self.ledger)?;
        Ok(Stored {
            snapshot: done.archive,
            bytes_read: picked.size,
            // Tarsnap reports what it added only on its own stderr (--print-stats); 0 = unknown.
            bytes_added: 0,
        })
    }

    fn snapshot_count(&self) -> anyhow::Result<u64> {
        Ok(Ledger::load(&self.ledger)?.archives.len() as u64)
    }

    fn newest_stored(&self, _source_prefix: &str) -> anyhow::Result<Option<String>> {
        // The ledger is this site's own.
        Ok(Ledger::load(&self.ledger)?
            .archives
            .iter()
            .filter_map(|e| crate::discourse::BackupName::parse(&e.file_name)?.time)
            .max())
    }

    fn forget(&self, _retention: &Retention) -> anyhow::Result<String> {
        anyhow::bail!("a Tarsnap site keeps archives by tarsnap.keep_last / tarsnap.keep_daily")
    }

    fn check(&self, _read_data_percent: Option<f64>) -> anyhow::Result<String> {
        anyhow::bail!("Tarsnap checks its archives itself (`tarsnap --fsck`)")
    }

    fn own_retention(&self) -> anyhow::Result<Option<String>> {
        let cfg = self.store.config();
        if cfg.keep_last.is_none() && cfg.keep_daily.is_none() {
            return Ok(None);
        }
        if cfg.admin_keyfile.is_none() {
            return Ok(Some(
                "not on this host (no tarsnap.admin_keyfile: the write key cannot delete)".into(),
            ));
        }
        let deleted = self.store.apply_retention(&self.site)?;
        let mut ledger = Ledger::load(&self.ledger)?;
        ledger.remove(&deleted);
        ledger.save(&self.ledger)?;
        Ok(Some(format!("deleted {} archive(s)", deleted.len())))
    }

    fn restore_original(&self, archive: &str, dir: &Path) -> Result<Original, RestoreError> {
        let ledger = Ledger::load(&self.ledger).map_err(RestoreError::Unknown)?;
        let entry = ledger.archive(archive).ok_or_else(|| {
            RestoreError::Unknown(anyhow!(
                "site {}: {} does not list Tarsnap archive {archive} to drill",
                self.site,
                self.ledger.display()
            ))
        })?;
        let path = dir.join(&entry.file_name);
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("creating {}", path.display()))
            .map_err(RestoreError::Unknown)?;
        let restored = self.store.restore(&entry.archive, &mut file);
        drop(file);
        if let Err(e) = restored {
            return Err(RestoreError::Unreadable {
                file_name: entry.file_name.clone(),
                error: e.context(format!(
                    "tarsnap archive {}: reading it back failed",
                    entry.archive
                )),
            });
        }
        // The drill checks the file against the SHA-256 the ledger recorded when it was stored.
        Ok(Original {
            path,
            file_name: entry.file_name.clone(),
            sha256: entry.sha256.clone(),
            snapshot: entry.archive.clone(),
        })
    }
}
