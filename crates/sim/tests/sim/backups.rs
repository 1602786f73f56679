//! The simulator's backups, checked with the real tools: GNU tar and gzip, psql, pg_restore.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{gunzip, sh, sha256, tiny};
use dvault_sim::forum::row_counts;
use dvault_sim::{write_backups, Format, Forum, Options};

fn only(files: &[dvault_sim::BackupFile], format: Format) -> PathBuf {
    let f: Vec<_> = files.iter().filter(|f| f.format == format).collect();
    assert_eq!(f.len(), 1, "{files:?}");
    f[0].path.clone()
}

/// The data lines of every COPY block of a plain dump, sorted (the dump's row content).
fn copy_lines(sql: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(sql);
    let mut lines = Vec::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("COPY ") {
            table = rest.split(' ').next().unwrap_or("").to_string();
        } else if line == "\\." {
            table.clear();
        } else if !table.is_empty() {
            lines.push(format!("{table}\t{line}"));
        }
    }
    lines.sort();
    lines
}

#[test]
fn format_a_extracts_with_tar_and_its_dump_loads_with_the_same_row_counts() {
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let forum = Forum::create(&tiny(11), work.path()).unwrap();
    let files = write_backups(&forum, out.path(), &[Format::A, Format::Sql]).unwrap();
    let a = only(&files, Format::A);
    let name = a.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("forum-2026-01-01-0330")
            && name.ends_with(&format!("-v{}.tar.gz", forum.migration())),
        "{name}"
    );
    // gzip kept the tar's name in its header, as `gzip -5 file.tar` does.
    let header = std::fs::read(&a).unwrap();
    assert_eq!(header[3] & 0x08, 0x08, "FNAME flag");
    assert!(header[10..].starts_with(name.trim_end_matches(".gz").as_bytes()));

    let x = tempfile::tempdir().unwrap();
    sh(Command::new("tar")
        .arg("-xzf")
        .arg(&a)
        .arg("-C")
        .arg(x.path()));
    assert!(x.path().join("dump.sql.gz").is_file());
    assert!(
        !x.path().join("uploads/default/optimized").exists(),
        "optimized/ must be left out"
    );
    for up in forum.uploads() {
        let p = x.path().join("uploads/default").join(&up.path);
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(bytes.len() as u64, up.filesize, "{}", up.path);
    }
    // The SQL-only backup is the same dump.
    assert_eq!(
        std::fs::read(x.path().join("dump.sql.gz")).unwrap(),
        std::fs::read(only(&files, Format::Sql)).unwrap()
    );

    // Load it the way a restore does: into a fresh database whose public schema the dump makes.
    let cluster = forum.cluster();
    cluster.create_database("restored").unwrap();
    // As on a Discourse host: the extensions exist in `public` before the dump (which uses them
    // but creates neither them nor, here, the schema) is loaded.
    cluster
        .psql(
            "restored",
            "CREATE EXTENSION hstore; CREATE EXTENSION pg_trgm;",
        )
        .unwrap();
    let sql = gunzip(&x.path().join("dump.sql.gz"));
    let create = b"\nCREATE SCHEMA public;\n";
    let at = sql
        .windows(create.len())
        .position(|w| w == create)
        .expect("the dump creates the public schema");
    let sql = [&sql[..at + 1], &sql[at + create.len()..]].concat();
    let mut psql = cluster
        .command("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "restored"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    psql.stdin.take().unwrap().write_all(&sql).unwrap();
    let done = psql.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let source = forum.row_counts().unwrap();
    assert_eq!(row_counts(cluster, "restored").unwrap(), source);
    assert!(
        source["posts"] >= 500 && source["uploads"] >= 24,
        "{source:?}"
    );
}

#[test]
fn format_b_is_a_ustar_that_pg_restore_accepts_and_restores() {
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut opts = tiny(12);
    opts.size.uploads = 60; // enough for several duplicate uploads
    let forum = Forum::create(&opts, work.path()).unwrap();
    let files = write_backups(&forum, out.path(), &[Format::B]).unwrap();
    let b = only(&files, Format::B);
    let name = b.file_name().unwrap().to_str().unwrap();
    assert!(
        name.ends_with(&format!("-v2026-1-0-latest-{}.tar", forum.migration())),
        "{name}"
    );

    let bytes = std::fs::read(&b).unwrap();
    assert_eq!(bytes.len() % 512, 0);
    assert!(bytes[bytes.len() - 1024..].iter().all(|&x| x == 0));
    assert!(
        bytes[bytes.len() - 1536..bytes.len() - 1024]
            .iter()
            .any(|&x| x != 0),
        "more than 1024 zero bytes at the end"
    );
    // Every header: empty uname/gname, ustar magic.
    let listing = String::from_utf8(sh(Command::new("tar").arg("-tvf").arg(&b))).unwrap();
    assert!(
        listing.lines().any(|l| l.ends_with("db/toc.dat")),
        "{listing}"
    );
    assert!(!listing.contains("optimized"), "{listing}");

    // Local uploads are archived as the files they are: Discourse's writer makes hard links
    // only for duplicate S3-stored uploads (generations.rs).
    assert_eq!(listing.matches(" link to ").count(), 0, "{listing}");

    let x = tempfile::tempdir().unwrap();
    sh(Command::new("tar")
        .arg("-xf")
        .arg(&b)
        .arg("-C")
        .arg(x.path()));
    let cluster = forum.cluster();
    let toc = String::from_utf8(sh(cluster
        .command("pg_restore")
        .arg("-l")
        .arg(x.path().join("db"))))
    .unwrap();
    assert!(toc.contains("Archive created at 2026-01-01 03:30"), "{toc}");
    assert!(toc.contains("TABLE DATA public posts"), "{toc}");
    cluster.create_database("restored").unwrap();
    // As on a Discourse host: the extensions exist in `public` before the dump is restored,
    // without its entry that creates the schema.
    cluster
        .psql(
            "restored",
            "CREATE EXTENSION hstore; CREATE EXTENSION pg_trgm;",
        )
        .unwrap();
    let listing = Command::new("pg_restore")
        .arg("--list")
        .arg(x.path().join("db"))
        .output()
        .unwrap();
    assert!(listing.status.success());
    let list: String = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(" SCHEMA - public "))
        .map(|l| format!("{l}\n"))
        .collect();
    let list_file = x.path().join("restore.list");
    std::fs::write(&list_file, list).unwrap();
    cluster
        .pg_restore([
            "--no-owner".as_ref(),
            "--dbname=restored".as_ref(),
            "--exit-on-error".as_ref(),
            "--use-list".as_ref(),
            list_file.as_os_str(),
            x.path().join("db").as_os_str(),
        ])
        .unwrap();
    assert_eq!(
        row_counts(cluster, "restored").unwrap(),
        forum.row_counts().unwrap()
    );
    for up in forum.uploads() {
        let got = std::fs::read(x.path().join("uploads/default").join(&up.path)).unwrap();
        assert_eq!(got.len() as u64, up.filesize, "{}", up.path);
    }
}

fn run_twice(seed: u64, out: &Path) -> (Vec<dvault_sim::BackupFile>, Vec<BTreeMap<String, u64>>) {
    let work = tempfile::tempdir().unwrap();
    let mut forum = Forum::create(&tiny(seed), work.path()).unwrap();
    let mut files = write_backups(&forum, out, &[Format::A, Format::Sql, Format::B]).unwrap();
    let mut counts = vec![forum.row_counts().unwrap()];
    forum.next_day().unwrap();
    files.extend(write_backups(&forum, out, &[Format::A, Format::Sql, Format::B]).unwrap());
    counts.push(forum.row_counts().unwrap());
    (files, counts)
}

#[test]
fn the_same_seed_gives_the_same_forum_and_the_same_files() {
    let (o1, o2, o3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (f1, c1) = run_twice(21, o1.path());
    let (f2, c2) = run_twice(21, o2.path());
    assert_eq!(c1, c2);
    assert_eq!(f1.len(), f2.len());
    for (a, b) in f1.iter().zip(&f2) {
        assert_eq!(a.path.file_name(), b.path.file_name());
        if a.format == Format::Sql {
            assert_eq!(copy_lines(&gunzip(&a.path)), copy_lines(&gunzip(&b.path)));
        }
        // Byte for byte: pg_dump's wall-clock fields and file times are simulated.
        assert_eq!(sha256(&a.path), sha256(&b.path), "{}", a.path.display());
    }
    // A different seed gives a different forum (so the comparison above can fail).
    let (f3, _) = run_twice(22, o3.path());
    let sql = |f: &[dvault_sim::BackupFile]| {
        gunzip(&f.iter().find(|f| f.format == Format::Sql).unwrap().path)
    };
    assert_ne!(copy_lines(&sql(&f1)), copy_lines(&sql(&f3)));
}

#[test]
fn consecutive_days_share_most_dump_lines_and_all_upload_files() {
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut forum = Forum::create(&tiny(31), work.path()).unwrap();
    let mut days = Vec::new();
    for day in 0..3 {
        if day > 0 {
            let st = forum.next_day().unwrap();
            assert!(
                st.new_posts > 0 && st.active_users > 0 && st.likes > 0,
                "{st:?}"
            );
        }
        let files = write_backups(&forum, out.path(), &[Format::A]).unwrap();
        days.push(only(&files, Format::A));
    }
    let extract = |a: &Path| {
        let x = tempfile::tempdir().unwrap();
        sh(Command::new("tar")
            .arg("-xzf")
            .arg(a)
            .arg("-C")
            .arg(x.path()));
        x
    };
    let xs: Vec<_> = days.iter().map(|d| extract(d)).collect();
    for w in xs.windows(2) {
        let (old, new) = (&w[0], &w[1]);
        let a = copy_lines(&gunzip(&old.path().join("dump.sql.gz")));
        let b = copy_lines(&gunzip(&new.path().join("dump.sql.gz")));
        // Multiset intersection of the sorted row lines.
        let (mut i, mut j, mut common) = (0, 0, 0usize);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Equal => {
                    common += 1;
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
            }
        }
        let shared = common as f64 / b.len() as f64;
        eprintln!(
            "{} of {} rows unchanged ({:.1} %)",
            common,
            b.len(),
            shared * 100.0
        );
        assert!(
            shared >= 0.90,
            "only {:.1} % of rows unchanged",
            shared * 100.0
        );
        assert!(
            shared <= 0.995,
            "a day changed almost nothing ({:.2} %)",
            shared * 100.0
        );
        // Every upload file of the older day is still there, byte for byte.
        let mut files = 0;
        for f in walk(&old.path().join("uploads")) {
            let rel = f.strip_prefix(old.path()).unwrap();
            assert_eq!(
                std::fs::read(&f).unwrap(),
                std::fs::read(new.path().join(rel)).unwrap(),
                "{}",
                rel.display()
            );
            files += 1;
        }
        assert!(files >= 24 && walk(&new.path().join("uploads")).len() >= files);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn generate_writes_every_day_and_a_manifest() {
    let out = tempfile::tempdir().unwrap();
    let opts = Options {
        days: 1,
        formats: vec![Format::Sql],
        ..tiny(41)
    };
    let files = dvault_sim::generate(&opts, out.path()).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].day, 1);
    assert!(files[1]
        .path
        .to_str()
        .unwrap()
        .contains("forum-2026-01-02-0330"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    // The work folder (uploads, temporary dumps) is gone.
    let left: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
}
