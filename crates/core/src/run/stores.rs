//! The stores a run writes to: a site's restic-format repository (`RepoOpener`, also used by
//! the drill through `open_repository`) or Tarsnap, each behind the `Store` trait of the loop.

use super::*;

/// Opens each site's restic-format repository with its password file.
#[derive(Debug, Clone)]
pub struct RepoOpener {
    cache_dir: PathBuf,
    scratch_dir: Option<PathBuf>,
    state_dir: PathBuf,
    lock_wait: Duration,
}

impl RepoOpener {
    /// Uses the config's cache, scratch and state folders.
    pub fn new(config: &Config) -> Self {
        RepoOpener {
            cache_dir: config.cache_dir(),
            scratch_dir: config.scratch_dir.clone(),
            state_dir: config.state_dir(),
            lock_wait: config.lock_wait.unwrap_or_default(),
        }
    }
}

impl StoreOpener for RepoOpener {
    fn open(&self, name: &str, site: &SiteConfig) -> anyhow::Result<Box<dyn Store>> {
        if let Some(t) = &site.tarsnap {
            return Ok(Box::new(TarsnapSiteStore {
                site: name.to_string(),
                store: crate::repo::tarsnap::TarsnapStore::new(t.clone()),
                ledger: Ledger::path(&self.state_dir, name),
            }));
        }
        let r = site
            .repository
            .as_ref()
            .ok_or_else(|| anyhow!("site {name} has no [repository]"))?;
        let repo = open_repository(r, Some(self.cache_dir.clone()), self.scratch_dir.clone())?
            .with_state_dir(self.state_dir.clone())
            .with_lock_wait(self.lock_wait);
        Ok(Box::new(RepoStore {
            repo,
            site: name.to_string(),
        }))
    }
}

/// Opens the repository a site's `[repository]` section names (location, password file, S3
/// credentials file), with the given cache and scratch folders.
pub fn open_repository(
    r: &crate::config::RepositoryConfig,
    cache_dir: Option<PathBuf>,
    scratch_dir: Option<PathBuf>,
) -> anyhow::Result<crate::repo::Repo> {
    use crate::repo::{password, Location, Repo, RepoConfig};
    let mut cfg = RepoConfig::new(Location::parse(&r.location)?);
    cfg.cache_dir = cache_dir;
    cfg.scratch_dir = scratch_dir;
    cfg.s3_credentials_file = r.s3_credentials_file.clone();
    cfg.rest_password_file = r.rest_password_file.clone();
    let password = password::read_file(&r.password_file)?;
    Ok(Repo::open(&cfg, &password, None)?)
}

/// [`Store`] over Tarsnap: what is stored is known from the host's ledger (a write-only key
/// cannot list archives); retention runs only where the admin key is.
struct TarsnapSiteStore {
    site: String,
    store: crate::repo::tarsnap::TarsnapStore,
    ledger: PathBuf,
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

    fn forget(&self, _retention: &RetentionConfig) -> anyhow::Result<String> {
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
}

/// [`Store`] over the restic-format repository, for one config site.
struct RepoStore {
    repo: crate::repo::Repo,
    /// The config's site name: recorded in each snapshot, and retention touches only its own.
    site: String,
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

    fn forget(&self, r: &RetentionConfig) -> anyhow::Result<String> {
        let rule = crate::repo::Retention {
            last: r.keep_last,
            daily: r.keep_daily,
            weekly: r.keep_weekly,
            monthly: r.keep_monthly,
            yearly: r.keep_yearly,
            within: r.keep_within.clone(),
            only_site: Some(self.site.clone()),
        };
        let report = self.repo.forget(&rule, false, r.prune)?;
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
}
