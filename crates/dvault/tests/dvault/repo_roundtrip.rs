//! Backup then restore gives back the original bytes, for every Discourse format.

use crate::repo_support;

use std::fs;

use repo_support::{make_backups, sha256, Env};

#[test]
fn backup_then_restore_is_bit_exact_for_every_format() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 1, 200_000);

    for file in &files {
        let v = env.backup(repo, file);
        assert_eq!(v["outcome"], "stored", "{v}");
        assert_eq!(v["snapshot"]["meta"]["sha256"], sha256(file));
        check_profile(&v, file);
    }
    let snaps = env.snapshots(repo);
    assert_eq!(snaps.len(), 3);
    let formats: Vec<_> = snaps
        .iter()
        .map(|s| s["meta"]["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["A", "SQL", "B"]);
    for s in &snaps {
        assert_eq!(s["meta"]["discourse"]["site"], "forum");
        assert_eq!(s["meta"]["discourse"]["migration"], "20240229123456");
        assert!(s["tags"].as_array().unwrap().iter().any(|t| t == "dvault"));
    }
    assert_eq!(snaps[2]["meta"]["discourse"]["version"], "3.4.0.beta3");

    for (file, snap) in files.iter().zip(&snaps) {
        let id = snap["short_id"].as_str().unwrap();
        assert_eq!(
            env.restore_sha(repo, id),
            sha256(file),
            "{}",
            file.display()
        );
    }
}

/// The backup's profile (issue 19): its phases add up to no more than the whole, and peel's
/// part names every gzip layer of the file, the outermost first.
fn check_profile(v: &serde_json::Value, file: &std::path::Path) {
    let p = &v["profile"];
    let secs = |k: &str| {
        p[k].as_f64()
            .unwrap_or_else(|| panic!("profile.{k} in {v}"))
    };
    let phases = secs("prepare_s") + secs("peel_s") + secs("layout_s") + secs("store_s");
    assert!(phases > 0.0 && phases <= secs("total_s") + 1e-9, "{p}");
    assert!(
        secs("peel_s") >= p["peel"]["wall_s"].as_f64().unwrap(),
        "{p}"
    );
    let layers: Vec<&str> = p["peel"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["location"].as_str().unwrap())
        .collect();
    let name = file.file_name().unwrap().to_str().unwrap();
    if name.ends_with(".tar") {
        // Format B: no outer gzip; one layer per db/NNNN.dat.gz member.
        assert!(!layers.is_empty(), "{p}");
        assert!(layers.iter().all(|l| l.ends_with(".dat.gz")), "{p}");
    } else {
        assert_eq!(layers.first(), Some(&name), "{p}");
        assert_eq!(
            layers.len(),
            if name.ends_with(".tar.gz") { 2 } else { 1 },
            "{p}"
        );
    }
}

#[test]
fn same_file_twice_is_stored_once() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 2, 10_000);
    let first = env.backup(repo, &files[1]);
    assert_eq!(first["outcome"], "stored");
    let second = env.backup(repo, &files[1]);
    assert_eq!(second["outcome"], "already_stored", "{second}");
    assert_eq!(second["snapshot"]["id"], first["snapshot"]["id"]);
    let text = env.ok(repo, &["backup", files[1].to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("already stored"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    assert_eq!(env.snapshots(repo).len(), 1);
}

#[test]
fn restore_expanded_writes_the_plain_tree_with_its_recipe() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 3, 10_000);
    let v = env.backup(repo, &files[0]);
    let id = v["snapshot"]["short_id"].as_str().unwrap();
    let dir = env.path().join("expanded");
    env.ok(repo, &["restore", id, "--expanded", dir.to_str().unwrap()]);
    let recipe: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join(".peel/recipe.json")).unwrap()).unwrap();
    assert_eq!(recipe["original"]["sha256"], sha256(&files[0]));
    // Peeled, not stored whole: the SQL is there as plain text, the uploads as files.
    let sql = fs::read_to_string(dir.join("dump.sql")).unwrap();
    assert!(sql.contains("COPY public.posts"), "dump.sql is plain SQL");
    assert!(dir.join("uploads/default/original/1X/img0.jpg").is_file());
    // A second restore into the same (now non-empty) folder is refused, naming the folder.
    let err = env.fails(repo, &["restore", id, "--expanded", dir.to_str().unwrap()]);
    assert!(
        err.contains("not empty") && err.contains("expanded"),
        "{err}"
    );
}

#[test]
fn restore_of_unknown_snapshot_names_it_and_writes_nothing() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let out = env.path().join("out.tar.gz");
    let err = env.fails(
        repo,
        &["restore", "deadbeef", "--to", out.to_str().unwrap()],
    );
    assert!(err.contains("deadbeef"), "{err}");
    assert!(!out.exists());
}

/// `restore --to-discourse FOLDER`: the original, bit-exact, under its own name, with the time
/// of its name as mtime (Discourse sorts and prunes by mtime), never replacing a file, no
/// staging file left; a backup newer than the site's schema refused before anything is written.
#[test]
fn put_back_into_a_discourse_backups_folder_keeps_name_time_and_bytes() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 1, 50_000);
    let file = &files[0];
    let name = file.file_name().unwrap().to_str().unwrap();
    env.backup(repo, file);
    let backups = env.path().join("discourse-backups");
    fs::create_dir(&backups).unwrap();
    let target = backups.to_str().unwrap();

    // Too new for the site: refused, nothing written.
    let err = env.fails(
        repo,
        &[
            "restore",
            "latest",
            "--to-discourse",
            target,
            "--site-migration",
            "20240101000000",
        ],
    );
    assert!(err.contains("newer than the site's schema"), "{err}");
    assert_eq!(fs::read_dir(&backups).unwrap().count(), 0);

    let out = env.ok(
        repo,
        &[
            "restore",
            "latest",
            "--to-discourse",
            target,
            "--site-migration",
            "20240229123456",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("discourse restore {name}")),
        "{text}"
    );
    let placed = backups.join(name);
    assert_eq!(sha256(&placed), sha256(file));
    // The name's time, 2024-03-02 03:30:01 UTC.
    assert_eq!(fs::metadata(&placed).unwrap().mtime(), 1_709_350_201);
    let entries: Vec<_> = fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        [placed.file_name().unwrap()],
        "no staging file left"
    );

    // A second put-back never replaces the file (even one that differs).
    fs::write(&placed, b"admin's own file").unwrap();
    let err = env.fails(repo, &["restore", "latest", "--to-discourse", target]);
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(fs::read(&placed).unwrap(), b"admin's own file");
    assert_eq!(fs::read_dir(&backups).unwrap().count(), 1);
}

/// A read budget far smaller than one pack stretch (`DVAULT_READ_BUDGET_MB=1`, rustic_core's
/// restore reads up to 32 MiB at once) still restores every format bit for bit: the reads wait
/// for each other instead of holding memory together, and nothing waits forever
/// (`store/restic/read_budget.rs`). 70 MB of uploads make several data packs.
#[test]
fn a_read_budget_smaller_than_one_pack_still_restores_bit_exact() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 1, 70_000_000);
    for file in &files {
        assert_eq!(env.backup(repo, file)["outcome"], "stored");
    }
    for (file, snap) in files.iter().zip(&env.snapshots(repo)) {
        let id = snap["short_id"].as_str().unwrap();
        let out = env.path().join(format!("restored-{id}"));
        let run = env
            .dvault(repo)
            .env("DVAULT_READ_BUDGET_MB", "1")
            .args(["restore", id, "--to", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(sha256(&out), sha256(file), "{}", file.display());
    }
}
