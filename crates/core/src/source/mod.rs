//! Sources of Discourse backups: the local backups folder, the same folder on another host over
//! SFTP ([`ssh`], the pull topology), Discourse's S3 backup bucket, and the admin API that makes
//! a fresh backup first (the API cannot hand the file out: Discourse e-mails a download token,
//! so the file is always read from the folder or the bucket).
//!
//! A source only reads: no file in the backups folder or bucket is ever changed or deleted.

pub mod api;
pub mod folder;
mod newest;
#[cfg(feature = "s3")]
pub mod s3;
mod settle;
pub mod ssh;
mod trigger;
mod unusable;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::SourceConfig;

pub use crate::discourse::{BackupName, Format};
pub use folder::{FolderEntry, FolderSource};
pub use newest::{fetch_newest, fetch_newest_in};
use unusable::check_unusable;
pub use unusable::Unusable;

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
