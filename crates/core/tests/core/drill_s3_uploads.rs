//! The drill checks S3-stored uploads that a backup holds: a format-A backup made the way
//! Discourse's `creator.rb` makes one with `include_s3_uploads_in_backups` (real pg_dump, GNU
//! tar, gzip): the local uploads appended with `--dereference`, then the uploads downloaded
//! from S3 appended in a second `tar --append` of `uploads/<db>` without `--dereference`, a
//! duplicate (same `original_sha1`) as a hard link. Rows whose S3 url maps to a file in the
//! backup are checked by SHA-1; only the row whose file is absent is "not checked".

use std::path::Path;
use std::process::Command;

use dvault_core::drill::{self, DrillInput, DrillOptions, PostgresTarget};
use dvault_core::postgres::TempCluster;
use sha1::Digest as _;

fn sha1_hex(data: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(data))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

#[test]
fn s3_stored_uploads_in_the_backup_are_checked_and_only_absent_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let local = b"local upload".as_slice();
    let remote = b"an image stored on S3".as_slice();
    let (local_sha, remote_sha) = (sha1_hex(local), sha1_hex(remote));
    let tampered_sha = sha1_hex(b"what the row says");
    let s3 = "//forum-uploads.s3.dualstack.us-east-1.amazonaws.com";
    let rows = [
        format!("(1, '/uploads/default/original/1X/{local_sha}.txt', '{local_sha}', NULL)"),
        format!("(2, '{s3}/original/1X/{remote_sha}.png', '{remote_sha}', NULL)"),
        // A duplicate of upload 2 under another path: a hard link in the archive.
        format!("(3, '{s3}/original/1X/copy.png', '{remote_sha}', NULL)"),
        // Its download failed or it was deleted from S3: not in the backup.
        format!("(4, '{s3}/original/1X/absent.png', '{remote_sha}', NULL)"),
        // In the backup with other bytes than the row records.
        format!("(5, '{s3}/original/1X/tampered.png', '{tampered_sha}', NULL)"),
    ];

    let cluster = TempCluster::start().unwrap();
    cluster.create_database("forum").unwrap();
    cluster
        .psql(
            "forum",
            &format!(
                "CREATE TABLE uploads (id serial PRIMARY KEY, url varchar NOT NULL, \
                 sha1 varchar(40), original_sha1 varchar);
                 INSERT INTO uploads (id, url, sha1, original_sha1) VALUES {};",
                rows.join(", ")
            ),
        )
        .unwrap();
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let dump = work.join("dump.sql.gz");
    cluster
        .pg_dump([
            "--schema=public",
            "--file",
            dump.to_str().unwrap(),
            "--no-owner",
            "--no-privileges",
            "--compress=4",
            "forum",
        ])
        .unwrap();
    drop(cluster);

    let public = d.join("public");
    write(
        &public.join(format!("uploads/default/original/1X/{local_sha}.txt")),
        local,
    );
    // What creator.rb downloads into its tmp directory: the first of a group as a file, the
    // duplicates hard-linked to it.
    let tmp = d.join("tmp");
    let first = tmp.join(format!("uploads/default/original/1X/{remote_sha}.png"));
    write(&first, remote);
    std::fs::hard_link(&first, tmp.join("uploads/default/original/1X/copy.png")).unwrap();
    write(
        &tmp.join("uploads/default/original/1X/tampered.png"),
        b"other bytes",
    );

    let backup = d.join("forum-2025-05-01-033000-v20250401000000.tar.gz");
    let tar = backup.with_extension("");
    run(Command::new("tar")
        .args(["--create", "--files-from", "/dev/null", "--file"])
        .arg(&tar));
    run(Command::new("tar")
        .args(["--append", "--dereference", "--file"])
        .arg(&tar)
        .arg("-C")
        .arg(&work)
        .arg("dump.sql.gz"));
    run(Command::new("tar")
        .args(["--append", "--dereference", "--file"])
        .arg(&tar)
        .arg("-C")
        .arg(&public)
        .arg("uploads/default"));
    run(Command::new("tar")
        .args(["--append", "--file"])
        .arg(&tar)
        .arg("-C")
        .arg(&tmp)
        .arg("uploads/default"));
    run(Command::new("gzip").args(["-5"]).arg(&tar));

    let report = drill::drill(
        &DrillInput::File {
            path: backup.clone(),
            expected_sha256: None,
        },
        &DrillOptions {
            target: PostgresTarget::Temp,
            work_dir: None,
            cap: Default::default(),
        },
    )
    .expect("the drill runs");
    let u = &report.uploads;
    assert!(u.checked, "{}", report.summary());
    assert_eq!(u.rows, 5);
    assert_eq!(u.local_rows, 1);
    assert_eq!(u.remote_rows, 4);
    assert_eq!(u.remote_in_backup, 3, "{u:?}");
    assert_eq!(
        u.sha1_verified, 3,
        "local, S3 file and its hard link: {u:?}"
    );
    assert_eq!(u.not_checked, 1, "only the absent file: {u:?}");
    assert!(!report.ok, "the tampered S3 upload fails the drill");
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(
        report.failures[0].contains("upload 5")
            && report.failures[0].contains("uploads/default/original/1X/tampered.png"),
        "{}",
        report.failures[0]
    );
    let summary = report.summary();
    assert!(summary.contains("1 not checked"), "{summary}");
}
