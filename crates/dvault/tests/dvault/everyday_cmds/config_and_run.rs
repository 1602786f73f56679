//! `config generate` (the annotated example) and `validate` (each problem named), `run --dry-run`
//! (shows the backup and the retention, writes nothing) and `--quiet`.

use super::*;

fn config(env: &Env, folder: &Path, repo: &Path, keep_last: u32) -> PathBuf {
    let d = env.path();
    let text = format!(
        "state_dir = \"{d}/run-state\"\ncache_dir = \"{d}/cache\"\n\
         [sites.forum.source]\nfolder = \"{f}\"\nsettle = \"0s\"\n\
         [sites.forum.repository]\nlocation = \"{r}\"\npassword_file = \"{p}\"\n\
         [sites.forum.retention]\nkeep_last = {keep_last}\nforget = true\n",
        d = d.display(),
        f = folder.display(),
        r = repo.display(),
        p = env.password_file.display()
    );
    secret(env, "dvault.toml", &text)
}

#[test]
fn config_generate_prints_the_example_and_validate_names_each_problem() {
    let env = Env::new();
    let out = env.ok("", &["config", "generate"]);
    let example = include_str!("../../../../../contrib/dvault.toml");
    assert_eq!(text(&out), example);
    // The example parses; its files do not exist here, and validate names them all.
    let gen = secret(&env, "generated.toml", &text(&out));
    let out = env
        .dvault("")
        .args(["config", "validate", "--config", gen.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("password_file") && err.contains("problem(s)"),
        "{err}"
    );

    let folder = env.path().join("backups");
    fs::create_dir_all(&folder).unwrap();
    let good = config(&env, &folder, &env.path().join("repo"), 2);
    let out = env.ok(
        "",
        &["config", "validate", "--config", good.to_str().unwrap()],
    );
    assert!(
        text(&out).contains("valid; 1 site(s): forum"),
        "{}",
        text(&out)
    );
    fs::remove_dir(&folder).unwrap();
    let err = env.fails(
        "",
        &["config", "validate", "--config", good.to_str().unwrap()],
    );
    assert!(
        err.contains("sites.forum.source.folder") && err.contains("backups"),
        "{err}"
    );
    let typo = secret(&env, "typo.toml", "[sites.forum.sourc]\nfolder = \"/x\"\n");
    let err = env.fails(
        "",
        &["config", "validate", "--config", typo.to_str().unwrap()],
    );
    assert!(err.contains("sourc"), "{err}");
}

#[test]
fn run_dry_run_shows_the_backup_and_the_retention_and_writes_nothing() {
    let env = Env::new();
    let files = sim_backups(env.path());
    let repo_dir = env.path().join("repo");
    let repo = repo_dir.display().to_string();
    env.ok(&repo, &["init"]);
    // Day 0's three backups are stored; day 1's format A waits in the folder.
    for f in files.iter().filter(|f| f.day == 0) {
        env.backup(&repo, &f.path);
    }
    let folder = env.path().join("forum-backups");
    fs::create_dir_all(&folder).unwrap();
    let newest = of(&files, 1, dvault_sim::Format::A);
    let copied = folder.join(newest.file_name().unwrap());
    fs::copy(&newest, &copied).unwrap();
    let cfg = config(&env, &folder, &repo_dir, 1);
    let before = super::browse::walkdir(&repo_dir);

    let out = env.ok(
        "",
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--dry-run",
            "--json",
        ],
    );
    let v = json(&out);
    let site = &v["sites"][0];
    assert_eq!(site["file"], newest.file_name().unwrap().to_str().unwrap());
    assert_eq!(site["sha256"], sha256(&newest).as_str());
    assert_eq!(site["action"], "would store it");
    // Retention as `forget --dry-run` decides it with the same rule.
    let forget = json(&env.ok(
        &repo,
        &["forget", "--keep-last", "1", "--dry-run", "--json"],
    ));
    let removed = |decisions: &Value| -> BTreeSet<String> {
        decisions
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["keep"] == false)
            .map(|d| d["snapshot"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(removed(&site["retention"]), removed(&forget["decisions"]));
    assert!(!removed(&site["retention"]).is_empty());
    let out = env.ok("", &["run", "--config", cfg.to_str().unwrap(), "--dry-run"]);
    let t = text(&out);
    assert!(t.contains("would store it") && t.contains("remove"), "{t}");

    // Nothing written: no snapshot, no state folder, the repository's bytes unchanged.
    assert_eq!(env.snapshots(&repo).len(), 3);
    assert!(!env.path().join("run-state").exists());
    assert_eq!(super::browse::walkdir(&repo_dir), before);

    // Once stored, the dry run says so.
    env.backup(&repo, &newest);
    let v = json(&env.ok(
        "",
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--dry-run",
            "--json",
        ],
    ));
    assert!(
        v["sites"][0]["action"]
            .as_str()
            .unwrap()
            .starts_with("already stored in snapshot"),
        "{v}"
    );
}

#[test]
fn quiet_silences_summaries_but_not_what_was_asked_for() {
    let env = Env::new();
    let repo = env.path().join("repo").display().to_string();
    let out = env.ok(&repo, &["--quiet", "init"]);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let files = repo_support::make_backups(env.path(), 4, 10_000);
    let out = env.ok(&repo, &["backup", "--quiet", files[0].to_str().unwrap()]);
    assert!(out.stdout.is_empty(), "{}", text(&out));
    // --json is what was asked for.
    let out = env.ok(
        &repo,
        &["backup", "-q", "--json", files[1].to_str().unwrap()],
    );
    assert_eq!(json(&out)["outcome"], "stored");
    let out = env.ok(&repo, &["--quiet", "snapshots"]);
    assert!(text(&out).contains("2 snapshots"), "{}", text(&out));
    // Errors still reach stderr.
    let err = env.fails(&repo, &["--quiet", "restore", "ffffffff", "--to", "/tmp/x"]);
    assert!(err.contains("ffffffff"), "{err}");
}
