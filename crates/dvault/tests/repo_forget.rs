//! Retention on a local repository: dry run, forget, prune, and what survives still restores.

mod repo_support;

use repo_support::{make_backups, sha256, Env};

#[test]
fn forget_keeps_by_rule_and_prune_leaves_a_sound_repository() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 9, 50_000);
    for f in &files {
        env.backup(repo, f);
    }
    let err = env.fails(repo, &["forget"]);
    assert!(err.contains("--keep"), "{err}");

    let out = env.ok(
        repo,
        &["forget", "--keep-daily", "1", "--dry-run", "--json"],
    );
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let decisions = dry["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 3);
    assert_eq!(decisions.iter().filter(|d| d["keep"] == true).count(), 1);
    assert_eq!(env.snapshots(repo).len(), 3, "a dry run removes nothing");

    // --keep-within keeps everything made in the last day.
    let out = env.ok(repo, &["forget", "--keep-within", "1d", "--json"]);
    let kept: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(kept["removed"].as_array().unwrap().is_empty(), "{kept}");

    env.ok(repo, &["forget", "--keep-daily", "1", "--prune"]);
    let left = env.snapshots(repo);
    assert_eq!(left.len(), 1);
    env.ok(repo, &["check", "--read-data"]);
    let id = left[0]["short_id"].as_str().unwrap();
    assert_eq!(env.restore_sha(repo, id), sha256(&files[2]));
}
