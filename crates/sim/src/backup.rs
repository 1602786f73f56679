//! A day's backups with Discourse's file names, by generation:
//!
//! | generation | format | file |
//! | --- | --- | --- |
//! | older | A | `<title>-<YYYY-MM-DD-HHMMSS>-v<migration>.tar.gz` (`older.rs`) |
//! | older | SQL | `<title>-<YYYY-MM-DD-HHMMSS>-v<migration>.sql.gz`: the plain dump itself |
//! | current | B | `<title>-<YYYY-MM-DD-HHMMSS>-v<version, dots as dashes>-<migration>.tar` (`current.rs`), with or without uploads |
//!
//! Names: `lib/backup_restore/creator.rb` (`initialize_state`): `"#{title}-#{timestamp}"` then
//! `-v` (`VERSION_PREFIX`) and, in the current generation,
//! `Discourse::VERSION::STRING.tr(".", "-")` and `-` before the migration
//! (`current_database_version`); older Discourse wrote `-v<migration>` (`current_version`).
//! The title is the site title parameterized (`--site` here).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use rand::Rng;

use crate::copy::civil_from_days;
use crate::forum::{rng_for, set_mtime, Forum};
use crate::{current, dump, older};

/// Numeric owner of Discourse's files in the standard container (user `discourse`, made by
/// discourse_docker's `useradd discourse -m -U`; 1000 is an assumption: the image's first user).
pub const DISCOURSE_UID: u32 = 1000;
/// Numeric group of what the backup process itself writes (its own group, `discourse`).
pub const DISCOURSE_GID: u32 = 1000;
/// Numeric group of the local upload files (`www-data`; an assumption, not in Discourse's
/// own source).
pub const UPLOADS_GID: u32 = 33;

/// A backup format Discourse writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Format {
    /// Older generation, `.tar.gz`: GNU gzip of a GNU tar holding `dump.sql.gz` and the uploads.
    A,
    /// Older generation, `.sql.gz`: pg_dump's gzip-compressed plain dump alone (no uploads).
    Sql,
    /// Current generation, `.tar`: a directory-format dump `db/` and, unless the backup is
    /// database-only (see [`crate::Options::with_uploads`]), the uploads.
    B,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "a" | "tar.gz" => Ok(Format::A),
            "sql" | "sql.gz" => Ok(Format::Sql),
            "b" | "tar" => Ok(Format::B),
            other => bail!("unknown backup format {other:?} (expected a, sql or b)"),
        }
    }
}

/// A generation of Discourse's backup writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Generation {
    /// About 2016 to 2025: `.tar.gz` made by GNU tar and gzip, `.sql.gz` without uploads,
    /// `-v<migration>` names.
    Older,
    /// Today's Discourse: `.tar` written by its own archive writer around a directory-format
    /// dump, also for database-only backups; `-v<dashed version>-<migration>` names.
    Current,
}

impl Generation {
    /// The formats this generation writes.
    pub fn formats(self) -> &'static [Format] {
        match self {
            Generation::Older => &[Format::A, Format::Sql],
            Generation::Current => &[Format::B],
        }
    }

    /// The generation that writes `format`.
    pub fn of(format: Format) -> Generation {
        match format {
            Format::A | Format::Sql => Generation::Older,
            Format::B => Generation::Current,
        }
    }
}

impl std::str::FromStr for Generation {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Generation> {
        match s.to_ascii_lowercase().as_str() {
            "older" | "old" => Ok(Generation::Older),
            "current" | "new" => Ok(Generation::Current),
            other => bail!("unknown Discourse generation {other:?} (expected current or older)"),
        }
    }
}

/// One backup file written by the simulator.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackupFile {
    /// Simulated day (0 is the first).
    pub day: u32,
    /// Its format.
    pub format: Format,
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The simulated time it was made, `YYYY-MM-DD-HHMMSS` as in its name.
    pub timestamp: String,
    /// Whether it holds uploads (A always, SQL never, B unless database-only).
    pub with_uploads: bool,
}

/// Writes today's backups of `forum` into `out` in the given formats.
pub fn write_backups(forum: &Forum, out: &Path, formats: &[Format]) -> Result<Vec<BackupFile>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let opts = forum.options();
    let day = forum.day();
    // Discourse's default backup time is 03:30; the seconds vary with how long it took to start.
    let mut rng = rng_for(opts.seed, 99, day as u64);
    let at_secs = forum.midnight(day) / 1_000_000 + 3 * 3600 + 30 * 60 + rng.random_range(0..20);
    let stamp = stamp(at_secs);
    let migration = forum.migration().to_string();
    let base = format!("{}-{stamp}", opts.site);
    let tmp = forum.work_dir().join("tmp/backups/default").join(&stamp);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("clearing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut files = Vec::new();
    let wants = |f| formats.contains(&f);

    if wants(Format::A) || wants(Format::Sql) {
        let dump = tmp.join("dump.sql.gz");
        dump::plain_dump(forum, &dump, at_secs, day == 0)?;
        if wants(Format::Sql) {
            // Discourse moves the dump to the backups folder (`move_dump_backup`).
            let path = out.join(format!("{base}-v{migration}.sql.gz"));
            std::fs::copy(&dump, &path)
                .with_context(|| format!("copying the dump to {}", path.display()))?;
            set_mtime(&path, at_secs + 5)?;
            files.push(file(day, Format::Sql, path, &stamp, false)?);
        }
        if wants(Format::A) {
            let path = out.join(format!("{base}-v{migration}.tar.gz"));
            let work = tmp.join("a");
            std::fs::create_dir_all(&work)?;
            std::fs::rename(&dump, work.join("dump.sql.gz"))?;
            older::write(forum, &work, &path, at_secs)?;
            files.push(file(day, Format::A, path, &stamp, true)?);
        }
    }
    if wants(Format::B) {
        let work = tmp.join("b");
        std::fs::create_dir_all(&work)?;
        let db = work.join("db");
        dump::directory_dump(forum, &db, at_secs)?;
        let path = out.join(format!(
            "{base}-v{}-{migration}.tar",
            opts.discourse_version.replace('.', "-")
        ));
        let uploads = current::with_uploads(forum)?;
        current::write(forum, &db, &path, at_secs, uploads)?;
        set_mtime(&path, at_secs + 30)?;
        files.push(file(day, Format::B, path, &stamp, uploads)?);
    }
    std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    Ok(files)
}

fn file(
    day: u32,
    format: Format,
    path: PathBuf,
    stamp: &str,
    with_uploads: bool,
) -> Result<BackupFile> {
    let size = std::fs::metadata(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    Ok(BackupFile {
        day,
        format,
        path,
        size,
        timestamp: stamp.to_string(),
        with_uploads,
    })
}

/// `YYYY-MM-DD-HHMMSS` of a time in seconds since the epoch (`Time.now.strftime(
/// "%Y-%m-%d-%H%M%S")` in `creator.rb`).
pub(crate) fn stamp(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}-{:02}{:02}{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Gives every folder below `dir` the newest mtime among its contents, so folder times depend
/// on the simulated files only. Returns the newest time found.
pub(crate) fn settle_dir_times(dir: &Path) -> Result<i64> {
    let mut newest = 0i64;
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        let ft = e.file_type()?;
        let t = if ft.is_dir() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755))?;
            settle_dir_times(&e.path())?
        } else {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644))?;
            use std::os::unix::fs::MetadataExt;
            e.metadata()?.mtime()
        };
        newest = newest.max(t);
    }
    set_mtime(dir, newest)?;
    Ok(newest)
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("starting {what} ({:?})", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_look_like_discourse_file_names() {
        let secs = crate::copy::days_from_civil(2026, 1, 2) * 86_400 + 3 * 3600 + 30 * 60 + 7;
        assert_eq!(stamp(secs), "2026-01-02-033007");
    }

    #[test]
    fn formats_and_generations_parse() {
        assert_eq!("A".parse::<Format>().unwrap(), Format::A);
        assert_eq!("sql".parse::<Format>().unwrap(), Format::Sql);
        assert!("zip".parse::<Format>().is_err());
        assert_eq!(
            "current".parse::<Generation>().unwrap(),
            Generation::Current
        );
        assert_eq!(Generation::Older.formats(), &[Format::A, Format::Sql]);
        assert!(Generation::Current
            .formats()
            .iter()
            .all(|&f| Generation::of(f) == Generation::Current));
        assert!("newest".parse::<Generation>().is_err());
    }
}
