//! `Repo::backup_file`: peel the file, lay out its dumps, store the tree as a snapshot that
//! carries dvault's record of the original.

use super::*;

impl Repo {
    /// Stores the file at `path`, described by `meta` (see [`BackupMeta::for_file`]), as a new
    /// snapshot of its peeled tree. Does nothing when a snapshot of the same SHA-256 exists.
    pub fn backup_file(&self, path: &Path, meta: &BackupMeta) -> Result<BackupOutcome, RepoError> {
        let (started, r) = (Instant::now(), self.backup_file_unaudited(path, meta));
        crate::audit::backup(self, meta, &r, started);
        r
    }

    pub(super) fn backup_file_unaudited(
        &self,
        path: &Path,
        meta: &BackupMeta,
    ) -> Result<BackupOutcome, RepoError> {
        let started = Instant::now();
        let mut clock = crate::repo::profile::Clock::start();
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
                crate::repo::ProgressKind::Spinner,
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
        let layout = match self.cfg.layout {
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
}

pub(super) fn tag_safe(s: &str) -> String {
    s.replace(',', "_")
}

pub(super) fn new_snapshot(
    meta: &BackupMeta,
    laid_out: bool,
) -> rustic_core::RusticResult<SnapshotFile> {
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
pub(super) fn backup_time(taken: &str) -> Option<jiff::Zoned> {
    jiff::civil::DateTime::strptime("%Y-%m-%d-%H%M%S", taken)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
}

/// Regular files under `dir`, at any depth (0 when it does not exist).
pub(super) fn count_files(dir: &Path) -> u64 {
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
