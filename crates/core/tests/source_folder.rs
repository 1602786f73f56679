//! The backups-folder source picks the newest complete Discourse backup of any format, passes
//! over files still being written (by a real process) and never touches the files.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use dvault_core::source::{parse_backup_name, BackupKind, FolderSource};

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
fn names_of_every_discourse_format_are_recognised_and_others_are_not() {
    let a = parse_backup_name("my-forum-2024-03-01-033012-v20240220010101.tar.gz").unwrap();
    assert_eq!(a.kind, BackupKind::TarGz);
    assert_eq!(a.site, "my-forum");
    assert_eq!(a.timestamp, "2024-03-01-033012");
    assert_eq!(a.migration, "20240220010101");
    assert_eq!(a.version, None);
    let s = parse_backup_name("forum-2024-03-01-033012-v20240220010101.sql.gz").unwrap();
    assert_eq!(s.kind, BackupKind::SqlGz);
    let b = parse_backup_name("forum-2025-11-02-033000-v3.6.0.beta2-20251020120000.tar").unwrap();
    assert_eq!(b.kind, BackupKind::Tar);
    assert_eq!(b.version.as_deref(), Some("3.6.0.beta2"));
    assert_eq!(b.migration, "20251020120000");
    for other in [
        // format A's tar while Discourse is still appending to it
        "forum-2024-03-01-033012-v20240220010101.tar",
        "forum-2024-03-01-033012-v20240220010101.tar.gz.partial",
        ".forum-2024-03-01-033012-v20240220010101.tar.gz.tmp",
        "forum-2024-03-01-033012-v2024022001010.tar.gz",
        "forum-2024-03-01-v20240220010101.tar.gz",
        "notes.txt",
    ] {
        assert_eq!(parse_backup_name(other), None, "{other}");
    }
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
