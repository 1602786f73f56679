//! Retention on a local repository: dry run, forget, prune, and what survives still restores.

use crate::repo_support;

use repo_support::{make_backups, sha256, Env};

#[test]
fn forget_keeps_by_rule_and_prune_leaves_a_sound_repository() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    // One backup on each of three days: format A, then SQL-only, then format B.
    let files: Vec<_> = (7..10)
        .enumerate()
        .map(|(i, day)| make_backups(env.path(), day, 50_000).swap_remove(i))
        .collect();
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

    // Snapshot times are the Discourse backups' own times (from the file names, UTC), not
    // when they were stored, so retention counts the days the forum made them.
    let snaps = env.snapshots(repo);
    let mut times: Vec<&str> = snaps.iter().map(|s| s["time"].as_str().unwrap()).collect();
    times.sort();
    assert!(times[0].starts_with("2024-03-0"), "{times:?}");
    assert_eq!(
        times
            .iter()
            .map(|t| &t[..10])
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3
    );

    // --keep-last counts snapshots; --keep-yearly keeps one per year (all three are of 2024;
    // as in restic 0.17, a count larger than the years found also keeps the oldest).
    for (args, kept) in [
        (["--keep-last", "2"], 2),
        (["--keep-yearly", "1"], 1),
        (["--keep-yearly", "5"], 2),
    ] {
        let mut cmd = vec!["forget", "--dry-run", "--json"];
        cmd.extend(args);
        let out = env.ok(repo, &cmd);
        let dry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let decisions = dry["decisions"].as_array().unwrap();
        assert_eq!(
            decisions.iter().filter(|d| d["keep"] == true).count(),
            kept,
            "{args:?}: {dry}"
        );
    }

    // --keep-within keeps everything made within 3 days of the newest snapshot.
    let out = env.ok(repo, &["forget", "--keep-within", "3d", "--json"]);
    let kept: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(kept["removed"].as_array().unwrap().is_empty(), "{kept}");

    env.ok(repo, &["forget", "--keep-daily", "1", "--prune"]);
    let left = env.snapshots(repo);
    assert_eq!(left.len(), 1);
    env.ok(repo, &["check", "--read-data"]);
    let id = left[0]["short_id"].as_str().unwrap();
    assert_eq!(env.restore_sha(repo, id), sha256(&files[2]));
}
