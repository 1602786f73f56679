//! Where a site's backups are stored, behind one interface: the [`Store`] trait that `dvault
//! run` and its drill step use, and the one opener of a site's store ([`RepoOpener`]).
//!
//! | module | job |
//! | --- | --- |
//! | `restic/` | the restic-format repository ([`restic::Repo`], rustic_core) and its [`Store`] adapter |
//! | `tarsnap/` | the `tarsnap` client, the host's ledger of its archives, and its [`Store`] adapter |
//!
//! The repository's own types (locations, reports, errors, locks, retention rules, keys, copy)
//! stay in `crate::repo`, which re-exports `Repo` so that `crate::repo::Repo` keeps working.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use serde::Serialize;

use crate::config::{Config, RepositoryConfig, SiteConfig};
use crate::layout;
use crate::repo::{ProgressBars, Repo};
use crate::retention::Retention;
use crate::source::Picked;

pub mod restic;
pub mod tarsnap;

/// What `dvault run` and its drill need from a site's store (a restic-format repository or
/// Tarsnap); a trait so that the loop does not depend on which.
pub trait Store {
    /// The short id of a snapshot of a file with this SHA-256, if one exists.
    fn find_sha256(&self, sha256: &str) -> anyhow::Result<Option<String>>;
    /// Stores the picked file (whose SHA-256 is `sha256`) as a new snapshot.
    fn store(&self, picked: &Picked, sha256: &str) -> anyhow::Result<Stored>;
    /// Number of dvault snapshots in the repository.
    fn snapshot_count(&self) -> anyhow::Result<u64>;
    /// Applies the retention rule (forget, and prune if asked); returns a one-line summary.
    fn forget(&self, retention: &Retention) -> anyhow::Result<String>;
    /// Checks the repository, reading back this percentage of pack data; errors fail the check.
    fn check(&self, read_data_percent: Option<f64>) -> anyhow::Result<String>;
    /// The time (`YYYY-MM-DD-HHMMSS`, from the name) of the newest backup stored for this
    /// site; snapshots stored without a site count when their source starts with
    /// `source_prefix` (the folder or bucket prefix). `None`: nothing stored yet.
    fn newest_stored(&self, _source_prefix: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    /// Applies retention rules that belong to the store itself rather than to `[retention]`
    /// (Tarsnap's `keep_last` / `keep_daily`); `None` when it has none.
    fn own_retention(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    /// The restic-format repository behind this store, for what only a repository does (the
    /// drill's audit record, putting a snapshot back into Discourse); `None` for Tarsnap.
    fn repository(&self) -> Option<&Repo> {
        None
    }
    /// Writes the original backup file of `snapshot` into the folder `dir` (under its own
    /// file name), checked or to be checked against the SHA-256 recorded when it was stored.
    /// `Err(Unknown)` when the store does not know `snapshot`; `Err(Unreadable)` when it knows
    /// it but could not read it back (the drill reports that as a failure of the snapshot).
    fn restore_original(&self, snapshot: &str, dir: &Path) -> Result<Original, RestoreError>;
}

/// The original file a store wrote back ([`Store::restore_original`]).
#[derive(Debug, Clone)]
pub struct Original {
    /// The file written.
    pub path: PathBuf,
    /// Its name when it was stored.
    pub file_name: String,
    /// The SHA-256 recorded when it was stored.
    pub sha256: String,
    /// The snapshot or archive it came from, as the store names it.
    pub snapshot: String,
}

/// Why [`Store::restore_original`] wrote no file.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The store has no such snapshot, or nothing recorded about it.
    #[error("{0:#}")]
    Unknown(anyhow::Error),
    /// The snapshot is known but could not be read back (`file_name`: its original's name).
    #[error("{error:#}")]
    Unreadable {
        /// The original's file name, as recorded.
        file_name: String,
        /// What went wrong.
        error: anyhow::Error,
    },
}

/// Figures of one stored backup (their meaning is the same everywhere: docs/figures.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stored {
    /// Short id of the new snapshot.
    pub snapshot: String,
    /// Size of the original backup file read, in bytes.
    pub bytes_read: u64,
    /// Bytes the repository grew by: new data, compressed and encrypted, in new pack files.
    pub bytes_added: u64,
}

/// Opens a site's store (with its lock already held by the caller).
pub trait StoreOpener {
    /// Opens the store of `site`.
    fn open(&self, name: &str, site: &SiteConfig) -> anyhow::Result<Box<dyn Store>>;
}

/// The one opener of a site's store: its `[repository]` with the config's cache, scratch and
/// state folders and lock wait, or its `[tarsnap]` with the host's ledger.
#[derive(Debug, Clone)]
pub struct RepoOpener {
    cache_dir: PathBuf,
    scratch_dir: Option<PathBuf>,
    state_dir: PathBuf,
    lock_wait: Duration,
    layout: layout::Mode,
    progress: Option<Arc<dyn ProgressBars>>,
}

impl RepoOpener {
    /// Uses the config's cache, scratch and state folders; backups get the dedup layout.
    pub fn new(config: &Config) -> Self {
        RepoOpener {
            cache_dir: config.cache_dir(),
            scratch_dir: config.scratch_dir.clone(),
            state_dir: config.state_dir(),
            lock_wait: config.lock_wait.unwrap_or_default(),
            layout: layout::Mode::Columns,
            progress: None,
        }
    }

    /// Reports the progress of what the repositories do (a backup's bytes read and stored,
    /// live) to `progress`; `None` shows nothing.
    pub fn with_progress(mut self, progress: Option<Arc<dyn ProgressBars>>) -> Self {
        self.progress = progress;
        self
    }

    /// Lays out new backups' dumps as `layout` says (see [`crate::repo::RepoConfig::layout`]).
    pub fn with_layout(mut self, layout: layout::Mode) -> Self {
        self.layout = layout;
        self
    }
}

impl StoreOpener for RepoOpener {
    fn open(&self, name: &str, site: &SiteConfig) -> anyhow::Result<Box<dyn Store>> {
        if let Some(t) = &site.tarsnap {
            return Ok(Box::new(tarsnap::TarsnapSiteStore::new(
                name,
                t,
                &self.state_dir,
            )));
        }
        let r = site
            .repository
            .as_ref()
            .ok_or_else(|| anyhow!("site {name} has no [repository]"))?;
        let repo = open(
            r,
            Some(self.cache_dir.clone()),
            self.scratch_dir.clone(),
            self.progress.clone(),
        )?
        .with_state_dir(self.state_dir.clone())
        .with_lock_wait(self.lock_wait)
        .with_layout(self.layout);
        Ok(Box::new(restic::RepoStore::new(repo, name)))
    }
}

/// Opens the repository a site's `[repository]` section names (location, password file, S3
/// credentials file, REST password file), with the given cache and scratch folders.
pub fn open_repository(
    r: &RepositoryConfig,
    cache_dir: Option<PathBuf>,
    scratch_dir: Option<PathBuf>,
) -> anyhow::Result<Repo> {
    open(r, cache_dir, scratch_dir, None)
}

/// [`open_repository`], reporting progress to `progress`.
fn open(
    r: &RepositoryConfig,
    cache_dir: Option<PathBuf>,
    scratch_dir: Option<PathBuf>,
    progress: Option<Arc<dyn ProgressBars>>,
) -> anyhow::Result<Repo> {
    use crate::repo::{password, Location, RepoConfig};
    let mut cfg = RepoConfig::new(Location::parse(&r.location)?);
    cfg.cache_dir = cache_dir;
    cfg.scratch_dir = scratch_dir;
    cfg.s3_credentials_file = r.s3_credentials_file.clone();
    cfg.rest_password_file = r.rest_password_file.clone();
    let password = password::read_file(&r.password_file)?;
    Ok(Repo::open(&cfg, &password, progress)?)
}
