//! `forget --prune` frees what it says and leaves what restic would leave: after it, the
//! reported bytes freed equal the shrink of `data/` measured on disk, the plan's own figure
//! is within the pack headers of it, the stock `restic prune --dry-run` finds nothing left to
//! repack, and `restic check` is clean.
//!
//! The backups are built so that the oldest kept pack is partly used: each day's backup holds
//! uploads only that day has, and uploads every day has (stored once, in the first day's
//! pack). Keeping the last two days leaves the first pack half unused, which restic repacks
//! (its `--max-unused 5%`) and rustic_core's default 10 % repack limit did not.

use crate::repo_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use repo_support::{noise, sql_text, Env};

/// A format-A backup (`.tar.gz` of dump.sql.gz and uploads) for `day`: 4 uploads of 64 KiB
/// every day shares and 4 of its own.
fn backup_of_day(dir: &Path, day: u64) -> std::path::PathBuf {
    let work = dir.join(format!("work-{day}"));
    let uploads = work.join("uploads/default/original/1X");
    fs::create_dir_all(&uploads).unwrap();
    fs::write(work.join("dump.sql"), sql_text(1500, day)).unwrap();
    assert!(Command::new("gzip")
        .args(["-4", "-n"])
        .arg(work.join("dump.sql"))
        .status()
        .unwrap()
        .success());
    for i in 0..4u64 {
        fs::write(
            uploads.join(format!("shared{i}.jpg")),
            noise(1000 + i, 65536),
        )
        .unwrap();
        fs::write(
            uploads.join(format!("day{day}-{i}.jpg")),
            noise(day * 100 + i, 65536),
        )
        .unwrap();
    }
    let tar = dir.join(format!("b{day}.tar"));
    assert!(Command::new("tar")
        .current_dir(&work)
        .args(["--format=gnu", "-cf"])
        .arg(&tar)
        .args(["dump.sql.gz", "uploads"])
        .status()
        .unwrap()
        .success());
    let out = dir.join(format!(
        "forum-2024-03-{:02}-033000-v20240229123456.tar.gz",
        day
    ));
    let gz = Command::new("gzip")
        .args(["-5", "-c"])
        .arg(&tar)
        .output()
        .unwrap();
    assert!(gz.status.success());
    fs::write(&out, gz.stdout).unwrap();
    fs::remove_file(&tar).unwrap();
    fs::remove_dir_all(&work).unwrap();
    out
}

/// Total size of the files under `dir`.
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            size_of(&e.path())
        } else {
            m.len()
        };
    }
    total
}

fn restic(env: &Env, repo: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .arg("--no-cache")
        .env("RESTIC_PASSWORD_FILE", &env.password_file)
        .args(args)
        .output()
        .expect("restic (Debian package `restic`) is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The number of blobs on restic prune's "to repack:" line.
fn restic_to_repack(dry_run: &str) -> u64 {
    let line = dry_run
        .lines()
        .find(|l| l.trim_start().starts_with("to repack:"))
        .unwrap_or_else(|| panic!("no `to repack:` line in:\n{dry_run}"));
    line.split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"))
}

#[test]
fn prune_reports_what_it_freed_and_leaves_nothing_restic_would_repack() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let r = repo.to_str().unwrap();
    env.ok(r, &["init"]);
    for day in 1..=6 {
        let f = backup_of_day(env.path(), day);
        assert_eq!(env.backup(r, &f)["outcome"], "stored");
    }
    let data = repo.join("data");
    let before = size_of(&data);
    // Without the audit record (a small pack written after the prune, tested in
    // report_audit.rs), the data folder's change is exactly what the prune says it freed.
    let out = env
        .dvault(r)
        .env("DVAULT_AUDIT", "off")
        .args(["forget", "--keep-last", "2", "--prune", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let after = size_of(&data);
    assert_eq!(report["removed"].as_array().unwrap().len(), 4);
    let prune = &report["prune"];
    let num = |k: &str| {
        prune[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {prune}"))
    };
    assert_eq!(num("pack_bytes_before"), before, "{prune}");
    assert_eq!(num("pack_bytes_after"), after, "{prune}");
    assert_eq!(num("freed_bytes"), before - after, "{prune}");
    assert_eq!(report["pruned_bytes"].as_u64(), Some(before - after));
    assert!(
        num("packs_deleted") >= 3,
        "days 2..4 lose every blob: {prune}"
    );
    assert!(
        num("packs_repacked") >= 1,
        "day 1's pack is half unused: {prune}"
    );
    // The plan counts blob bytes and header entries, a compressed blob's entry 4 bytes short:
    // it may only fall a little short of what the storage freed.
    let planned = num("planned_freed_bytes");
    let freed = before - after;
    let slack = freed.abs_diff(planned);
    assert!(
        planned <= freed && slack * 200 <= freed,
        "plan says {planned}, data/ shrank by {freed}: {slack} bytes apart ({prune})"
    );
    eprintln!("data/ shrank by {freed} bytes, the plan said {planned} ({slack} bytes apart)");
    // 5 % tolerance: at most 5 % of what is left is unused.
    assert!(num("unused_bytes_left") * 20 <= after, "{prune}");

    let (ok, dry) = restic(&env, &repo, &["prune", "--dry-run"]);
    assert!(ok, "{dry}");
    assert_eq!(
        restic_to_repack(&dry),
        0,
        "restic would repack more:\n{dry}"
    );
    let (ok, text) = restic(&env, &repo, &["check", "--read-data"]);
    assert!(ok, "{text}");
    assert!(text.contains("no errors were found"), "{text}");
    // Both kept snapshots restore (the repacked blobs are where the index says).
    for s in env.snapshots(r) {
        let id = s["short_id"].as_str().unwrap();
        let sha = env.restore_sha(r, id);
        assert_eq!(sha, s["meta"]["sha256"].as_str().unwrap());
    }
}
