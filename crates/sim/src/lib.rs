//! The forum simulator: a realistic, changing Discourse-like forum in a throwaway PostgreSQL
//! cluster, and its daily backups written exactly the way Discourse writes them, reproducibly
//! for a seed: the older generation's format A `.tar.gz` and SQL-only `.sql.gz` (`older.rs`),
//! and the current generation's `.tar` with a directory-format dump (`current.rs`), with the
//! uploads stored locally or on S3 (`remote.rs`).
//!
//! ```no_run
//! let opts = dvault_sim::Options { days: 2, ..dvault_sim::Options::small(1) };
//! let files = dvault_sim::generate(&opts, std::path::Path::new("/tmp/backups")).unwrap();
//! ```
//! Use [`Forum`] directly to look at the database between days (tests compare row counts).

pub mod backup;
pub mod copy;
pub mod current;
pub mod dump;
pub mod forum;
pub mod images;
pub mod older;
pub mod remote;
pub mod schema;
pub mod text;
pub mod ustar;

use std::path::Path;

use anyhow::{Context, Result};

pub use backup::{write_backups, BackupFile, Format, Generation};
pub use forum::{DayStats, Forum, DATABASE};

/// How big the forum is on day 0.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Size {
    /// Users.
    pub users: u32,
    /// Topics (about one in twelve is a private message).
    pub topics: u32,
    /// Posts, including each topic's first post.
    pub posts: u32,
    /// Uploaded images.
    pub uploads: u32,
    /// Longest image side in pixels (larger means bigger files).
    pub max_image_side: u32,
}

impl Size {
    /// A few MB in all: for tests.
    pub fn small() -> Size {
        Size {
            users: 150,
            topics: 120,
            posts: 1_200,
            uploads: 30,
            max_image_side: 320,
        }
    }

    /// About 150 MB of plain dump (40 MB as `.sql.gz`) and 150 MB of uploads: for benchmarks.
    pub fn medium() -> Size {
        Size {
            users: 5_000,
            topics: 5_500,
            posts: 65_000,
            uploads: 1_500,
            max_image_side: 1_400,
        }
    }

    /// About 1 GB of plain dump and a few GB of uploads.
    pub fn large() -> Size {
        Size {
            users: 40_000,
            topics: 40_000,
            posts: 450_000,
            uploads: 20_000,
            max_image_side: 2_400,
        }
    }

    /// `small`, `medium` or `large`.
    pub fn named(name: &str) -> Result<Size> {
        match name {
            "small" => Ok(Size::small()),
            "medium" => Ok(Size::medium()),
            "large" => Ok(Size::large()),
            other => anyhow::bail!("unknown size {other:?} (expected small, medium or large)"),
        }
    }
}

/// Everything that decides the simulated forum and its backups.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Options {
    /// PRNG seed: the same seed gives the same forum.
    pub seed: u64,
    /// Size on day 0.
    pub size: Size,
    /// Days simulated after day 0 (backups are written for day 0 and each of them).
    pub days: u32,
    /// Backup formats written each day.
    pub formats: Vec<Format>,
    /// The parameterized site title that starts backup file names.
    pub site: String,
    /// Day 0's date (year, month, day); backups are made at about 03:30 UTC.
    pub start_date: (i64, u32, u32),
    /// Multiplies the daily amount of change (1.0 changes about 1–2 % of the rows).
    pub churn: f64,
    /// `gzip` level of format A: Discourse's `backup_gzip_compression_level_for_uploads`
    /// (`config/site_settings.yml` defaults it to 1; before that setting existed,
    /// `lib/backup_restore/backuper.rb` ran `gzip -5`, which stays the default here).
    pub gzip_level: u32,
    /// `Discourse::VERSION::STRING`, e.g. `2026.1.0-latest`; format B file names carry it with
    /// dots as dashes (`-v2026-1-0-latest-<migration>`).
    pub discourse_version: String,
    /// Discourse's `backup_with_uploads`: whether format B holds the uploads. Without, a format
    /// B file holds only `db/` (what current Discourse writes for a database-only backup).
    /// Formats A and SQL do not look at it: older Discourse wrote `.tar.gz` with uploads and
    /// `.sql.gz` without.
    pub with_uploads: bool,
    /// Discourse's `include_thumbnails_in_backups` (default false): keep `optimized/`.
    pub include_thumbnails: bool,
    /// Uploads are stored on S3 (`enable_s3_uploads`): upload rows carry S3 URLs and the files
    /// sit in a folder standing in for the bucket, not below `public/uploads/default`.
    pub uploads_on_s3: bool,
    /// Discourse's `include_s3_uploads_in_backups` (default false): S3-stored uploads are
    /// downloaded into the backup.
    pub include_s3_uploads: bool,
    /// The S3 upload bucket (`s3_upload_bucket`), as it appears in upload URLs.
    pub s3_bucket: String,
    /// The S3 region (`s3_region`), as it appears in upload URLs.
    pub s3_region: String,
    /// pg_dump's `--jobs` for format B (Discourse's `backup_database_concurrency`, at least 1).
    pub pg_dump_jobs: u32,
}

impl Options {
    /// Defaults for a small forum with `seed`, all three formats, no further days.
    pub fn small(seed: u64) -> Options {
        Options {
            seed,
            size: Size::small(),
            days: 0,
            formats: vec![Format::A, Format::Sql, Format::B],
            site: "forum".into(),
            start_date: (2026, 1, 1),
            churn: 1.0,
            gzip_level: 5,
            discourse_version: "2026.1.0-latest".into(),
            with_uploads: true,
            include_thumbnails: false,
            uploads_on_s3: false,
            include_s3_uploads: false,
            s3_bucket: "forum-uploads".into(),
            s3_region: "us-east-1".into(),
            pg_dump_jobs: 1,
        }
    }
}

/// Simulates `opts.days + 1` days (one cluster for the whole run) and writes every day's backups
/// into `out`, plus `out/manifest.json` listing them. Returns the files, oldest first.
pub fn generate(opts: &Options, out: &Path) -> Result<Vec<BackupFile>> {
    generate_with(opts, out, |_, _| {})
}

/// Like [`generate`], calling `progress(day, files)` after each day's backups are written.
pub fn generate_with(
    opts: &Options,
    out: &Path,
    mut progress: impl FnMut(u32, &[BackupFile]),
) -> Result<Vec<BackupFile>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // tar and pg_dump run in other working folders, so a relative `out` would point elsewhere.
    let out = &std::path::absolute(out)
        .with_context(|| format!("making {} an absolute path", out.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".dvault-sim-")
        .tempdir_in(out)
        .with_context(|| format!("creating a work folder in {}", out.display()))?;
    let mut forum = Forum::create(opts, work.path())?;
    let mut all = Vec::new();
    loop {
        let files = write_backups(&forum, out, &opts.formats)?;
        progress(forum.day(), &files);
        all.extend(files);
        if forum.day() >= opts.days {
            break;
        }
        forum.next_day()?;
    }
    drop(forum);
    let manifest = serde_json::json!({ "options": opts, "files": all });
    let path = out.join("manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(all)
}
