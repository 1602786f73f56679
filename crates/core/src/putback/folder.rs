//! Putting a backup into a Discourse backups folder on this machine, never half-written.
//!
//! Local backups are the files directly in `public/backups/<db>/`
//! (`lib/backup_restore/local_backup_store.rb`, `base_directory`; on the standard Docker install
//! `/var/discourse/shared/standalone/backups/default`), listed by a glob on their extension and
//! sorted and pruned by modification time (`BackupStore#files`, `delete_old` with
//! `maximum_backups`). So the file gets the backup's own time as its mtime: with today's mtime
//! it would count as the newest backup and the next scheduled backup would delete a real newer
//! one. It gets the folder's owner and group, since the container's `discourse` user must read
//! it.
//!
//! Atomicity: the file is restored and checked under a hidden staging name in the same folder
//! (Discourse's listing only takes backup extensions, so it never sees it), then made visible
//! with `link(2)`, which fails rather than replace an existing file, and the staging name is
//! removed. A crash leaves at most a staging file, removed by the next put-back.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{io, PutBackError, STAGING_PREFIX};
use crate::repo::{Repo, SnapshotInfo};

/// Restores into a staging name in `folder`, gives it the backup's time and the folder's owner,
/// then links it under the final name (never replacing a file).
pub(super) fn into_folder(
    repo: &Repo,
    info: &SnapshotInfo,
    folder: &Path,
) -> Result<(PathBuf, Option<String>), PutBackError> {
    let name = &info.meta.file_name;
    if name.contains('/') || name == ".." || name == "." || name.is_empty() {
        return Err(PutBackError::Target(format!(
            "{name:?} is not a plain file name"
        )));
    }
    let meta = fs::metadata(folder).map_err(io(folder))?;
    if !meta.is_dir() {
        return Err(PutBackError::Target(format!(
            "{}: not a folder (give Discourse's backups folder, e.g. \
             /var/discourse/shared/standalone/backups/default)",
            folder.display()
        )));
    }
    let dest = folder.join(name);
    if dest.symlink_metadata().is_ok() {
        return Err(PutBackError::Exists(dest.display().to_string()));
    }
    crate::repo::remove_stale_of(folder, STAGING_PREFIX);
    let prefix = crate::interrupt::pid_prefix(folder, STAGING_PREFIX);
    let staging = folder.join(format!("{prefix}{name}.partial"));
    let result = (|| {
        repo.restore_file(&info.id, &staging)?;
        let mtime = backup_time(info);
        {
            let f = fs::File::options()
                .write(true)
                .open(&staging)
                .map_err(io(&staging))?;
            if let Some(t) = mtime {
                f.set_modified(t).map_err(io(&staging))?;
            }
            f.sync_all().map_err(io(&staging))?;
        }
        take_owner(&staging, &meta)?;
        match fs::hard_link(&staging, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(PutBackError::Exists(dest.display().to_string()))
            }
            Err(e) => return Err(io(&dest)(e)),
        }
        Ok(mtime.map(|t| {
            jiff::Timestamp::try_from(t)
                .map(|t| t.to_string())
                .unwrap_or_default()
        }))
    })();
    let _ = fs::remove_file(&staging);
    let mtime = result?;
    if let Ok(dir) = fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok((dest, mtime))
}

/// The backup's own time: the snapshot time, which is the time in the Discourse name when the
/// name has one (store/restic/backup.rs sets it so), else when it was stored.
fn backup_time(info: &SnapshotInfo) -> Option<SystemTime> {
    let ts: jiff::Timestamp = info.time.parse().ok()?;
    Some(SystemTime::from(ts))
}

/// Gives `path` the owner and group of the folder (`meta`), when they differ.
fn take_owner(path: &Path, meta: &fs::Metadata) -> Result<(), PutBackError> {
    use std::os::unix::fs::MetadataExt;
    let have = fs::metadata(path).map_err(io(path))?;
    if have.uid() == meta.uid() && have.gid() == meta.gid() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid())).map_err(|e| {
        PutBackError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(
                e.kind(),
                format!(
                    "cannot give it the backups folder's owner {}:{} ({e}); run as root or as \
                     that user",
                    meta.uid(),
                    meta.gid()
                ),
            ),
        }
    })
}
