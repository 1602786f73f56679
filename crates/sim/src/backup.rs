//! Writing a day's backups the way Discourse does, with Discourse's file names:
//! format A (`.tar.gz`), SQL only (`.sql.gz`) and format B (`.tar`). See `docs`/DESIGN.md,
//! "The Discourse formats".
//!
//! Reproducibility: the only wall-clock values these tools record are pg_dump's `-- Started on`
//! and `-- Completed on` lines (with `--verbose`) and the creation date in a directory dump's
//! `toc.dat`; both are replaced by the simulated backup time, and the file's zlib stream is then
//! rebuilt with the same zlib settings pg_dump uses (checked against pg_dump's own bytes on the
//! first backup of every run). File modes, owners and mtimes are set explicitly before `tar` and
//! `gzip` read them, and GNU tar gets `--sort=name --owner --group` so the archive does not
//! depend on the file system's directory order or the user running the simulator.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use rand::Rng;

use crate::copy::civil_from_days;
use crate::forum::{rng_for, set_mtime, Forum, DATABASE};
use crate::ustar::{Meta, UstarWriter};

/// Numeric owner Discourse's files have in the standard container (user `discourse`).
pub const DISCOURSE_UID: u32 = 1000;
/// Numeric group of Discourse's files (`www-data`).
pub const DISCOURSE_GID: u32 = 33;

/// A backup format Discourse writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Format {
    /// `.tar.gz`: GNU gzip of a GNU tar holding `dump.sql.gz` and `uploads/default`.
    A,
    /// `.sql.gz`: pg_dump's gzip-compressed plain dump alone (backups without uploads).
    Sql,
    /// `.tar`: an uncompressed ustar holding a directory-format dump `db/` and the uploads.
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
        plain_dump(forum, &dump, at_secs, day == 0)?;
        if wants(Format::Sql) {
            let path = out.join(format!("{base}-v{migration}.sql.gz"));
            std::fs::copy(&dump, &path)
                .with_context(|| format!("copying the dump to {}", path.display()))?;
            set_mtime(&path, at_secs + 5)?;
            files.push(file(day, Format::Sql, path, &stamp)?);
        }
        if wants(Format::A) {
            let path = out.join(format!("{base}-v{migration}.tar.gz"));
            archive_a(forum, &tmp, &path, at_secs)?;
            files.push(file(day, Format::A, path, &stamp)?);
        }
    }
    if wants(Format::B) {
        let db = tmp.join("db");
        directory_dump(forum, &db, at_secs)?;
        let path = out.join(format!(
            "{base}-v{}-{migration}.tar",
            opts.discourse_version
        ));
        archive_b(forum, &db, &path, at_secs)?;
        set_mtime(&path, at_secs + 30)?;
        files.push(file(day, Format::B, path, &stamp)?);
    }
    std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    Ok(files)
}

fn file(day: u32, format: Format, path: PathBuf, stamp: &str) -> Result<BackupFile> {
    let size = std::fs::metadata(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    Ok(BackupFile {
        day,
        format,
        path,
        size,
        timestamp: stamp.to_string(),
    })
}

/// `YYYY-MM-DD-HHMMSS` of a time in seconds since the epoch.
fn stamp(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}-{:02}{:02}{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

fn pg_time(secs: i64) -> String {
    let st = stamp(secs);
    format!(
        "{} {}:{}:{} UTC",
        &st[..10],
        &st[11..13],
        &st[13..15],
        &st[15..17]
    )
}

/// Discourse's pg_dump command for format A and SQL-only backups.
fn plain_dump(forum: &Forum, dest: &Path, at_secs: i64, verify_zlib: bool) -> Result<()> {
    let raw = dest.with_extension("pgdump.gz");
    forum.cluster().pg_dump([
        "--schema=public".as_ref(),
        "-T".as_ref(),
        "public.pg_*".as_ref(),
        format!("--file={}", raw.display()).as_ref(),
        "--no-owner".as_ref(),
        "--no-privileges".as_ref(),
        "--verbose".as_ref(),
        "--compress=4".as_ref(),
        std::ffi::OsStr::new(DATABASE),
    ])?;
    let key = restrict_key(forum.options().seed, forum.day());
    let duration = rewrite_dump(&raw, dest, at_secs, &key, verify_zlib)
        .with_context(|| format!("rewriting pg_dump's output {}", raw.display()))?;
    std::fs::remove_file(&raw).with_context(|| format!("removing {}", raw.display()))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o644))?;
    set_mtime(dest, at_secs + duration)
}

/// Copies pg_dump's gzip output `src` to `dest`, replacing the lines that carry wall-clock or
/// random values (outside COPY data): `-- Started on`, `-- Completed on` (the simulated time;
/// returns the simulated duration in seconds) and pg_dump 15.14+'s `\restrict KEY` /
/// `\unrestrict KEY` (a key from the seed). Streams, so memory stays small for any dump size.
///
/// With `verify`, the unchanged text is compressed too and compared with `src` byte for byte:
/// proof that this build's zlib writes what pg_dump's does, so the rewritten file is exactly
/// what pg_dump would have written at the simulated time.
fn rewrite_dump(src: &Path, dest: &Path, at_secs: i64, key: &str, verify: bool) -> Result<i64> {
    let open = || std::fs::File::open(src).with_context(|| format!("opening {}", src.display()));
    let mut input = std::io::BufReader::with_capacity(1 << 20, MultiGzDecoder::new(open()?));
    let out =
        std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut output = pg_dump_gzip(std::io::BufWriter::with_capacity(1 << 20, out));
    let mut check = if verify {
        let original = std::io::BufReader::with_capacity(1 << 20, open()?);
        Some(pg_dump_gzip(SameAs {
            original,
            offset: 0,
        }))
    } else {
        None
    };
    let mut line = Vec::with_capacity(1 << 16);
    let (mut in_copy, mut bytes, mut duration) = (false, 0u64, 1i64);
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .context("decompressing")?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if let Some(c) = check.as_mut() {
            c.write_all(&line)?;
        }
        let replaced = if in_copy {
            in_copy = line != b"\\.\n";
            None
        } else if line.starts_with(b"COPY ") {
            in_copy = true;
            None
        } else if line.starts_with(b"-- Started on ") {
            Some(format!("-- Started on {}\n", pg_time(at_secs)))
        } else if line.starts_with(b"-- Completed on ") {
            duration = 1 + (bytes / 50_000_000) as i64;
            Some(format!("-- Completed on {}\n", pg_time(at_secs + duration)))
        } else if line.starts_with(b"\\restrict ") {
            Some(format!("\\restrict {key}\n"))
        } else if line.starts_with(b"\\unrestrict ") {
            Some(format!("\\unrestrict {key}\n"))
        } else {
            None
        };
        match replaced {
            Some(r) => output.write_all(r.as_bytes())?,
            None => output.write_all(&line)?,
        }
    }
    output.finish()?.flush()?;
    if let Some(c) = check {
        let same = c.finish()?;
        let mut rest = [0u8; 1];
        let mut original = same.original;
        if original.read(&mut rest)? != 0 {
            bail!(
                "recompressed pg_dump output ends at byte {} of {}, before the original does",
                same.offset,
                src.display()
            );
        }
    }
    Ok(duration)
}

/// A writer that checks that what it is given equals the bytes of `original`.
struct SameAs<R: Read> {
    original: R,
    offset: u64,
}

impl<R: Read> Write for SameAs<R> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut expected = vec![0u8; buf.len()];
        self.original.read_exact(&mut expected).map_err(|_| {
            std::io::Error::other(format!(
                "this build's zlib does not reproduce pg_dump's compressed output: longer than \
                 the original at byte {}",
                self.offset
            ))
        })?;
        if let Some(i) = expected.iter().zip(buf).position(|(a, b)| a != b) {
            return Err(std::io::Error::other(format!(
                "this build's zlib does not reproduce pg_dump's compressed output: first \
                 difference at byte {}",
                self.offset + i as u64
            )));
        }
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A gzip writer like pg_dump's `--compress=4` (zlib's gzwrite: level 4, no name, mtime 0,
/// OS Unix).
fn pg_dump_gzip<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    GzBuilder::new()
        .operating_system(3)
        .write(w, Compression::new(4))
}

/// A 64-character alphanumeric key like the ones pg_dump draws, from the seed and the day.
fn restrict_key(seed: u64, day: u32) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rng_for(seed, 98, day as u64);
    (0..64)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

/// Gives every folder below `dir` the newest mtime among its contents, so folder times depend
/// on the simulated files only. Returns the newest time found.
fn settle_dir_times(dir: &Path) -> Result<i64> {
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

/// Format A, by Discourse's own commands: an empty tar, `tar --append` of the dump, then of
/// `uploads/default` without `optimized/`, then `gzip -<level>` of the tar.
fn archive_a(forum: &Forum, tmp: &Path, dest: &Path, at_secs: i64) -> Result<()> {
    let public = forum.public_dir();
    settle_dir_times(&public.join("uploads/default"))?;
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
    let repro = [
        "--sort=name",
        "--owner=discourse:1000",
        "--group=www-data:33",
    ];
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
            .args(repro)
            .arg("--file")
            .arg(&tar)
            .arg("dump.sql.gz"),
        "tar --append dump.sql.gz",
    )?;
    run(
        Command::new("tar")
            .current_dir(&public)
            .args(["--append", "--dereference"])
            .args(repro)
            .arg("--exclude=uploads/default/optimized")
            .arg("--file")
            .arg(&tar)
            .arg("uploads/default"),
        "tar --append uploads/default",
    )?;
    // gzip records the tar's name and mtime in its header.
    set_mtime(&tar, at_secs + 20)?;
    let level = forum.options().gzip_level.clamp(1, 9);
    run(
        Command::new("gzip").arg(format!("-{level}")).arg(&tar),
        "gzip of the tar",
    )?;
    Ok(())
}

/// A directory-format dump (`db/`) with the creation date in `toc.dat` set to the simulated time.
fn directory_dump(forum: &Forum, db: &Path, at_secs: i64) -> Result<()> {
    forum.cluster().pg_dump([
        "--schema=public".as_ref(),
        "-T".as_ref(),
        "public.pg_*".as_ref(),
        "--format=directory".as_ref(),
        format!("--file={}", db.display()).as_ref(),
        "--no-owner".as_ref(),
        "--no-privileges".as_ref(),
        "--verbose".as_ref(),
        "--compress=4".as_ref(),
        std::ffi::OsStr::new(DATABASE),
    ])?;
    let toc = db.join("toc.dat");
    let mut bytes = std::fs::read(&toc).with_context(|| format!("reading {}", toc.display()))?;
    set_toc_date(&mut bytes, at_secs).with_context(|| format!("in {}", toc.display()))?;
    std::fs::write(&toc, &bytes).with_context(|| format!("writing {}", toc.display()))?;
    for e in std::fs::read_dir(db)? {
        let p = e?.path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        set_mtime(&p, at_secs)?;
    }
    std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o755))?;
    set_mtime(db, at_secs)
}

/// Overwrites the creation time (`struct tm` fields) in a custom/directory archive header.
fn set_toc_date(b: &mut [u8], secs: i64) -> Result<()> {
    if b.len() < 64 || &b[..5] != b"PGDMP" {
        bail!("not a pg_dump archive header (no PGDMP magic at offset 0)");
    }
    let (vmaj, vmin, int_size) = (b[5], b[6], b[8] as usize);
    if int_size != 4 {
        bail!("pg_dump archive with intSize {int_size} at offset 8, expected 4");
    }
    // Archive 1.15 (PostgreSQL 16) stores the compression as one byte, older ones as an int.
    let mut off = 11
        + if (vmaj, vmin) >= (1, 15) {
            1
        } else {
            1 + int_size
        };
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let fields = [
        s % 60,
        (s / 60) % 60,
        s / 3600,
        d as i64,
        m as i64 - 1,
        y - 1900,
        0,
    ];
    for (i, v) in fields.into_iter().enumerate() {
        let cur_sign = b[off];
        if cur_sign > 1 {
            bail!("unexpected sign byte {cur_sign} of date field {i} at offset {off}");
        }
        b[off] = 0;
        b[off + 1..off + 1 + int_size].copy_from_slice(&(v as u32).to_le_bytes());
        off += 1 + int_size;
    }
    Ok(())
}

/// Format B: `db/` and `uploads/default` (without `optimized/`) in Discourse's ustar layout,
/// duplicate uploads (same content, `original_sha1`) as hard links to the first copy.
fn archive_b(forum: &Forum, db: &Path, dest: &Path, at_secs: i64) -> Result<()> {
    let uploads = forum.public_dir().join("uploads/default");
    settle_dir_times(&uploads)?;
    let out =
        std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut w = UstarWriter::new(std::io::BufWriter::with_capacity(1 << 20, out));
    let meta = |mode: u32, mtime: i64| Meta {
        mode,
        mtime: mtime.max(0) as u64,
        uid: DISCOURSE_UID,
        gid: DISCOURSE_GID,
    };
    w.add_directory("db/", meta(0o755, at_secs))?;
    let mut db_files: Vec<PathBuf> = std::fs::read_dir(db)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    db_files.sort();
    for p in db_files {
        let name = format!(
            "db/{}",
            p.file_name()
                .and_then(|n| n.to_str())
                .context("dump file name")?
        );
        w.add_file(&name, &p, meta(0o644, at_secs))?;
    }
    let content_of: HashMap<String, String> = forum
        .uploads()
        .iter()
        .map(|u| (u.path.clone(), u.content_sha1.clone()))
        .collect();
    let mut first_of: HashMap<String, String> = HashMap::new();
    walk_b(
        &mut w,
        &uploads,
        "uploads/default",
        &content_of,
        &mut first_of,
        &meta,
    )?;
    let (_, _) = w.finish()?;
    Ok(())
}

fn walk_b<W: Write>(
    w: &mut UstarWriter<W>,
    dir: &Path,
    name: &str,
    content_of: &HashMap<String, String>,
    first_of: &mut HashMap<String, String>,
    meta: &dyn Fn(u32, i64) -> Meta,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(dir)?;
    w.add_directory(&format!("{name}/"), meta(md.mode(), md.mtime()))?;
    let mut entries: Vec<(String, PathBuf, bool)> = std::fs::read_dir(dir)?
        .map(|e| {
            let e = e?;
            Ok((
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                e.file_type()?.is_dir(),
            ))
        })
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for (file, path, is_dir) in entries {
        let child = format!("{name}/{file}");
        if child == "uploads/default/optimized" {
            continue;
        }
        if is_dir {
            walk_b(w, &path, &child, content_of, first_of, meta)?;
            continue;
        }
        let md = std::fs::metadata(&path)?;
        let rel = child.trim_start_matches("uploads/default/");
        match content_of.get(rel) {
            Some(sha) if first_of.contains_key(sha) => {
                w.add_hardlink(&child, &first_of[sha], meta(md.mode(), md.mtime()))?;
            }
            sha => {
                if let Some(sha) = sha {
                    first_of.insert(sha.clone(), child.clone());
                }
                w.add_file(&child, &path, meta(md.mode(), md.mtime()))?;
            }
        }
    }
    Ok(())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
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
        assert_eq!(pg_time(secs), "2026-01-02 03:30:07 UTC");
    }

    #[test]
    fn rewrite_dump_replaces_clock_and_key_lines_outside_copy_data_only() {
        let dir = tempfile::tempdir().unwrap();
        let text = "--\n\\restrict abc\n-- Started on 2030-05-05 10:00:00 UTC\nCOPY public.t (a) FROM stdin;\n\
                    -- Started on kept\n\\.\n-- Completed on 2030-05-05 10:00:09 UTC\n\\unrestrict abc\n";
        let src = dir.path().join("in.gz");
        let mut enc = pg_dump_gzip(Vec::new());
        enc.write_all(text.as_bytes()).unwrap();
        std::fs::write(&src, enc.finish().unwrap()).unwrap();
        let dest = dir.path().join("out.gz");
        let secs = crate::copy::days_from_civil(2026, 1, 2) * 86_400 + 3 * 3600 + 30 * 60;
        let d = rewrite_dump(&src, &dest, secs, "KEY", true).unwrap();
        assert_eq!(d, 1);
        let mut out = String::new();
        MultiGzDecoder::new(std::fs::File::open(&dest).unwrap())
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(
            out,
            "--\n\\restrict KEY\n-- Started on 2026-01-02 03:30:00 UTC\nCOPY public.t (a) FROM stdin;\n\
             -- Started on kept\n\\.\n-- Completed on 2026-01-02 03:30:01 UTC\n\\unrestrict KEY\n"
        );
    }

    #[test]
    fn rewrite_dump_refuses_when_zlib_does_not_reproduce_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.gz");
        let mut enc = GzBuilder::new()
            .operating_system(3)
            .write(Vec::new(), Compression::new(9));
        for i in 0..20_000 {
            writeln!(enc, "line {i} of some text that compresses {}", i % 7).unwrap();
        }
        std::fs::write(&src, enc.finish().unwrap()).unwrap();
        let err = rewrite_dump(&src, &dir.path().join("o.gz"), 0, "K", true).unwrap_err();
        assert!(
            format!("{err:#}").contains("does not reproduce pg_dump"),
            "{err:#}"
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!("A".parse::<Format>().unwrap(), Format::A);
        assert_eq!("sql".parse::<Format>().unwrap(), Format::Sql);
        assert!("zip".parse::<Format>().is_err());
    }
}
