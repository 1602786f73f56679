//! Rebuilding the original file while rustic_core is still restoring the tree.
//!
//! A restore used to run two long phases one after the other: rustic_core wrote the whole peeled
//! tree into a scratch folder (downloading and decrypting), then peel rebuilt the original from it
//! (recompressing: GNU `gzip -5` of the whole tar, zlib of the dump). From a remote repository
//! the first is network time and the second CPU time, and nothing needs them in sequence except
//! for the files the rebuild reads first. So the tree is restored in batches, in the order the
//! rebuild reads the entries (peel's [`peel::Node::entry_paths`]), by a thread of its own, while
//! the rebuild runs and waits only for an entry whose batch has not arrived yet:
//!
//! 1. the folders and `.peel/recipe.json` (which says the order);
//! 2. every file that is not an entry of the recipe: the dump's laid-out pieces, from which
//!    the dedup layout puts the dump back (`layout::undo`) before the rebuild starts;
//! 3. the entries, in rebuild order, in batches of [`BATCH_BYTES`] (at most [`MAX_BATCHES`]).
//!
//! rustic_core 0.13 has no per-file completion callback, hence batches: one `restore` call per
//! batch, each complete when the call returns. A failed restore wakes the waiting rebuild with
//! the error; a failed rebuild stops the restore after the batch in progress.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use rustic_core::repofile::Node;

use super::*;

/// Entry bytes per batch after the first two: large enough that the fixed cost of one
/// rustic_core restore (its plan, a pool of 20 reader threads) stays small, small enough that
/// the rebuild starts on the first entries early.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// At most this many batches of entries, whatever the size: a large tree gets larger batches.
const MAX_BATCHES: u64 = 32;

impl Repo {
    /// Restores the tree of `snap` into `dir` and rebuilds the original into `out` at the same
    /// time; returns the size and SHA-256 written (peel has checked them against the recipe).
    pub(super) fn restore_rebuilding(
        &self,
        snap: &SnapshotFile,
        dir: &Path,
        out: &mut (dyn Write + Send),
    ) -> Result<(u64, String), RepoError> {
        fs::create_dir_all(dir).map_err(|source| RepoError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        self.with_index(|repo| self.restore_rebuilding_indexed(repo, snap, dir, out))
    }

    fn restore_rebuilding_indexed(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
        dir: &Path,
        out: &mut (dyn Write + Send),
    ) -> Result<(u64, String), RepoError> {
        let (folders, files): (Vec<_>, Vec<_>) = self
            .tree_nodes(repo, snap)?
            .into_iter()
            .partition(|(_, n)| n.is_dir());
        let recipe_path = Path::new(peel::tree::RECIPE_PATH);
        let (recipe_file, files): (Vec<_>, Vec<_>) =
            files.into_iter().partition(|(p, _)| p == recipe_path);

        // 1. Folders and the recipe.
        self.restore_nodes(
            repo,
            snap,
            dir,
            folders.into_iter().chain(recipe_file).collect(),
        )?;
        let recipe =
            peel::tree::read_recipe(&dir.join(recipe_path)).map_err(|e| RepoError::Peel {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        let order: HashMap<&str, usize> = recipe
            .root
            .entry_paths()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect();

        // 2. What is not an entry (the laid-out dump), then the layout undone.
        let (mut entries, others): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|(p, _)| p.to_str().is_some_and(|p| order.contains_key(p)));
        self.restore_nodes(repo, snap, dir, others)?;
        if snap.tags.contains(LAYOUT_TAG) {
            layout::undo(dir)?;
        }
        super::restore::release_free_memory();

        // 3. The entries in rebuild order, restored by a thread of their own.
        entries.sort_by_key(|(p, _)| p.to_str().and_then(|p| order.get(p).copied()));
        let batches = batches(entries);
        let batch_of: Arc<HashMap<String, usize>> = Arc::new(
            batches
                .iter()
                .enumerate()
                .flat_map(|(b, nodes)| {
                    nodes
                        .iter()
                        .filter_map(move |(p, _)| Some((p.to_str()?.to_string(), b)))
                })
                .collect(),
        );
        let progress = Arc::new(Progress::default());
        std::thread::scope(|s| {
            let restoring = s.spawn(|| {
                for (b, nodes) in batches.into_iter().enumerate() {
                    if progress.stopped() {
                        return Ok(());
                    }
                    let r = self.restore_nodes(repo, snap, dir, nodes);
                    progress.arrived(b, r.as_ref().err().map(ToString::to_string));
                    r?;
                }
                Ok::<(), RepoError>(())
            });
            let mut source = WaitingSource {
                dir: dir.to_path_buf(),
                batch_of: batch_of.clone(),
                progress: progress.clone(),
            };
            let rebuilt = peel::rebuild(&recipe, &mut source, out).map_err(|e| RepoError::Peel {
                path: dir.to_path_buf(),
                message: e.to_string(),
            });
            progress.stop();
            let restored = restoring.join().unwrap_or_else(|_| {
                Err(RepoError::Invalid(
                    "the restore thread stopped unexpectedly".into(),
                ))
            });
            // A failed restore explains a rebuild that found an entry missing: its error first.
            restored?;
            let d = rebuilt?;
            Ok((d.size, d.sha256))
        })
    }
}

/// The entries cut into batches of about [`BATCH_BYTES`] (more when the tree is large).
fn batches(entries: Vec<(PathBuf, Node)>) -> Vec<Vec<(PathBuf, Node)>> {
    let total: u64 = entries.iter().map(|(_, n)| n.meta.size).sum();
    let per_batch = BATCH_BYTES.max(total.div_ceil(MAX_BATCHES));
    let mut out: Vec<Vec<(PathBuf, Node)>> = Vec::new();
    let mut filled = u64::MAX;
    for e in entries {
        if filled >= per_batch {
            out.push(Vec::new());
            filled = 0;
        }
        filled += e.1.meta.size.max(1);
        out.last_mut().expect("a batch was pushed").push(e);
    }
    out
}

/// What the restoring thread has done, for the rebuild waiting on it.
#[derive(Default)]
struct Progress {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Batches fully restored (they are restored in order).
    arrived: usize,
    /// The restore failed: why.
    failed: Option<String>,
    /// The rebuild is over: restore no more batches.
    stopped: bool,
}

impl Progress {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arrived(&self, batch: usize, failed: Option<String>) {
        let mut s = self.lock();
        match failed {
            None => s.arrived = batch + 1,
            Some(why) => s.failed = Some(why),
        }
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.lock().stopped = true;
    }

    fn stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Waits until `batch` has arrived; the restore's error if it failed first.
    fn wait_for(&self, batch: usize) -> io::Result<()> {
        let mut s = self.lock();
        loop {
            if s.arrived > batch {
                return Ok(());
            }
            if let Some(why) = &s.failed {
                return Err(io::Error::other(format!(
                    "restoring the entry failed: {why}"
                )));
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The tree on disk, each entry opened only once its batch has been restored. Clones share the
/// waiting, so peel may rebuild independent members on several threads.
struct WaitingSource {
    dir: PathBuf,
    batch_of: Arc<HashMap<String, usize>>,
    progress: Arc<Progress>,
}

impl peel::EntrySource for WaitingSource {
    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        if let Some(&batch) = self.batch_of.get(path) {
            self.progress.wait_for(batch)?;
        }
        peel::tree::DirSource::new(&self.dir).open(path)
    }

    fn try_clone(&self) -> Option<Box<dyn peel::EntrySource>> {
        Some(Box::new(WaitingSource {
            dir: self.dir.clone(),
            batch_of: self.batch_of.clone(),
            progress: self.progress.clone(),
        }))
    }
}
