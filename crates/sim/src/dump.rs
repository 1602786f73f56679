//! Discourse's two pg_dump commands and the clean-up that makes their output reproducible.
//!
//! - Older Discourse (format A and `.sql.gz`): a gzip-compressed plain dump `dump.sql.gz`.
//! - Current Discourse: a directory-format dump `db/` (`toc.dat` plus one `NNNN.dat.gz` per
//!   table), made with `--jobs` workers.
//!
//! The only wall-clock values pg_dump records are the `-- Started on` / `-- Completed on` lines
//! of a plain dump (with `--verbose`), pg_dump 15.14+'s random `\restrict` key, and the creation
//! date in a directory dump's `toc.dat`. They are replaced by the simulated time (and a key from
//! the seed); a plain dump's zlib stream is then rebuilt with pg_dump's own zlib settings,
//! checked against pg_dump's bytes on the first backup of every run.

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};
use rand::Rng;

use crate::backup::stamp;
use crate::copy::civil_from_days;
use crate::forum::{rng_for, set_mtime, Forum, DATABASE};

/// pg_dump's `--exclude-table-data` arguments of Discourse's backups (both generations): the
/// nested-view hot scores are disposable. `lib/backup_restore/creator.rb` (`pg_dump_command`);
/// the simulated schema has no such tables, so they match nothing, as on a forum without them.
const EXCLUDED_TABLE_DATA: [&str; 2] = [
    "--exclude-table-data=public.nested_hot_post_scores",
    "--exclude-table-data=public.nested_hot_score_snapshots",
];

/// Older Discourse's pg_dump for format A and SQL-only backups, into `dest` (`dump.sql.gz`).
/// The command of the last format-A `lib/backup_restore/creator.rb` (`pg_dump_command`):
/// `--schema=public -T public.pg_* --exclude-table-data=... --file=... --no-owner
/// --no-privileges --verbose --compress=4 discourse` (Discourse joins it into one shell string,
/// so `-T public.pg_*` reaches pg_dump as two arguments). Older versions (`backuper.rb`) lacked
/// `-T` and the exclusions; neither changes a dump of the simulated schema.
pub fn plain_dump(forum: &Forum, dest: &Path, at_secs: i64, verify_zlib: bool) -> Result<()> {
    let raw = dest.with_extension("pgdump.gz");
    let file = format!("--file={}", raw.display());
    let mut args: Vec<&str> = vec!["--schema=public", "-T", "public.pg_*"];
    args.extend(EXCLUDED_TABLE_DATA);
    args.extend([
        file.as_str(),
        "--no-owner",
        "--no-privileges",
        "--verbose",
        "--compress=4",
        DATABASE,
    ]);
    forum.cluster().pg_dump(args)?;
    let key = restrict_key(forum.options().seed, forum.day());
    let duration = rewrite_dump(&raw, dest, at_secs, &key, verify_zlib)
        .with_context(|| format!("rewriting pg_dump's output {}", raw.display()))?;
    std::fs::remove_file(&raw).with_context(|| format!("removing {}", raw.display()))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o644))?;
    set_mtime(dest, at_secs + duration)
}

/// Current Discourse's pg_dump into the folder `db` (`lib/backup_restore/creator.rb`,
/// `pg_dump_command`): `--schema=public --exclude-table=public.pg_* --exclude-table-data=...
/// --file=db --format=directory --jobs=N --no-owner --no-privileges --verbose --compress=4
/// discourse`, N being `GlobalSetting.backup_database_concurrency` but at least 1 (its default
/// in `config/discourse_defaults.conf` could not be read from the stored source; 1 here).
///
/// Afterwards `toc.dat`'s creation date is set to the simulated time, and the files are moved
/// into a fresh `db` in name order: Discourse archives them in directory order, and on a file
/// system that lists a folder in creation order (tmpfs) the order of `--jobs` workers would
/// otherwise leak into the archive. `db` keeps the mode pg_dump gives the folder it creates
/// (0700); files get 0644 (pg_dump creates them 0666 less the umask, 022 for Discourse's user).
pub fn directory_dump(forum: &Forum, db: &Path, at_secs: i64) -> Result<()> {
    let opts = forum.options();
    let file = format!("--file={}", db.display());
    let jobs = format!("--jobs={}", opts.pg_dump_jobs.max(1));
    let mut args: Vec<&str> = vec!["--schema=public", "--exclude-table=public.pg_*"];
    args.extend(EXCLUDED_TABLE_DATA);
    args.extend([
        file.as_str(),
        "--format=directory",
        jobs.as_str(),
        "--no-owner",
        "--no-privileges",
        "--verbose",
        "--compress=4",
        DATABASE,
    ]);
    forum.cluster().pg_dump(args)?;
    let toc = db.join("toc.dat");
    let mut bytes = std::fs::read(&toc).with_context(|| format!("reading {}", toc.display()))?;
    set_toc_date(&mut bytes, at_secs).with_context(|| format!("in {}", toc.display()))?;
    std::fs::write(&toc, &bytes).with_context(|| format!("writing {}", toc.display()))?;

    let made = db.with_extension("pg_dump");
    std::fs::rename(db, &made).with_context(|| format!("renaming {}", db.display()))?;
    std::fs::create_dir(db).with_context(|| format!("creating {}", db.display()))?;
    let mut names: Vec<_> = std::fs::read_dir(&made)
        .with_context(|| format!("listing {}", made.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    // A day's dump takes about a second per 50 MB of data files.
    let size: u64 = names
        .iter()
        .map(|n| {
            std::fs::metadata(made.join(n))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    let done = at_secs + 1 + (size / 10_000_000) as i64;
    for n in &names {
        let p = db.join(n);
        std::fs::rename(made.join(n), &p).with_context(|| format!("moving {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        set_mtime(&p, done)?;
    }
    std::fs::remove_dir(&made).with_context(|| format!("removing {}", made.display()))?;
    std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o700))?;
    set_mtime(db, done)
}

pub(crate) fn pg_time(secs: i64) -> String {
    let st = stamp(secs);
    format!(
        "{} {}:{}:{} UTC",
        &st[..10],
        &st[11..13],
        &st[13..15],
        &st[15..17]
    )
}

/// Copies pg_dump's gzip output `src` to `dest`, replacing the lines that carry wall-clock or
/// random values (outside COPY data): `-- Started on`, `-- Completed on` (the simulated time;
/// returns the simulated duration in seconds) and pg_dump 15.14+'s `\restrict KEY` /
/// `\unrestrict KEY` (a key from the seed). Streams, so memory stays small for any dump size.
///
/// With `verify`, the unchanged text is compressed too and compared with `src` byte for byte:
/// proof that this build's zlib writes what pg_dump's does, so the rewritten file is exactly
/// what pg_dump would have written at the simulated time.
pub(crate) fn rewrite_dump(
    src: &Path,
    dest: &Path,
    at_secs: i64,
    key: &str,
    verify: bool,
) -> Result<i64> {
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
pub(crate) fn pg_dump_gzip<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_times_look_like_pg_dump_lines() {
        let secs = crate::copy::days_from_civil(2026, 1, 2) * 86_400 + 3 * 3600 + 30 * 60 + 7;
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
}
