//! Putting a stored backup back where Discourse's own restore finds it: a backups folder
//! (`folder.rs`) or a Discourse S3 backup bucket (`s3.rs`), under its original name, bit-exact,
//! never half-written; refused when the site's restore would refuse it (`migration.rs`).
//!
//! The restore itself is `discourse enable_restore` then `discourse restore NAME`
//! (`script/discourse`), inside the container (`./launcher enter app`): [`restore_steps`] says
//! so, and [`after_drill`] has a staging forum restore it through its admin API.

mod folder;
mod migration;
mod s3;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::repo::{Location, Repo, RepoError, SnapshotInfo};
use folder::into_folder;
use migration::check_migration;
pub use migration::migration_in_name;
use s3::into_s3;

/// Name prefix of the staging files in the target folder.
pub(super) const STAGING_PREFIX: &str = ".dvault-putback-";

/// Where a backup is put back.
#[derive(Debug, Clone)]
pub enum Target {
    /// A Discourse backups folder on this machine.
    Folder(PathBuf),
    /// A Discourse S3 backup bucket and the prefix of the site's backups (`folder/db`).
    S3 {
        /// `http(s)://host:port`.
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Key prefix (may be empty).
        prefix: String,
    },
}

impl Target {
    /// A folder path, or `s3:http(s)://host:port/bucket[/prefix]` as for repositories.
    pub fn parse(s: &str) -> Result<Self, PutBackError> {
        match Location::parse(s).map_err(|e| PutBackError::Target(e.to_string()))? {
            Location::Local(p) => Ok(Self::Folder(p)),
            Location::S3 {
                endpoint,
                bucket,
                prefix,
            } => Ok(Self::S3 {
                endpoint,
                bucket,
                prefix,
            }),
            Location::Rest(_) => Err(PutBackError::Target(format!(
                "{s}: Discourse reads backups from a folder or an S3 bucket, not a REST server"
            ))),
        }
    }

    /// For messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Folder(p) => p.display().to_string(),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } => format!("{endpoint} bucket {bucket} prefix {prefix}/"),
        }
    }
}

/// What [`put_back`] did.
#[derive(Debug, Clone, Serialize)]
pub struct PutBack {
    /// The snapshot it came from.
    pub snapshot: SnapshotInfo,
    /// Where the file is now (a path, or `s3://bucket/key`).
    pub placed_at: String,
    /// The file name Discourse's restore takes.
    pub name: String,
    /// The modification time given to the file (RFC 3339), when it could be set.
    pub mtime: Option<String>,
    /// Things the admin should know (S3 time stamps, a name Discourse cannot restore).
    pub notes: Vec<String>,
}

/// Why a put-back was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PutBackError {
    /// The target is not usable.
    #[error("--to-discourse: {0}")]
    Target(String),
    /// A file of that name is there already.
    #[error("{0}: a file of this name exists already; nothing was written (Discourse's backups are never replaced)")]
    Exists(String),
    /// The backup's schema is newer than the site's.
    #[error(
        "{name}: its migration {backup} is newer than the site's schema {site}; Discourse's \
         restore refuses it (\"You're trying to restore a more recent version of the schema\", \
         lib/backup_restore/meta_data_handler.rb): update the forum first"
    )]
    TooNew {
        /// The backup's file name.
        name: String,
        /// Its migration.
        backup: String,
        /// The site's.
        site: String,
    },
    /// Restoring from the repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The S3 upload failed.
    #[error("{0}")]
    S3(String),
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PutBackError + '_ {
    move |source| PutBackError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Options of a put-back.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The site's current migration (14 digits): refuse a backup whose migration is newer.
    pub site_migration: Option<String>,
    /// S3 keys from this file (else the environment), for an S3 target.
    pub s3_credentials_file: Option<PathBuf>,
    /// A local folder for the rebuilt file before an S3 upload.
    pub scratch: Option<PathBuf>,
}

/// Rebuilds snapshot `id` (SHA-256 checked) and places it in `target` under its original name.
pub fn put_back(
    repo: &Repo,
    id: &str,
    target: &Target,
    opts: &Options,
) -> Result<PutBack, PutBackError> {
    let (started, scope) = (std::time::Instant::now(), crate::audit::Scope::enter());
    let r = put_back_unaudited(repo, id, target, opts);
    drop(scope);
    crate::audit::put_back(repo, id, &target.describe(), &r, started);
    r
}

fn put_back_unaudited(
    repo: &Repo,
    id: &str,
    target: &Target,
    opts: &Options,
) -> Result<PutBack, PutBackError> {
    let info = repo.find(id)?;
    let name = info.meta.file_name.clone();
    let mut notes = Vec::new();
    check_migration(&info, opts, &mut notes)?;
    match target {
        Target::Folder(folder) => {
            let (placed, mtime) = into_folder(repo, &info, folder)?;
            Ok(PutBack {
                snapshot: info,
                placed_at: placed.display().to_string(),
                name,
                mtime,
                notes,
            })
        }
        Target::S3 { .. } => {
            let placed = into_s3(repo, &info, target, opts)?;
            notes.push(
                "on S3 the object's Last-Modified is the upload time: Discourse now counts this \
                 backup as its newest, and its maximum_backups pruning may delete an older one"
                    .into(),
            );
            Ok(PutBack {
                snapshot: info,
                placed_at: placed,
                name,
                mtime: None,
                notes,
            })
        }
    }
}

/// The drill's put-back (`[sites.NAME.drill] put_back`): the drilled snapshot into the staging
/// forum's backups; a file already there under that name (a drill of the same backup before)
/// is left as it is. With `restore` (`put_back_restore`), the staging forum then restores it
/// through its admin API: a failed or unknown outcome fails the drill step.
pub fn after_drill(
    repo: &Repo,
    snapshot: &str,
    target: &str,
    restore: Option<&crate::config::RestoreApiConfig>,
    scratch: &Option<PathBuf>,
) -> anyhow::Result<String> {
    use anyhow::{anyhow, bail, Context};
    let target = Target::parse(target)?;
    let opts = Options {
        scratch: scratch.clone(),
        ..Default::default()
    };
    let (name, mut line) = match put_back(repo, snapshot, &target, &opts) {
        Ok(done) => {
            let line = format!(
                "put {} back into {} for Discourse's restore",
                done.name,
                target.describe()
            );
            (done.name, line)
        }
        Err(PutBackError::Exists(at)) => (
            repo.find(snapshot)?.meta.file_name,
            format!("{at} is there already, left as it is"),
        ),
        Err(e) => {
            return Err(anyhow!(e).context(format!("putting it back into {}", target.describe())))
        }
    };
    let Some(cfg) = restore else {
        return Ok(line);
    };
    let mut api = crate::discourse::restore_api::RestoreApi::from_config(&cfg.api())?;
    let done = api
        .restore(&name, &mut |n| tracing::info!("{n}"))
        .with_context(|| format!("{line}; the staging forum's restore"))?;
    line = format!("{line}; {}", done.summary());
    match done.outcome {
        crate::discourse::restore_api::Outcome::Succeeded => Ok(line),
        _ => bail!("{line}; log: {}", done.log_tail.join(" | ")),
    }
}

/// Discourse's own steps to restore `name` once it is in the backups folder.
pub fn restore_steps(name: &str, s3: bool) -> Vec<String> {
    let location = if s3 { " --location s3" } else { "" };
    vec![
        "cd /var/discourse && ./launcher enter app".into(),
        "discourse enable_restore".into(),
        format!("discourse restore {name}{location}"),
        "discourse disable_restore".into(),
    ]
}
