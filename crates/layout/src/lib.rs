//! The dedup layout of pg_dump data in a peeled tree.
//!
//! A live forum changes rows all over its tables every day, and every UPDATE moves its row to
//! another place in pg_dump's output; with content-defined chunking nearly every chunk of a
//! plain dump then changes daily. The layout rewrites each dump so that a change touches as few
//! bytes as possible: the rows of every COPY block in key order, one stream per column. It is
//! applied to the peeled tree before it is stored and undone after a restore, so a restored tree
//! holds the normal `dump.sql` again. `docs/layout.md` describes the format precisely enough to
//! reassemble it by hand.
//!
//! Same contract as peel: reassembly is byte-exact and proven at backup time by SHA-256 (every
//! block on its own, then the whole file). A block that cannot be proven stays plain text in the
//! skeleton, and the report says why.

mod affinity;
mod block;
mod bytes;
mod file;
mod join;
mod order;
mod scan;
mod segment;
pub mod toc;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use file::reassemble_file;

/// Folder at the root of a peeled tree that holds the laid-out files.
pub const LAYOUT_DIR: &str = ".dvault-layout";
/// The list of laid-out files inside [`LAYOUT_DIR`].
pub const INDEX_FILE: &str = "index.json";
/// Version of the on-disk layout that new backups write (`docs/layout.md`). Version 2 added
/// column files holding fields that are not next to each other (`fields` in `layout.json`)
/// and column files stored as segment folders (`segments`).
pub const LAYOUT_VERSION: u32 = 2;
/// The oldest layout version this dvault still reads.
pub const OLDEST_LAYOUT_VERSION: u32 = 1;
/// Environment variable choosing the layout of new backups: `columns` (default) or `plain`.
pub const MODE_ENV: &str = "DVAULT_LAYOUT";

/// How a backup lays out its dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Keep the peeled tree as peel wrote it.
    Plain,
    /// Rows in key order, one stream per column.
    Columns,
}

impl Mode {
    /// The mode [`MODE_ENV`] asks for; `columns` when unset.
    pub fn from_env() -> Result<Self, LayoutError> {
        match std::env::var(MODE_ENV) {
            Err(_) => Ok(Self::Columns),
            Ok(v) if v == "columns" || v.is_empty() => Ok(Self::Columns),
            Ok(v) if v == "plain" => Ok(Self::Plain),
            Ok(v) => Err(LayoutError::new(
                MODE_ENV,
                format!("`{v}` is not a layout; expected `columns` or `plain`"),
            )),
        }
    }
}

/// An error of the layout; names the file (or block) and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LayoutError {
    /// The file, folder or block concerned.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

impl LayoutError {
    pub(crate) fn new(path: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        Self::new(path.display(), e.to_string())
    }
}

/// What the layout did to a tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayoutReport {
    /// One entry per dump file considered.
    pub files: Vec<FileReport>,
}

/// What the layout did to one dump file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// Path of the file inside the tree.
    pub file: String,
    /// True when the file is stored laid out (its reassembly was proven).
    pub laid_out: bool,
    /// Why the whole file stays plain, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// COPY blocks stored as columns.
    pub blocks: usize,
    /// Rows in those blocks.
    pub rows: u64,
    /// COPY blocks kept as plain text in the skeleton, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plain_blocks: Vec<PlainBlock>,
}

/// A COPY block kept as plain text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlainBlock {
    /// The table (or data file) of the block.
    pub table: String,
    /// Why it is not laid out.
    pub reason: String,
}

/// The list of laid-out files of a tree (`.dvault-layout/index.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    version: u32,
    files: Vec<String>,
}

/// Lays out every pg_dump file of the peeled tree at `tree` in place: a plain dump `*.sql` and
/// the `NNNN.dat` data files of a directory-format dump (next to a `toc.dat`). Each file that is
/// laid out is replaced by the folder `.dvault-layout/<its path>/`; the others stay as they are.
pub fn apply(tree: &Path) -> Result<LayoutReport, LayoutError> {
    let root = tree.join(LAYOUT_DIR);
    let mut report = LayoutReport::default();
    let candidates = candidates(tree)?;
    if candidates.is_empty() {
        return Ok(report);
    }
    if fs::symlink_metadata(&root).is_ok() {
        // The backup itself holds an entry of that name: leave everything plain.
        for c in candidates {
            report.files.push(FileReport {
                file: c,
                reason: Some(format!("the tree already has an entry named {LAYOUT_DIR}")),
                ..FileReport::default()
            });
        }
        return Ok(report);
    }
    let mut done = Vec::new();
    // The COPY statements of each directory-format dump, by data file (see `toc`).
    let mut tocs: std::collections::HashMap<PathBuf, _> = std::collections::HashMap::new();
    for rel in candidates {
        let src = tree.join(&rel);
        let dir = root.join(&rel);
        let header = if rel.ends_with(".dat") {
            let folder = src.parent().unwrap_or(tree).to_path_buf();
            let headers = tocs.entry(folder.clone()).or_insert_with(|| {
                fs::read(folder.join("toc.dat"))
                    .map(|t| toc::copy_headers(&t))
                    .unwrap_or_default()
            });
            let name = Path::new(&rel).file_name().and_then(|n| n.to_str());
            name.and_then(|n| headers.get(n)).cloned()
        } else {
            None
        };
        let r = file::apply_file(&src, &dir, &rel, header.as_ref())?;
        if r.laid_out {
            fs::remove_file(&src).map_err(|e| LayoutError::io(&src, e))?;
            done.push(rel);
        }
        report.files.push(r);
    }
    if done.is_empty() {
        if root.exists() {
            fs::remove_dir_all(&root).map_err(|e| LayoutError::io(&root, e))?;
        }
        return Ok(report);
    }
    let index = Index {
        version: LAYOUT_VERSION,
        files: done,
    };
    let path = root.join(INDEX_FILE);
    let text = serde_json::to_vec_pretty(&index)
        .map_err(|e| LayoutError::new(path.display(), e.to_string()))?;
    fs::write(&path, text).map_err(|e| LayoutError::io(&path, e))?;
    Ok(report)
}

/// Undoes [`apply`] on a restored tree: every file listed in `.dvault-layout/index.json` is
/// reassembled at its path (checked against its recorded SHA-256) and the layout folder is
/// removed. A tree without the folder is left alone.
pub fn undo(tree: &Path) -> Result<(), LayoutError> {
    let root = tree.join(LAYOUT_DIR);
    let path = root.join(INDEX_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LayoutError::io(&path, e)),
    };
    let index: Index = serde_json::from_slice(&text)
        .map_err(|e| LayoutError::new(path.display(), format!("not a layout index: {e}")))?;
    if !(OLDEST_LAYOUT_VERSION..=LAYOUT_VERSION).contains(&index.version) {
        return Err(LayoutError::new(
            path.display(),
            format!(
                "layout version {} is not supported (this dvault reads versions \
                 {OLDEST_LAYOUT_VERSION} to {LAYOUT_VERSION})",
                index.version
            ),
        ));
    }
    for rel in &index.files {
        let rel_path = safe_relative(rel).ok_or_else(|| {
            LayoutError::new(
                path.display(),
                format!("file `{rel}` is not a relative path"),
            )
        })?;
        let out = tree.join(&rel_path);
        let tmp = out.with_file_name(format!(
            ".{}.dvault-reassembly",
            rel_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(|e| LayoutError::io(parent, e))?;
        }
        let result = (|| {
            let f = fs::File::create(&tmp).map_err(|e| LayoutError::io(&tmp, e))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            reassemble_file(&root.join(&rel_path), &mut w)?;
            let f = w
                .into_inner()
                .map_err(|e| LayoutError::io(&tmp, e.into_error()))?;
            f.sync_all().map_err(|e| LayoutError::io(&tmp, e))?;
            fs::rename(&tmp, &out).map_err(|e| LayoutError::io(&out, e))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
    }
    fs::remove_dir_all(&root).map_err(|e| LayoutError::io(&root, e))
}

/// A relative path without `..`, `.` or root parts.
fn safe_relative(rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let ok = !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

/// Relative paths of the dump files in the tree, sorted: `*.sql` files at any depth whose first
/// line looks like pg_dump's, and `*.dat` files next to a `toc.dat`.
fn candidates(tree: &Path) -> Result<Vec<String>, LayoutError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = tree.join(&rel);
        let entries = fs::read_dir(&dir).map_err(|e| LayoutError::io(&dir, e))?;
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        let has_toc = names.iter().any(|n| n == "toc.dat");
        for name in names {
            let child = rel.join(&name);
            if rel.as_os_str().is_empty() && (name == LAYOUT_DIR || name == ".peel") {
                continue;
            }
            let meta = fs::symlink_metadata(tree.join(&child))
                .map_err(|e| LayoutError::io(&tree.join(&child), e))?;
            let Some(name) = name.to_str() else { continue };
            if meta.is_dir() {
                // Uploads are images and attachments: nothing to lay out there.
                if !(rel.as_os_str().is_empty() && name == "uploads") {
                    stack.push(child);
                }
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let is_dat = has_toc && name.ends_with(".dat") && name != "toc.dat";
            let is_sql = name.ends_with(".sql") && looks_like_pg_dump(&tree.join(&child));
            if is_dat || is_sql {
                if let Some(s) = child.to_str() {
                    out.push(s.to_string());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// True when the file starts the way pg_dump's plain output does.
fn looks_like_pg_dump(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 64];
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(b"--\n-- PostgreSQL database dump")
}

#[cfg(test)]
mod tests;
