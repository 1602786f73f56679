//! Looking inside a snapshot without restoring it all: the original backup's paths (`dvault
//! ls`, `find`, `diff`) and the tables of its dump with their row counts (`ls --tables`).
//!
//! Paths come from the recipe and the tar header blocks stored beside it (see
//! [`super::original_paths`]): a few small files, read straight from the repository. Row counts
//! need the dump itself: the snapshot's tree without `uploads/` is restored into a scratch
//! folder, the dedup layout is undone (each reassembled file is checked against its SHA-256),
//! and the COPY blocks are counted: for a plain dump by the reader the drill uses too
//! ([`crate::dump::DumpScanner`]), for a directory-format dump per data file, named by
//! its `toc.dat` entry (the same pairing the layout uses, `crate::layout::toc`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rustic_core::repofile::SnapshotFile;
use rustic_core::{IndexedFullStatus, LocalDestination, LsOptions, Repository, RestoreOptions};
use serde::{Deserialize, Serialize};

use super::original_paths::{self, OriginalEntry};
use super::repo_lock::LockKind;
use super::{Repo, RepoError, SnapshotInfo};

/// Rows of one table in a snapshot's dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    /// The table as pg_dump names it (`public.posts`).
    pub table: String,
    /// Rows in its COPY block.
    pub rows: u64,
    /// The dump file of the original backup it is in (`dump.sql.gz`, `db/1234.dat.gz`).
    pub file: String,
}

impl Repo {
    /// The snapshot `id` (unique prefix or `latest`) and the paths of its original backup file.
    pub fn original_paths(
        &self,
        id: &str,
    ) -> Result<(SnapshotInfo, Vec<OriginalEntry>), RepoError> {
        let _lock = self.lock(LockKind::Read)?;
        let (snap, info) = self.find_snapshot(id)?;
        let entries = self.with_index(|repo| self.paths_indexed(repo, &snap))?;
        Ok((info, entries))
    }

    fn paths_indexed(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
    ) -> Result<Vec<OriginalEntry>, RepoError> {
        let recipe_bytes = self.read_tree_file(repo, snap, ".peel/recipe.json")?;
        let recipe: peel::Recipe = serde_json::from_slice(&recipe_bytes).map_err(|e| {
            RepoError::Invalid(format!(
                "snapshot {}: .peel/recipe.json is not a recipe: {e}",
                &snap.id.to_hex()[..8]
            ))
        })?;
        let mut read = |path: &str| {
            self.read_tree_file(repo, snap, path)
                .map_err(|e| e.to_string())
        };
        original_paths::list(&recipe, &mut read).map_err(|e| {
            RepoError::Invalid(format!(
                "snapshot {}: reading the original paths: {e}",
                &snap.id.to_hex()[..8]
            ))
        })
    }

    /// One file of the snapshot's stored tree, whole (for small files: recipe, headers).
    fn read_tree_file(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
        path: &str,
    ) -> Result<Vec<u8>, RepoError> {
        let node = repo
            .node_from_snapshot_and_path(snap, path)
            .map_err(self.err(&format!("finding {path} in the snapshot")))?;
        let mut out = Vec::new();
        repo.dump(&node, &mut out)
            .map_err(self.err(&format!("reading {path} from the snapshot")))?;
        Ok(out)
    }

    /// The snapshot `id` and the tables of its dump that have a COPY block (every plain or
    /// directory-format dump in it) with their row counts, sorted by table.
    pub fn tables(&self, id: &str) -> Result<(SnapshotInfo, Vec<TableRows>), RepoError> {
        let _lock = self.lock(LockKind::Read)?;
        let (snap, info) = self.find_snapshot(id)?;
        let scratch = self.scratch("tables")?;
        let dir = scratch.path().join("tree");
        let entries = self.with_index(|repo| {
            let entries = self.paths_indexed(repo, &snap)?;
            self.restore_without_uploads(repo, &snap, &dir)?;
            Ok(entries)
        })?;
        if snap.tags.contains(super::restic::LAYOUT_TAG) {
            crate::layout::undo(&dir)?;
        }
        let mut out = Vec::new();
        for e in &entries {
            let Some(stored) = &e.stored_as else { continue };
            if stored.ends_with(".sql") {
                out.extend(plain_dump_tables(&dir.join(stored), &e.path)?);
            } else if stored.ends_with("toc.dat") {
                let folder = Path::new(stored).parent().unwrap_or(Path::new(""));
                out.extend(directory_dump_tables(&dir, folder, &entries)?);
            }
        }
        out.sort_by(|a, b| a.table.cmp(&b.table).then(a.file.cmp(&b.file)));
        Ok((info, out))
    }

    /// Restores every part of the snapshot's tree except `uploads/` into `dir`.
    fn restore_without_uploads(
        &self,
        repo: &Repository<IndexedFullStatus>,
        snap: &SnapshotFile,
        dir: &Path,
    ) -> Result<(), RepoError> {
        fs::create_dir_all(dir).map_err(|source| RepoError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let node = repo
            .node_from_snapshot_and_path(snap, "")
            .map_err(self.err("reading the snapshot's tree"))?;
        let ls = LsOptions::default();
        let wanted =
            |r: &rustic_core::RusticResult<(std::path::PathBuf, rustic_core::repofile::Node)>| {
                r.as_ref().map_or(true, |(p, _)| !p.starts_with("uploads"))
            };
        let dest_str = format!("{}/", dir.display());
        let dest = LocalDestination::new(&dest_str, true, false)
            .map_err(self.err("preparing the scratch folder"))?;
        let opts = RestoreOptions::default();
        let nodes = repo.ls(&node, &ls).map_err(self.err("listing"))?;
        let plan = repo
            .prepare_restore(&opts, nodes.clone().filter(wanted), &dest, false)
            .map_err(self.err("planning the restore"))?;
        match crate::panic_guard::catch(|| repo.restore(plan, &opts, nodes.filter(wanted), &dest)) {
            Ok(r) => r.map_err(self.err("restoring the dump"))?,
            Err(panic) => {
                return Err(RepoError::Invalid(format!(
                    "restoring the dump of snapshot {} failed ({panic}); run `dvault check \
                     --read-data`",
                    &snap.id.to_hex()[..8]
                )))
            }
        }
        Ok(())
    }
}

/// Tables of a plain SQL dump on disk; `file` is its original path (for the listing).
fn plain_dump_tables(path: &Path, file: &str) -> Result<Vec<TableRows>, RepoError> {
    let io = |source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut scanner = crate::dump::DumpScanner::new(std::io::sink());
    let mut f = fs::File::open(path).map_err(io)?;
    std::io::copy(&mut f, &mut scanner).map_err(io)?;
    let (facts, _) = scanner.finish().map_err(io)?;
    let facts = facts.map_err(|e| RepoError::Invalid(format!("{}: {e}", path.display())))?;
    Ok(facts
        .tables
        .into_iter()
        // Tables with a COPY block only, as a directory-format dump lists them (a table whose
        // data pg_dump left out has none in either format).
        .filter_map(|(table, t)| {
            Some(TableRows {
                table,
                rows: t.copy_rows?,
                file: file.to_string(),
            })
        })
        .collect())
}

/// Tables of a directory-format dump whose `toc.dat` is at `folder` in the tree `root`: one per
/// data file `NNNN.dat` that the TOC names; rows are its lines before the end-of-data line.
fn directory_dump_tables(
    root: &Path,
    folder: &Path,
    entries: &[OriginalEntry],
) -> Result<Vec<TableRows>, RepoError> {
    let toc_path = root.join(folder).join("toc.dat");
    let toc = fs::read(&toc_path).map_err(|source| RepoError::Io {
        path: toc_path.clone(),
        source,
    })?;
    let headers = crate::layout::toc::copy_headers(&toc);
    let original: BTreeMap<&str, &str> = entries
        .iter()
        .filter_map(|e| Some((e.stored_as.as_deref()?, e.path.as_str())))
        .collect();
    let mut out = Vec::new();
    for (dat, header) in headers {
        let stored = folder.join(&dat);
        let path = root.join(&stored);
        let f = match fs::File::open(&path) {
            Ok(f) => f,
            // The TOC names data files the dump left out (`--exclude-table-data`).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(RepoError::Io { path, source }),
        };
        let mut rows = 0u64;
        for line in BufReader::new(f).split(b'\n') {
            let line = line.map_err(|source| RepoError::Io {
                path: path.clone(),
                source,
            })?;
            if line == b"\\." {
                break;
            }
            rows += 1;
        }
        let stored = stored.to_string_lossy().into_owned();
        out.push(TableRows {
            table: header.table.clone(),
            rows,
            file: original
                .get(stored.as_str())
                .map_or(stored.clone(), |p| (*p).to_string()),
        });
    }
    Ok(out)
}
