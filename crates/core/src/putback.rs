//! Putting a stored backup back where Discourse's own restore finds it: a backups folder (or a
//! Discourse S3 backup bucket), under its original name, bit-exact, never half-written.
//!
//! Facts from Discourse's source this follows:
//! - Local backups are the files directly in `public/backups/<db>/`
//!   (`lib/backup_restore/local_backup_store.rb`, `base_directory`; on the standard Docker
//!   install `/var/discourse/shared/standalone/backups/default`), listed by a glob on their
//!   extension and sorted and pruned by modification time (`BackupStore#files`,
//!   `delete_old` with `maximum_backups`). So the file gets the backup's own time as its mtime:
//!   with today's mtime it would count as the newest backup and the next scheduled backup would
//!   delete a real newer one. It gets the folder's owner and group, since the container's
//!   `discourse` user must read it.
//! - On S3 the backups are the objects under `<bucket>[/<folder>]/<db>/`
//!   (`lib/backup_restore/s3_backup_store.rb`); their Last-Modified is set by the store, so a
//!   put-back object counts as the newest there (said in the outcome's notes).
//! - The restore refuses a backup whose migration (`-v<14 digits>` in the name, or `meta.json`)
//!   is newer than the site's schema, and a name without one
//!   (`lib/backup_restore/meta_data_handler.rb`); so does [`put_back`] when told the site's
//!   migration.
//! - The restore itself is `discourse enable_restore` then `discourse restore NAME`
//!   (`script/discourse`), inside the container (`./launcher enter app`).
//!
//! Atomicity: the file is restored and checked under a hidden staging name in the same folder
//! (Discourse's listing only takes backup extensions, so it never sees it), then made visible
//! with `link(2)`, which fails rather than replace an existing file, and the staging name is
//! removed. A crash leaves at most a staging file, removed by the next put-back.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::repo::{Location, Repo, RepoError, SnapshotInfo};

/// Name prefix of the staging files in the target folder.
const STAGING_PREFIX: &str = ".dvault-putback-";

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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PutBackError + '_ {
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

/// Refuses a backup newer than the site's schema; notes a name Discourse cannot restore.
fn check_migration(
    info: &SnapshotInfo,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Result<(), PutBackError> {
    let name = &info.meta.file_name;
    let Some(backup) = migration_in_name(name) else {
        notes.push(format!(
            "{name} has no `-v<14-digit migration>` in its name: Discourse's restore refuses such \
             a name (\"Migration version is missing from the filename\"); rename it to the \
             site's pattern before restoring"
        ));
        return Ok(());
    };
    if let Some(site) = &opts.site_migration {
        if !(site.len() == 14 && site.bytes().all(|b| b.is_ascii_digit())) {
            return Err(PutBackError::Target(format!(
                "--site-migration {site:?}: expected the site's 14-digit schema version \
                 (`SELECT max(version) FROM schema_migrations`)"
            )));
        }
        // Equal-length digit strings compare as numbers.
        if backup.as_str() > site.as_str() {
            return Err(PutBackError::TooNew {
                name: name.clone(),
                backup,
                site: site.clone(),
            });
        }
    }
    Ok(())
}

/// The 14 digits Discourse's restore reads from a name: the first `-v` followed by exactly 14
/// digits (`/-v(\d{14})/`), or, in names with a dashed Discourse version, the 14 digits ending
/// the `-v...-DIGITS` part.
pub fn migration_in_name(name: &str) -> Option<String> {
    let digits14 = |s: &str| {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        (d.len() >= 14).then(|| d[..14].to_string())
    };
    let mut rest = name;
    while let Some(i) = rest.find("-v") {
        if let Some(d) = digits14(&rest[i + 2..]) {
            return Some(d);
        }
        rest = &rest[i + 2..];
    }
    // `-v2026-9-0-latest-20260923080644.tar`: the last dash-separated 14-digit part.
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit('-').find_map(|part| {
        (part.len() == 14 && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.to_string())
    })
}

/// Restores into a staging name in `folder`, gives it the backup's time and the folder's owner,
/// then links it under the final name (never replacing a file).
fn into_folder(
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

#[cfg(feature = "s3")]
fn into_s3(
    repo: &Repo,
    info: &SnapshotInfo,
    target: &Target,
    opts: &Options,
) -> Result<String, PutBackError> {
    use std::io::Read;
    let Target::S3 {
        endpoint,
        bucket,
        prefix,
    } = target
    else {
        unreachable!("into_s3 takes S3 targets")
    };
    let credentials = crate::s3::Credentials::load(opts.s3_credentials_file.as_deref())
        .map_err(PutBackError::S3)?;
    let s3 = crate::s3::Target {
        endpoint: Some(endpoint.clone()),
        bucket: bucket.clone(),
        prefix: prefix.clone(),
        region: crate::s3::region_from_env(),
        credentials,
    };
    let op = crate::s3::blocking_operator(&s3).map_err(PutBackError::S3)?;
    let name = &info.meta.file_name;
    let fail = |what: &str, e: opendal::Error| {
        PutBackError::S3(crate::s3::explain(&s3, what, &e.to_string()))
    };
    match op.stat(name) {
        Ok(_) => {
            return Err(PutBackError::Exists(format!(
                "s3://{bucket}/{}",
                key_of(prefix, name)
            )))
        }
        Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
        Err(e) => return Err(fail("cannot look for an existing backup", e)),
    }
    let scratch = opts.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(&scratch)
        .map_err(io(&scratch))?;
    let file = dir.path().join(name);
    repo.restore_file(&info.id, &file)?;
    // One PUT (or multipart upload) per object: S3 shows the object only once it is complete.
    // `if_not_exists`: the store refuses the upload if another writer made the key meanwhile.
    let write_options = opendal::options::WriteOptions {
        if_not_exists: true,
        chunk: Some(16 << 20),
        ..Default::default()
    };
    let mut writer = op
        .writer_options(name, write_options)
        .map_err(|e| fail("cannot start the upload", e))?;
    let mut f = fs::File::open(&file).map_err(io(&file))?;
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(&file))?;
        if n == 0 {
            break;
        }
        writer
            .write(buf[..n].to_vec())
            .map_err(|e| fail("upload failed", e))?;
    }
    writer.close().map_err(|e| fail("upload failed", e))?;
    Ok(format!("s3://{bucket}/{}", key_of(prefix, name)))
}

#[cfg(not(feature = "s3"))]
fn into_s3(
    _: &Repo,
    _: &SnapshotInfo,
    target: &Target,
    _: &Options,
) -> Result<String, PutBackError> {
    Err(PutBackError::Target(format!(
        "{}: S3 needs dvault built with the `s3` feature",
        target.describe()
    )))
}

#[cfg(feature = "s3")]
fn key_of(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_is_read_as_discourse_reads_it() {
        for (name, want) in [
            (
                "forum-2024-01-02-030405-v20231220123456.tar.gz",
                Some("20231220123456"),
            ),
            (
                "forum-2024-01-02-030405-v20231220123456.sql.gz",
                Some("20231220123456"),
            ),
            (
                "my-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar",
                Some("20260923080644"),
            ),
            (
                "-2024-01-02-030405-v20231220123456.tar.gz",
                Some("20231220123456"),
            ),
            ("chosen-by-admin.tar.gz", None),
        ] {
            assert_eq!(migration_in_name(name).as_deref(), want, "{name}");
        }
    }
}
