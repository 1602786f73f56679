//! The `dvault-sim` command line.

use std::process::Command;

#[test]
fn cli_writes_the_requested_days_and_formats_with_explicit_counts() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dvault-sim"))
        .arg("--out")
        .arg(out.path())
        .args([
            "--seed", "5", "--days", "1", "--users", "40", "--topics", "30",
        ])
        .args(["--posts", "200", "--uploads", "6", "--formats", "sql,b"])
        .args(["--site", "my-forum", "--start-date", "2025-06-30"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names[0].starts_with("manifest.json"), "{names:?}");
    assert!(names[1].starts_with("my-forum-2025-06-30-0330") && names[1].ends_with(".sql.gz"));
    assert!(
        names[2].starts_with("my-forum-2025-06-30-0330") && names[2].contains("-v2026-1-0-latest-")
    );
    assert!(names[3].starts_with("my-forum-2025-07-01-0330") && names[3].ends_with(".sql.gz"));
    assert!(names[4].ends_with(".tar"));
}

#[test]
fn cli_rejects_an_unknown_format_with_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dvault-sim"))
        .arg("--out")
        .arg(out.path())
        .args(["--formats", "zip"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown backup format \"zip\""));
}

#[test]
fn cli_accepts_a_relative_out_folder_for_format_a() {
    // tar runs in a work folder of its own: a relative --out once made it write elsewhere.
    let cwd = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dvault-sim"))
        .current_dir(cwd.path())
        .args(["--out", "backups", "--formats", "a"])
        .args([
            "--users",
            "20",
            "--topics",
            "10",
            "--posts",
            "40",
            "--uploads",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(cwd.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let tgz = cwd.path().join("backups").join(&names[0]);
    let list = Command::new("tar").arg("-tzf").arg(&tgz).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.lines().any(|l| l == "dump.sql.gz"), "{list}");
}

#[test]
fn cli_writes_a_database_only_current_generation_tar() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dvault-sim"))
        .arg("--out")
        .arg(out.path())
        .args(["--generation", "current", "--without-uploads"])
        .args([
            "--discourse-version",
            "2026.9.0-latest",
            "--site",
            "my-forum",
        ])
        .args([
            "--users",
            "20",
            "--topics",
            "10",
            "--posts",
            "40",
            "--uploads",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tar"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("my-forum-2026-01-01-0330") && names[0].contains("-v2026-9-0-latest-"),
        "{names:?}"
    );
    let list = Command::new("tar")
        .arg("-tf")
        .arg(out.path().join(&names[0]))
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines().all(|l| l == "db" || l.starts_with("db/")),
        "{list}"
    );
}

#[test]
fn cli_refuses_a_format_of_another_generation() {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_dvault-sim"))
        .arg("--out")
        .arg(out.path())
        .args(["--generation", "current", "--formats", "a"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("is not written by the Current generation"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
