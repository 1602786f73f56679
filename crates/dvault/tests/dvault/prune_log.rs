//! rustic_core's own log lines come out in dvault's line shape and at a sensible level: a
//! prune with a fresh metadata cache (another host's, or a cleared one) makes rustic_core
//! complain that the tree packs it deletes are not in the cache. Those lines concern only this
//! host's cache, so they are `info` lines, shown with `-v` and not by default, in the shape of
//! dvault's own (`TIME LEVEL message`), without the `log.file=...` origin fields the `log`
//! crate's records carried.

use crate::repo_support;

use repo_support::{make_backups, Env};

/// Is `line` in dvault's text shape: `2026-01-01T03:00:00.123Z LEVEL message`?
fn dvault_shape(line: &str) -> bool {
    let mut parts = line.splitn(3, ' ');
    let (Some(time), Some(level), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    time.parse::<jiff::Timestamp>().is_ok()
        && time.ends_with('Z')
        && ["error", "warn", "info", "debug", "trace"].contains(&level)
}

/// The stderr of `forget --keep-last 1 --prune -v` with a fresh cache over three backups
/// (days `first..first+3`), and its lines that are rustic's cache complaints.
fn prune_with_a_fresh_cache(first: u64) -> (String, Vec<String>) {
    let env = Env::new();
    let repo = env.path().join("repo");
    let r = repo.to_str().unwrap();
    env.ok(r, &["init"]);
    for day in first..first + 3 {
        let files = make_backups(env.path(), day, 64 * 1024);
        assert_eq!(env.backup(r, &files[0])["outcome"], "stored");
    }
    let out = env
        .dvault(r)
        .env("DVAULT_CACHE_DIR", env.path().join("fresh-cache"))
        .args(["forget", "--keep-last", "1", "--prune", "-v"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let cache_lines = stderr
        .lines()
        .filter(|l| l.contains("Error in cache backend"))
        .map(str::to_string)
        .collect();
    (stderr, cache_lines)
}

#[test]
fn rustic_cache_complaints_during_prune_are_info_lines_in_dvaults_shape() {
    // Whether rustic_core complains depends on which packs the prune deletes outright (a tree
    // pack still partly used is kept), which depends on the random backups: up to three sets.
    let (mut stderr, mut cache_lines) = prune_with_a_fresh_cache(1);
    for first in [4, 7] {
        if !cache_lines.is_empty() {
            break;
        }
        (stderr, cache_lines) = prune_with_a_fresh_cache(first);
    }
    assert!(
        !cache_lines.is_empty(),
        "no rustic cache line to look at in three tries:\n{stderr}"
    );
    for l in stderr.lines() {
        assert!(dvault_shape(l), "not in dvault's shape: {l:?}\n{stderr}");
        assert!(!l.contains("log.file="), "{l}");
        assert!(!l.contains("log.target="), "{l}");
    }
    for l in &cache_lines {
        assert_eq!(l.split(' ').nth(1), Some("info"), "{l}");
    }
}

#[test]
fn rustic_cache_complaints_are_not_shown_by_default() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let r = repo.to_str().unwrap();
    env.ok(r, &["init"]);
    for day in 1..=3 {
        let files = make_backups(env.path(), day, 64 * 1024);
        assert_eq!(env.backup(r, &files[0])["outcome"], "stored");
    }
    let out = env
        .dvault(r)
        .env("DVAULT_CACHE_DIR", env.path().join("fresh-cache"))
        .args(["forget", "--keep-last", "1", "--prune"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("cache backend"), "{stderr}");
}
