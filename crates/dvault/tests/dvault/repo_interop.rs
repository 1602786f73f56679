//! The stock `restic` program (Debian's 0.14) reads what dvault writes.

use crate::repo_support;

use std::fs;
use std::process::Command;

use repo_support::{make_backups, sha256, Env};

fn restic(env: &Env, repo: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("restic")
        .env("RESTIC_PASSWORD_FILE", &env.password_file)
        .env("RESTIC_CACHE_DIR", env.path().join("restic-cache"))
        .env_remove("RESTIC_PASSWORD")
        .env_remove("RESTIC_REPOSITORY")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .expect("the restic program (Debian package `restic`) is installed");
    assert!(
        out.status.success(),
        "restic {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn stock_restic_lists_checks_and_restores_a_dvault_repository() {
    let env = Env::new();
    let repo_path = env.path().join("repo");
    let repo = repo_path.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 5, 100_000);
    let mut ids = Vec::new();
    for f in &files {
        let v = env.backup(repo, f);
        ids.push(v["snapshot"]["id"].as_str().unwrap().to_string());
    }

    let out = restic(&env, repo, &["snapshots", "--tag", "dvault", "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 3);
    for (f, id) in files.iter().zip(&ids) {
        let s = listed
            .iter()
            .find(|s| s["id"] == id.as_str())
            .expect("restic lists it");
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(tags.contains(&"dvault"));
        assert!(
            tags.contains(&format!("sha256:{}", sha256(f)).as_str()),
            "{tags:?}"
        );
    }

    restic(&env, repo, &["check", "--read-data"]);

    for (f, id) in files.iter().zip(&ids) {
        let target = env.path().join(format!("restic-restore-{}", &id[..8]));
        restic(
            &env,
            repo,
            &["restore", id, "--target", target.to_str().unwrap()],
        );
        assert!(
            target.join(".peel/recipe.json").is_file(),
            "tree at the snapshot root"
        );
        // The peeled plain data: dump.sql inside format A, the .sql inside .sql.gz, db/ in B.
        let name = f.file_name().unwrap().to_str().unwrap();
        let plain = match name.rsplit_once('.') {
            Some((_, "tar")) => "db/toc.dat".to_string(),
            Some((stem, "gz")) if stem.ends_with(".sql") => stem.to_string(),
            _ => "dump.sql".to_string(),
        };
        // A dump stored with the dedup layout comes back as its layout folder (docs/layout.md).
        let laid_out = target
            .join(dvault_core::layout::LAYOUT_DIR)
            .join(&plain)
            .join("layout.json");
        assert!(
            target.join(&plain).is_file() || laid_out.is_file(),
            "restic restored the peeled {plain}"
        );
        let mut rebuilt = Vec::new();
        let (_, sha) = dvault_core::repo::rebuild_tree(&target, &mut rebuilt).unwrap();
        assert_eq!(sha, sha256(f));
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&rebuilt)),
            sha256(f)
        );
        fs::remove_dir_all(&target).unwrap();
    }
}
