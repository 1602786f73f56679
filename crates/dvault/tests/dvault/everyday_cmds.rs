//! The everyday commands of issue 21 against real repositories: `stats`, `ls`, `find`, `diff`,
//! `key`, `copy`, `config validate|generate`, `run --dry-run` and `--quiet`.
//!
//! What each command says is checked against an independent source: paths against the real
//! `tar --list` of the backup, row counts against the COPY blocks of the dump as `gzip -dc`
//! gives it, keys against the stock `restic`, copies by restoring them bit-exact and by
//! `restic check` on the target (local, REST via `rclone serve restic`, S3 via Garage).

use crate::repo_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use repo_support::{sha256, Env};
use serde_json::Value;

/// Two days of the simulator's backups (formats A, SQL and B each day), in day order.
fn sim_backups(dir: &Path) -> Vec<dvault_sim::BackupFile> {
    let opts = dvault_sim::Options {
        days: 1,
        ..dvault_sim::Options::small(21)
    };
    let files = dvault_sim::generate(&opts, &dir.join("backups")).unwrap();
    assert_eq!(files.len(), 6);
    files
}

fn of(files: &[dvault_sim::BackupFile], day: u32, format: dvault_sim::Format) -> PathBuf {
    files
        .iter()
        .find(|f| f.day == day && f.format == format)
        .unwrap()
        .path
        .clone()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A local repository holding all six backups; returns the snapshot id of each file.
fn filled(env: &Env, files: &[dvault_sim::BackupFile]) -> (String, BTreeMap<PathBuf, String>) {
    let repo = env.path().join("repo").display().to_string();
    env.ok(&repo, &["init"]);
    let mut ids = BTreeMap::new();
    for f in files {
        let v = env.backup(&repo, &f.path);
        ids.insert(
            f.path.clone(),
            v["snapshot"]["id"].as_str().unwrap().to_string(),
        );
    }
    (repo, ids)
}

/// The members of a tar file as the real `tar --list` names them (no trailing `/`).
fn tar_paths(file: &Path) -> BTreeSet<String> {
    let out = Command::new("tar").arg("-tf").arg(file).output().unwrap();
    assert!(out.status.success());
    text(&out)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Rows of each COPY block of a plain dump, counted here from the text itself.
fn copy_rows(sql: &[u8]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in sql.split(|&b| b == b'\n') {
        if line == b"\\." {
            current = None;
            continue;
        }
        if let Some(t) = &current {
            *out.get_mut(t).unwrap() += 1;
            continue;
        }
        let l = String::from_utf8_lossy(line);
        if let Some(rest) = l.strip_prefix("COPY ") {
            let table = rest.split(' ').next().unwrap().to_string();
            out.insert(table.clone(), 0);
            current = Some(table);
        }
    }
    out
}

/// The row counts of the SQL-only backup `file` (its dump, through the real gzip).
fn rows_of_sql_gz(file: &Path) -> BTreeMap<String, u64> {
    let out = Command::new("gzip").arg("-dc").arg(file).output().unwrap();
    assert!(out.status.success());
    copy_rows(&out.stdout)
}

fn tables_json(env: &Env, repo: &str, id: &str) -> BTreeMap<String, u64> {
    let v = json(&env.ok(repo, &["ls", id, "--tables", "--json"]));
    v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

mod browse {
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
}

/// The stock `restic` on `repo` with the password file `pw`.
fn restic(env: &Env, repo: &str, pw: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .env("RESTIC_PASSWORD_FILE", pw)
        .env("RESTIC_CACHE_DIR", env.path().join("restic-cache"))
        .args(["-r", repo])
        .args(args)
        .output()
        .expect("the restic program (Debian package `restic`) is installed")
}

fn secret(env: &Env, name: &str, value: &str) -> PathBuf {
    let p = env.path().join(name);
    fs::write(&p, format!("{value}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

mod keys {
    use super::*;

    #[test]
    fn key_passwd_then_stock_restic_refuses_the_old_password_and_takes_the_new() {
        let env = Env::new();
        let repo = env.path().join("repo").display().to_string();
        env.ok(&repo, &["init"]);
        let files = repo_support::make_backups(env.path(), 3, 20_000);
        env.backup(&repo, &files[0]);
        let new_pw = secret(&env, "new-password", "a new long password");
        let second = secret(&env, "second-password", "the second key");

        // add: a second password opens it for dvault and restic; list shows both.
        let added = json(&env.ok(
            &repo,
            &[
                "key",
                "add",
                "--new-password-file",
                second.to_str().unwrap(),
                "--json",
            ],
        ))["added"]
            .as_str()
            .unwrap()
            .to_string();
        let list = json(&env.ok(&repo, &["key", "list", "--json"]));
        assert_eq!(list.as_array().unwrap().len(), 2);
        let original = list
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["current"] == true)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(restic(&env, &repo, &second, &["snapshots"])
            .status
            .success());

        // passwd: the old password is refused by restic and dvault, the new one works.
        env.ok(
            &repo,
            &[
                "key",
                "passwd",
                "--new-password-file",
                new_pw.to_str().unwrap(),
            ],
        );
        let old = restic(&env, &repo, &env.password_file, &["snapshots"]);
        assert!(!old.status.success());
        assert!(
            String::from_utf8_lossy(&old.stderr).contains("wrong password"),
            "{}",
            String::from_utf8_lossy(&old.stderr)
        );
        let err = env.fails(&repo, &["snapshots"]);
        assert!(err.contains("wrong password"), "{err}");
        let ok = restic(&env, &repo, &new_pw, &["check"]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );

        let with_new = |args: &[&str]| {
            let out = env
                .dvault(&repo)
                .env("DVAULT_PASSWORD_FILE", &new_pw)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        };
        let list = json(&with_new(&["key", "list", "--json"]));
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert!(
            !ids.contains(&original.as_str()),
            "old key removed: {ids:?}"
        );
        assert!(ids.contains(&added.as_str()));

        // remove: the second key goes, restic no longer opens with it; the key in use cannot.
        with_new(&["key", "remove", &added[..8]]);
        assert!(!restic(&env, &repo, &second, &["snapshots"])
            .status
            .success());
        let current = json(&with_new(&["key", "list", "--json"]))[0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let out = env
            .dvault(&repo)
            .env("DVAULT_PASSWORD_FILE", &new_pw)
            .args(["key", "remove", &current])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("the given password opened"));
        // The ledger follows the changes made on purpose: check raises no key alarm.
        with_new(&["check"]);
        // A new password never comes from an argument value.
        let err = env.fails(&repo, &["key", "add"]);
        assert!(err.contains("no new password"), "{err}");
    }
}

mod copy {
    use super::*;
    use std::net::TcpStream;
    use std::process::{Child, Stdio};
    use std::time::{Duration, Instant};

    /// The source repository with six backups, copied to `target` (created by `--init`) with
    /// `extra` environment; checks the copy with dvault and the stock restic.
    fn copy_and_verify(
        env: &Env,
        files: &[dvault_sim::BackupFile],
        source: &str,
        target: &str,
        setup: &dyn Fn(&mut Command),
    ) {
        let to_pw = secret(env, "to-password", "target password");
        let mut copy = env.dvault(source);
        setup(&mut copy);
        let out = copy
            .args(["copy", "--to", target, "--init", "--json"])
            .arg("--to-password-file")
            .arg(&to_pw)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json(&out);
        assert_eq!(report["copied"].as_array().unwrap().len(), files.len());
        assert_eq!(report["same_chunker"], true);

        let on_target = |args: &[&str]| {
            let mut c = env.dvault(target);
            setup(&mut c);
            let out = c
                .env("DVAULT_PASSWORD_FILE", &to_pw)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        };
        // Every copy rebuilds bit-exact from the target, checked against its SHA-256.
        let snaps = json(&on_target(&["snapshots", "--json"]));
        assert_eq!(snaps.as_array().unwrap().len(), files.len());
        for f in files {
            let s = snaps
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["meta"]["sha256"] == sha256(&f.path).as_str())
                .unwrap();
            let out = env.path().join("from-target");
            on_target(&[
                "restore",
                s["short_id"].as_str().unwrap(),
                "--to",
                out.to_str().unwrap(),
            ]);
            assert_eq!(sha256(&out), sha256(&f.path));
            fs::remove_file(&out).unwrap();
        }
        // Dedup kept: the target stores no more than the source (same blobs, once each).
        let src = json(&env.ok(source, &["stats", "--json"]));
        let dst = json(&on_target(&["stats", "--json"]));
        assert!(
            dst["pack_bytes"].as_u64().unwrap() <= src["pack_bytes"].as_u64().unwrap() * 11 / 10,
            "{src} {dst}"
        );
        assert_eq!(dst["unique_blobs"], src["unique_blobs"]);
        on_target(&["check", "--read-data"]);
        // A second copy finds everything there.
        let mut again = env.dvault(source);
        setup(&mut again);
        let out = again
            .args(["copy", "--to", target, "--json"])
            .arg("--to-password-file")
            .arg(&to_pw)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json(&out);
        assert_eq!(report["copied"].as_array().unwrap().len(), 0);
        assert_eq!(
            report["already_there"].as_array().unwrap().len(),
            files.len()
        );
        // The stock restic reads and checks the target.
        let mut r = Command::new("restic");
        setup(&mut r);
        let out = r
            .env("RESTIC_PASSWORD_FILE", &to_pw)
            .env("RESTIC_CACHE_DIR", env.path().join("restic-cache"))
            .args(["-r", target, "check", "--read-data"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restic check: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn copy_to_a_local_repository_keeps_proof_dedup_and_ledger() {
        let env = Env::new();
        let files = sim_backups(env.path());
        let (repo, _) = filled(&env, &files);
        let target = env.path().join("repo2").display().to_string();
        copy_and_verify(&env, &files, &repo, &target, &|_| {});
        // The ledger of the target holds the copies: a snapshot file deleted there behind
        // dvault's back is reported by check. The folder also holds audit snapshots (not in the
        // ledger), so the file deleted is a copy's own, by its id (the first file listed was
        // an audit snapshot now and then, and check rightly passed).
        let listed = env
            .dvault(&target)
            .env("DVAULT_PASSWORD_FILE", env.path().join("to-password"))
            .args(["snapshots", "--json"])
            .output()
            .unwrap();
        let copied = json(&listed)[0]["id"].as_str().unwrap().to_string();
        let victim = env.path().join("repo2/snapshots").join(copied);
        fs::remove_file(&victim).unwrap();
        let out = env
            .dvault(&target)
            .env("DVAULT_PASSWORD_FILE", env.path().join("to-password"))
            .arg("check")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is missing"), "{err}");
        // The source itself is refused as target.
        let err = env.fails(&repo, &["copy", "--to", &repo]);
        assert!(err.contains("--to"), "{err}");
    }

    struct Rest(Child);
    impl Drop for Rest {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn copy_to_a_rest_server() {
        let env = Env::new();
        let files = sim_backups(env.path());
        let (repo, _) = filled(&env, &files);
        let store = env.path().join("rest-store");
        fs::create_dir_all(&store).unwrap();
        let port = repo_support::free_port();
        let child = Command::new("rclone")
            .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rclone (Debian package `rclone`) is installed");
        let _server = Rest(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rclone did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let target = format!("rest:http://127.0.0.1:{port}/copy");
        copy_and_verify(&env, &files, &repo, &target, &|_| {});
    }

    #[cfg(feature = "s3")]
    #[test]
    fn copy_to_an_s3_repository_on_garage() {
        let Some(g) = dvault_testkit::Garage::start("everyday_copy_to_s3") else {
            return;
        };
        let key = g.bucket_with_key("dvault-copy");
        let target = g.repo_url("dvault-copy", "offsite");
        let env = Env::new();
        let files = sim_backups(env.path());
        let (repo, _) = filled(&env, &files);
        copy_and_verify(&env, &files, &repo, &target, &|c| {
            g.with_key(c, &key);
        });
    }
}

mod config_and_run {
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
        let example = include_str!("../../../../contrib/dvault.toml");
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
}
