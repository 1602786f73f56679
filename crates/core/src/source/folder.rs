//! The local backups folder of a Discourse host: find the newest complete backup.
//!
//! Names are judged by [`crate::discourse::classify`]. "Complete" is decided from what Discourse
//! itself does while writing (its `lib/backup_restore/creator.rb`): current Discourse writes
//! `<name>.tar.partial` and renames it at the end; older Discourse first grows a
//! `<name>-v<migration>.tar`, then `gzip` turns it into a growing `.tar.gz` and removes the `.tar`
//! at the end. So those are never finished backups, a `.tar.gz` whose `.tar` still exists is not
//! finished, and any file whose size or mtime changes during the settle wait is still being
//! written. Files named like backups that no Discourse writes are listed as unusable, so the run
//! can report them instead of passing them over. Files are only listed and stat'ed here;
//! nothing in the folder is ever opened for writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{SourceError, Unusable};
use crate::discourse::{classify, BackupName, FileKind, Format};

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
    /// Older complete backups, oldest first (for the run to store those not stored yet).
    pub older: Vec<FolderEntry>,
    /// Newer files that were not complete yet.
    pub passed_over: Vec<Passed>,
    /// Files named like backups that cannot be used, oldest first.
    pub unusable: Vec<Unusable>,
}

/// Everything in the folder that concerns backups.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Finished backups, oldest first (by the time in the name, or the mtime for admin-chosen
    /// names, then the name).
    pub backups: Vec<FolderEntry>,
    /// Files named like backups that cannot be used, oldest first (by mtime).
    pub unusable: Vec<Unusable>,
}

impl Listing {
    /// Adds a file whose name is of `kind`: a backup, or a file named like one that cannot be
    /// used (`origin` names it then); other files are left out.
    pub(super) fn add(
        &mut self,
        kind: FileKind,
        path: PathBuf,
        origin: String,
        size: u64,
        modified: SystemTime,
    ) {
        match kind {
            FileKind::Backup(name) => self.backups.push(FolderEntry {
                path,
                name: name.with_mtime(Some(modified)),
                size,
                modified,
            }),
            FileKind::Unusable(reason) => self.unusable.push(Unusable {
                origin,
                reason,
                modified: Some(modified),
            }),
            FileKind::Other | FileKind::InProgress(_) => {}
        }
    }

    /// Puts both lists in the order their fields promise.
    pub(super) fn sort(&mut self) {
        self.backups
            .sort_by(|a, b| a.name.sort_key().cmp(&b.name.sort_key()));
        self.unusable
            .sort_by(|a, b| (a.modified, &a.origin).cmp(&(b.modified, &b.origin)));
    }
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

    /// All files whose names are finished Discourse backups, oldest first (by the time in the
    /// name, or the mtime for admin-chosen names, then the name).
    pub fn list(&self) -> Result<Vec<FolderEntry>, SourceError> {
        Ok(self.scan()?.backups)
    }

    /// The finished backups and the files that look like backups but cannot be used.
    /// Files still being written and unrelated files are left out.
    pub fn scan(&self) -> Result<Listing, SourceError> {
        let io_err = |e: std::io::Error| SourceError::Io {
            path: self.dir.clone(),
            message: format!("cannot list backups folder: {e}"),
        };
        let mut out = Listing::default();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let file_name = entry.file_name();
            let path = entry.path();
            let kind = match file_name.to_str() {
                Some(n) => classify(n),
                None => FileKind::Other,
            };
            if matches!(kind, FileKind::Other | FileKind::InProgress(_)) {
                continue;
            }
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
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let origin = path.display().to_string();
            out.add(kind, path, origin, meta.len(), modified);
        }
        out.sort();
        Ok(out)
    }

    /// The newest backup that is complete: not shadowed by its own `.tar` (gzip still running)
    /// and with size and mtime unchanged over the settle wait. Newer incomplete files are
    /// reported in [`Selection::passed_over`] and picked up by a later run; the older complete
    /// backups are listed in [`Selection::older`].
    pub fn newest_complete(&self) -> Result<Selection, SourceError> {
        let Listing {
            backups: before,
            unusable,
        } = self.scan()?;
        let mut selection = Selection {
            unusable,
            ..Selection::default()
        };
        if before.is_empty() {
            return Ok(selection);
        }
        if !self.settle.is_zero() {
            std::thread::sleep(self.settle);
        }
        let after = self.list()?;
        settle_entries(before, after, self.settle, &mut selection, |entry| {
            let tar = entry.path.with_extension(""); // strips ".gz"
            tar.exists().then(|| tar.display().to_string())
        });
        Ok(selection)
    }
}

/// The settle rule (`settle.rs`) over two listings of a backups folder `settle` apart, here or
/// over SFTP: a backup whose size or mtime changed is still growing, and a `.tar.gz` is not
/// finished while `tar_left` names its `.tar` as still there (gzip still running). Fills the
/// newest, older and passed-over backups of `selection`.
pub(super) fn settle_entries(
    before: Vec<FolderEntry>,
    after: Vec<FolderEntry>,
    settle: Duration,
    selection: &mut Selection,
    tar_left: impl Fn(&FolderEntry) -> Option<String>,
) {
    let after: BTreeMap<PathBuf, FolderEntry> =
        after.into_iter().map(|e| (e.path.clone(), e)).collect();
    let settled = super::settle::settle(
        before,
        &after,
        |e| e.path.clone(),
        |then, now| {
            if now.size != then.size || now.modified != then.modified {
                return Some(format!(
                    "still growing ({} -> {} bytes in {settle:?})",
                    then.size, now.size
                ));
            }
            if then.name.format == Format::TarGz {
                if let Some(tar) = tar_left(then) {
                    return Some(format!("{tar} still exists: gzip is still running"));
                }
            }
            None
        },
        |e, reason| {
            selection.passed_over.push(Passed {
                path: e.path,
                reason,
            })
        },
    );
    selection.newest = settled.newest;
    selection.older = settled.older;
}
