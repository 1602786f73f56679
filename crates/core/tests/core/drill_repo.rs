//! Drilling a snapshot of a real restic-format repository: the newest snapshot passes, and a
//! damaged pack file makes the drill fail naming the snapshot and the repository error.

use std::path::{Path, PathBuf};

use dvault_core::drill::{self, DrillOptions, PostgresTarget};
use dvault_core::repo::{InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::snapshot::BackupMeta;

fn opts() -> DrillOptions {
    DrillOptions {
        target: PostgresTarget::Temp,
        work_dir: None,
        cap: Default::default(),
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn drill_of_the_newest_snapshot_passes_and_a_damaged_pack_fails_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sim_opts = dvault_sim::Options {
        formats: vec![dvault_sim::Format::A],
        ..dvault_sim::Options::small(11)
    };
    let files = dvault_sim::generate(&sim_opts, &tmp.path().join("backups")).unwrap();
    let backup = &files[0].path;
    let repo_dir = tmp.path().join("repo");
    let mut cfg = RepoConfig::new(Location::parse(repo_dir.to_str().unwrap()).unwrap());
    cfg.cache_dir = Some(tmp.path().join("cache"));
    let pw = Password::new("drill test password");
    let repo = Repo::init(&cfg, &pw, &InitOptions::default(), None).unwrap();
    let meta = BackupMeta::for_file(backup, "test").unwrap();
    repo.backup_file(backup, &meta).unwrap();

    let report = drill::drill_snapshot(&repo, None, &opts()).unwrap();
    assert!(report.ok, "{}", report.summary());
    assert_eq!(
        report.expected_sha256.as_deref(),
        Some(meta.sha256.as_str())
    );
    assert_eq!(report.sha256, meta.sha256);
    assert_eq!(report.backup, meta.file_name);
    let short = report.snapshot.clone().expect("snapshot id reported");
    assert!(report.uploads.sha1_verified >= 30);

    // Damage every pack file in the middle (the tree and data blobs live there).
    let mut packs = Vec::new();
    files_under(&repo_dir.join("data"), &mut packs);
    assert!(!packs.is_empty());
    for p in &packs {
        let mut data = std::fs::read(p).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        std::fs::write(p, &data).unwrap();
    }
    // Reopen without the cache, so nothing is served from a good copy.
    let cfg = RepoConfig::new(Location::parse(repo_dir.to_str().unwrap()).unwrap());
    let mut cfg = cfg;
    cfg.cache_dir = Some(tmp.path().join("cache2"));
    let repo = Repo::open(&cfg, &pw, None).unwrap();
    let report = drill::drill_snapshot(&repo, Some(&short), &opts()).unwrap();
    assert!(!report.ok);
    let msg = report.failures.join("\n");
    assert!(
        msg.contains(&format!("snapshot {short}")) && msg.contains("out of the repository failed"),
        "{msg}"
    );
}
