//! The simulator's Discourse backups (real pg_dump, real gzip and tar, every format, two days)
//! go into a repository and come back bit for bit; the second day costs less than its files.

use crate::repo_support;

use repo_support::{sha256, Env};

#[test]
fn simulator_backups_of_every_format_round_trip_and_deduplicate() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let opts = dvault_sim::Options {
        days: 1,
        ..dvault_sim::Options::small(4)
    };
    let files = dvault_sim::generate(&opts, &env.path().join("backups")).unwrap();
    assert_eq!(files.len(), 6, "two days of A, SQL and B");

    let mut added = Vec::new();
    for f in &files {
        let v = env.backup(repo, &f.path);
        assert_eq!(v["outcome"], "stored", "{v}");
        let peel = &v["snapshot"]["meta"]["peel"];
        assert_eq!(
            peel["stored_fallback"], false,
            "every layer peeled exactly: {peel}"
        );
        added.push((f.day, f.size, v["bytes_added_packed"].as_u64().unwrap()));
    }
    // Day 1 repeats most of day 0: its three files together add far less than their size.
    let (size1, added1) = added
        .iter()
        .filter(|(day, _, _)| *day == 1)
        .fold((0, 0), |(s, a), (_, size, add)| (s + size, a + add));
    assert!(
        added1 * 2 < size1,
        "day 1 added {added1} bytes for {size1} bytes of backups"
    );

    // The formats of one day carry the same time in their names (so the same snapshot time):
    // pair snapshots with files by name, not by order.
    let snaps = env.snapshots(repo);
    assert_eq!(snaps.len(), files.len());
    for f in &files {
        let name = f.path.file_name().unwrap().to_str().unwrap();
        let s = snaps
            .iter()
            .find(|s| s["meta"]["file_name"] == name)
            .unwrap_or_else(|| panic!("no snapshot of {name}"));
        assert_eq!(
            env.restore_sha(repo, s["short_id"].as_str().unwrap()),
            sha256(&f.path),
            "{}",
            f.path.display()
        );
    }
}
