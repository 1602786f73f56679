//! Browsing a repository: `ls` (paths and tables), `find` and `diff`, checked against the real
//! `tar --list` of each backup and the COPY blocks of its dump; `stats`, its ratio against the
//! sizes of the repository's files.

use super::*;
use dvault_sim::Format;

#[test]
fn ls_lists_the_original_paths_and_tables_of_every_format() {
    let env = Env::new();
    let files = sim_backups(env.path());
    let (repo, ids) = filled(&env, &files);
    for f in &files {
        let id = &ids[&f.path];
        let v = json(&env.ok(&repo, &["ls", id, "--json"]));
        let listed: BTreeSet<String> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect();
        match f.format {
            // Inside a .tar.gz or .tar: exactly the members `tar --list` shows.
            Format::A | Format::B => {
                assert_eq!(listed, tar_paths(&f.path), "{}", f.path.display())
            }
            // A bare dump is the one file.
            _ => assert_eq!(
                listed,
                BTreeSet::from([f.path.file_name().unwrap().to_string_lossy().into()])
            ),
        }
        // A sub-path lists only what is under it.
        if f.format == Format::A {
            let out = text(&env.ok(&repo, &["ls", id, "uploads"]));
            assert!(out.lines().all(|l| l.starts_with("uploads")), "{out}");
            assert!(out.lines().count() > 3, "{out}");
            let err = env.fails(&repo, &["ls", id, "no/such/dir"]);
            assert!(err.contains("has no path no/such/dir"), "{err}");
        }
    }
    // Row counts: the same in every format of a day, and equal to the COPY rows of the
    // dump counted here.
    for day in 0..2 {
        let expected = rows_of_sql_gz(&of(&files, day, Format::Sql));
        assert!(expected.values().sum::<u64>() > 1000);
        for format in [Format::A, Format::Sql, Format::B] {
            let id = &ids[&of(&files, day, format)];
            assert_eq!(
                tables_json(&env, &repo, id),
                expected,
                "day {day} {format:?}"
            );
        }
    }
}

#[test]
fn find_and_diff_report_what_tar_and_the_dumps_say() {
    let env = Env::new();
    let files = sim_backups(env.path());
    let (repo, ids) = filled(&env, &files);
    let a0 = of(&files, 0, Format::A);
    let a1 = of(&files, 1, Format::A);

    // find: the same .png paths as tar lists, in one snapshot and across all.
    let pngs = |f: &Path| {
        tar_paths(f)
            .into_iter()
            .filter(|p| p.ends_with(".png"))
            .collect::<BTreeSet<_>>()
    };
    let v = json(&env.ok(&repo, &["find", &ids[&a0], "*.png", "--json"]));
    let found: BTreeSet<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert!(!found.is_empty());
    assert_eq!(found, pngs(&a0));
    let all = json(&env.ok(&repo, &["find", "--all", "dump.sql.gz", "--json"]));
    let in_snaps: BTreeSet<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(
        in_snaps,
        BTreeSet::from([ids[&a0].as_str(), ids[&a1].as_str()])
    );

    // diff: rows per table as the two dumps say, uploads as the two tar listings say.
    let v = json(&env.ok(&repo, &["diff", &ids[&a0], &ids[&a1], "--json"]));
    let before = rows_of_sql_gz(&of(&files, 0, Format::Sql));
    let after = rows_of_sql_gz(&of(&files, 1, Format::Sql));
    let changed: BTreeMap<String, (u64, u64)> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                (t["before"].as_u64().unwrap(), t["after"].as_u64().unwrap()),
            )
        })
        .collect();
    let expected: BTreeMap<String, (u64, u64)> = before
        .iter()
        .filter(|(t, n)| after.get(*t) != Some(n))
        .map(|(t, n)| (t.clone(), (*n, after[t])))
        .collect();
    assert!(!expected.is_empty(), "the simulated day changes rows");
    assert_eq!(changed, expected);
    let uploads = |f: &Path| {
        tar_paths(f)
            .into_iter()
            .filter(|p| p.starts_with("uploads/") && p.contains('.'))
            .collect::<BTreeSet<_>>()
    };
    let paths = |key: &str| -> BTreeSet<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["path"].as_str().unwrap().to_string())
            .collect()
    };
    let (u0, u1) = (uploads(&a0), uploads(&a1));
    assert_eq!(paths("uploads_added"), &u1 - &u0);
    assert_eq!(paths("uploads_removed"), &u0 - &u1);
    let out = text(&env.ok(&repo, &["diff", &ids[&a0], &ids[&a1]]));
    assert!(out.contains("public.posts"), "{out}");
}

#[test]
fn stats_ratio_is_original_bytes_over_the_repository_files() {
    let env = Env::new();
    let files = sim_backups(env.path());
    let (repo, _) = filled(&env, &files);
    let v = json(&env.ok(&repo, &["stats", "--json"]));
    let original: u64 = files.iter().map(|f| f.size).sum();
    let dir = env.path().join("repo");
    // Packs, index, snapshots and keys; not the small config file (nor locks, none left).
    let config = fs::metadata(dir.join("config")).unwrap().len();
    let on_disk: u64 = walkdir(&dir) - config;
    assert_eq!(v["snapshots"], 6);
    assert_eq!(v["original_bytes"].as_u64().unwrap(), original);
    assert_eq!(v["stored_bytes"].as_u64().unwrap(), on_disk);
    let ratio = v["dedup_ratio"].as_f64().unwrap();
    assert!((ratio - original as f64 / on_disk as f64).abs() < 1e-9);
    assert!(ratio > 2.0, "six backups of two days deduplicate: {ratio}");
    let out = text(&env.ok(&repo, &["stats"]));
    assert!(out.contains("dedup ratio"), "{out}");
}

/// Bytes of every file under `dir` (a local repository's files; its empty folders count 0).
pub fn walkdir(dir: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            walkdir(&e.path())
        } else {
            m.len()
        };
    }
    n
}
