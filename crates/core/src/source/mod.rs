//! Sources of Discourse backups: the local backups folder, the same folder on another host over
//! SFTP ([`ssh`], the pull topology), Discourse's S3 backup bucket, and the admin API that makes
//! a fresh backup first (the API cannot hand the file out: Discourse e-mails a download token,
//! so the file is always read from the folder or the bucket).
//!
//! A source only reads: no file in the backups folder or bucket is ever changed or deleted.

pub mod api;
pub mod folder;
#[cfg(feature = "s3")]
pub mod s3;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{ApiConfig, SourceConfig};

pub use crate::discourse::{BackupName, Format};
pub use folder::{FolderEntry, FolderSource};

/// Errors of a source; each names the folder, file, URL or key concerned.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading the folder or a file failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The admin API refused or failed.
    #[error("{0}")]
    Api(#[from] api::ApiError),
    /// No backup file matched.
    #[error("{0}")]
    NothingFound(String),
    /// The newest file named like a backup cannot be used (see [`Unusable`]).
    #[error("{message}")]
    Unusable {
        /// Names the file and why, and the newest usable backup if any.
        message: String,
        /// How many files named like backups cannot be used (for the metric).
        files: usize,
    },
    /// The source kind is not available in this build or config.
    #[error("{0}")]
    Unsupported(String),
    /// The S3 bucket refused or failed (names the endpoint, bucket and key).
    #[error("{0}")]
    S3(String),
    /// The SSH connection or the SFTP copy failed (names the account, host and file).
    #[error("{0}")]
    Ssh(String),
}

/// A file in the backups folder or bucket that is named like a Discourse backup (an extension
/// Discourse lists) but whose name no Discourse writes, so dvault cannot use it. Never passed
/// over silently: the run warns about each, counts them in a metric, and fails when one is the
/// newest file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unusable {
    /// The path, or `s3://bucket/key`.
    pub origin: String,
    /// Why it cannot be used.
    pub reason: String,
    /// When it was last modified.
    #[serde(skip)]
    pub modified: Option<SystemTime>,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is named like a Discourse backup but cannot be used: {}",
            self.origin, self.reason
        )
    }
}

/// A backup picked from a source, readable at a local path.
#[derive(Debug)]
pub struct Picked {
    /// A readable local path (the file in the backups folder itself, or a temporary download).
    pub path: PathBuf,
    /// The parsed file name.
    pub name: BackupName,
    /// Size in bytes.
    pub size: u64,
    /// When the source last modified it (for `source.max_age`; a download's own mtime is
    /// the download time).
    pub modified: Option<SystemTime>,
    /// Where it came from, for the snapshot (`/var/discourse/.../x.tar.gz`, `s3://b/default/x`).
    pub origin: String,
    /// Newer files passed over as incomplete, for the log.
    pub passed_over: Vec<String>,
    /// Older files named like backups that cannot be used, for warnings.
    pub unusable: Vec<Unusable>,
    /// Figures of the copy when the file came over SSH (its SHA-256 was computed while copying).
    pub transfer: Option<ssh::Transfer>,
    /// The older complete backups of the source, oldest first, not fetched yet: `dvault run`
    /// stores those it has not stored (see [`fetch_older`]).
    pub older: Vec<Older>,
    /// Keeps a temporary download alive while the file is used.
    pub _download: Option<tempfile::TempPath>,
}

/// An older complete backup of a source, listed but not fetched.
#[derive(Debug, Clone)]
pub struct Older {
    /// The parsed file name.
    pub name: BackupName,
    /// Size in bytes.
    pub size: u64,
    /// Where it is (`/var/discourse/.../x.tar.gz`, `s3://b/default/x`).
    pub origin: String,
    modified: Option<SystemTime>,
    at: OlderAt,
}

impl From<FolderEntry> for Older {
    /// An older backup of the local folder.
    fn from(e: FolderEntry) -> Self {
        Older {
            origin: e.path.display().to_string(),
            name: e.name,
            size: e.size,
            modified: Some(e.modified),
            at: OlderAt::Folder(e.path),
        }
    }
}

#[derive(Debug, Clone)]
enum OlderAt {
    Folder(PathBuf),
    #[cfg(feature = "s3")]
    S3(s3::S3Object),
}

/// Makes an older backup readable at a local path: the file itself, or a download from the
/// bucket into `scratch` (default `$TMPDIR`).
#[cfg_attr(not(feature = "s3"), allow(unused_variables))]
pub fn fetch_older(
    cfg: &SourceConfig,
    scratch: Option<&Path>,
    older: &Older,
) -> Result<Picked, SourceError> {
    let picked = |path: PathBuf, download: Option<tempfile::TempPath>| Picked {
        path,
        name: older.name.clone(),
        size: older.size,
        modified: older.modified,
        origin: older.origin.clone(),
        passed_over: Vec::new(),
        unusable: Vec::new(),
        older: Vec::new(),
        transfer: None,
        _download: download,
    };
    match &older.at {
        OlderAt::Folder(p) => Ok(picked(p.clone(), None)),
        #[cfg(feature = "s3")]
        OlderAt::S3(obj) => {
            let s3_cfg = cfg.s3.as_ref().ok_or_else(|| {
                SourceError::Unsupported("source.s3: the source is no longer a bucket".into())
            })?;
            let bucket = s3::S3Source::from_config(s3_cfg, cfg.settle)?;
            let download = bucket.download(obj, scratch)?;
            Ok(picked(download.to_path_buf(), Some(download)))
        }
    }
}

/// Something to say while fetching (the run loop logs it).
pub type Note<'a> = &'a mut dyn FnMut(&str);

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

/// Whether the backup Discourse was asked for (or was already making) has appeared.
enum Fresh<T> {
    /// It has: the selection holding it.
    New(T),
    /// It has not: why, for the error.
    Not(String),
}

/// The admin-API flow, as Discourse answers (see [`api`]): when an operation already runs (its
/// own scheduled backup, or a restore), wait for it to end and take the backup it wrote; when it
/// wrote none, or nothing ran, start a backup and wait for it. `fresh` says whether a complete
/// backup appeared that was not there before.
fn through_api<T>(
    api_cfg: &ApiConfig,
    note: Note<'_>,
    mut fresh: impl FnMut() -> Result<Fresh<T>, SourceError>,
) -> Result<T, SourceError> {
    let client = api::ApiClient::from_config(api_cfg)?;
    if client.wait_until_idle(&mut *note)? {
        match fresh()? {
            Fresh::New(t) => {
                note("took the backup that the forum's own operation wrote");
                return Ok(t);
            }
            Fresh::Not(_) => note(
                "the operation that was running wrote no new backup (a restore, or a backup that \
                 failed); asking the forum for one",
            ),
        }
    }
    // Each round either ends with a backup or waits for an operation that ran in between; a
    // forum that is busy round after round (or refuses while idle) ends the site with an error.
    let mut last_refusal = String::new();
    for _ in 0..3 {
        match client.start_backup(api_cfg.with_uploads)? {
            api::Start::Started => {
                note("asked the forum to make a backup; waiting for it to finish");
                client.wait_for_backup(&mut *note)?;
                return match fresh()? {
                    Fresh::New(t) => Ok(t),
                    Fresh::Not(why) => Err(SourceError::NothingFound(format!(
                        "Discourse reported the backup finished, but {why}"
                    ))),
                };
            }
            api::Start::Busy => {
                note(
                    "the forum did not start a backup: status.json says an operation is running; \
                     waiting for it",
                );
                client.wait_until_idle(&mut *note)?;
                if let Fresh::New(t) = fresh()? {
                    note("took the backup that the forum's own operation wrote");
                    return Ok(t);
                }
            }
            // Refused although nothing runs: the operation may have ended in between, so the
            // next round asks again; the forum's words are kept for the error.
            api::Start::Refused(why) => last_refusal = why,
        }
    }
    Err(SourceError::Api(api::ApiError::Unexpected {
        url: client.create_url(),
        message: if last_refusal.is_empty() {
            "the forum stayed busy with other backups or restores through three attempts".into()
        } else {
            format!(
                "the forum refused to start a backup although no operation is running: \
                 {last_refusal}"
            )
        },
    }))
}

/// Fails when a file named like a backup that cannot be used is newer than the newest usable
/// backup (or there is none): that file is most likely the forum's newest backup, and storing an
/// older one every day while saying nothing is what must never happen. Otherwise hands the
/// unusable files back for warnings.
fn check_unusable(
    where_: &str,
    newest: Option<SystemTime>,
    unusable: Vec<Unusable>,
) -> Result<Vec<Unusable>, SourceError> {
    let newer = unusable
        .iter()
        .filter(|u| match (u.modified, newest) {
            (Some(m), Some(n)) => m > n,
            (_, None) => true,
            (None, Some(_)) => false,
        })
        .max_by_key(|u| u.modified);
    if let Some(u) = newer {
        let usable = match newest {
            Some(_) => "an older usable backup exists, but storing it would miss this one",
            None => "no usable backup exists",
        };
        return Err(SourceError::Unusable {
            message: format!(
                "{where_}: the newest file {u}; {usable}. Rename it to the name Discourse gave \
                 it (<title>-<YYYY-MM-DD-HHMMSS>-v<version>-<migration>.tar or \
                 ...-v<migration>.tar.gz/.sql.gz) or move it out of the backups folder"
            ),
            files: unusable.len(),
        });
    }
    Ok(unusable)
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

/// Where a site's backups come from, for messages (`/var/discourse/...`, `s3://bucket/default/`).
pub fn describe(cfg: &SourceConfig) -> String {
    if let Some(loc) = cfg.ssh.as_ref().and_then(|s| s.location().ok()) {
        return format!("sftp://{}{}", loc.describe(), loc.folder);
    }
    match &cfg.s3 {
        Some(s3) => format!(
            "s3://{}/{} at {}",
            s3.bucket,
            s3.prefix.trim_start_matches('/'),
            s3.endpoint.as_deref().unwrap_or("AWS S3")
        ),
        None => cfg.folder_or_default().display().to_string(),
    }
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
