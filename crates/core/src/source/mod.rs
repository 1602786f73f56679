//! Sources of Discourse backups: the local backups folder, Discourse's S3 backup bucket, and the
//! admin API that makes a fresh backup first (the API cannot hand the file out: Discourse
//! e-mails a download token, so the file is always read from the folder or the bucket).
//!
//! A source only reads: no file in the backups folder or bucket is ever changed or deleted.

pub mod api;
pub mod folder;

use std::path::PathBuf;

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
/// when configured. `Ok(None)`: the source holds no complete backup (yet).
pub fn fetch_newest(cfg: &SourceConfig, note: Note<'_>) -> Result<Option<Picked>, SourceError> {
    if cfg.s3.is_some() {
        return fetch_s3(cfg, note);
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
        passed_over: passed
            .into_iter()
            .map(|p| format!("{}: {}", p.path.display(), p.reason))
            .collect(),
        _download: None,
    }
}

/// The S3 backup-bucket source is configured but not written yet: say so plainly instead of
/// pretending (see docs/operations.md for the workaround, syncing the bucket to a folder).
fn fetch_s3(_cfg: &SourceConfig, _note: Note<'_>) -> Result<Option<Picked>, SourceError> {
    Err(SourceError::Unsupported(
        "source.s3: reading Discourse's S3 backup bucket is not implemented yet; sync the bucket \
         to a local folder (e.g. `rclone copy`) and use source.folder"
            .into(),
    ))
}
