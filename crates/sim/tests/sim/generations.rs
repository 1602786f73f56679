//! Each Discourse generation's backups as the simulator writes them, checked against what
//! Discourse's own writers produce (see `src/current.rs`, `src/older.rs`, `src/remote.rs`), with
//! GNU tar, pg_restore and peel's bit-exact round trip.

use std::collections::HashMap;
use std::process::Command;

use crate::common::*;
use dvault_sim::{write_backups, Format, Forum, Options};
use sha1::Digest as _;

fn name_of(p: &std::path::Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_string()
}

/// Duplicates among the uploads: rows whose content was uploaded before.
fn duplicates(forum: &Forum) -> usize {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for u in forum.uploads() {
        *seen.entry(u.content_sha1.as_str()).or_default() += 1;
    }
    seen.values().map(|n| n - 1).sum()
}

#[test]
fn current_tar_is_written_like_discourse_archive_writer_in_directory_order() {
    let (work, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let forum = Forum::create(&tiny(51), work.path()).unwrap();
    // A name over 100 bytes, as a deep or long file name in the uploads folder would have.
    let long_dir = format!("original/1X/{}", "d".repeat(70));
    let long = format!("uploads/default/{long_dir}/{}.png", "e".repeat(40));
    let up = forum.public_dir().join(&long);
    std::fs::create_dir_all(up.parent().unwrap()).unwrap();
    std::fs::write(&up, b"long named upload").unwrap();
    let files = write_backups(&forum, out.path(), &[Format::B]).unwrap();
    assert_eq!(files.len(), 1);
    let b = &files[0].path;
    assert!(files[0].with_uploads);
    let name = name_of(b);
    assert!(
        name.starts_with("forum-2026-01-01-0330")
            && name.ends_with(&format!("-v2026-1-0-latest-{}.tar", forum.migration())),
        "{name}"
    );

    let bytes = std::fs::read(b).unwrap();
    let (hs, trailer) = headers(&bytes);
    assert_eq!(
        trailer, 1024,
        "exactly 1024 zero bytes at the end, no record padding"
    );
    // Every header: empty uname/gname (PAX headers keep RubyGems' `wheel`), Discourse's owner.
    for h in hs.iter().filter(|h| h.typeflag != b'x') {
        assert_eq!((h.uname.as_str(), h.gname.as_str()), ("", ""), "{h:?}");
        assert_eq!(h.uid, 1000, "{h:?}");
        assert!(
            !h.name.ends_with('/'),
            "directory with a trailing slash: {h:?}"
        );
        assert_ne!(h.typeflag, b'1', "no hard links without S3 uploads: {h:?}");
    }
    assert_eq!(hs[0].name, "db");
    assert_eq!(
        (hs[0].typeflag, hs[0].mode),
        (b'5', 0o700),
        "db is pg_dump's 0700 folder"
    );
    // The long name: a PAX header `PaxHeaders/entry` with the path, then an entry `entry`.
    let pax = hs
        .iter()
        .position(|h| h.typeflag == b'x')
        .expect("a PAX header");
    assert_eq!(hs[pax].name, "PaxHeaders/entry");
    assert!(hs[pax]
        .pax
        .as_ref()
        .unwrap()
        .contains(&format!(" path={long}\n")));
    assert_eq!(
        (hs[pax + 1].name.as_str(), hs[pax + 1].typeflag),
        ("entry", b'0')
    );

    // GNU tar's view: the same names in the same order, directory order of the real folders.
    let names = tar_names(b);
    let n_db = names.iter().take_while(|n| n.starts_with("db")).count();
    let uploads = forum.public_dir().join("uploads/default");
    let expected = readdir_order(
        &uploads,
        "uploads/default",
        Some("uploads/default/optimized"),
    );
    assert_eq!(
        names[n_db..],
        expected[..],
        "uploads not in directory order"
    );
    assert!(names.contains(&long));
    assert!(!names.iter().any(|n| n.contains("optimized")), "{names:?}");
    let verbose = tar_verbose(b);
    assert!(
        verbose[0].starts_with("drwx------ 1000/1000 "),
        "{}",
        verbose[0]
    );
    assert!(verbose
        .iter()
        .any(|l| l.starts_with("drwxr-xr-x 1000/33 ") && l.ends_with(" uploads/default/original")));

    let x = tempfile::tempdir().unwrap();
    sh(Command::new("tar")
        .arg("-xf")
        .arg(b)
        .arg("-C")
        .arg(x.path()));
    assert_eq!(
        std::fs::read(x.path().join(&long)).unwrap(),
        b"long named upload"
    );
    // Extracting recreates `db` in archive order; on this file system readdir then gives the
    // order Discourse's `Dir.each_child` saw.
    let db_order = readdir_order(&x.path().join("db"), "db", None);
    assert_eq!(names[..n_db], db_order[..]);
    let toc = String::from_utf8(sh(forum
        .cluster()
        .command("pg_restore")
        .arg("--list")
        .arg(x.path().join("db"))))
    .unwrap();
    assert!(toc.contains("TABLE DATA public posts"), "{toc}");
    assert!(toc.contains("Format: DIRECTORY"), "{toc}");
    for u in forum.uploads() {
        let got = std::fs::read(x.path().join("uploads/default").join(&u.path)).unwrap();
        assert_eq!(
            hex::encode(sha1::Sha1::digest(&got)),
            u.content_sha1,
            "{}",
            u.path
        );
    }
    let report = peel_round_trip(b);
    assert!(!report.stored_fallback, "{report:?}");
}

#[test]
fn current_database_only_tar_holds_only_db() {
    let (work, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = Options {
        with_uploads: false,
        ..tiny(52)
    };
    let forum = Forum::create(&opts, work.path()).unwrap();
    let files = write_backups(&forum, out.path(), &[Format::B]).unwrap();
    let b = &files[0].path;
    assert!(!files[0].with_uploads);
    assert!(name_of(b).ends_with(&format!("-v2026-1-0-latest-{}.tar", forum.migration())));
    let names = tar_names(b);
    assert!(
        names.iter().all(|n| n == "db" || n.starts_with("db/")),
        "{names:?}"
    );
    assert!(names.contains(&"db/toc.dat".to_string()));
    let (_, trailer) = headers(&std::fs::read(b).unwrap());
    assert_eq!(trailer, 1024);
    peel_round_trip(b);
}

#[test]
fn s3_uploads_are_grouped_files_and_hard_links_in_both_generations() {
    let (work, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut opts = Options {
        uploads_on_s3: true,
        include_s3_uploads: true,
        ..tiny(53)
    };
    opts.size.uploads = 60; // enough for several duplicates
    let forum = Forum::create(&opts, work.path()).unwrap();
    let dups = duplicates(&forum);
    assert!(dups > 0, "the test forum should have duplicate uploads");
    // Upload rows carry S3 URLs; nothing is stored locally.
    let urls = forum
        .cluster()
        .psql(
            dvault_sim::DATABASE,
            "SELECT url FROM uploads ORDER BY id LIMIT 1;",
        )
        .unwrap();
    assert!(
        urls.starts_with("//forum-uploads.s3.dualstack.us-east-1.amazonaws.com/original/1X/"),
        "{urls}"
    );
    let files = write_backups(&forum, out.path(), &[Format::A, Format::B]).unwrap();
    let get = |f: Format| files.iter().find(|x| x.format == f).unwrap().path.clone();
    // Each backup first records where the uploads live (Discourse's update_metadata).
    let meta = forum
        .cluster()
        .psql(
            dvault_sim::DATABASE,
            "SELECT name, value FROM backup_metadata ORDER BY id;",
        )
        .unwrap();
    assert!(
        meta.contains("s3_base_url|//forum-uploads.s3.dualstack.us-east-1.amazonaws.com\n"),
        "{meta}"
    );

    // Current: files with mode 0644, duplicates as hard links to the group's first file, no
    // folder entries for them (the writer adds only the files).
    let b = get(Format::B);
    let (hs, trailer) = headers(&std::fs::read(&b).unwrap());
    assert_eq!(trailer, 1024);
    let ups: Vec<_> = hs
        .iter()
        .filter(|h| h.name.starts_with("uploads/"))
        .collect();
    assert_eq!(ups.len(), forum.uploads().len());
    assert!(ups.iter().all(|h| h.typeflag != b'5'));
    assert!(ups
        .iter()
        .all(|h| h.mode == 0o644 && h.uid == 1000 && h.gid == 1000));
    let links: Vec<_> = ups.iter().filter(|h| h.typeflag == b'1').collect();
    assert_eq!(links.len(), dups);
    for l in &links {
        let target = ups.iter().position(|h| h.name == l.linkname).unwrap();
        let me = ups.iter().position(|h| h.name == l.name).unwrap();
        assert!(target < me && ups[target].typeflag == b'0', "{l:?}");
    }
    let verbose = tar_verbose(&b);
    assert_eq!(
        verbose.iter().filter(|l| l.contains(" link to ")).count(),
        dups
    );
    assert!(verbose
        .iter()
        .filter(|l| l.contains(" uploads/"))
        .all(|l| l.starts_with("-rw-r--r-- 1000/1000 ") || l.starts_with("hrw-r--r-- 1000/1000 ")));

    // Older: the S3 uploads come in a second append, folders included, duplicates as GNU tar's
    // hard links; there are no local uploads, so no first uploads append.
    let a = get(Format::A);
    assert!(name_of(&a).ends_with(&format!("-v{}.tar.gz", forum.migration())));
    let names = tar_names(&a);
    assert_eq!(names[0], "dump.sql.gz");
    assert_eq!(names[1], "uploads/default/");
    let verbose = tar_verbose(&a);
    assert_eq!(
        verbose.iter().filter(|l| l.contains(" link to ")).count(),
        dups
    );

    for f in [&a, &b] {
        let x = tempfile::tempdir().unwrap();
        let flags = if f == &a { "-xzf" } else { "-xf" };
        sh(Command::new("tar")
            .arg(flags)
            .arg(f)
            .arg("-C")
            .arg(x.path()));
        for u in forum.uploads() {
            let got = std::fs::read(x.path().join("uploads/default").join(&u.path)).unwrap();
            assert_eq!(
                hex::encode(sha1::Sha1::digest(&got)),
                u.content_sha1,
                "{}",
                u.path
            );
        }
        peel_round_trip(f);
    }
}

#[test]
fn thumbnails_are_in_backups_only_when_included() {
    let (work, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = Options {
        include_thumbnails: true,
        ..tiny(54)
    };
    let forum = Forum::create(&opts, work.path()).unwrap();
    assert!(forum
        .public_dir()
        .join("uploads/default/optimized")
        .is_dir());
    let files = write_backups(&forum, out.path(), &[Format::A, Format::B]).unwrap();
    for f in &files {
        let names = tar_names(&f.path);
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("uploads/default/optimized/")),
            "{}: {names:?}",
            f.path.display()
        );
        peel_round_trip(&f.path);
    }
}

#[test]
fn older_generation_files_round_trip_through_peel() {
    let (work, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let forum = Forum::create(&tiny(55), work.path()).unwrap();
    let files = write_backups(&forum, out.path(), &[Format::A, Format::Sql]).unwrap();
    for f in &files {
        let report = peel_round_trip(&f.path);
        assert!(!report.stored_fallback, "{}: {report:?}", f.path.display());
    }
    // GNU tar's own layout: directories with a trailing slash, read in directory order.
    let a = &files.iter().find(|f| f.format == Format::A).unwrap().path;
    let names = tar_names(a);
    let expected: Vec<String> = readdir_order(
        &forum.public_dir().join("uploads/default"),
        "uploads/default",
        Some("uploads/default/optimized"),
    )
    .into_iter()
    .map(|n| {
        let dir = forum.public_dir().join(&n).is_dir();
        if dir {
            format!("{n}/")
        } else {
            n
        }
    })
    .collect();
    assert_eq!(names[0], "dump.sql.gz");
    assert_eq!(names[1..], expected[..]);
}

#[test]
fn s3_forums_give_the_same_bytes_for_the_same_seed() {
    let run = |seed| {
        let (work, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let opts = Options {
            uploads_on_s3: true,
            include_s3_uploads: true,
            pg_dump_jobs: 2,
            ..tiny(seed)
        };
        let mut forum = Forum::create(&opts, work.path()).unwrap();
        forum.next_day().unwrap();
        let files = write_backups(&forum, out.path(), &[Format::A, Format::B]).unwrap();
        let sums: Vec<_> = files
            .iter()
            .map(|f| (name_of(&f.path), sha256(&f.path)))
            .collect();
        (sums, out)
    };
    let (first, _o1) = run(56);
    let (second, _o2) = run(56);
    assert_eq!(first, second);
    let (other, _o3) = run(57);
    assert_ne!(
        first[1].1, other[1].1,
        "a different seed must change the files"
    );
}
