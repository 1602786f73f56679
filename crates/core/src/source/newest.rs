//! Finding the newest complete backup of a site in each kind of source (the local folder, the
//! folder on the forum host over SFTP, the S3 bucket), after triggering one through the admin
//! API when configured, and making it readable at a local path.

use std::path::Path;
#[cfg(feature = "s3")]
use std::time::SystemTime;

use super::folder::{self, FolderEntry, FolderSource};
use super::trigger::{through_api, Fresh};
use super::{check_unusable, ssh, Note, Older, Picked, SourceError, Unusable};
#[cfg(feature = "s3")]
use super::{s3, OlderAt};
use crate::config::SourceConfig;

/// Finds the newest complete backup of a site, triggering one through the admin API first
/// when configured. `Ok(None)`: the source holds no complete backup (yet). Downloads (S3) go to
/// `$TMPDIR`; see [`fetch_newest_in`].
pub fn fetch_newest(cfg: &SourceConfig, note: Note<'_>) -> Result<Option<Picked>, SourceError> {
    fetch_newest_in(cfg, None, note)
}

/// [`fetch_newest`], downloading from a bucket into `scratch` (default `$TMPDIR`).
pub fn fetch_newest_in(
    cfg: &SourceConfig,
    scratch: Option<&Path>,
    note: Note<'_>,
) -> Result<Option<Picked>, SourceError> {
    let picked = if cfg.s3.is_some() {
        fetch_s3(cfg, scratch, &mut *note)?
    } else if let Some(ssh_cfg) = &cfg.ssh {
        fetch_ssh(cfg, ssh_cfg, scratch, &mut *note)?
    } else {
        fetch_folder(cfg, &mut *note)?
    };
    if let Some(p) = &picked {
        if p.name.time_from_mtime {
            note(&format!(
                "{} has an admin-chosen name without a time; its time {} is the file's \
                 modification time",
                p.name.file_name,
                p.name.time.as_deref().unwrap_or("-")
            ));
        }
    }
    Ok(picked)
}

fn fetch_folder(cfg: &SourceConfig, note: Note<'_>) -> Result<Option<Picked>, SourceError> {
    let folder = FolderSource::new(cfg.folder_or_default(), cfg.settle);
    let selection = match &cfg.api {
        Some(api_cfg) => {
            let before: std::collections::BTreeSet<String> = folder
                .list()?
                .into_iter()
                .map(|e| e.name.file_name)
                .collect();
            through_api(api_cfg, note, || {
                let selection = folder.newest_complete()?;
                Ok(match &selection.newest {
                    Some(e) if !before.contains(&e.name.file_name) => Fresh::New(selection),
                    Some(e) => Fresh::Not(format!(
                        "{}: no new complete backup appeared (newest is still {}); see the \
                         backup logs in the forum's admin panel",
                        folder.dir().display(),
                        e.name.file_name
                    )),
                    None => Fresh::Not(format!(
                        "{}: the folder holds no complete backup; is this the folder of that \
                         forum?",
                        folder.dir().display()
                    )),
                })
            })?
        }
        None => folder.newest_complete()?,
    };
    let where_ = folder.dir().display().to_string();
    let newest_modified = selection.newest.as_ref().map(|e| e.modified);
    let unusable = check_unusable(&where_, newest_modified, selection.unusable)?;
    let older: Vec<Older> = selection.older.into_iter().map(Older::from).collect();
    Ok(selection.newest.map(|e| {
        let mut p = picked_from_folder(e, selection.passed_over, unusable);
        p.older = older;
        p
    }))
}

fn picked_from_folder(
    e: FolderEntry,
    passed: Vec<folder::Passed>,
    unusable: Vec<Unusable>,
) -> Picked {
    Picked {
        origin: e.path.display().to_string(),
        path: e.path,
        name: e.name,
        size: e.size,
        modified: Some(e.modified),
        passed_over: passed
            .into_iter()
            .map(|p| format!("{}: {}", p.path.display(), p.reason))
            .collect(),
        unusable,
        transfer: None,
        older: Vec::new(),
        _download: None,
    }
}

/// The newest complete backup in the folder on the forum host, copied over SFTP; with the admin
/// API, only a backup that appeared after triggering one counts.
fn fetch_ssh(
    cfg: &SourceConfig,
    ssh_cfg: &ssh::SshSourceConfig,
    scratch: Option<&Path>,
    note: Note<'_>,
) -> Result<Option<Picked>, SourceError> {
    let remote = ssh::SshSource::from_config(ssh_cfg, cfg.settle)?;
    let Some(api_cfg) = &cfg.api else {
        return remote.fetch_newest(scratch, note, None);
    };
    let before: std::collections::BTreeSet<String> = remote
        .scan()?
        .backups
        .into_iter()
        .map(|e| e.name.file_name)
        .collect();
    through_api(api_cfg, &mut *note, || {
        Ok(match remote.newest_complete()?.newest {
            Some(e) if !before.contains(&e.name.file_name) => Fresh::New(()),
            Some(e) => Fresh::Not(format!(
                "{}: no new complete backup appeared (newest is still {})",
                remote.describe(),
                e.name.file_name
            )),
            None => Fresh::Not(format!(
                "{}: the folder holds no complete backup",
                remote.describe()
            )),
        })
    })?;
    remote.fetch_newest(scratch, note, Some(&before))
}

/// The newest complete backup in the S3 bucket, downloaded; with the admin API, only a backup
/// that appeared after triggering one counts.
#[cfg(feature = "s3")]
fn fetch_s3(
    cfg: &SourceConfig,
    scratch: Option<&Path>,
    note: Note<'_>,
) -> Result<Option<Picked>, SourceError> {
    let Some(s3_cfg) = &cfg.s3 else {
        return Ok(None);
    };
    let bucket = s3::S3Source::from_config(s3_cfg, cfg.settle)?;
    let mut selection = match &cfg.api {
        Some(api_cfg) => {
            let before: std::collections::BTreeSet<String> =
                bucket.list()?.into_iter().map(|o| o.key).collect();
            through_api(api_cfg, note, || {
                let selection = bucket.newest_complete()?;
                Ok(match &selection.newest {
                    Some(o) if !before.contains(&o.key) => Fresh::New(selection),
                    Some(o) => Fresh::Not(format!(
                        "{}: no new complete backup appeared in the bucket (newest is still {}); \
                         see the backup logs in the forum's admin panel",
                        bucket.describe(),
                        o.name.file_name
                    )),
                    None => Fresh::Not(format!(
                        "{}: the bucket holds no complete backup; is this the bucket and prefix \
                         of that forum?",
                        bucket.describe()
                    )),
                })
            })?
        }
        None => bucket.newest_complete()?,
    };
    // S3 always sends Last-Modified; without it nothing counts as newer than the backup.
    let newest_modified = selection
        .newest
        .as_ref()
        .map(|o| o.modified.unwrap_or_else(SystemTime::now));
    let unusable = check_unusable(
        &bucket.describe(),
        newest_modified,
        std::mem::take(&mut selection.unusable),
    )?;
    let Some(obj) = selection.newest.take() else {
        return Ok(None);
    };
    let older = std::mem::take(&mut selection.older)
        .into_iter()
        .map(|o| Older {
            origin: bucket.origin(&o),
            name: o.name.clone(),
            size: o.size,
            modified: o.modified,
            at: OlderAt::S3(o),
        })
        .collect();
    let download = bucket.download(&obj, scratch)?;
    Ok(Some(Picked {
        older,
        path: download.to_path_buf(),
        origin: bucket.origin(&obj),
        name: obj.name,
        size: obj.size,
        modified: obj.modified,
        passed_over: selection.passed_over,
        unusable,
        transfer: None,
        _download: Some(download),
    }))
}

/// Without the `s3` feature the bucket cannot be read: say how to get a build that can.
#[cfg(not(feature = "s3"))]
fn fetch_s3(
    _cfg: &SourceConfig,
    _scratch: Option<&Path>,
    _note: Note<'_>,
) -> Result<Option<Picked>, SourceError> {
    Err(SourceError::Unsupported(
        "source.s3: this dvault was built without S3 support; build it with \
         `cargo build --release --features s3`"
            .into(),
    ))
}
