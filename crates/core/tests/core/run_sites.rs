//! `dvault run` end to end in-process: two sites with backups-folder sources and real
//! restic-format repositories on disk, real gzip'd backups, a ping server on 127.0.0.1 and the
//! Prometheus textfile. Only new backups are stored; failures are pinged with their cause; a
//! held lock is reported as such.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dvault_core::config::Config;
use dvault_core::lock::RepoLock;
use dvault_core::repo::{InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::run::{self, exit, LogEvent, Outcome, RunOptions, RunReport};
use dvault_testkit::{ping_server, PingServer};

/// A real gzip'd SQL-only Discourse backup (GNU gzip, as `.sql.gz` files are compressed).
fn make_backup(folder: &Path, name: &str, rows: usize) -> PathBuf {
    let mut sql = String::from("COPY public.posts (id, raw) FROM stdin;\n");
    for i in 0..rows {
        sql.push_str(&format!("{i}\tpost number {i} in {name}\n"));
    }
    sql.push_str("\\.\n");
    let plain = folder.join(name.trim_end_matches(".gz"));
    std::fs::write(&plain, sql).unwrap();
    let st = Command::new("gzip")
        .arg("-n")
        .arg("-5")
        .arg(&plain)
        .status()
        .unwrap();
    assert!(st.success());
    let p = folder.join(name);
    assert!(p.exists());
    // Older than the settle wait needs, as a finished backup is.
    let t = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
    p
}

struct World {
    dir: tempfile::TempDir,
    config: Config,
    pings: PingServer,
}

impl World {
    fn new(extra: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let pings = ping_server();
        let mut text = format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n[monitoring]\nprometheus_textfile = \"{d}/metrics/dvault.prom\"\n",
            d = dir.path().display()
        );
        std::fs::create_dir(dir.path().join("metrics")).unwrap();
        for site in ["forum1", "forum2"] {
            let folder = dir.path().join(site).join("backups");
            std::fs::create_dir_all(&folder).unwrap();
            let pw = dir.path().join(site).join("password");
            std::fs::write(&pw, format!("secret of {site}\n")).unwrap();
            let repo = dir.path().join(site).join("repo");
            let mut cfg = RepoConfig::new(Location::parse(&repo.display().to_string()).unwrap());
            cfg.cache_dir = Some(dir.path().join("cache"));
            Repo::init(
                &cfg,
                &Password::new(format!("secret of {site}")),
                &InitOptions::default(),
                None,
            )
            .unwrap();
            text.push_str(&format!(
                "[sites.{site}.source]\nfolder = \"{}\"\nsettle = \"50ms\"\n\
                 [sites.{site}.repository]\nlocation = \"{}\"\npassword_file = \"{}\"\n\
                 [sites.{site}.monitoring]\nping_url = \"{}/ping/{site}\"\n",
                folder.display(),
                repo.display(),
                pw.display(),
                pings.url,
            ));
        }
        text.push_str(extra);
        let path = dir.path().join("dvault.toml");
        std::fs::write(&path, &text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        World { dir, config, pings }
    }

    /// A backup of `site` in its folder, named as Discourse names it, taken at `stamp`
    /// (`2024-03-01-033000`).
    fn backup(&self, site: &str, stamp: &str, rows: usize) -> PathBuf {
        make_backup(
            &self.folder(site),
            &format!("{site}-{stamp}-v20240220010101.sql.gz"),
            rows,
        )
    }

    fn folder(&self, site: &str) -> PathBuf {
        self.dir.path().join(site).join("backups")
    }

    fn run(&self, site: Option<&str>) -> (RunReport, Vec<String>) {
        let mut lines = Vec::new();
        let mut log = |e: &LogEvent<'_>| lines.push(serde_json::to_string(e).unwrap());
        let opener = run::RepoOpener::new(&self.config);
        let report = run::run(
            &self.config,
            &opener,
            RunOptions {
                site: site.map(str::to_string),
                drill: None,
                log: &mut log,
            },
        )
        .unwrap();
        (report, lines)
    }

    fn metrics(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("metrics/dvault.prom")).unwrap()
    }
}

fn outcome(r: &RunReport, site: &str) -> Outcome {
    r.sites.iter().find(|s| s.site == site).unwrap().outcome
}

#[test]
fn two_sites_store_only_new_backups_across_three_runs() {
    let w = World::new("");
    let a1 = w.backup("forum1", "2024-03-01-033000", 2000);
    w.backup("forum2", "2024-03-01-033000", 1500);
    let a1_before = std::fs::read(&a1).unwrap();
    let a1_mtime = std::fs::metadata(&a1).unwrap().modified().unwrap();

    let (r1, _) = w.run(None);
    assert_eq!(r1.exit_code, exit::OK, "{r1:#?}");
    assert_eq!(outcome(&r1, "forum1"), Outcome::Stored);
    assert_eq!(outcome(&r1, "forum2"), Outcome::Stored);
    let s1 = &r1.sites[0];
    assert_eq!(s1.snapshots, Some(1));
    assert_eq!(
        s1.stored.as_ref().unwrap().bytes_read,
        a1_before.len() as u64
    );

    let (r2, _) = w.run(None);
    assert_eq!(r2.exit_code, exit::OK);
    assert_eq!(outcome(&r2, "forum1"), Outcome::AlreadyStored);
    assert_eq!(outcome(&r2, "forum2"), Outcome::AlreadyStored);
    assert_eq!(
        r2.sites[0].snapshot, r1.sites[0].snapshot,
        "points at the first snapshot"
    );

    w.backup("forum1", "2024-03-02-033000", 2100);
    let (r3, _) = w.run(None);
    assert_eq!(r3.exit_code, exit::OK);
    assert_eq!(outcome(&r3, "forum1"), Outcome::Stored);
    assert_eq!(
        r3.sites[0].file.as_deref(),
        Some("forum1-2024-03-02-033000-v20240220010101.sql.gz")
    );
    assert_eq!(r3.sites[0].snapshots, Some(2));
    assert_eq!(outcome(&r3, "forum2"), Outcome::AlreadyStored);
    assert_eq!(r3.sites[1].snapshots, Some(1));

    // The source was only read.
    assert_eq!(std::fs::read(&a1).unwrap(), a1_before);
    assert_eq!(
        std::fs::metadata(&a1).unwrap().modified().unwrap(),
        a1_mtime
    );

    // Pings: start then success, per site, per run.
    let got = w.pings.got.lock().unwrap();
    let f1: Vec<&str> = got
        .iter()
        .filter(|g| g.0.starts_with("/ping/forum1"))
        .map(|g| g.0.as_str())
        .collect();
    assert_eq!(
        f1,
        [
            "/ping/forum1/start",
            "/ping/forum1",
            "/ping/forum1/start",
            "/ping/forum1",
            "/ping/forum1/start",
            "/ping/forum1"
        ]
    );

    let m = w.metrics();
    assert!(m.contains("dvault_snapshots{site=\"forum1\"} 2\n"), "{m}");
    assert!(m.contains("dvault_snapshots{site=\"forum2\"} 1\n"), "{m}");
    assert!(
        m.contains("dvault_last_run_success{site=\"forum1\"} 1\n"),
        "{m}"
    );
    assert!(m.contains("dvault_dedup_ratio{site=\"forum1\"} "), "{m}");
}

#[test]
fn a_failing_site_pings_fail_with_the_cause_and_is_retried_next_run() {
    let w = World::new("");
    w.backup("forum1", "2024-03-01-033000", 500);
    w.backup("forum2", "2024-03-01-033000", 500);
    // forum2's password file now holds a wrong password.
    let pw2 = w.dir.path().join("forum2/password");
    std::fs::write(&pw2, "not the password\n").unwrap();
    let (r, lines) = w.run(None);
    assert_eq!(r.exit_code, exit::PARTIAL, "{r:#?}");
    assert_eq!(outcome(&r, "forum1"), Outcome::Stored);
    assert_eq!(outcome(&r, "forum2"), Outcome::Failed);
    let err = r.sites[1].error.clone().unwrap();
    assert!(err.to_lowercase().contains("password"), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"level\":\"error\"") && l.contains("\"site\":\"forum2\"")),
        "{lines:#?}"
    );
    {
        let got = w.pings.got.lock().unwrap();
        let f2: Vec<&(String, String)> = got
            .iter()
            .filter(|g| g.0.starts_with("/ping/forum2"))
            .collect();
        assert_eq!(f2.len(), 2, "{f2:?}");
        assert_eq!(f2[0].0, "/ping/forum2/start");
        assert_eq!(f2[1].0, "/ping/forum2/fail");
        assert!(
            f2[1].1.contains(&err),
            "fail body carries the error: {:?}",
            f2[1].1
        );
    }
    let m = w.metrics();
    assert!(
        m.contains("dvault_last_run_success{site=\"forum2\"} 0\n"),
        "{m}"
    );
    assert!(
        !m.contains("dvault_last_success_timestamp_seconds{site=\"forum2\"}"),
        "{m}"
    );

    // Fixed: the next run stores what the failed run did not.
    std::fs::write(&pw2, "secret of forum2\n").unwrap();
    let (r, _) = w.run(Some("forum2"));
    assert_eq!(r.exit_code, exit::OK, "{r:#?}");
    assert_eq!(outcome(&r, "forum2"), Outcome::Stored);
    assert!(w
        .metrics()
        .contains("dvault_last_run_success{site=\"forum2\"} 1\n"));
}

#[test]
fn a_held_repository_lock_gives_exit_code_11_and_a_fail_ping_naming_the_holder() {
    let w = World::new("");
    w.backup("forum1", "2024-03-01-033000", 100);
    let repo1 = &dvault_core::lock::location_key(&w.config.sites["forum1"].store_id());
    let held = RepoLock::acquire(&w.config.state_dir(), repo1, Duration::ZERO).unwrap();
    let (r, _) = w.run(Some("forum1"));
    assert_eq!(r.exit_code, exit::LOCKED, "{r:#?}");
    assert_eq!(outcome(&r, "forum1"), Outcome::Locked);
    let err = r.sites[0].error.clone().unwrap();
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    let got = w.pings.got.lock().unwrap();
    assert!(got
        .iter()
        .any(|g| g.0 == "/ping/forum1/fail" && g.1.contains("locked by another dvault run")));
    drop(got);
    drop(held);
    let (r, _) = w.run(Some("forum1"));
    assert_eq!(r.exit_code, exit::OK);
}

#[test]
fn retention_and_check_run_when_allowed_and_due() {
    let w = World::new(
        "[sites.forum1.retention]\nkeep_daily = 1\nforget = true\nprune = true\n\
         [sites.forum1.check]\nevery = \"1d\"\nread_data_subset = \"100%\"\n\
         [sites.forum2.retention]\nkeep_daily = 1\n",
    );
    w.backup("forum1", "2024-03-01-033000", 300);
    w.backup("forum2", "2024-03-01-033000", 300);
    let (r, _) = w.run(None);
    assert_eq!(r.exit_code, exit::OK, "{r:#?}");
    let f1 = &r.sites[0];
    assert!(
        f1.retention.as_deref().unwrap().contains("removed 0"),
        "{f1:#?}"
    );
    assert!(
        f1.check.as_deref().unwrap().contains("no errors"),
        "{f1:#?}"
    );
    assert!(r.sites[1]
        .retention
        .as_deref()
        .unwrap()
        .contains("not on this host"));
    assert!(w
        .metrics()
        .contains("dvault_last_check_success_timestamp_seconds{site=\"forum1\"}"));

    // Two backups of the same day: keep_daily = 1 forgets the older snapshot.
    w.backup("forum1", "2024-03-01-153000", 310);
    let (r, _) = w.run(Some("forum1"));
    assert_eq!(r.exit_code, exit::OK, "{r:#?}");
    assert_eq!(r.sites[0].outcome, Outcome::Stored);
    assert!(
        r.sites[0]
            .retention
            .as_deref()
            .unwrap()
            .contains("removed 1"),
        "{:#?}",
        r.sites[0]
    );
    assert_eq!(r.sites[0].snapshots, Some(1));
    assert_eq!(
        r.sites[0].check.as_deref(),
        Some("not due"),
        "checked a minute ago"
    );
}

#[test]
fn a_site_whose_folder_or_password_file_is_missing_fails_alone() {
    let missing = tempfile::tempdir().unwrap();
    let gone = missing.path().join("no-such-folder");
    std::fs::write(missing.path().join("password"), "secret of other\n").unwrap();
    let w = World::new(&format!(
        "[sites.other.source]\nfolder = \"{}\"\n\
         [sites.other.repository]\nlocation = \"{}\"\npassword_file = \"{}\"\n",
        gone.display(),
        missing.path().join("repo").display(),
        missing.path().join("password").display(),
    ));
    w.backup("forum1", "2024-03-01-033000", 200);
    w.backup("forum2", "2024-03-01-033000", 200);
    let config_path = w.dir.path().join("dvault.toml").display().to_string();

    let (r, lines) = w.run(None);
    assert_eq!(r.exit_code, exit::PARTIAL, "{r:#?}");
    assert_eq!(outcome(&r, "forum1"), Outcome::Stored);
    assert_eq!(outcome(&r, "forum2"), Outcome::Stored);
    assert_eq!(outcome(&r, "other"), Outcome::Failed);
    let other = r.sites.iter().find(|s| s.site == "other").unwrap();
    let err = other.error.clone().unwrap();
    assert!(
        err.contains(&config_path)
            && err.contains("sites.other.source.folder")
            && err.contains(&gone.display().to_string())
            && err.contains("No such file or directory"),
        "names the config file, the key, the folder and the cause: {err}"
    );
    assert!(
        lines.iter().any(|l| l.contains("\"level\":\"error\"")
            && l.contains("\"site\":\"other\"")
            && l.contains("sites.other.source.folder")),
        "{lines:#?}"
    );
    let m = w.metrics();
    assert!(
        m.contains("dvault_last_run_success{site=\"other\"} 0\n"),
        "{m}"
    );
    assert!(
        m.contains("dvault_last_run_success{site=\"forum1\"} 1\n"),
        "{m}"
    );

    // forum2's password file disappears: forum2 fails naming it, forum1 still runs and pings.
    let pw2 = w.dir.path().join("forum2/password");
    std::fs::remove_file(&pw2).unwrap();
    w.backup("forum1", "2024-03-02-033000", 210);
    let (r, _) = w.run(None);
    assert_eq!(r.exit_code, exit::PARTIAL, "{r:#?}");
    assert_eq!(outcome(&r, "forum1"), Outcome::Stored);
    assert_eq!(outcome(&r, "forum2"), Outcome::Failed);
    let err = r.sites[1].error.clone().unwrap();
    assert!(
        err.contains(&config_path)
            && err.contains("sites.forum2.repository.password_file")
            && err.contains(&pw2.display().to_string())
            && err.contains("No such file or directory"),
        "{err}"
    );
    {
        let got = w.pings.got.lock().unwrap();
        let f2: Vec<&(String, String)> = got
            .iter()
            .filter(|g| g.0.starts_with("/ping/forum2"))
            .collect();
        let paths: Vec<&str> = f2.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/ping/forum2/start",
                "/ping/forum2",
                "/ping/forum2/start",
                "/ping/forum2/fail"
            ]
        );
        assert!(
            f2[3].1.contains(&err),
            "fail body carries the error: {:?}",
            f2[3].1
        );
        let f1 = got.iter().filter(|g| g.0 == "/ping/forum1").count();
        assert_eq!(f1, 2, "forum1 pinged success in both runs");
    }
    assert!(w
        .metrics()
        .contains("dvault_last_run_success{site=\"forum2\"} 0\n"));

    // Only failing sites selected: the run as a whole failed.
    let (r, _) = w.run(Some("other"));
    assert_eq!(r.exit_code, exit::ERROR, "{r:#?}");
}
