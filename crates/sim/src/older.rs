//! The older generation's backup with uploads (format A, `.tar.gz`), made by the commands of
//! the last format-A `lib/backup_restore/creator.rb` (`create_archive`), run for real:
//!
//! 1. `tar --create --file NAME.tar --files-from /dev/null` (an empty archive);
//! 2. `tar --append --dereference --file NAME.tar dump.sql.gz` in the backup's tmp folder;
//! 3. when `public/uploads/default` exists and is not empty: `tar --append --dereference
//!    [--exclude=uploads/default/optimized] --file NAME.tar uploads/default` in `public/`
//!    (the exclusion unless `include_thumbnails_in_backups`);
//! 4. with `enable_s3_uploads` and `include_s3_uploads_in_backups`: the S3-stored uploads are
//!    downloaded to `<tmp>/uploads/default/<key>`, each content once, its duplicates hard links
//!    to it (`FileUtils.ln`), and appended with `tar --append --file NAME.tar uploads/default`
//!    in the tmp folder, without `--dereference`, so GNU tar stores each second name of a file
//!    as a hard link;
//! 5. `gzip -<backup_gzip_compression_level_for_uploads> NAME.tar`.
//!
//! GNU tar reads folders in directory order, as Discourse's does (no `--sort`). Two flags are
//! ours, not Discourse's: `--owner` and `--group` give the names and ids the files have on a
//! Discourse host (user `discourse`; the uid 1000 and the groups are assumptions, not readable
//! from Discourse's own source), instead of whoever runs the simulator.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::backup::{run, settle_dir_times};
use crate::current::has_local_uploads;
use crate::forum::{set_mtime, Forum};
use crate::remote;

/// `--owner`/`--group` of what the backup process writes (dump, downloaded uploads).
const PROCESS_OWNER: [&str; 2] = ["--owner=discourse:1000", "--group=discourse:1000"];
/// `--owner`/`--group` of the local upload files (written by the web app).
const UPLOADS_OWNER: [&str; 2] = ["--owner=discourse:1000", "--group=www-data:33"];

/// Writes format A `dest` (`NAME.tar.gz`) from the dump in `tmp/dump.sql.gz`, made at `at_secs`.
pub fn write(forum: &Forum, tmp: &Path, dest: &Path, at_secs: i64) -> Result<()> {
    let local = has_local_uploads(forum)?;
    let s3 = remote::included(forum);
    if !local && !s3 {
        // Discourse's include_uploads? is false then: it writes a .sql.gz instead.
        bail!(
            "format A needs uploads in the backup, but there are no local uploads and S3-stored \
             uploads are not included (include_s3_uploads_in_backups); Discourse writes a \
             .sql.gz then: ask for format sql"
        );
    }
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".gz"))
        .context("format A file name must end in .gz")?;
    let tar = dest.with_file_name(name);
    for p in [&tar, &dest.to_path_buf()] {
        if p.exists() {
            std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    run(
        Command::new("tar")
            .args(["--create", "--file"])
            .arg(&tar)
            .args(["--files-from", "/dev/null"]),
        "tar --create",
    )?;
    run(
        Command::new("tar")
            .current_dir(tmp)
            .args(["--append", "--dereference"])
            .args(PROCESS_OWNER)
            .arg("--file")
            .arg(&tar)
            .arg("dump.sql.gz"),
        "tar --append dump.sql.gz",
    )?;
    if local {
        let public = forum.public_dir();
        settle_dir_times(&public.join("uploads/default"))?;
        let mut cmd = Command::new("tar");
        cmd.current_dir(&public)
            .args(["--append", "--dereference"])
            .args(UPLOADS_OWNER);
        if !forum.options().include_thumbnails {
            cmd.arg("--exclude=uploads/default/optimized");
        }
        // With thumbnails, Discourse passes an empty string where the exclusion would be
        // (`exclude_optimized = ""`); we leave the argument out instead.
        run(
            cmd.arg("--file").arg(&tar).arg("uploads/default"),
            "tar --append uploads/default",
        )?;
    }
    if s3 {
        append_remote(forum, tmp, &tar, at_secs)?;
    }
    // gzip records the tar's name and mtime in its header.
    set_mtime(&tar, at_secs + 20)?;
    let level = forum.options().gzip_level.clamp(1, 9);
    run(
        Command::new("gzip").arg(format!("-{level}")).arg(&tar),
        "gzip of the tar",
    )
}

/// Step 4: download each content once into `tmp/uploads/default`, hard-link its other paths,
/// and append that folder without `--dereference`.
fn append_remote(forum: &Forum, tmp: &Path, tar: &Path, at_secs: i64) -> Result<()> {
    let root = tmp.join("uploads/default");
    let mut now = at_secs + 2;
    for g in remote::groups(forum)? {
        let first = root.join(&g.uploads[0].key);
        remote::download(forum, &g.uploads[0].key, &first)?;
        set_permissions(&first, 0o644)?;
        set_mtime(&first, now)?;
        for link in g.links() {
            let p = root.join(link);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::hard_link(&first, &p)
                .with_context(|| format!("linking {} to {}", p.display(), first.display()))?;
        }
        now += 1;
    }
    if !root.is_dir() {
        // No S3-stored uploads: Discourse still runs tar on the missing folder, which exits
        // with status 2 (not among the accepted 0 and 1) and fails the backup; we skip.
        return Ok(());
    }
    settle_folders(&root, now)?;
    run(
        Command::new("tar")
            .current_dir(tmp)
            .arg("--append")
            .args(PROCESS_OWNER)
            .arg("--file")
            .arg(tar)
            .arg("uploads/default"),
        "tar --append of the S3-stored uploads",
    )
}

fn set_permissions(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", p.display()))
}

/// Gives the download folders mode 0755 and the time the downloads ended.
fn settle_folders(dir: &Path, at: i64) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_dir() {
            settle_folders(&e.path(), at)?;
        }
    }
    set_permissions(dir, 0o755)?;
    set_mtime(dir, at)
}
