//! `dvault copy --to REPO2`: dvault snapshots copied into a second repository (the 3-2-1 rule:
//! one copy here, one off-site), with restic's copy (rustic_core's `Repository::copy`).
//!
//! Blobs keep their ids (the SHA-256 of their plain content) and are decrypted with the source
//! key and encrypted again with the target's: only blobs the target lacks are written, so
//! deduplication carries over, and a second copy adds only what is new. Each snapshot's dvault
//! record (original name, size, SHA-256, peel report) is its description and tags, which the
//! copy keeps: `dvault restore` from the target rebuilds the original bit-exact and checks it
//! against that SHA-256. A snapshot the target already holds (same SHA-256, dvault's identity
//! of a backup, as `backup` uses it) is not copied again. The copied snapshots get new ids in
//! the target; they go into this host's ledger of the target, so `dvault check` there notices
//! one that later disappears.
//!
//! A target made by `copy --init` gets the source's chunker parameters (polynomial and sizes),
//! so that later backups straight into it cut the same chunks and deduplicate against the
//! copied data (restic's `init --copy-chunker-params`).

use std::collections::BTreeSet;

use rustic_core::repofile::SnapshotFile;
use rustic_core::{Credentials, Id, KeyOptions};
use serde::{Deserialize, Serialize};

use super::repo_lock::LockKind;
use super::{Password, ProgressBars, Repo, RepoConfig, RepoError, SnapshotInfo};

/// One snapshot copied (or found in the target already).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedSnapshot {
    /// The snapshot's id in the source (full hex).
    pub source_id: String,
    /// Its id in the target (full hex).
    pub target_id: String,
    /// The original backup's file name.
    pub file_name: String,
    /// The original backup's SHA-256.
    pub sha256: String,
}

/// What `copy` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// The source (password hidden).
    pub from: String,
    /// The target (password hidden).
    pub to: String,
    /// Snapshots written to the target.
    pub copied: Vec<CopiedSnapshot>,
    /// Snapshots the target held already (same SHA-256).
    pub already_there: Vec<CopiedSnapshot>,
    /// Whether both repositories cut chunks alike (same polynomial and sizes): when not, later
    /// backups straight into the target do not deduplicate against the copied data.
    pub same_chunker: bool,
}

impl Repo {
    /// Creates a repository at `cfg` for `password` with this repository's chunker parameters
    /// and opens it, for `copy --init`. Refuses when one exists there.
    pub fn init_copy_target(
        &self,
        cfg: &RepoConfig,
        password: &Password,
        progress: Option<std::sync::Arc<dyn ProgressBars>>,
    ) -> Result<Repo, RepoError> {
        let loc = &cfg.location;
        let skip = crate::store::restic::wrapped_backend::SkipSet::default();
        let raw = super::restic::raw_repo(cfg, None, &skip)?;
        if raw
            .config_id()
            .map_err(|e| RepoError::rustic(loc, "looking for a config file", &e))?
            .is_some()
        {
            return Err(RepoError::AlreadyExists(loc.to_string()));
        }
        let mut config = self.with_open(|r| Ok(r.config().clone()))?;
        config.id = Id::random().into();
        config.append_only = None;
        config.is_hot = None;
        raw.init_with_config(
            &Credentials::password(password.expose()),
            &KeyOptions::default(),
            config,
        )
        .map_err(|e| RepoError::rustic(loc, "initializing the copy target", &e))?;
        Repo::open(cfg, password, progress)
    }

    /// Copies the dvault snapshots `ids` (unique prefixes or `latest`; empty: all) into
    /// `target`, skipping those it holds already.
    pub fn copy_to(&self, target: &Repo, ids: &[String]) -> Result<CopyReport, RepoError> {
        let _read = self.lock(LockKind::Read)?;
        let _append = target.lock(LockKind::Append)?;
        let mut chosen: Vec<SnapshotFile> = if ids.is_empty() {
            self.dvault_snapshots()?
        } else {
            ids.iter()
                .map(|id| Ok(self.find_snapshot(id)?.0))
                .collect::<Result<_, RepoError>>()?
        };
        let mut seen = BTreeSet::new();
        chosen.retain(|s| seen.insert(s.id));
        let info = |s: &SnapshotFile| {
            super::restic::snapshot_info(s).ok_or_else(|| {
                RepoError::Invalid(format!(
                    "snapshot {} carries no dvault record",
                    &s.id.to_hex()[..8]
                ))
            })
        };
        let before = target.snapshots()?;
        let mut report = CopyReport {
            from: self.location().to_string(),
            to: target.location().to_string(),
            copied: Vec::new(),
            already_there: Vec::new(),
            same_chunker: self.chunker_params()? == target.chunker_params()?,
        };
        let mut todo = Vec::new();
        let mut todo_info = Vec::new();
        for s in chosen {
            let i = info(&s)?;
            match before.iter().find(|t| t.meta.sha256 == i.meta.sha256) {
                Some(t) => report.already_there.push(copied(&i, t)),
                None => {
                    todo.push(s);
                    todo_info.push(i);
                }
            }
        }
        if !todo.is_empty() {
            self.with_index(|src| {
                target.with_ids(|dst| {
                    src.copy(dst, todo.iter())
                        .map_err(target.err("copying snapshots into it"))
                })
            })?;
        }
        let after = target.snapshots()?;
        for i in &todo_info {
            let new = after
                .iter()
                .filter(|t| t.meta.sha256 == i.meta.sha256)
                .find(|t| !before.iter().any(|b| b.id == t.id))
                .ok_or_else(|| {
                    RepoError::Invalid(format!(
                        "snapshot {} ({}) was copied, but {} does not list it afterwards",
                        i.short_id,
                        i.meta.file_name,
                        target.location()
                    ))
                })?;
            target.record_in_ledger(new);
            report.copied.push(copied(i, new));
        }
        Ok(report)
    }

    /// The chunker polynomial and sizes, which decide where chunks are cut.
    fn chunker_params(&self) -> Result<String, RepoError> {
        self.with_open(|r| {
            let c = r.config();
            Ok(format!(
                "{} {:?} {:?} {:?} {:?}",
                c.chunker_polynomial, c.chunker, c.chunk_min_size, c.chunk_size, c.chunk_max_size
            ))
        })
    }
}

fn copied(source: &SnapshotInfo, target: &SnapshotInfo) -> CopiedSnapshot {
    CopiedSnapshot {
        source_id: source.id.clone(),
        target_id: target.id.clone(),
        file_name: source.meta.file_name.clone(),
        sha256: source.meta.sha256.clone(),
    }
}
