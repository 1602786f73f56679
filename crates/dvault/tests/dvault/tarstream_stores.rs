//! The peeled backup as one tar stream (`dvault expand --tar`, `dvault rebuild --tar`), with
//! simulator backups of every Discourse format (a real `pg_dump` of a simulated forum), and
//! through the real borg (`import-tar` / `export-tar`) and the real restic (`backup --stdin` /
//! `dump`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dvault_sim::{BackupFile, Format, Options};
use sha2::{Digest, Sha256};

const DVAULT: &str = env!("CARGO_BIN_EXE_dvault");

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Runs a bash script with `pipefail` (so a failing `dvault` in a pipe fails it); returns stdout.
fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("DVAULT", DVAULT)
        .env("BORG_BASE_DIR", dir.join("borg-home"))
        .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        .env("RESTIC_CACHE_DIR", dir.join("restic-cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Simulator backups: day 0 .. `days`, all three formats.
fn backups(work: &Path, days: u32) -> Vec<BackupFile> {
    let opts = Options {
        days,
        ..Options::small(7)
    };
    dvault_sim::generate(&opts, &work.join("backups")).expect("simulator backups")
}

fn stream_of(work: &Path, f: &BackupFile) -> PathBuf {
    let name = f.path.file_name().unwrap().to_string_lossy();
    let stream = work.join(format!("{name}.stream.tar"));
    sh(
        work,
        &format!(
            "\"$DVAULT\" expand '{}' --tar '{}' > /dev/null",
            f.path.display(),
            stream.display()
        ),
    );
    stream
}

#[test]
fn every_sim_format_round_trips_through_the_tar_stream_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let files = backups(work, 0);
    let formats: Vec<Format> = files.iter().map(|f| f.format).collect();
    assert_eq!(formats.len(), 3, "{formats:?}");
    for f in &files {
        let stream = stream_of(work, f);
        // Same input, stdin and stdout this time: the same bytes (the name is part of the recipe,
        // so the file is given by path).
        let again = work.join("again.tar");
        sh(
            work,
            &format!(
                "\"$DVAULT\" expand '{}' --tar - > '{}' 2> /dev/null",
                f.path.display(),
                again.display()
            ),
        );
        assert_eq!(
            sha256(&stream),
            sha256(&again),
            "{:?}: two expansions differ",
            f.format
        );
        let out = work.join("rebuilt");
        sh(
            work,
            &format!(
                "\"$DVAULT\" rebuild --tar - '{}' < '{}' > /dev/null",
                out.display(),
                stream.display()
            ),
        );
        assert_eq!(sha256(&out), sha256(&f.path), "{:?}", f.format);
        // The stream is an ordinary tar: extracted, it is a tree `dvault rebuild DIR` reads.
        let tree = work.join("tree");
        std::fs::create_dir(&tree).unwrap();
        sh(
            work,
            &format!(
                "tar -xf '{}' -C '{}' && \"$DVAULT\" rebuild '{}' - > /dev/null",
                stream.display(),
                tree.display(),
                tree.display()
            ),
        );
        std::fs::remove_dir_all(&tree).unwrap();
    }
}

/// Deduplicated size of the archive `name` in the borg repository `repo`.
fn borg_added(work: &Path, repo: &Path, name: &str) -> u64 {
    let json = sh(
        work,
        &format!("borg info --json '{}::{name}'", repo.display()),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["archives"][0]["stats"]["deduplicated_size"]
        .as_u64()
        .unwrap()
}

#[test]
fn borg_import_and_export_tar_round_trip_and_a_second_day_adds_little() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let files = backups(work, 1);
    for format in [Format::A, Format::B] {
        let days: Vec<&BackupFile> = files.iter().filter(|f| f.format == format).collect();
        assert_eq!(days.len(), 2);
        let repo = work.join(format!("borg-{format:?}"));
        sh(work, &format!("borg init -e none '{}'", repo.display()));
        let mut added = Vec::new();
        for f in &days {
            let stream = stream_of(work, f);
            let name = format!("day{}", f.day);
            // Small chunks: the test forum is a few MB; borg's default (about 2 MiB chunks)
            // suits real forums of GBs.
            sh(
                work,
                &format!(
                    "borg import-tar --chunker-params buzhash,10,16,12,4095 '{}::{name}' '{}'",
                    repo.display(),
                    stream.display()
                ),
            );
            added.push(borg_added(work, &repo, &name));
            let out = work.join("rebuilt");
            sh(
                work,
                &format!(
                    "borg export-tar '{}::{name}' - | \"$DVAULT\" rebuild --tar - '{}' > /dev/null",
                    repo.display(),
                    out.display()
                ),
            );
            assert_eq!(sha256(&out), sha256(&f.path), "{format:?} day {}", f.day);
        }
        let share = added[1] as f64 / added[0] as f64;
        eprintln!(
            "borg, format {format:?}: day 0 added {} bytes, day 1 added {} bytes ({:.1} %)",
            added[0],
            added[1],
            share * 100.0
        );
        assert!(
            share < 0.35,
            "{format:?}: the second day added {} of the first day's {} bytes",
            added[1],
            added[0]
        );
    }
}

#[test]
fn restic_backup_stdin_and_dump_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let files = backups(work, 0);
    let repo = work.join("restic");
    let pw = work.join("restic-password");
    std::fs::write(&pw, "test password\n").unwrap();
    let env = format!(
        "export RESTIC_REPOSITORY='{}' RESTIC_PASSWORD_FILE='{}';",
        repo.display(),
        pw.display()
    );
    sh(work, &format!("{env} restic init -q"));
    for f in files.iter().filter(|f| f.format != Format::Sql) {
        let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
        let out = work.join("rebuilt");
        sh(
            work,
            &format!(
                "{env} \"$DVAULT\" expand '{}' --tar - 2>/dev/null \
                 | restic backup -q --stdin --stdin-filename '{name}.tar' --tag dvault && \
                 restic dump -q latest '/{name}.tar' | \"$DVAULT\" rebuild --tar - '{}' >/dev/null",
                f.path.display(),
                out.display()
            ),
        );
        assert_eq!(sha256(&out), sha256(&f.path), "{:?}", f.format);
    }
}
