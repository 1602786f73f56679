//! The local backups folder of a Discourse host: find the newest complete backup.
//!
//! "Complete" is decided from what Discourse itself does while writing (see its
//! `BackupRestore::Creator`): a format-A backup is first a growing `<name>-v<migration>.tar` in
//! the backups folder, then `gzip` turns it into a growing `.tar.gz` and removes the `.tar` at the
//! end. So a `-v<14 digits>.tar` is never a finished backup (format B names carry a version
//! before the migration), a `.tar.gz` whose `.tar` still exists is not finished, and any file
//! whose size or mtime changes during the settle wait is still being written. Files are only
//! listed and stat'ed here; nothing in the folder is ever opened for writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use regex::Regex;

use super::SourceError;

/// The three Discourse backup layouts, told by the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum BackupKind {
    /// `.tar.gz`: gzip'd tar with `dump.sql.gz` and uploads (also the very old v1.5 layout).
    TarGz,
    /// `.sql.gz`: database only.
    SqlGz,
    /// `-v<version>-<migration>.tar`: the newest uncompressed layout.
    Tar,
}

/// The facts a Discourse backup file name carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupName {
    /// The whole file name.
    pub file_name: String,
    /// The parameterized site title before the timestamp.
    pub site: String,
    /// `YYYY-MM-DD-HHMMSS`, when the backup was started (sorts chronologically).
    pub timestamp: String,
    /// Discourse version (format B names only).
    pub version: Option<String>,
    /// The 14-digit migration version.
    pub migration: String,
    /// The layout.
    pub kind: BackupKind,
}

/// Parses a finished Discourse backup's file name; `None` for anything else (temp files,
/// `.partial`, a format-A `.tar` still being built, unrelated files).
pub fn parse_backup_name(file_name: &str) -> Option<BackupName> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"^(?P<site>.+)-(?P<ts>\d{4}-\d{2}-\d{2}-\d{6})-v(?:(?P<ver>[0-9][0-9A-Za-z.]*)-)?(?P<mig>\d{14})\.(?P<ext>tar\.gz|sql\.gz|tar)$",
        )
        .expect("static regex is valid")
    });
    let c = re.captures(file_name)?;
    let version = c.name("ver").map(|m| m.as_str().to_string());
    let kind = match &c["ext"] {
        "tar.gz" if version.is_none() => BackupKind::TarGz,
        "sql.gz" if version.is_none() => BackupKind::SqlGz,
        // A format-A archive under construction: `-v<migration>.tar` without a version.
        "tar" if version.is_some() => BackupKind::Tar,
        _ => return None,
    };
    Some(BackupName {
        file_name: file_name.to_string(),
        site: c["site"].to_string(),
        timestamp: c["ts"].to_string(),
        version,
        migration: c["mig"].to_string(),
        kind,
    })
}

/// One backup file in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderEntry {
    /// Full path.
    pub path: PathBuf,
    /// Parsed name.
    pub name: BackupName,
    /// Size in bytes when listed.
    pub size: u64,
    /// Modification time when listed.
    pub modified: SystemTime,
}

/// Why a backup-looking file was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// The result of looking for the newest complete backup.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The newest complete backup, if any.
    pub newest: Option<FolderEntry>,
    /// Newer files that were not complete yet.
    pub passed_over: Vec<Passed>,
}

/// A Discourse backups folder.
#[derive(Debug, Clone)]
pub struct FolderSource {
    dir: PathBuf,
    settle: Duration,
}

impl FolderSource {
    /// A folder; `settle` is how long sizes must stay unchanged.
    pub fn new(dir: impl Into<PathBuf>, settle: Duration) -> Self {
        FolderSource {
            dir: dir.into(),
            settle,
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All files whose names are finished Discourse backups, oldest first (by the timestamp in
    /// the name, then the name).
    pub fn list(&self) -> Result<Vec<FolderEntry>, SourceError> {
        let io_err = |e: std::io::Error| SourceError::Io {
            path: self.dir.clone(),
            message: format!("cannot list backups folder: {e}"),
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let Some(name) = parse_backup_name(file_name) else {
                continue;
            };
            let path = entry.path();
            // Follows symlinks on purpose: an admin may link backups in from elsewhere.
            let meta = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                // Discourse deleted it (maximum_backups) between listing and stat.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SourceError::Io {
                        path,
                        message: format!("cannot stat backup file: {e}"),
                    })
                }
            };
            out.push(FolderEntry {
                path,
                name,
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        out.sort_by(|a, b| {
            (&a.name.timestamp, &a.name.file_name).cmp(&(&b.name.timestamp, &b.name.file_name))
        });
        Ok(out)
    }

    /// The newest backup that is complete: not shadowed by its own `.tar` (gzip still running)
    /// and with size and mtime unchanged over the settle wait. Newer incomplete files are
    /// reported in [`Selection::passed_over`] and picked up by a later run.
    pub fn newest_complete(&self) -> Result<Selection, SourceError> {
        let before = self.list()?;
        let mut selection = Selection::default();
        if before.is_empty() {
            return Ok(selection);
        }
        if !self.settle.is_zero() {
            std::thread::sleep(self.settle);
        }
        let after: BTreeMap<PathBuf, FolderEntry> = self
            .list()?
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect();
        for entry in before.into_iter().rev() {
            let Some(now) = after.get(&entry.path) else {
                selection.passed_over.push(Passed {
                    path: entry.path,
                    reason: "disappeared while waiting".into(),
                });
                continue;
            };
            if now.size != entry.size || now.modified != entry.modified {
                selection.passed_over.push(Passed {
                    path: entry.path,
                    reason: format!(
                        "still growing ({} -> {} bytes in {:?})",
                        entry.size, now.size, self.settle
                    ),
                });
                continue;
            }
            if entry.name.kind == BackupKind::TarGz {
                let tar = entry.path.with_extension(""); // strips ".gz"
                if tar.exists() {
                    selection.passed_over.push(Passed {
                        path: entry.path,
                        reason: format!("{} still exists: gzip is still running", tar.display()),
                    });
                    continue;
                }
            }
            selection.newest = Some(now.clone());
            break;
        }
        Ok(selection)
    }
}
