//! The backups-folder source picks the newest complete Discourse backup of any format, passes
//! over files still being written (by a real process) and never touches the files.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use dvault_core::discourse::Format;
use dvault_core::source::FolderSource;

fn put(dir: &Path, name: &str, bytes: &[u8], age_secs: u64) {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let t = SystemTime::now() - Duration::from_secs(age_secs);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn every_name_discourse_writes_is_listed_and_unusable_ones_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Names as Discourse wrote them over the years (see crates/core/src/discourse/name.rs).
    put(d, "forum-2015-06-01-033012.tar.gz", b"v1.5", 900);
    put(
        d,
        "-2019-01-02-030405-v20190101000000.tar.gz",
        b"empty title",
        800,
    );
    put(
        d,
        "forum-2024-03-01-033012-v20240220010101.sql.gz",
        b"sql",
        700,
    );
    put(
        d,
        "my-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar",
        b"current",
        600,
    );
    // `discourse backup before-upgrade`: no time in the name, so the mtime orders it.
    put(
        d,
        "before-upgrade-v2026-9-0-latest-20260923080644.tar",
        b"chosen",
        5,
    );
    // Being written, or not a backup at all: left out.
    put(
        d,
        "my-forum-2026-09-26-120000-v2026-9-0-latest-20260923080644.tar.partial",
        b"p",
        0,
    );
    put(d, "notes.txt", b"n", 0);
    // Named like a backup, but no Discourse writes this name.
    put(d, "forum-backup.tar.gz", b"?", 400);
    let src = FolderSource::new(d, Duration::ZERO);
    let listing = src.scan().unwrap();
    let names: Vec<&str> = listing
        .backups
        .iter()
        .map(|e| e.name.file_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "forum-2015-06-01-033012.tar.gz",
            "-2019-01-02-030405-v20190101000000.tar.gz",
            "forum-2024-03-01-033012-v20240220010101.sql.gz",
            "my-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar",
            "before-upgrade-v2026-9-0-latest-20260923080644.tar",
        ]
    );
    let chosen = &listing.backups[4].name;
    assert!(chosen.chosen && chosen.time_from_mtime);
    assert_eq!(listing.backups[3].name.format, Format::Tar);
    assert_eq!(listing.unusable.len(), 1, "{:?}", listing.unusable);
    assert!(listing.unusable[0].origin.ends_with("forum-backup.tar.gz"));
    let sel = src.newest_complete().unwrap();
    assert_eq!(
        sel.newest.unwrap().name.file_name,
        "before-upgrade-v2026-9-0-latest-20260923080644.tar"
    );
    assert_eq!(sel.unusable.len(), 1);
}

#[test]
fn newest_complete_backup_wins_across_formats_and_partials_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(
        d,
        "forum-2024-03-01-033012-v20240220010101.tar.gz",
        b"old A",
        300,
    );
    put(
        d,
        "forum-2024-03-02-033012-v20240220010101.sql.gz",
        b"sql",
        200,
    );
    put(
        d,
        "forum-2024-03-03-033012-v3.2.0-20240220010101.tar",
        b"B",
        100,
    );
    put(
        d,
        "forum-2024-03-04-033012-v20240220010101.tar.gz.partial",
        b"p",
        0,
    );
    put(
        d,
        "forum-2024-03-05-033012-v20240220010101.tar",
        b"A in progress",
        0,
    );
    let src = FolderSource::new(d, Duration::from_millis(50));
    let listed: Vec<String> = src
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.name.file_name)
        .collect();
    assert_eq!(
        listed,
        [
            "forum-2024-03-01-033012-v20240220010101.tar.gz",
            "forum-2024-03-02-033012-v20240220010101.sql.gz",
            "forum-2024-03-03-033012-v3.2.0-20240220010101.tar",
        ]
    );
    let sel = src.newest_complete().unwrap();
    let newest = sel.newest.unwrap();
    assert_eq!(
        newest.name.file_name,
        "forum-2024-03-03-033012-v3.2.0-20240220010101.tar"
    );
    assert_eq!(newest.size, 1);
    assert!(sel.passed_over.is_empty());
}

#[test]
fn a_tar_gz_whose_tar_still_exists_is_not_finished() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(
        d,
        "forum-2024-03-01-033012-v20240220010101.tar.gz",
        b"done",
        300,
    );
    // gzip is turning the .tar into the .tar.gz: both exist until gzip ends.
    put(d, "forum-2024-03-02-033012-v20240220010101.tar", b"tar", 10);
    put(
        d,
        "forum-2024-03-02-033012-v20240220010101.tar.gz",
        b"half",
        10,
    );
    let sel = FolderSource::new(d, Duration::ZERO)
        .newest_complete()
        .unwrap();
    assert_eq!(
        sel.newest.unwrap().name.file_name,
        "forum-2024-03-01-033012-v20240220010101.tar.gz"
    );
    assert_eq!(sel.passed_over.len(), 1);
    assert!(
        sel.passed_over[0].reason.contains("gzip is still running"),
        "{:?}",
        sel.passed_over
    );
}

#[test]
fn a_file_still_growing_is_passed_over_until_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(
        d,
        "forum-2024-03-01-033012-v20240220010101.sql.gz",
        b"complete",
        300,
    );
    let growing = d.join("forum-2024-03-02-033012-v20240220010101.sql.gz");
    std::fs::write(&growing, b"").unwrap();
    // A real writer process appending, as pg_dump does while Discourse makes a backup.
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for i in $(seq 1 200); do printf 0123456789 >> '{}'; sleep 0.02; done",
            growing.display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let src = FolderSource::new(d, Duration::from_millis(300));
    let sel = src.newest_complete().unwrap();
    assert_eq!(
        sel.newest.as_ref().unwrap().name.file_name,
        "forum-2024-03-01-033012-v20240220010101.sql.gz"
    );
    assert_eq!(sel.passed_over.len(), 1, "{:?}", sel.passed_over);
    assert!(sel.passed_over[0].reason.contains("still growing"));
    writer.wait().unwrap();
    let sel = src.newest_complete().unwrap();
    let newest = sel.newest.unwrap();
    assert_eq!(
        newest.name.file_name,
        "forum-2024-03-02-033012-v20240220010101.sql.gz"
    );
    assert_eq!(newest.size, 2000);
}

#[test]
fn listing_never_changes_the_source_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(
        d,
        "forum-2024-03-01-033012-v20240220010101.tar.gz",
        b"abc",
        300,
    );
    let p = d.join("forum-2024-03-01-033012-v20240220010101.tar.gz");
    let before = std::fs::metadata(&p).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    let src = FolderSource::new(d, Duration::from_millis(10));
    src.newest_complete().unwrap().newest.unwrap();
    let after = std::fs::metadata(&p).unwrap();
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    assert_eq!(std::fs::read(&p).unwrap(), b"abc");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
}

#[test]
fn an_unreadable_folder_is_an_error_naming_it() {
    let e = FolderSource::new("/nonexistent/dvault-backups", Duration::ZERO)
        .newest_complete()
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/dvault-backups: cannot list backups folder"),
        "{e}"
    );
}
