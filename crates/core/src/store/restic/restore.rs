//! Taking a snapshot back out: the peeled tree (`restore_expanded`) or the original file,
//! rebuilt and checked against its SHA-256 (`restore_file`); a damaged pack is named with
//! what it costs.

use super::*;

impl Repo {
    /// Writes the snapshot's peeled tree (dump, uploads, `.peel/recipe.json`) into `dir`, which
    /// must not exist or be empty.
    pub fn restore_expanded(&self, id: &str, dir: &Path) -> Result<SnapshotInfo, RepoError> {
        let (started, r) = (Instant::now(), self.restore_expanded_unaudited(id, dir));
        crate::audit::restore(self, id, dir, &r, started);
        r
    }

    pub(super) fn restore_expanded_unaudited(
        &self,
        id: &str,
        dir: &Path,
    ) -> Result<SnapshotInfo, RepoError> {
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

    pub(super) fn restore_tree(&self, snap: &SnapshotFile, dir: &Path) -> Result<(), RepoError> {
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

    pub(super) fn restore_indexed(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
        dir: &Path,
    ) -> Result<(), RepoError> {
        let nodes = self.tree_nodes(repo, snap)?;
        self.restore_nodes(repo, snap, dir, nodes)
    }

    /// Every path of the snapshot's tree with its node, folders before what is in them.
    pub(super) fn tree_nodes(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
    ) -> Result<Vec<(PathBuf, rustic_core::repofile::Node)>, RepoError> {
        let root = repo
            .node_from_snapshot_and_path(snap, "")
            .map_err(self.err("reading the snapshot's tree"))?;
        repo.ls(&root, &LsOptions::default())
            .map_err(self.err("listing"))?
            .collect::<Result<_, _>>()
            .map_err(self.err("listing"))
    }

    /// Restores `nodes` (paths and nodes of the snapshot's tree, folders before what is in
    /// them) into `dir`.
    pub(super) fn restore_nodes(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
        dir: &Path,
        nodes: Vec<(PathBuf, rustic_core::repofile::Node)>,
    ) -> Result<(), RepoError> {
        let dest_str = format!("{}/", dir.display());
        let dest = LocalDestination::new(&dest_str, true, false)
            .map_err(self.err("preparing the restore folder"))?;
        let opts = RestoreOptions::default();
        let listed = || nodes.iter().cloned().map(Ok);
        let plan = repo
            .prepare_restore(&opts, listed(), &dest, false)
            .map_err(self.err("planning the restore"))?;
        // rustic_core's restore workers unwrap every read: a damaged pack panics one of them
        // (see panic_guard.rs). Catch it and name the pack and what it costs instead.
        match crate::panic_guard::catch(|| repo.restore(plan, &opts, listed(), &dest)) {
            Ok(r) => r.map_err(self.err("restoring"))?,
            Err(panic) => return Err(self.damaged_restore(repo, snap, &panic)),
        }
        Ok(())
    }

    /// The error of a restore that rustic_core gave up on: reads back the packs the snapshot
    /// needs to find the damaged ones, and names them with the files and snapshots they cost.
    pub(super) fn damaged_restore(
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
                    "rustic_core stopped with an internal error ({}); reading the snapshot's \
                     packs back found no damage. Run `dvault check --read-data`",
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

    pub(super) fn restore_file_unaudited(
        &self,
        id: &str,
        out: &Path,
    ) -> Result<SnapshotInfo, RepoError> {
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
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(&parent)
            .map_err(io(&parent))?;
        let (size, sha) = {
            let mut w = BufWriter::new(tmp.as_file());
            // The original is rebuilt while later files of the tree are still being restored
            // (restore_stream.rs).
            let r = self.restore_rebuilding(&snap, tree.path(), &mut w)?;
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
}

/// Hands memory freed by rustic_core's restore (its 20 reader threads each hold a stretch of
/// a pack) back to the system before the rebuild allocates its own: glibc keeps freed heap
/// otherwise, and the two peaks would add up.
pub(super) fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns unused heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Name prefix of a restore's temporary tree and file, before the process id.
pub(super) const RESTORE_PREFIX: &str = ".dvault-restore-";
