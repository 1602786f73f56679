//! S3 repositories (cargo feature `s3`) on a real Garage node started on 127.0.0.1
//! (`dvault_testkit::Garage`): the simulator's backups round-trip bit for bit, the stock
//! `restic` reads, checks and restores what dvault wrote, and refused keys are named.
//!
//! Without Garage installed these tests skip loudly, or fail when `DVAULT_REQUIRE_S3=1` (CI).

use crate::repo_support;

#[cfg(feature = "s3")]
mod with_s3 {
    use std::fs;
    use std::process::Command;

    use dvault_testkit::{Garage, S3Key};

    use super::repo_support::{sha256, Env};

    /// A dvault command for `repo` with `key` in its environment.
    fn dvault(env: &Env, g: &Garage, key: &S3Key, repo: &str) -> Command {
        let mut c = env.dvault(repo);
        g.with_key(&mut c, key);
        c
    }

    fn ok(env: &Env, g: &Garage, key: &S3Key, repo: &str, args: &[&str]) -> std::process::Output {
        let out = dvault(env, g, key, repo).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "dvault {args:?} on {repo} failed: {}{}\nGarage log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            g.server_log()
        );
        out
    }

    fn json(out: &std::process::Output) -> serde_json::Value {
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// One day of the simulator's backups in all three formats.
    fn simulator_backups(env: &Env) -> Vec<dvault_sim::BackupFile> {
        let opts = dvault_sim::Options {
            days: 0,
            ..dvault_sim::Options::small(11)
        };
        let files = dvault_sim::generate(&opts, &env.path().join("backups")).unwrap();
        assert_eq!(files.len(), 3, "format A, SQL only and format B");
        files
    }

    #[test]
    fn s3_repository_round_trips_simulator_backups_then_forgets_and_checks() {
        let Some(g) = Garage::start("s3_repository_round_trips_simulator_backups") else {
            return;
        };
        let key = g.bucket_with_key("dvault-rt");
        let repo = g.repo_url("dvault-rt", "forum/repo");
        let env = Env::new();
        ok(&env, &g, &key, &repo, &["init"]);
        let files = simulator_backups(&env);
        for f in &files {
            let v = json(&ok(
                &env,
                &g,
                &key,
                &repo,
                &["backup", "--json", f.path.to_str().unwrap()],
            ));
            assert_eq!(v["outcome"], "stored", "{v}");
        }
        // The same file again is recognised by its SHA-256 through S3, too.
        let again = json(&ok(
            &env,
            &g,
            &key,
            &repo,
            &["backup", "--json", files[0].path.to_str().unwrap()],
        ));
        assert_eq!(again["outcome"], "already_stored", "{again}");

        let snaps = json(&ok(&env, &g, &key, &repo, &["snapshots", "--json"]));
        let snaps = snaps.as_array().unwrap();
        assert_eq!(snaps.len(), 3);
        for f in &files {
            let name = f.path.file_name().unwrap().to_str().unwrap();
            let s = snaps
                .iter()
                .find(|s| s["meta"]["file_name"] == name)
                .unwrap_or_else(|| panic!("a snapshot of {name}"));
            let to = env.path().join(format!("restored-{name}"));
            ok(
                &env,
                &g,
                &key,
                &repo,
                &[
                    "restore",
                    s["short_id"].as_str().unwrap(),
                    "--to",
                    to.to_str().unwrap(),
                ],
            );
            assert_eq!(sha256(&to), sha256(&f.path), "{name} restored from S3");
            fs::remove_file(&to).unwrap();
        }
        ok(&env, &g, &key, &repo, &["check", "--read-data"]);

        // Retention through S3: all three were made today, so one daily snapshot stays.
        let v = json(&ok(
            &env,
            &g,
            &key,
            &repo,
            &["forget", "--keep-daily", "1", "--prune", "--json"],
        ));
        assert_eq!(v["removed"].as_array().unwrap().len(), 2, "{v}");
        let left = json(&ok(&env, &g, &key, &repo, &["snapshots", "--json"]));
        let left = left.as_array().unwrap();
        assert_eq!(left.len(), 1);
        let kept = files
            .iter()
            .find(|f| f.path.file_name().unwrap().to_str() == left[0]["meta"]["file_name"].as_str())
            .expect("the kept snapshot is one of the files");
        let to = env.path().join("restored-kept");
        ok(
            &env,
            &g,
            &key,
            &repo,
            &[
                "restore",
                left[0]["short_id"].as_str().unwrap(),
                "--to",
                to.to_str().unwrap(),
            ],
        );
        assert_eq!(
            sha256(&to),
            sha256(&kept.path),
            "the kept snapshot restores after prune"
        );
        ok(&env, &g, &key, &repo, &["check", "--read-data"]);
        // The objects really are in the bucket, under the prefix.
        let objects = g.list(&key, "dvault-rt", "forum/repo");
        assert!(objects.iter().any(|(k, _)| k == "config"), "{objects:?}");
        assert!(
            objects.iter().any(|(k, _)| k.starts_with("data/")),
            "{objects:?}"
        );
    }

    fn restic(
        g: &Garage,
        key: &S3Key,
        env: &Env,
        repo: &str,
        args: &[&str],
    ) -> std::process::Output {
        let mut c = Command::new("restic");
        g.with_key(&mut c, key);
        let out = c
            .env("RESTIC_PASSWORD_FILE", &env.password_file)
            .env("RESTIC_CACHE_DIR", env.path().join("restic-cache"))
            .args(["-r", repo])
            .args(args)
            .output()
            .expect("the restic program (Debian package `restic`) is installed");
        assert!(
            out.status.success(),
            "restic {args:?} on {repo} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    #[test]
    fn stock_restic_reads_checks_and_restores_a_dvault_s3_repository() {
        let Some(g) = Garage::start("stock_restic_reads_a_dvault_s3_repository") else {
            return;
        };
        let key = g.bucket_with_key("dvault-interop");
        let repo = g.repo_url("dvault-interop", "");
        let env = Env::new();
        ok(&env, &g, &key, &repo, &["init"]);
        let files = simulator_backups(&env);
        let mut ids = Vec::new();
        for f in &files {
            let v = json(&ok(
                &env,
                &g,
                &key,
                &repo,
                &["backup", "--json", f.path.to_str().unwrap()],
            ));
            ids.push(v["snapshot"]["id"].as_str().unwrap().to_string());
        }
        let listed: Vec<serde_json::Value> =
            serde_json::from_slice(&restic(&g, &key, &env, &repo, &["snapshots", "--json"]).stdout)
                .unwrap();
        for id in &ids {
            assert!(
                listed.iter().any(|s| s["id"] == id.as_str()),
                "restic lists snapshot {id}: {listed:?}"
            );
        }
        restic(&g, &key, &env, &repo, &["check", "--read-data"]);
        for (f, id) in files.iter().zip(&ids) {
            let target = env.path().join(format!("restic-{}", &id[..8]));
            restic(
                &g,
                &key,
                &env,
                &repo,
                &["restore", id, "--target", target.to_str().unwrap()],
            );
            // `dvault rebuild` puts the original file back together from restic's restore.
            let rebuilt = env.path().join(format!("rebuilt-{}", &id[..8]));
            let out = Command::new(env!("CARGO_BIN_EXE_dvault"))
                .args([
                    "rebuild",
                    target.to_str().unwrap(),
                    rebuilt.to_str().unwrap(),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "dvault rebuild of restic's restore: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(sha256(&rebuilt), sha256(&f.path), "{}", f.path.display());
            fs::remove_dir_all(&target).unwrap();
            fs::remove_file(&rebuilt).unwrap();
        }
    }

    /// `restore --to-discourse s3:...`: the original lands bit-exact under its own name in the
    /// forum's S3 backup bucket (a local repository here), and an existing object is never
    /// replaced.
    #[test]
    fn put_back_into_a_discourse_s3_backup_bucket() {
        let Some(g) = Garage::start("put_back_into_a_discourse_s3_backup_bucket") else {
            return;
        };
        let key = g.bucket_with_key("forum-backups");
        let env = Env::new();
        let repo = env.path().join("repo");
        let repo = repo.to_str().unwrap();
        env.ok(repo, &["init"]);
        let files = simulator_backups(&env);
        let file = &files[0].path;
        let name = file.file_name().unwrap().to_str().unwrap();
        env.backup(repo, file);
        let target = g.repo_url("forum-backups", "default");
        let out = ok(
            &env,
            &g,
            &key,
            repo,
            &["restore", "latest", "--to-discourse", &target],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("discourse restore {name} --location s3")),
            "{text}"
        );
        let back = env.path().join("downloaded");
        g.download(&key, "forum-backups", &format!("default/{name}"), &back);
        assert_eq!(sha256(&back), sha256(file));

        let err = dvault(&env, &g, &key, repo)
            .args(["restore", "latest", "--to-discourse", &target])
            .output()
            .unwrap();
        assert!(!err.status.success());
        let err = String::from_utf8_lossy(&err.stderr);
        assert!(err.contains("exists already"), "{err}");
        assert_eq!(g.list(&key, "forum-backups", "default").len(), 1);
    }

    #[test]
    fn s3_refused_or_missing_keys_give_errors_naming_endpoint_and_bucket() {
        let Some(g) = Garage::start("s3_refused_or_missing_keys") else {
            return;
        };
        let key = g.bucket_with_key("dvault-keys");
        let repo = g.repo_url("dvault-keys", "r");
        let env = Env::new();
        ok(&env, &g, &key, &repo, &["init"]);

        let wrong = S3Key {
            id: key.id.clone(),
            secret: "0".repeat(64),
        };
        let out = dvault(&env, &g, &wrong, &repo)
            .arg("snapshots")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a wrong secret must fail");
        assert!(
            err.contains(&g.endpoint) && err.contains("dvault-keys"),
            "the error names the endpoint and bucket: {err}"
        );
        assert!(
            err.contains("refused the access key") && err.contains("AWS_ACCESS_KEY_ID"),
            "{err}"
        );
        assert!(
            !err.contains(&key.secret),
            "the real secret never shows: {err}"
        );

        // A key that exists but has no rights on this bucket.
        let stranger = g.create_key("stranger");
        let out = dvault(&env, &g, &stranger, &repo)
            .arg("snapshots")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("dvault-keys") && err.contains("refused"),
            "{err}"
        );

        let out = env
            .dvault(&repo)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("AWS_SECRET_ACCESS_KEY", &key.secret)
            .arg("snapshots")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("AWS_ACCESS_KEY_ID") && err.contains("dvault-keys"),
            "{err}"
        );
    }
}

/// Without the feature an `s3:` repository is refused with the way to get one, and CI (which
/// sets `DVAULT_REQUIRE_S3=1`) must not silently run a build without S3 tests.
#[cfg(not(feature = "s3"))]
#[test]
fn s3_location_without_the_feature_says_how_to_build_it() {
    assert!(
        std::env::var("DVAULT_REQUIRE_S3").as_deref() != Ok("1"),
        "DVAULT_REQUIRE_S3=1 but the S3 tests were built without the `s3` feature: run \
         `cargo test --workspace --features dvault/s3,dvault-core/s3`"
    );
    let env = repo_support::Env::new();
    let err = env.fails("s3:http://127.0.0.1:9/bucket", &["snapshots"]);
    assert!(err.contains("--features s3"), "{err}");
}
