//! The current generation's backup (format B): one uncompressed `.tar`, written entry by entry
//! the way `lib/backup_restore/creator.rb` (`create_archive`, `populate_archive`) drives
//! `lib/backup_restore/archive_writer.rb` (our [`UstarWriter`]):
//!
//! 1. `db` (the directory dump), then, with uploads, 2. the local uploads folder
//!    `uploads/default` without `uploads/default/optimized` unless `include_thumbnails_in_backups`
//!    (only when that folder exists and is not empty), then 3. the S3-stored uploads when
//!    `include_s3_uploads_in_backups` (see `remote.rs`).
//! - A folder is an entry named without a trailing `/`, with the folder's own mode, mtime,
//!   uid and gid (`add_directory(path, source:)`), followed by its children in the order
//!   `Dir.each_child` gives them: the file system's directory order (read here with
//!   `std::fs::read_dir`, the same readdir), not sorted.
//! - A file is an entry with its own `mode & 0o777`, mtime, uid and gid (`add_file`).
//! - An S3-stored upload is a file with mode 0644 (`add_file(..., mode: 0o644)` of the
//!   downloaded temporary file), and each duplicate of its content a hard link to it
//!   (`add_hardlink`: mode 0644, the writer's time, uid and gid).
//! - Written as `NAME.tar.partial`, renamed to `NAME.tar` when complete (local backup store).
//!
//! Without uploads (`with_uploads` false, or nothing to include) the archive holds only `db`.
//!
//! Determinism: every mode, time and owner below is set by the simulator before the tree is
//! read; directory order is the file system's, so it is the same for the same seed on the same
//! file system (ext4 lists a folder in name-hash order), as Discourse's is on its own.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::backup::{settle_dir_times, DISCOURSE_GID, DISCOURSE_UID, UPLOADS_GID};
use crate::forum::{set_mtime, Forum};
use crate::remote;
use crate::ustar::{Meta, UstarWriter};

/// Whether a format B backup of `forum` holds uploads: Discourse's
/// `@with_uploads = opts[:with_uploads] == false ? false : include_uploads?`, where
/// `include_uploads?` is `has_local_uploads? || include_s3_uploads_in_backups`.
pub fn with_uploads(forum: &Forum) -> Result<bool> {
    let o = forum.options();
    Ok(o.with_uploads && (has_local_uploads(forum)? || (o.uploads_on_s3 && o.include_s3_uploads)))
}

/// `has_local_uploads?`: `public/uploads/default` exists and is not empty.
pub fn has_local_uploads(forum: &Forum) -> Result<bool> {
    let dir = forum.public_dir().join("uploads/default");
    if !dir.is_dir() {
        return Ok(false);
    }
    let mut it = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    Ok(it.next().is_some())
}

/// Writes the format B archive `dest` from the dump folder `db`, made at `at_secs`.
pub fn write(forum: &Forum, db: &Path, dest: &Path, at_secs: i64, uploads: bool) -> Result<()> {
    let partial = dest.with_file_name(format!(
        "{}.partial",
        dest.file_name()
            .and_then(|n| n.to_str())
            .context("backup file name")?
    ));
    let out = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut w = UstarWriter::new(std::io::BufWriter::with_capacity(1 << 20, out));
    add_path(&mut w, db, "db", None, DISCOURSE_GID)?;
    if uploads {
        if has_local_uploads(forum)? {
            let local = forum.public_dir().join("uploads/default");
            settle_dir_times(&local)?;
            let exclude =
                (!forum.options().include_thumbnails).then_some("uploads/default/optimized");
            add_path(&mut w, &local, "uploads/default", exclude, UPLOADS_GID)?;
        }
        if remote::included(forum) {
            add_remote(forum, &mut w, db, at_secs)?;
        }
    }
    w.finish()?;
    std::fs::rename(&partial, dest)
        .with_context(|| format!("renaming {} to {}", partial.display(), dest.display()))
}

/// `add_path_to_archive`: a folder and everything below it in directory order, a file, or
/// nothing (`path == exclude`, or neither a folder nor a file).
fn add_path<W: std::io::Write>(
    w: &mut UstarWriter<W>,
    source: &Path,
    path: &str,
    exclude: Option<&str>,
    gid: u32,
) -> Result<()> {
    if Some(path) == exclude {
        return Ok(());
    }
    let md = std::fs::metadata(source).with_context(|| format!("reading {}", source.display()))?;
    let meta = Meta {
        mode: md.mode(),
        mtime: md.mtime().max(0) as u64,
        uid: DISCOURSE_UID,
        gid,
    };
    if md.is_dir() {
        w.add_directory(path, meta)?;
        for e in
            std::fs::read_dir(source).with_context(|| format!("listing {}", source.display()))?
        {
            let e = e?;
            let name = e.file_name();
            let name = name
                .to_str()
                .with_context(|| format!("a non-UTF-8 name in {}", source.display()))?;
            add_path(w, &e.path(), &format!("{path}/{name}"), exclude, gid)?;
        }
    } else if md.is_file() {
        w.add_file(path, source, meta)?;
    }
    Ok(())
}

/// The S3-stored uploads, group by group: the first row's object downloaded to a temporary
/// file (made by the backup process: its uid and gid) and archived with mode 0644, the other
/// paths as hard links to it.
fn add_remote<W: std::io::Write>(
    forum: &Forum,
    w: &mut UstarWriter<W>,
    db: &Path,
    at_secs: i64,
) -> Result<()> {
    let tmp = db.with_file_name("backup-upload");
    // The downloads start after the dump is archived; each takes a second.
    for (i, g) in remote::groups(forum)?.into_iter().enumerate() {
        let now = at_secs + 2 + i as i64;
        let first = &g.uploads[0];
        remote::download(forum, &first.key, &tmp)?;
        set_mtime(&tmp, now)?;
        let meta = Meta {
            mode: 0o644,
            mtime: now as u64,
            uid: DISCOURSE_UID,
            gid: DISCOURSE_GID,
        };
        let primary = format!("uploads/default/{}", first.key);
        w.add_file(&primary, &tmp, meta)?;
        for link in g.links() {
            w.add_hardlink(&format!("uploads/default/{link}"), &primary, meta)?;
        }
        std::fs::remove_file(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    Ok(())
}
