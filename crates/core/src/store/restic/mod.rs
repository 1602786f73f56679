//! The repository implemented with `rustic_core` (restic repository format v2): dvault's
//! [`Repo`], one file per job. Every rustic type stays in this folder (and in
//! `repo/backend.rs` for locations, and the `repo/` files that add commands to [`Repo`]:
//! browse, copy, keys, stats).
//!
//! | file | job |
//! | --- | --- |
//! | `open.rs` | `init`, `open`, loading the index (with the one recovery from damaged index files) |
//! | `snapshots.rs` | listing and finding dvault's snapshots |
//! | `backup.rs` | storing a file as a snapshot of its peeled tree |
//! | `restore.rs` | taking a snapshot back out as its tree or the original file |
//! | `restore_stream.rs` | rebuilding the original while the tree is still being restored |
//! | `check.rs` | `check` |
//! | `ledger.rs` | the host's ledger of the snapshots it wrote |
//! | `forget.rs` | retention (`forget`, then prune) |
//! | `retention.rs` | which snapshots a rule keeps (restic's rules, per site, the most complete of a period) |
//! | `prune.rs` | prune with restic's defaults, and what it really freed |
//! | `damage.rs` | what a damaged pack costs: the files and snapshots that need it |
//! | `stable_source.rs` | the scratch tree as a source with fixed metadata, so trees deduplicate |
//! | `wrapped_backend.rs` | the backend wrapper: damaged index files left out, pack bytes counted |
//! | `progress.rs` | rustic's progress reports passed on to dvault's bars |
//! | `read_budget.rs` | the cap on pack data a restore holds in memory at once |
//! | `scratch.rs` | scratch folders, and what killed runs left in them |
//! | `audit_store.rs`, `figures.rs` | audit records as snapshots; figures for `dvault report` |

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rustic_core::repofile::{IndexFile, MasterKey, SnapshotFile, SnapshotId};
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, IndexedFullStatus, IndexedIdsStatus,
    KeyOptions, LocalDestination, LsOptions, OpenStatus, PathList, ReadSubsetOption, Repository,
    RepositoryBackends, RepositoryOptions, RestoreOptions, SnapshotOptions,
};

use crate::layout;
use crate::repo::peeled;
use crate::repo::profile::Phase;
use crate::repo::repo_lock::{self, HeldLock, LockKind};
use crate::repo::snapshot_ledger::{LedgerSnapshot, SnapshotLedger};
use crate::repo::{
    BackupOutcome, CheckReport, ForgetDecision, ForgetReport, InitOptions, Location, Password,
    ProgressBars, ProgressKind, ReadData, RepoConfig, RepoError, SnapshotInfo, SnapshotSummary,
    TAG,
};
use crate::retention::Retention;
use crate::snapshot::BackupMeta;

// Each child module adds `impl Repo` methods; as children they see this module's private
// fields and helpers.
mod audit_store;
mod backup;
mod check;
mod damage;
pub mod figures;
mod forget;
mod ledger;
mod open;
mod progress;
mod prune;
pub(crate) mod read_budget;
mod restore;
mod restore_stream;
mod retention;
mod scratch;
mod site;
mod snapshots;
mod stable_source;
pub(crate) mod wrapped_backend;

use open::damaged_files;
pub(crate) use open::raw_repo;
use progress::ProgressAdapter;
use scratch::remove_stale;
pub(crate) use scratch::remove_stale_of;
pub(crate) use site::RepoStore;
use snapshots::labelled_snapshots;
pub(crate) use snapshots::{snapshot_info, LAYOUT_TAG};
use stable_source::StableSource;
use wrapped_backend::{SkipSet, WrappedBackend};

/// An open repository.
#[derive(Debug)]
pub struct Repo {
    pub(crate) cfg: RepoConfig,
    // rustic's index-loading steps consume the repository value; the mutex lets `&self`
    // methods take it out, index it, and put the open repository back.
    repo: Mutex<Option<Repository<OpenStatus>>>,
    // Index files found damaged, left out while an index is built (see wrapped_backend.rs).
    skip: SkipSet,
    // To open the repository again after rustic_core gave it up on a damaged index file.
    progress: Option<Arc<dyn ProgressBars>>,
}

impl Repo {
    /// Keeps the ledger of the snapshots this host writes in `state_dir` (see
    /// [`SnapshotLedger`]).
    pub fn with_state_dir(mut self, state_dir: PathBuf) -> Self {
        self.cfg.state_dir = Some(state_dir);
        self
    }

    /// Waits up to `wait` for another process's conflicting repository lock (see
    /// [`RepoConfig::lock_wait`]).
    pub fn with_lock_wait(mut self, wait: std::time::Duration) -> Self {
        self.cfg.lock_wait = wait;
        self
    }

    /// Sets the decompression-bomb cap of backups (see [`RepoConfig::max_expansion_ratio`]).
    pub fn with_expansion_cap(mut self, ratio: Option<u64>, slack: Option<u64>) -> Self {
        self.cfg.max_expansion_ratio = ratio;
        self.cfg.expansion_slack = slack;
        self
    }

    /// Lays out new backups' dumps as `layout` says (see [`RepoConfig::layout`]).
    pub fn with_layout(mut self, layout: layout::Mode) -> Self {
        self.cfg.layout = layout;
        self
    }

    /// The repository's location.
    pub fn location(&self) -> &Location {
        &self.cfg.location
    }

    pub(crate) fn err(
        &self,
        action: &str,
    ) -> impl Fn(Box<rustic_core::RusticError>) -> RepoError + '_ {
        let action = action.to_string();
        move |e| RepoError::rustic(&self.cfg.location, &action, &e)
    }
}

/// rustic_core's error on one line: its kind and message, without context, backtrace or the
/// advice footer.
pub(super) fn one_line(e: &rustic_core::RusticError) -> String {
    one_line_text(&e.to_string())
}

/// A repository error on one line (for check's list of errors).
pub(super) fn one_line_repo(e: &RepoError) -> String {
    one_line_text(&e.to_string())
}

pub(super) fn one_line_text(text: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with("Some additional details")
            || l.starts_with("Backtrace:")
            || l.starts_with("For more information")
        {
            break;
        }
        if !l.is_empty() && l != "Message:" && !parts.contains(&l) {
            parts.push(l);
        }
    }
    parts.join(" ")
}

/// The snapshot's id in full hex (its `Display` gives only the short form).
pub(super) fn full_id(s: &SnapshotFile) -> String {
    s.id.to_hex().as_str().to_string()
}
