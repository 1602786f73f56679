//! The repository interface implemented with `rustic_core` (restic repository format v2).
//!
//! Every rustic type stays in this file (and in `backend.rs` for locations, `stable_source.rs`
//! for the source the backup reads).

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

use super::peeled;
use super::profile::Phase;
use super::repo_lock::{self, HeldLock, LockKind};
use super::snapshot_ledger::{LedgerSnapshot, SnapshotLedger};
use super::stable_source::StableSource;
use super::wrapped_backend::{SkipSet, WrappedBackend};
use super::{
    BackupOutcome, CheckReport, ForgetDecision, ForgetReport, InitOptions, Location, Password,
    ProgressBars, ProgressKind, ReadData, RepoConfig, RepoError, Retention, SnapshotInfo,
    SnapshotSummary, TAG,
};
use crate::layout;
use crate::snapshot::BackupMeta;

// Retention (forget, prune) lives in its own file; as a child module it sees this file's
// private helpers.
mod forget;

// Audit records and report figures: rustic code kept beside the rest of it.
mod audit_store;
pub mod figures;

/// An open repository.
#[derive(Debug)]
pub struct Repo {
    pub(super) cfg: RepoConfig,
    // rustic's index-loading steps consume the repository value; the mutex lets `&self`
    // methods take it out, index it, and put the open repository back.
    repo: Mutex<Option<Repository<OpenStatus>>>,
    // Index files found damaged, left out while an index is built (see wrapped_backend.rs).
    skip: SkipSet,
    // To open the repository again after rustic_core gave it up on a damaged index file.
    progress: Option<Arc<dyn ProgressBars>>,
}

/// The snapshots of a repository: those that could be read, and the damaged ones (full id and
/// what was wrong), which are left out.
struct SnapshotList {
    good: Vec<SnapshotFile>,
    damaged: Vec<(String, String)>,
}

impl Repo {
    /// Creates a new repository at `cfg.location`, protected by `password`. Refuses when one
    /// exists already.
    pub fn init(
        cfg: &RepoConfig,
        password: &Password,
        opts: &InitOptions,
        progress: Option<Arc<dyn ProgressBars>>,
    ) -> Result<Self, RepoError> {
        let loc = &cfg.location;
        let mut config_opts = ConfigOptions::default();
        let ch = opts.chunker.unwrap_or(super::ChunkerSizes::DVAULT_DEFAULT);
        ch.validate()?;
        config_opts.set_chunk_min_size = Some(bytesize(ch.min));
        config_opts.set_chunk_size = Some(bytesize(ch.avg));
        config_opts.set_chunk_max_size = Some(bytesize(ch.max));
        if let Location::Local(p) = loc {
            // rustic creates missing parents; an existing non-empty folder that is not a
            // repository is a mistake in the path more often than not.
            if p.is_dir()
                && fs::read_dir(p)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                if p.join("config").exists() {
                    return Err(RepoError::AlreadyExists(loc.to_string()));
                }
                return Err(RepoError::Invalid(format!(
                    "{}: folder exists and is not empty; init wants a new or empty folder",
                    p.display()
                )));
            }
        }
        let skip = SkipSet::default();
        let raw = raw_repo(cfg, progress.clone(), &skip)?;
        if raw
            .config_id()
            .map_err(|e| RepoError::rustic(loc, "looking for a config file", &e))?
            .is_some()
        {
            return Err(RepoError::AlreadyExists(loc.to_string()));
        }
        let repo = raw
            .init(
                &Credentials::password(password.expose()),
                &KeyOptions::default(),
                &config_opts,
            )
            .map_err(|e| RepoError::rustic(loc, "initializing", &e))?;
        Ok(Self {
            cfg: cfg.clone(),
            repo: Mutex::new(Some(repo)),
            skip,
            progress,
        })
    }

    /// Opens an existing repository.
    pub fn open(
        cfg: &RepoConfig,
        password: &Password,
        progress: Option<Arc<dyn ProgressBars>>,
    ) -> Result<Self, RepoError> {
        let loc = &cfg.location;
        if let Location::Local(p) = loc {
            if !p.join("config").is_file() {
                return Err(RepoError::NotFound(loc.to_string()));
            }
        }
        let skip = SkipSet::default();
        let raw = raw_repo(cfg, progress.clone(), &skip)?;
        let found = raw
            .config_id()
            .map_err(|e| RepoError::rustic(loc, "looking for the config file", &e))?;
        if found.is_none() {
            return Err(RepoError::NotFound(loc.to_string()));
        }
        let repo = raw
            .open(&Credentials::password(password.expose()))
            .map_err(|e| {
                if e.is_incorrect_password() {
                    RepoError::WrongPassword(loc.to_string())
                } else {
                    RepoError::rustic(loc, "opening", &e)
                }
            })?;
        Ok(Self {
            cfg: cfg.clone(),
            repo: Mutex::new(Some(repo)),
            skip,
            progress,
        })
    }

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

    /// The repository's location.
    pub fn location(&self) -> &Location {
        &self.cfg.location
    }

    fn slot(&self) -> MutexGuard<'_, Option<Repository<OpenStatus>>> {
        self.repo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the repository's own lock (restic's lock files, see repo_lock.rs); held until
    /// the returned guard is dropped.
    pub(super) fn lock(&self, kind: LockKind) -> Result<Option<HeldLock>, RepoError> {
        let (key, version) = self.with_open(|r| Ok((r.key(), r.config().version)))?;
        let parts = (&key.encrypt[..], &key.mac.k[..], &key.mac.r[..]);
        repo_lock::take(&self.cfg, parts, version, kind)
    }

    /// Runs `f` on the open repository.
    pub(super) fn with_open<T>(
        &self,
        f: impl FnOnce(&Repository<OpenStatus>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        let slot = self.slot();
        let repo = slot.as_ref().ok_or_else(|| self.lost())?;
        f(repo)
    }

    /// Runs `f` on the repository with its full index loaded.
    pub(super) fn with_index<T>(
        &self,
        f: impl FnOnce(&Repository<IndexedFullStatus>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        let mut slot = self.slot();
        let open = slot.take().ok_or_else(|| self.lost())?;
        let key = open.key();
        let indexed = match open.to_indexed() {
            Ok(i) => i,
            // One damaged index file must not stop restores of snapshots that do not need it:
            // leave it out, and find the packs it listed by reading their own headers (they
            // are encrypted and authenticated like everything else). Blobs are still checked
            // against their ids when read, and restored files against their SHA-256.
            Err(first) => {
                let again = self.reopen(&key)?;
                if !self.skip_damaged_index(&again) {
                    *slot = Some(again);
                    return Err(self.err("reading the index")(first));
                }
                match self.reopen(&key)?.to_indexed_checked() {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!(
                            "reading the headers of packs that no readable index file lists \
                             failed ({}); going on with the readable index files only",
                            one_line(&e)
                        );
                        match again.to_indexed() {
                            Ok(i) => i,
                            Err(e) => {
                                self.skip.clear();
                                *slot = Some(self.reopen(&key)?);
                                return Err(self.err("reading the index")(e));
                            }
                        }
                    }
                }
            }
        };
        let r = f(&indexed);
        self.skip.clear();
        *slot = Some(indexed.drop_index());
        r
    }

    /// Runs `f` on the repository with the index of blob ids loaded (enough to back up).
    pub(super) fn with_ids<T>(
        &self,
        f: impl FnOnce(&Repository<IndexedIdsStatus>) -> Result<T, RepoError>,
    ) -> Result<T, RepoError> {
        let mut slot = self.slot();
        let open = slot.take().ok_or_else(|| self.lost())?;
        let key = open.key();
        let indexed = match open.to_indexed_ids() {
            Ok(i) => i,
            // A backup without the damaged index files stores again the blobs they listed, so
            // the new snapshot does not depend on them.
            Err(first) => {
                let again = self.reopen(&key)?;
                if !self.skip_damaged_index(&again) {
                    *slot = Some(again);
                    return Err(self.err("reading the index")(first));
                }
                match again.to_indexed_ids() {
                    Ok(i) => i,
                    Err(e) => {
                        self.skip.clear();
                        *slot = Some(self.reopen(&key)?);
                        return Err(self.err("reading the index")(e));
                    }
                }
            }
        };
        let r = f(&indexed);
        self.skip.clear();
        *slot = Some(indexed.drop_index());
        r
    }

    /// Opens the repository again with the master key of an earlier opening (no password
    /// hashing), for when rustic_core consumed the open repository in a failed step.
    fn reopen(&self, key: &MasterKey) -> Result<Repository<OpenStatus>, RepoError> {
        raw_repo(&self.cfg, self.progress.clone(), &self.skip)?
            .open(&Credentials::Masterkey(key.clone()))
            .map_err(self.err("opening again"))
    }

    /// Finds index files that cannot be read, warns about each and leaves them out of index
    /// listings until the operation ends; true when there were any.
    fn skip_damaged_index(&self, repo: &Repository<OpenStatus>) -> bool {
        let damaged = damaged_files::<IndexFile>(repo);
        for (id, why) in &damaged {
            tracing::warn!(
                "index file index/{id} of {} is damaged ({why}); leaving it out: the packs it \
                 listed are found from their own headers. Run `dvault check`.",
                self.cfg.location
            );
        }
        self.skip.skip(
            damaged
                .iter()
                .filter_map(|(id, _)| id.parse::<rustic_core::Id>().ok()),
        );
        !damaged.is_empty()
    }

    fn lost(&self) -> RepoError {
        RepoError::Invalid(format!(
            "repository {}: unusable after an earlier error while reading its index; open it again",
            self.cfg.location
        ))
    }

    pub(super) fn err(
        &self,
        action: &str,
    ) -> impl Fn(Box<rustic_core::RusticError>) -> RepoError + '_ {
        let action = action.to_string();
        move |e| RepoError::rustic(&self.cfg.location, &action, &e)
    }

    /// All dvault snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RepoError> {
        Ok(self
            .dvault_snapshots()?
            .iter()
            .filter_map(snapshot_info)
            .collect())
    }

    pub(super) fn dvault_snapshots(&self) -> Result<Vec<SnapshotFile>, RepoError> {
        Ok(self.snapshot_list()?.good)
    }

    /// The dvault snapshots, oldest first, and the snapshot files that could not be read.
    fn snapshot_list(&self) -> Result<SnapshotList, RepoError> {
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

    /// Stores the file at `path`, described by `meta` (see [`BackupMeta::for_file`]), as a new
    /// snapshot of its peeled tree. Does nothing when a snapshot of the same SHA-256 exists.
    pub fn backup_file(&self, path: &Path, meta: &BackupMeta) -> Result<BackupOutcome, RepoError> {
        let (started, r) = (Instant::now(), self.backup_file_unaudited(path, meta));
        crate::audit::backup(self, meta, &r, started);
        r
    }

    fn backup_file_unaudited(
        &self,
        path: &Path,
        meta: &BackupMeta,
    ) -> Result<BackupOutcome, RepoError> {
        let started = Instant::now();
        let mut clock = super::profile::Clock::start();
        let _lock = self.lock(LockKind::Append)?;
        if let Some(existing) = self.find_by_sha256(&meta.sha256)? {
            return Ok(BackupOutcome::AlreadyStored { snapshot: existing });
        }
        let scratch = self.scratch("backup")?;
        let tree_dir = scratch.path().join("tree");
        let tree = tree_dir.as_path();
        let mut expand = peel::ExpandOptions::default();
        if let Some(r) = self.cfg.max_expansion_ratio {
            expand.max_expansion_ratio = r;
        }
        if let Some(s) = self.cfg.expansion_slack {
            expand.expansion_slack = s;
        }
        // Peeling and proving take most of a backup and report no progress of their own:
        // without this a terminal shows the last finished step for many seconds.
        let spinner = self.progress.as_ref().map(|p| {
            p.start(
                super::ProgressKind::Spinner,
                &format!("peeling and proving {}", meta.file_name),
            )
        });
        clock.lap(Phase::Prepare);
        let (report, peel_profile) = peeled::expand_to_dir(path, &meta.file_name, tree, &expand)?;
        clock.lap(Phase::Peel);
        let mut meta = meta.clone();
        meta.peel = Some(report);
        // Before the layout moves anything: retention prefers backups with uploads.
        meta.uploads = Some(count_files(&tree.join("uploads")));
        let layout = match layout::Mode::from_env()? {
            layout::Mode::Plain => None,
            layout::Mode::Columns => Some(layout::apply(tree)?),
        };
        clock.lap(Phase::Layout);
        if let Some(s) = spinner {
            s.finish();
        }
        let laid_out = layout
            .as_ref()
            .is_some_and(|l| l.files.iter().any(|f| f.laid_out));
        if let Some(l) = &layout {
            for f in &l.files {
                if let Some(reason) = &f.reason {
                    tracing::info!("{}: {} kept plain: {reason}", meta.file_name, f.file);
                }
                for b in &f.plain_blocks {
                    tracing::info!(
                        "{}: {} table {} kept plain: {}",
                        meta.file_name,
                        f.file,
                        b.table,
                        b.reason
                    );
                }
            }
        }

        if crate::interrupt::stopping() {
            return Err(RepoError::Invalid(format!(
                "{}: stopped by a signal before storing",
                path.display()
            )));
        }
        let snap = new_snapshot(&meta, laid_out).map_err(self.err("preparing the snapshot"))?;
        let mut opts = BackupOptions::default();
        // The tree is stored at the snapshot's root, so a plain `restic restore` gives
        // dump.sql, uploads/ and .peel/ directly.
        opts.as_path = Some(PathBuf::from("/"));
        let source = PathList::from_string(&tree.to_string_lossy())
            .map_err(self.err("naming the tree to back up"))?
            .sanitize()
            .map_err(|e| RepoError::Invalid(format!("{}: {e}", tree.display())))?;
        // Fixed file metadata (see stable_source.rs) lets unchanged folders deduplicate; it also
        // means a parent snapshot must not decide which files to skip.
        opts.parent_opts.force = true;
        let src = StableSource::new(tree).map_err(self.err("reading the peeled tree"))?;
        let paths = source.paths();
        let snap = self.with_ids(|repo| {
            repo.archive(&opts, &src, snap, &paths)
                .map_err(self.err("storing the peeled tree"))
        })?;
        drop(scratch);
        clock.lap(Phase::Store);
        let profile = clock.finish(peel_profile);
        for line in profile.lines() {
            tracing::info!("{}: {line}", meta.file_name);
        }
        let info = snapshot_info(&snap).ok_or_else(|| {
            RepoError::Invalid("the snapshot just written has no dvault metadata".to_string())
        })?;
        self.record_in_ledger(&info);
        let s = snap.summary.unwrap_or_default();
        Ok(BackupOutcome::Stored(SnapshotSummary {
            snapshot: info,
            bytes_processed: s.total_bytes_processed,
            bytes_added_uncompressed: s.data_added,
            bytes_added_packed: s.data_added_packed,
            tree_bytes_added_packed: s.data_added_trees_packed,
            layout,
            files: s.total_files_processed,
            seconds: started.elapsed().as_secs_f64(),
            profile,
        }))
    }

    pub(super) fn scratch(&self, what: &str) -> Result<tempfile::TempDir, RepoError> {
        if crate::interrupt::stopping() {
            return Err(RepoError::Invalid(
                "stopped by a signal: no new scratch folder".to_string(),
            ));
        }
        let base = self
            .cfg
            .scratch_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        // Scratch folders are named `dvault-WHAT-PID-...`.
        remove_stale(&base, |name| {
            name.strip_prefix("dvault-")?
                .split_once('-')?
                .1
                .split_once('-')
                .map(|(pid, _)| pid)
        });
        let prefix = crate::interrupt::pid_prefix(&base, &format!("dvault-{what}-"));
        tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&base)
            .map_err(|source| RepoError::Io { path: base, source })
    }

    /// The snapshot `id` (a unique prefix, or `latest`).
    pub fn find(&self, id: &str) -> Result<SnapshotInfo, RepoError> {
        Ok(self.find_snapshot(id)?.1)
    }

    pub(super) fn find_snapshot(
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

    /// Writes the snapshot's peeled tree (dump, uploads, `.peel/recipe.json`) into `dir`, which
    /// must not exist or be empty.
    pub fn restore_expanded(&self, id: &str, dir: &Path) -> Result<SnapshotInfo, RepoError> {
        let (started, r) = (Instant::now(), self.restore_expanded_unaudited(id, dir));
        crate::audit::restore(self, id, dir, &r, started);
        r
    }

    fn restore_expanded_unaudited(&self, id: &str, dir: &Path) -> Result<SnapshotInfo, RepoError> {
        let _lock = self.lock(LockKind::Read)?;
        let (snap, info) = self.find_snapshot(id)?;
        if dir.exists()
            && fs::read_dir(dir)
                .map_err(|source| RepoError::Io {
                    path: dir.to_path_buf(),
                    source,
                })?
                .next()
                .is_some()
        {
            return Err(RepoError::Invalid(format!(
                "{}: folder is not empty; restore --expanded wants a new or empty folder",
                dir.display()
            )));
        }
        self.restore_tree(&snap, dir)?;
        Ok(info)
    }

    fn restore_tree(&self, snap: &SnapshotFile, dir: &Path) -> Result<(), RepoError> {
        fs::create_dir_all(dir).map_err(|source| RepoError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        self.with_index(|repo| self.restore_indexed(repo, snap, dir))?;
        if snap.tags.contains(LAYOUT_TAG) {
            layout::undo(dir)?;
        }
        Ok(())
    }

    fn restore_indexed(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
        dir: &Path,
    ) -> Result<(), RepoError> {
        let node = repo
            .node_from_snapshot_and_path(snap, "")
            .map_err(self.err("reading the snapshot's tree"))?;
        let ls = LsOptions::default();
        let dest_str = format!("{}/", dir.display());
        let dest = LocalDestination::new(&dest_str, true, false)
            .map_err(self.err("preparing the restore folder"))?;
        let opts = RestoreOptions::default();
        let plan = repo
            .prepare_restore(
                &opts,
                repo.ls(&node, &ls).map_err(self.err("listing"))?,
                &dest,
                false,
            )
            .map_err(self.err("planning the restore"))?;
        let nodes = repo.ls(&node, &ls).map_err(self.err("listing"))?;
        // rustic_core's restore workers unwrap every read: a damaged pack panics one of them
        // (see panic_guard.rs). Catch it and name the pack and what it costs instead.
        match crate::panic_guard::catch(|| repo.restore(plan, &opts, nodes, &dest)) {
            Ok(r) => r.map_err(self.err("restoring"))?,
            Err(panic) => return Err(self.damaged_restore(repo, snap, &panic)),
        }
        Ok(())
    }

    /// The error of a restore that rustic_core gave up on: reads back the packs the snapshot
    /// needs to find the damaged ones, and names them with the files and snapshots they cost.
    fn damaged_restore(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
        panic: &str,
    ) -> RepoError {
        let what = format!("restoring snapshot {}", &full_id(snap)[..8]);
        let mut opts = CheckOptions::default();
        opts.read_data = true;
        let findings: Vec<String> =
            match crate::panic_guard::catch(|| repo.check_with_trees(opts, vec![snap.tree])) {
                Ok(Ok(results)) => results
                    .0
                    .iter()
                    .filter(|(level, _)| format!("{level:?}") != "Warn")
                    .map(|(_, e)| one_line_text(&e.to_string()))
                    .collect(),
                _ => Vec::new(),
            };
        let blobs = super::damage::PackBlobs::read(repo);
        let packs = blobs.named_in(&findings);
        if packs.is_empty() {
            return RepoError::Engine {
                location: self.cfg.location.to_string(),
                action: what,
                message: format!(
                    "rustic_core stopped with an internal error ({}); reading the snapshot's                      packs back found no damage. Run `dvault check --read-data`",
                    one_line_text(panic)
                ),
            };
        }
        let snapshots = labelled_snapshots(repo);
        let costs = super::damage::cost(repo, &blobs, &packs, &snapshots);
        RepoError::DamagedPacks {
            location: self.cfg.location.to_string(),
            what,
            details: costs
                .iter()
                .map(super::damage::PackCost::describe)
                .chain(findings)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// Rebuilds the original file of snapshot `id` at `out`, checks its SHA-256 against the
    /// snapshot record and only then moves it into place (a failed restore leaves no file).
    pub fn restore_file(&self, id: &str, out: &Path) -> Result<SnapshotInfo, RepoError> {
        let (started, r) = (Instant::now(), self.restore_file_unaudited(id, out));
        crate::audit::restore(self, id, out, &r, started);
        r
    }

    fn restore_file_unaudited(&self, id: &str, out: &Path) -> Result<SnapshotInfo, RepoError> {
        let _lock = self.lock(LockKind::Read)?;
        let (snap, info) = self.find_snapshot(id)?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RepoError::Io { path, source }
        };
        // Named with the process id: a Ctrl-C removes them (interrupt.rs), and what a killed
        // restore left is removed by the next one.
        remove_stale(&parent, |name| {
            Some(name.strip_prefix(RESTORE_PREFIX)?.split_once('-')?.0)
        });
        let prefix = crate::interrupt::pid_prefix(&parent, RESTORE_PREFIX);
        let tree = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&parent)
            .map_err(io(&parent))?;
        self.restore_tree(&snap, tree.path())?;
        release_free_memory();
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(&parent)
            .map_err(io(&parent))?;
        let (size, sha) = {
            let mut w = BufWriter::new(tmp.as_file());
            let r = peeled::rebuild_from_dir(tree.path(), &mut w)?;
            w.flush().map_err(io(out))?;
            r
        };
        tmp.as_file().sync_all().map_err(io(out))?;
        if sha != info.meta.sha256 || size != info.meta.size {
            return Err(RepoError::Mismatch {
                what: format!("restore of snapshot {} to {}", info.short_id, out.display()),
                expected: info.meta.sha256.clone(),
                actual: sha,
            });
        }
        tmp.persist(out).map_err(|e| RepoError::Io {
            path: out.to_path_buf(),
            source: e.error,
        })?;
        Ok(info)
    }

    /// Checks the repository's structure and, with `read`, reads back packed data.
    pub fn check(&self, read: ReadData) -> Result<CheckReport, RepoError> {
        let (started, r) = (Instant::now(), self.check_unaudited(read));
        crate::audit::check(self, &r, started);
        r
    }

    fn check_unaudited(&self, read: ReadData) -> Result<CheckReport, RepoError> {
        let mut opts = CheckOptions::default();
        match read {
            ReadData::None => {}
            ReadData::All => opts.read_data = true,
            ReadData::Percent(p) => {
                if !(p > 0.0 && p <= 100.0) {
                    return Err(RepoError::Invalid(format!(
                        "read-data subset {p}% is not in (0, 100]"
                    )));
                }
                opts.read_data = true;
                opts.read_data_subset = ReadSubsetOption::Percentage(p);
            }
        }
        let _lock = self.lock(LockKind::Read)?;
        let mut report = CheckReport {
            errors: Vec::new(),
            warnings: Vec::new(),
            checked: super::Checked {
                read_data: match read {
                    ReadData::None => "none".to_string(),
                    ReadData::All => "all".to_string(),
                    ReadData::Percent(p) => format!("{p}%"),
                },
                ..super::Checked::default()
            },
        };
        if let Ok(n) = self.with_open(|r| {
            r.list::<rustic_core::repofile::SnapshotId>()
                .map(|ids| ids.count() as u64)
                .map_err(self.err("listing the snapshots"))
        }) {
            report.checked.snapshots = n;
        }
        self.check_ledger(&mut report);
        self.check_audit(&mut report);
        // rustic_core 0.13 panics while reading a truncated pack (trees in the structure
        // pass, data with --read-data), which ends the process before any finding is printed.
        // So pack sizes are compared with the index first, and rustic's check runs only when
        // they agree.
        if self.pack_sizes_differ(&mut report) {
            report.warnings.push(
                "the rest of the check was skipped: a pack of the wrong size crashes \
                 rustic_core 0.13's reader; restore the pack from a copy or repair the index, \
                 then check again"
                    .to_string(),
            );
            return Ok(report);
        }
        if opts.read_data {
            let mut structure = opts;
            structure.read_data = false;
            if let Ok(results) =
                self.with_open(|r| r.check(structure).map_err(self.err("checking")))
            {
                if results
                    .0
                    .iter()
                    .any(|(level, _)| format!("{level:?}") != "Warn")
                {
                    opts = structure;
                    report.warnings.push(
                        "pack data was not read: the structure has errors already (and reading \
                         a truncated pack can crash rustic_core 0.13); repair them, then run \
                         check --read-data again"
                            .to_string(),
                    );
                }
            }
        }
        match self.with_open(|r| r.check(opts).map_err(self.err("checking"))) {
            Ok(results) => {
                for (level, e) in results.0 {
                    // rustic_core's message of a pack it could not read carries its whole
                    // error report, backtrace included: one line is enough.
                    let e = one_line_text(&e.to_string());
                    // rustic_core does not export the level's type; its Debug name is stable.
                    if format!("{level:?}") == "Warn" {
                        report.warnings.push(e);
                    } else {
                        report.errors.push(e);
                    }
                }
                self.name_pack_costs(&mut report);
            }
            // rustic_core stops at the first snapshot or index file it cannot read; name
            // every such file, not only the first.
            Err(e) => {
                report.errors.push(one_line_repo(&e));
                self.with_open(|r| {
                    for (id, why) in damaged_files::<SnapshotFile>(r) {
                        report
                            .errors
                            .push(format!("snapshot file snapshots/{id} is damaged: {why}"));
                    }
                    for (id, why) in damaged_files::<IndexFile>(r) {
                        report
                            .errors
                            .push(format!("index file index/{id} is damaged: {why}"));
                    }
                    Ok(())
                })?;
            }
        }
        explain_unindexed_packs(&mut report);
        Ok(report)
    }

    /// For every pack that check's errors name, adds what it costs: the files and snapshots
    /// that need a blob in it.
    fn name_pack_costs(&self, report: &mut CheckReport) {
        let blobs = self.with_open(|r| Ok(super::damage::PackBlobs::read(r)));
        let Ok(blobs) = blobs else { return };
        let packs = blobs.named_in(&report.errors);
        if packs.is_empty() {
            return;
        }
        let costs = self.with_index(|r| {
            let snapshots = labelled_snapshots(r);
            Ok(super::damage::cost(r, &blobs, &packs, &snapshots))
        });
        match costs {
            Ok(costs) => report
                .errors
                .extend(costs.iter().map(super::damage::PackCost::describe)),
            Err(e) => report.warnings.push(format!(
                "which files the damaged packs cost could not be worked out: {}",
                one_line_repo(&e)
            )),
        }
    }

    /// Adds an error for every pack whose size differs from what the index records; true
    /// when there was one. Damaged index files are left to rustic's check.
    fn pack_sizes_differ(&self, report: &mut CheckReport) -> bool {
        let listed = self.cfg.location.backends_for(&self.cfg);
        let Ok(Ok(actual)) =
            listed.map(|b| b.repository().list_with_size(rustic_core::FileType::Pack))
        else {
            return false;
        };
        report.checked.packs = actual.len() as u64;
        report.checked.pack_bytes = actual.iter().map(|(_, s)| u64::from(*s)).sum();
        let actual: BTreeMap<rustic_core::Id, u32> = actual.into_iter().collect();
        let mut found = false;
        let _ = self.with_open(|r| {
            let Ok(ids) = r.list::<rustic_core::repofile::IndexId>() else {
                return Ok(());
            };
            for id in ids {
                let Ok(index) = r.get_file::<IndexFile>(&id) else {
                    continue;
                };
                for p in index.packs.iter().chain(&index.packs_to_delete) {
                    if let Some(&size) = actual.get(&*p.id) {
                        if size != p.pack_size() {
                            found = true;
                            report.errors.push(format!(
                                "pack data/{} is {size} bytes, but index file index/{} says {} \
                                 (truncated or overwritten)",
                                p.id.to_hex().as_str(),
                                id.to_hex().as_str(),
                                p.pack_size()
                            ));
                        }
                    }
                }
            }
            Ok(())
        });
        found
    }

    /// The ledger of this repository's snapshots in the state folder, when there is one.
    pub(super) fn ledger_path(&self) -> Option<PathBuf> {
        let dir = self.cfg.state_dir.as_ref()?;
        let id = self
            .with_open(|r| Ok(r.config().id.to_hex().as_str().to_string()))
            .ok()?;
        Some(SnapshotLedger::path(dir, &id))
    }

    /// Notes a snapshot just written in the ledger. A failure is only warned about: the
    /// snapshot is stored either way.
    pub(super) fn record_in_ledger(&self, info: &SnapshotInfo) {
        let Some(path) = self.ledger_path() else {
            return;
        };
        let keys = self.key_file_hashes();
        let r = SnapshotLedger::load(&path).and_then(|mut l| {
            l.location = self.cfg.location.to_string();
            l.keys = keys?;
            l.add(LedgerSnapshot {
                id: info.id.clone(),
                file_name: info.meta.file_name.clone(),
                written: jiff::Timestamp::now().to_string(),
            });
            l.save(&path)
        });
        if let Err(e) = r {
            tracing::warn!(
                "snapshot {} is stored, but the ledger could not be updated ({e:#}); \
                 `dvault check` will not notice if this snapshot disappears",
                info.short_id
            );
        }
    }

    /// SHA-256 of every key file as stored (raw bytes, read past rustic's key handling).
    pub(super) fn key_file_hashes(&self) -> anyhow::Result<BTreeMap<String, String>> {
        use sha2::{Digest, Sha256};
        let be = self.cfg.location.backends_for(&self.cfg)?.repository();
        let mut out = BTreeMap::new();
        for id in be.list(rustic_core::FileType::Key)? {
            let bytes = be.read_full(rustic_core::FileType::Key, &id)?;
            out.insert(
                id.to_hex().as_str().to_string(),
                hex::encode(Sha256::digest(&bytes)),
            );
        }
        Ok(out)
    }

    /// Drops snapshots dvault removed from the ledger.
    fn forget_in_ledger(&self, removed: &[String]) -> Result<(), RepoError> {
        let Some(path) = self.ledger_path() else {
            return Ok(());
        };
        SnapshotLedger::load(&path)
            .and_then(|mut l| {
                l.remove(removed);
                l.save(&path)
            })
            .map_err(|e| {
                RepoError::Invalid(format!(
                    "the snapshots were removed, but the ledger was not updated ({e:#}); \
                     `dvault check` will report them as missing until their entries are \
                     deleted from {}",
                    path.display()
                ))
            })
    }

    /// Adds an error for every snapshot the ledger has and the repository lacks: a deleted
    /// snapshot file leaves the rest of a restic repository consistent, so only the host's
    /// memory can tell.
    fn check_ledger(&self, report: &mut CheckReport) {
        let Some(path) = self.ledger_path() else {
            return;
        };
        let ledger = match SnapshotLedger::load(&path) {
            Ok(l) => l,
            Err(e) => {
                report.errors.push(format!(
                    "the snapshot ledger cannot be read ({e:#}); missing snapshots cannot be \
                     detected"
                ));
                return;
            }
        };
        if ledger.snapshots.is_empty() {
            return;
        }
        let present = self.with_open(|r| {
            Ok(r.list::<SnapshotId>()
                .map_err(self.err("listing snapshots"))?
                .map(|id| id.to_hex().as_str().to_string())
                .collect::<Vec<_>>())
        });
        let present = match present {
            Ok(p) => p,
            Err(e) => {
                report.errors.push(e.to_string());
                return;
            }
        };
        match self.key_file_hashes() {
            Ok(now) => {
                for (id, sha) in &ledger.keys {
                    match now.get(id) {
                        Some(n) if n == sha => {}
                        Some(_) => report.errors.push(format!(
                            "key file keys/{id} changed since this host last wrote a snapshot \
                             (ledger {}): its unauthenticated fields were altered. If the key \
                             was changed on purpose, delete its entry from the ledger",
                            path.display()
                        )),
                        None => report.errors.push(format!(
                            "key file keys/{id} is missing; this host saw it when it last wrote \
                             a snapshot (ledger {})",
                            path.display()
                        )),
                    }
                }
            }
            Err(e) => report.errors.push(format!("reading the key files: {e:#}")),
        }
        for s in ledger.missing(&present) {
            report.errors.push(format!(
                "snapshot {} ({}) is missing: snapshots/{} is not in the repository, but this \
                 host wrote it on {} and never removed it (ledger {}); it was deleted or lost \
                 outside dvault. If it was removed on purpose with another tool, delete its \
                 entry from the ledger",
                s.id,
                s.file_name,
                s.id,
                s.written,
                path.display()
            ));
        }
    }
}

/// Every snapshot of the repository with a label for messages: short id, and the original
/// file name for dvault's own.
fn labelled_snapshots<S: rustic_core::Open>(repo: &Repository<S>) -> Vec<(String, SnapshotFile)> {
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

/// The files of type `F` that cannot be read and decrypted: (full id, what is wrong).
fn damaged_files<F: rustic_core::repofile::RepoFile>(
    repo: &Repository<OpenStatus>,
) -> Vec<(String, String)> {
    let Ok(ids) = repo.list::<F::Id>() else {
        return Vec::new();
    };
    ids.filter_map(|id| {
        repo.get_file::<F>(&id)
            .err()
            .map(|e| (id.to_hex().as_str().to_string(), one_line(&e)))
    })
    .collect()
}

/// rustic_core's error on one line: its kind and message, without context, backtrace or the
/// advice footer.
fn one_line(e: &rustic_core::RusticError) -> String {
    one_line_text(&e.to_string())
}

/// A repository error on one line (for check's list of errors).
fn one_line_repo(e: &RepoError) -> String {
    one_line_text(&e.to_string())
}

fn one_line_text(text: &str) -> String {
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

/// Packs in no index file are harmless leftovers of an interrupted backup, unless snapshots
/// need blobs that no index file names: then an index file is missing, and check says so with
/// the packs that lost it.
fn explain_unindexed_packs(report: &mut CheckReport) {
    let unindexed: Vec<String> = report
        .warnings
        .iter()
        .filter(|w| w.contains("not referenced in index"))
        .filter_map(|w| w.split_whitespace().nth(1).map(str::to_string))
        .collect();
    let needed_missing = report.errors.iter().any(|e| {
        e.contains("not found in index")
            || e.contains("not in index")
            || e.contains("missing in index")
    });
    if !unindexed.is_empty() && needed_missing {
        report.errors.push(format!(
            "an index file is missing: snapshots need blobs that no index file names, and \
             {} pack(s) are in no index file (data/{}); restores of the snapshots that need them \
             fail, and the others restore",
            unindexed.len(),
            unindexed.join(", data/")
        ));
    }
}

fn bytesize(n: u64) -> bytesize::ByteSize {
    bytesize::ByteSize::b(n)
}

pub(super) fn raw_repo(
    cfg: &RepoConfig,
    progress: Option<Arc<dyn ProgressBars>>,
    skip: &SkipSet,
) -> Result<Repository<()>, RepoError> {
    let backends = cfg.location.backends_for(cfg)?;
    let repository = Arc::new(WrappedBackend::new(
        backends.repository(),
        skip.clone(),
        progress.clone(),
    ));
    let backends = RepositoryBackends::new(repository, backends.repo_hot());
    let mut opts = RepositoryOptions::default();
    opts.cache_dir.clone_from(&cfg.cache_dir);
    let r = match progress {
        Some(p) => Repository::new_with_progress(&opts, &backends, ProgressAdapter(p)),
        None => Repository::new(&opts, &backends),
    };
    r.map_err(|e| RepoError::rustic(&cfg.location, "preparing", &e))
}

fn retention_rules(rule: &Retention) -> Result<super::retention::Rules, RepoError> {
    Ok(super::retention::Rules {
        last: rule.last.unwrap_or(0),
        daily: rule.daily.unwrap_or(0),
        weekly: rule.weekly.unwrap_or(0),
        monthly: rule.monthly.unwrap_or(0),
        yearly: rule.yearly.unwrap_or(0),
        within: rule.within.as_deref().map(parse_span).transpose()?,
    })
}

/// Parses restic's duration notation (`2y5m7d3h`, units y m d h) into a span.
fn parse_span(s: &str) -> Result<jiff::Span, RepoError> {
    let bad = || {
        RepoError::Invalid(format!(
            "--keep-within `{s}`: expected a duration like 7d, 2w, 1y6m (units y, m, w, d, h)"
        ))
    };
    let mut span = jiff::Span::new();
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let v: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        span = match c {
            'y' => span.try_years(v),
            'm' => span.try_months(v),
            'w' => span.try_weeks(v),
            'd' => span.try_days(v),
            'h' => span.try_hours(v),
            _ => return Err(bad()),
        }
        .map_err(|_| bad())?;
    }
    if !num.is_empty() || s.is_empty() {
        return Err(bad());
    }
    Ok(span)
}

fn tag_safe(s: &str) -> String {
    s.replace(',', "_")
}

/// Tag of snapshots whose tree holds the dedup layout (`crate::layout`). It marks that there is
/// a layout to undo; the layout's version is in its own `index.json` (1 or 2, both read).
pub(super) const LAYOUT_TAG: &str = "layout:1";

fn new_snapshot(meta: &BackupMeta, laid_out: bool) -> rustic_core::RusticResult<SnapshotFile> {
    let mut tags = vec![
        TAG.to_string(),
        format!("sha256:{}", meta.sha256),
        format!("format:{}", meta.format.as_str()),
    ];
    if laid_out {
        tags.push(LAYOUT_TAG.to_string());
    }
    if let Some(site) = &meta.discourse.site {
        tags.push(format!("site:{}", tag_safe(site)));
    }
    // The config's site name, so that `restic snapshots --tag dvault-site:forum` finds them.
    if let Some(site) = &meta.site {
        tags.push(format!("dvault-site:{}", tag_safe(site)));
    }
    let description = serde_json::to_string(meta).unwrap_or_default();
    let mut opts = SnapshotOptions::default();
    opts.label = Some(meta.file_name.clone());
    opts.description = Some(description);
    opts.host = Some(meta.host.clone());
    opts.command = Some(format!("dvault backup {}", meta.file_name));
    // Retention counts days by snapshot time: a backlog stored in one go must still count as
    // the days Discourse made the backups, so the time comes from the file name when it has one.
    opts.time = meta.discourse.taken.as_deref().and_then(backup_time);
    opts = opts.add_tags(&tags.join(","))?;
    opts.to_snapshot()
}

/// The time in a Discourse backup name (`YYYY-MM-DD-HHMMSS`, UTC: Discourse runs in UTC).
fn backup_time(taken: &str) -> Option<jiff::Zoned> {
    jiff::civil::DateTime::strptime("%Y-%m-%d-%H%M%S", taken)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
}

/// Regular files under `dir`, at any depth (0 when it does not exist).
fn count_files(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// The snapshot's id in full hex (its `Display` gives only the short form).
fn full_id(s: &SnapshotFile) -> String {
    s.id.to_hex().as_str().to_string()
}

/// dvault's view of a rustic snapshot; `None` when it carries no dvault record.
pub(super) fn snapshot_info(s: &SnapshotFile) -> Option<SnapshotInfo> {
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

/// Lets rustic report progress through our [`ProgressBars`].
#[derive(Debug)]
struct ProgressAdapter(Arc<dyn ProgressBars>);

impl rustic_core::ProgressBars for ProgressAdapter {
    fn progress(&self, t: rustic_core::ProgressType, prefix: &str) -> rustic_core::Progress {
        let kind = match t {
            rustic_core::ProgressType::Spinner => ProgressKind::Spinner,
            rustic_core::ProgressType::Counter => ProgressKind::Counter,
            rustic_core::ProgressType::Bytes => ProgressKind::Bytes,
        };
        rustic_core::Progress::new(BarAdapter(self.0.start(kind, prefix)))
    }
}

#[derive(Debug)]
struct BarAdapter(Box<dyn super::ProgressBar>);

impl rustic_core::RusticProgress for BarAdapter {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_title(title);
    }
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

/// Hands memory freed by rustic_core's restore (its 20 reader threads each hold a stretch of
/// a pack) back to the system before the rebuild allocates its own: glibc keeps freed heap
/// otherwise, and the two peaks would add up.
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns unused heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Name prefix of a restore's temporary tree and file, before the process id.
const RESTORE_PREFIX: &str = ".dvault-restore-";

/// Removes what killed runs left in `base`: a run killed with SIGKILL cannot clean up, and each
/// leftover holds a whole peeled tree. `pid_of` gives the process id in an entry's name (None:
/// not ours); only entries whose process is gone are touched.
fn remove_stale(base: &Path, pid_of: impl Fn(&str) -> Option<&str>) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if let Some(pid) = pid_of(&name.to_string_lossy()) {
            remove_if_dead(&e, pid);
        }
    }
}

/// Removes what killed runs left in `base` under names `PREFIX<pid>-...`.
pub(crate) fn remove_stale_of(base: &Path, prefix: &str) {
    remove_stale(base, |name| {
        Some(name.strip_prefix(prefix)?.split_once('-')?.0)
    });
}

/// Removes `e` (a folder or file) when `pid` names a process that no longer exists.
fn remove_if_dead(e: &fs::DirEntry, pid: &str) {
    let Ok(pid) = pid.parse::<libc::pid_t>() else {
        return;
    };
    if pid <= 0 || process_alive(pid) {
        return;
    }
    tracing::info!("removing {} left by a killed run", e.path().display());
    let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
        fs::remove_dir_all(e.path())
    } else {
        fs::remove_file(e.path())
    };
}

/// Whether process `pid` exists (`kill(pid, 0)`; EPERM: it exists but is not ours).
fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_within_parses_restic_durations() {
        assert!(parse_span("7d").is_ok());
        assert!(parse_span("1y6m").is_ok());
        assert!(parse_span("7").is_err());
        assert!(parse_span("7x").is_err());
        assert!(parse_span("").is_err());
    }
}
