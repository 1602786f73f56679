//! Restore drills on real Discourse-format backups made here with the real pg_dump, tar and
//! gzip: a small forum-like database (a quoted table name, a readonly trigger into
//! `discourse_functions`, escaped text, sequences, uploads with SHA-1 and a secure upload with
//! `original_sha1`), written as format A (`.tar.gz`), SQL only (`.sql.gz`) and format B (`.tar`
//! with a directory dump and a hard-linked duplicate upload; built in `fixture.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use dvault_core::drill::{self, DrillInput, DrillOptions, DrillReport, PostgresTarget};
use dvault_core::postgres::TempCluster;

mod fixture;

use fixture::{fixture, make_format_a, run, sha1_hex, sha256_file};

fn temp_opts() -> DrillOptions {
    DrillOptions {
        target: PostgresTarget::Temp,
        work_dir: None,
        cap: Default::default(),
    }
}

fn drill_file(path: &Path, expected: Option<String>) -> DrillReport {
    drill::drill(
        &DrillInput::File {
            path: path.to_path_buf(),
            expected_sha256: expected,
        },
        &temp_opts(),
    )
    .expect("the drill runs")
}

fn assert_cluster_gone(report: &DrillReport) {
    let info = report
        .temp_cluster
        .as_ref()
        .expect("a temporary cluster was used");
    assert!(
        !info.data_dir.exists(),
        "data dir {} left behind",
        info.data_dir.display()
    );
    let pid = info.postmaster_pid.expect("postmaster pid was read");
    // Gone, or a zombie waiting for its parent (pg_ctl's child is reparented to init, which
    // reaps it in its own time).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(") ").next().and_then(|r| r.chars().next()));
    assert!(
        matches!(state, None | Some('Z') | Some('X')),
        "postmaster {pid} still running (state {state:?})"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", info.port)).is_err(),
        "something still listens on port {}",
        info.port
    );
}

fn assert_passed(report: &DrillReport) {
    assert!(report.ok, "drill failed:\n{}", report.summary());
    let posts = report
        .tables
        .iter()
        .find(|t| t.name == "public.posts")
        .expect("posts checked");
    assert_eq!(posts.dump_rows, Some(fixture().posts));
    assert_eq!(posts.db_rows, Some(fixture().posts));
    let quoted = report
        .tables
        .iter()
        .find(|t| t.name == "public.\"user\"")
        .unwrap();
    assert_eq!(quoted.db_rows, Some(2));
    let empty = report
        .tables
        .iter()
        .find(|t| t.name == "public.empty_things")
        .unwrap();
    assert_eq!((empty.dump_rows, empty.db_rows), (Some(0), Some(0)));
    assert_eq!(report.tables.len(), 6, "{:?}", report.tables);
    let seq = report
        .sequences
        .iter()
        .find(|s| s.name == "public.uploads_id_seq")
        .expect("uploads_id_seq checked");
    assert_eq!((seq.db_value, seq.db_is_called), (Some(5), Some(true)));
    assert_cluster_gone(report);
}

#[test]
fn drill_passes_on_format_a() {
    let f = fixture();
    let report = drill_file(&f.format_a, Some(sha256_file(&f.format_a)));
    assert_passed(&report);
    assert_eq!(report.format, Some(drill::BackupFormat::TarGz));
    assert_eq!(report.dump.as_deref(), Some("dump.sql.gz"));
    assert!(report.uploads.checked);
    assert_eq!(report.uploads.local_rows, 4);
    assert_eq!(report.uploads.sha1_verified, 4, "{:?}", report.uploads);
    assert_eq!(report.uploads.remote_rows, 1);
}

#[test]
fn drill_passes_on_sql_only_and_skips_upload_files() {
    let f = fixture();
    let report = drill_file(&f.sql_only, Some(sha256_file(&f.sql_only)));
    assert_passed(&report);
    assert_eq!(report.format, Some(drill::BackupFormat::SqlGz));
    assert!(!report.uploads.checked);
    assert!(report
        .uploads
        .note
        .as_deref()
        .unwrap()
        .contains("no uploads"));
}

#[test]
fn drill_passes_on_format_b_directory_dump() {
    let f = fixture();
    let report = drill_file(&f.format_b, Some(sha256_file(&f.format_b)));
    assert_passed(&report);
    assert_eq!(report.format, Some(drill::BackupFormat::Tar));
    assert_eq!(report.uploads.sha1_verified, 4, "{:?}", report.uploads);
}

#[test]
fn drill_fails_on_sha256_mismatch_with_the_record() {
    let f = fixture();
    let wrong = "00".repeat(32);
    let report = drill_file(&f.sql_only, Some(wrong.clone()));
    assert!(!report.ok);
    let actual = sha256_file(&f.sql_only);
    assert!(
        report
            .failures
            .iter()
            .any(|m| m.contains(&actual) && m.contains(&wrong)),
        "{:?}",
        report.failures
    );
}

/// Rewrites the plain dump with `edit` and writes it as a new SQL-only backup.
fn edited_sql_backup(dir: &Path, edit: impl FnOnce(&str) -> String) -> PathBuf {
    let text = String::from_utf8(fixture().dump_sql.clone()).unwrap();
    let edited = edit(&text);
    assert_ne!(text, edited, "the edit changed nothing");
    let path = dir.join("forum-2026-01-01-033000-v20250101000000.sql.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::new(4),
    );
    gz.write_all(edited.as_bytes()).unwrap();
    gz.finish().unwrap();
    path
}

#[test]
fn drill_fails_when_a_dump_row_is_removed() {
    // The stored file is checked against the snapshot's SHA-256: a dump with a row removed
    // (and so a self-consistent COPY block) is caught there.
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = edited_sql_backup(dir.path(), |t| {
        let mut out = String::new();
        let mut dropped = false;
        for line in t.split_inclusive('\n') {
            if !dropped && line.starts_with("7\t") && line.contains("line one") {
                dropped = true;
                continue;
            }
            out.push_str(line);
        }
        out
    });
    let report = drill_file(&path, Some(sha256_file(&f.sql_only)));
    assert!(!report.ok);
    assert!(
        report.failures[0].contains("SHA-256") && report.failures[0].contains("snapshot records"),
        "{:?}",
        report.failures
    );
    // The database still loaded and is consistent with the damaged dump itself.
    let posts = report
        .tables
        .iter()
        .find(|t| t.name == "public.posts")
        .unwrap();
    assert_eq!(posts.db_rows, Some(f.posts - 1));
    assert_cluster_gone(&report);
}

#[test]
fn drill_fails_with_table_and_line_when_the_dump_is_truncated_in_a_copy_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_sql_backup(dir.path(), |t| {
        let at = t.find("COPY public.posts ").expect("posts COPY");
        let cut = at + t[at..].find("\n5\t").expect("row 5");
        t[..cut + 1].to_string()
    });
    let report = drill_file(&path, None);
    assert!(!report.ok);
    let msg = report.failures.join("\n");
    assert!(
        msg.contains("public.posts") && msg.contains("truncated") && msg.contains("line"),
        "{msg}"
    );
    assert_cluster_gone(&report);
}

#[test]
fn drill_fails_naming_psql_error_and_line_when_a_row_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_sql_backup(dir.path(), |t| {
        t.replacen("\n2\tuser2\n", "\n2\tuser2\textra\n", 1)
    });
    let report = drill_file(&path, None);
    assert!(!report.ok);
    let msg = report.failures.join("\n");
    assert!(
        msg.contains("loading") && msg.contains("extra data after last expected column"),
        "{msg}"
    );
    let line = fixture()
        .dump_sql
        .split(|&b| b == b'\n')
        .position(|l| l == b"2\tuser2")
        .unwrap()
        + 1;
    assert!(
        msg.contains(&format!(
            "row 2 of the COPY block of public.users: line {line} of the dump"
        )),
        "line {line} not named: {msg}"
    );
    assert_cluster_gone(&report);
}

/// Builds a format A backup from the fixture's dump and a copy of its uploads changed by `edit`.
fn edited_format_a(dir: &Path, edit: impl FnOnce(&Path)) -> PathBuf {
    let f = fixture();
    let public = dir.join("public");
    run(Command::new("cp").arg("-a").arg(&f.public).arg(&public));
    edit(&public);
    let dump = dir.join("dump.sql.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&dump).unwrap(),
        flate2::Compression::new(4),
    );
    gz.write_all(&f.dump_sql).unwrap();
    gz.finish().unwrap();
    let out = dir.join("forum-2026-01-01-033000-v20250101000000.tar.gz");
    make_format_a(&out, &dump, &public).unwrap();
    out
}

#[test]
fn drill_fails_naming_a_missing_upload_file() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let victim = f.upload_paths[1].clone();
    let path = edited_format_a(dir.path(), |public| {
        std::fs::remove_file(public.join(&victim)).unwrap();
    });
    let report = drill_file(&path, None);
    assert!(!report.ok);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let msg = &report.failures[0];
    assert!(
        msg.starts_with("upload 2 (/") && msg.contains(&victim) && msg.contains("missing"),
        "{msg}"
    );
    assert_cluster_gone(&report);
}

#[test]
fn drill_fails_naming_an_altered_upload_file_and_both_sha1() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    // The secure upload (row 4): its row records the real SHA-1 in original_sha1.
    let victim = f.upload_paths[3].clone();
    let path = edited_format_a(dir.path(), |public| {
        let p = public.join(&victim);
        let mut data = std::fs::read(&p).unwrap();
        data[10] ^= 1;
        std::fs::write(&p, &data).unwrap();
    });
    let report = drill_file(&path, None);
    assert!(!report.ok);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let msg = &report.failures[0];
    let altered = sha1_hex(&std::fs::read(dir.path().join("public").join(&victim)).unwrap());
    let original = victim.rsplit('/').next().unwrap().trim_end_matches(".png");
    assert!(
        msg.starts_with("upload 4 (") && msg.contains(&altered) && msg.contains(original),
        "{msg}"
    );
}

#[test]
fn drill_loads_into_a_given_server_and_drops_its_database() {
    let f = fixture();
    let server = TempCluster::start().unwrap();
    let opts = DrillOptions {
        target: PostgresTarget::Url(server.url("postgres")),
        work_dir: None,
        cap: Default::default(),
    };
    let report = drill::drill(
        &DrillInput::File {
            path: f.format_b.clone(),
            expected_sha256: None,
        },
        &opts,
    )
    .unwrap();
    assert!(report.ok, "{}", report.summary());
    assert!(report.database.starts_with("dvault_drill_"));
    assert!(report.temp_cluster.is_none());
    let dbs = server
        .psql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
        .unwrap();
    assert!(
        !dbs.contains("dvault_drill_"),
        "drill database left behind: {dbs}"
    );
}

#[test]
fn drill_of_a_peeled_tree_rebuilds_and_fails_when_its_dump_is_edited() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    peel::tree::expand_to_dir(&f.format_a, &tree, &peel::ExpandOptions::default()).unwrap();
    let report = drill::drill(&DrillInput::Tree(tree.clone()), &temp_opts()).unwrap();
    assert!(report.ok, "{}", report.summary());
    assert_eq!(
        report.expected_sha256.as_deref(),
        Some(sha256_file(&f.format_a).as_str())
    );
    assert_eq!(
        report.backup,
        f.format_a.file_name().unwrap().to_str().unwrap()
    );
    // Remove one row from the plain dump in the tree.
    let dump = find_file(&tree, "dump.sql").unwrap_or_else(|| {
        panic!(
            "no dump.sql in the tree: {}",
            String::from_utf8_lossy(&Command::new("find").arg(&tree).output().unwrap().stdout)
        )
    });
    let text = std::fs::read_to_string(&dump).unwrap();
    let edited: String = text
        .split_inclusive('\n')
        .filter(|l| !(l.starts_with("7\t") && l.contains("line one")))
        .collect();
    assert_eq!(
        text.len() - edited.len(),
        text.lines().find(|l| l.starts_with("7\t")).unwrap().len() + 1
    );
    std::fs::write(&dump, edited).unwrap();
    let report = drill::drill(&DrillInput::Tree(tree.clone()), &temp_opts()).unwrap();
    assert!(!report.ok);
    let msg = report.failures.join("\n");
    assert!(
        msg.contains("rebuilding the original")
            && msg.contains("dump.sql")
            && msg.contains("bytes"),
        "{msg}"
    );
    // An edit that keeps the size is caught when the rebuild recompresses the dump (or, failing
    // that, by the SHA-256 of the whole file).
    std::fs::write(&dump, text.replacen("line one", "line 0ne", 1)).unwrap();
    let report = drill::drill(&DrillInput::Tree(tree), &temp_opts()).unwrap();
    assert!(!report.ok);
    let msg = report.failures.join("\n");
    assert!(
        msg.contains("rebuilding the original")
            && (msg.contains("SHA-256") || msg.contains("the recipe says")),
        "{msg}"
    );
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let e = e.ok()?;
        let p = e.path();
        if p.is_dir() {
            if let Some(found) = find_file(&p, name) {
                return Some(found);
            }
        } else if p.file_name().and_then(|n| n.to_str()) == Some(name) {
            return Some(p);
        }
    }
    None
}
