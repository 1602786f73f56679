//! Sources of Discourse backups: the local backups folder, Discourse's S3 backup bucket, and the
//! admin API that makes a fresh backup first (the API cannot hand the file out: Discourse
//! e-mails a download token, so the file is always read from the folder or the bucket).
//!
//! A source only reads: no file in the backups folder or bucket is ever changed or deleted.

pub mod api;
pub mod folder;
#[cfg(feature = "s3")]
pub mod s3;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::SourceConfig;

pub use folder::{parse_backup_name, BackupKind, BackupName, FolderEntry, FolderSource};

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
    /// The source kind is not available in this build or config.
    #[error("{0}")]
    Unsupported(String),
    /// The S3 bucket refused or failed (names the endpoint, bucket and key).
    #[error("{0}")]
    S3(String),
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
    /// Keeps a temporary download alive while the file is used.
    pub _download: Option<tempfile::TempPath>,
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
    if cfg.s3.is_some() {
        return fetch_s3(cfg, scratch, note);
    }
    let folder = FolderSource::new(cfg.folder_or_default(), cfg.settle);
    if let Some(api_cfg) = &cfg.api {
        let before: std::collections::BTreeSet<String> = folder
            .list()?
            .into_iter()
            .map(|e| e.name.file_name)
            .collect();
        let client = api::ApiClient::from_config(api_cfg)?;
        client.trigger_and_wait(api_cfg.with_uploads, note)?;
        let selection = folder.newest_complete()?;
        return match selection.newest {
            Some(e) if !before.contains(&e.name.file_name) => {
                Ok(Some(picked_from_folder(e, selection.passed_over)))
            }
            Some(e) => Err(SourceError::NothingFound(format!(
                "{}: Discourse reported the backup finished, but no new complete backup appeared \
                 (newest is still {}); see the backup logs in the forum's admin panel",
                folder.dir().display(),
                e.name.file_name
            ))),
            None => Err(SourceError::NothingFound(format!(
                "{}: Discourse reported the backup finished, but the folder holds no complete \
                 backup; is this the folder of that forum?",
                folder.dir().display()
            ))),
        };
    }
    let selection = folder.newest_complete()?;
    Ok(selection
        .newest
        .map(|e| picked_from_folder(e, selection.passed_over)))
}

fn picked_from_folder(e: FolderEntry, passed: Vec<folder::Passed>) -> Picked {
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
        _download: None,
    }
}

/// Where a site's backups come from, for messages (`/var/discourse/...`, `s3://bucket/default/`).
pub fn describe(cfg: &SourceConfig) -> String {
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
            let client = api::ApiClient::from_config(api_cfg)?;
            client.trigger_and_wait(api_cfg.with_uploads, note)?;
            let selection = bucket.newest_complete()?;
            match &selection.newest {
                Some(o) if !before.contains(&o.key) => selection,
                Some(o) => {
                    return Err(SourceError::NothingFound(format!(
                        "{}: Discourse reported the backup finished, but no new complete backup \
                         appeared in the bucket (newest is still {}); see the backup logs in the \
                         forum's admin panel",
                        bucket.describe(),
                        o.name.file_name
                    )))
                }
                None => {
                    return Err(SourceError::NothingFound(format!(
                        "{}: Discourse reported the backup finished, but the bucket holds no \
                         complete backup; is this the bucket and prefix of that forum?",
                        bucket.describe()
                    )))
                }
            }
        }
        None => bucket.newest_complete()?,
    };
    let Some(obj) = selection.newest.take() else {
        return Ok(None);
    };
    let download = bucket.download(&obj, scratch)?;
    Ok(Some(Picked {
        path: download.to_path_buf(),
        origin: bucket.origin(&obj),
        name: obj.name,
        size: obj.size,
        modified: obj.modified,
        passed_over: selection.passed_over,
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
