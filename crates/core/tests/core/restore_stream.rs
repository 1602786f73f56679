//! A restore rebuilds the original while rustic_core is still restoring later files
//! (`store/restic/restore_stream.rs`): the tree comes back in batches in the order the rebuild
//! reads it. These backups are made by the real `tar` and `gzip`, with 96 MiB of incompressible
//! uploads (three batches and more) listed to tar in an order that is not the sorted one, so
//! rebuild order, the tree's sorted order and the batches all differ.
//!
//! - the restored file has the original's SHA-256 (with a tiny read budget too: see
//!   `dvault::restore_budget`);
//! - a pack missing from a late batch fails the restore naming the pack, leaves no file at the
//!   destination and no scratch behind, and does not hang the waiting rebuild.

use std::path::{Path, PathBuf};
use std::process::Command;

use dvault_core::repo::{BackupOutcome, InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::snapshot::{sha256_file, BackupMeta};
use dvault_testkit::noise;

const PASSWORD: &str = "restore-stream-test";

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap();
    assert!(st.success(), "{cmd:?}: {st}");
}

/// A format-A backup made with the real tools: `dump.sql.gz` (gzip -6 of a COPY dump) and
/// 48 uploads of 2 MiB plus small ones, tarred in a shuffled order and gzipped with `gzip -5`.
fn make_backup(d: &Path) -> PathBuf {
    let work = d.join("work");
    let up = work.join("uploads/default/original/1X");
    std::fs::create_dir_all(&up).unwrap();
    let mut sql = String::from("COPY public.posts (id, raw) FROM stdin;\n");
    for i in 0..20_000 {
        sql.push_str(&format!("{i}\tpost number {i} says {}\n", i * 7919 % 10007));
    }
    sql.push_str("\\.\n");
    std::fs::write(work.join("dump.sql"), sql).unwrap();
    run(Command::new("gzip")
        .args(["-6", "-n"])
        .arg(work.join("dump.sql")));
    let mut names = vec!["dump.sql.gz".to_string()];
    // Upload i goes to position (i * 29) % 48: tar's order is neither sorted nor reversed.
    let mut order: Vec<usize> = (0..48).map(|i| (i * 29) % 48).collect();
    order.dedup();
    for i in order {
        let name = format!("{i:02}{}.bin", "abcdefgh".chars().nth(i % 8).unwrap());
        std::fs::write(up.join(&name), noise(i as u64, 2 << 20)).unwrap();
        std::fs::write(up.join(format!("{name}.txt")), format!("caption {i}\n")).unwrap();
        names.push(format!("uploads/default/original/1X/{name}"));
        names.push(format!("uploads/default/original/1X/{name}.txt"));
    }
    let tar = d.join("forum-2026-01-01-033014-v20250612081530.tar");
    run(Command::new("tar")
        .current_dir(&work)
        .args(["--format=gnu", "-cf"])
        .arg(&tar)
        .args(&names));
    run(Command::new("gzip").args(["-5", "-n"]).arg(&tar));
    d.join("forum-2026-01-01-033014-v20250612081530.tar.gz")
}

fn stored(d: &Path) -> (Repo, PathBuf, String, String) {
    let backup = make_backup(d);
    let mut cfg = RepoConfig::new(Location::Local(d.join("repo")));
    cfg.cache_dir = Some(d.join("cache"));
    cfg.scratch_dir = Some(d.to_path_buf());
    let repo = Repo::init(
        &cfg,
        &Password::new(PASSWORD),
        &InitOptions::default(),
        None,
    )
    .unwrap();
    let meta = BackupMeta::for_file(&backup, "test").unwrap();
    let BackupOutcome::Stored(s) = repo.backup_file(&backup, &meta).unwrap() else {
        panic!("a new repository had the backup already");
    };
    (repo, backup, s.snapshot.id, meta.sha256)
}

#[test]
fn a_restore_in_batches_gives_the_original_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (repo, backup, id, sha) = stored(d);
    let out = d.join("out/restored.tar.gz");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    repo.restore_file(&id, &out).unwrap();
    assert_eq!(sha256_file(&out).unwrap().1, sha);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&backup).unwrap()
    );
    // Nothing of the restore's scratch stays beside the file.
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("restored.tar.gz")]);
}

#[test]
fn a_pack_missing_from_a_late_batch_fails_naming_it_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (repo, _backup, id, _sha) = stored(d);
    // Of the packs of upload data (the large ones: tree packs and the audit trail's are small),
    // the one written last holds the last uploads the backup read (tar order): a late batch of
    // the restore.
    let mut packs: Vec<(std::time::SystemTime, PathBuf)> = walk(&d.join("repo/data"))
        .into_iter()
        .filter(|p| p.metadata().unwrap().len() > 8 << 20)
        .map(|p| (p.metadata().unwrap().modified().unwrap(), p))
        .collect();
    assert!(packs.len() >= 2, "{packs:?}");
    packs.sort();
    let (_, last) = packs.last().unwrap().clone();
    let name = last.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_file(&last).unwrap();
    let out = d.join("out/restored.tar.gz");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let err = repo.restore_file(&id, &out).unwrap_err().to_string();
    assert!(err.contains(&name[..8]), "the pack is not named: {err}");
    assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 0);
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
