//! `dvault run` with backups named the way Discourse names them today, and with files named like
//! backups that no Discourse writes: the current name (`-v<dashed version>-<migration>.tar`) is
//! stored, and a file that cannot be used is never passed over silently (warning in the log and
//! report, a metric, and a failed site when it is the newest file). Before, a newer file with a
//! name the parser did not know was skipped, the older stored backup found again, and the run
//! ended "already stored", every day.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use dvault_core::config::Config;
use dvault_core::repo::{InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::run::{self, exit, LogEvent, Outcome, RunOptions, RunReport};

struct Site {
    dir: tempfile::TempDir,
    config: Config,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("backups")).unwrap();
        std::fs::create_dir_all(d.join("metrics")).unwrap();
        std::fs::write(d.join("password"), "secret\n").unwrap();
        let mut cfg =
            RepoConfig::new(Location::parse(&d.join("repo").display().to_string()).unwrap());
        cfg.cache_dir = Some(d.join("cache"));
        Repo::init(
            &cfg,
            &Password::new("secret"),
            &InitOptions::default(),
            None,
        )
        .unwrap();
        let text = format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
             [monitoring]\nprometheus_textfile = \"{d}/metrics/dvault.prom\"\n\
             [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"50ms\"\n\
             [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n",
            d = d.display()
        );
        std::fs::write(d.join("dvault.toml"), text).unwrap();
        let config = Config::load(&d.join("dvault.toml")).unwrap_or_else(|e| panic!("{e}"));
        Site { dir, config }
    }

    fn folder(&self) -> PathBuf {
        self.dir.path().join("backups")
    }

    fn run(&self) -> (RunReport, Vec<String>) {
        let mut lines = Vec::new();
        let mut log = |e: &LogEvent<'_>| {
            lines.push(format!(
                "- {} [{}] {}",
                e.level,
                e.site.unwrap_or("-"),
                e.message
            ))
        };
        let opener = run::RepoOpener::new(&self.config);
        let opts = RunOptions {
            site: None,
            drill: None,
            log: &mut log,
        };
        let report = run::run(&self.config, &opener, opts).unwrap();
        (report, lines)
    }

    fn metrics(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("metrics/dvault.prom")).unwrap()
    }
}

/// A real gzip'd SQL dump named `name`, modified `age` ago.
fn sql_gz(folder: &Path, name: &str, age: Duration) -> PathBuf {
    let plain = folder.join("dump.sql");
    std::fs::write(
        &plain,
        format!("COPY public.posts (id, raw) FROM stdin;\n1\t{name}\n\\.\n"),
    )
    .unwrap();
    let out = Command::new("gzip")
        .args(["-n", "-5", "-c"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(&plain).unwrap();
    let p = folder.join(name);
    std::fs::write(&p, out.stdout).unwrap();
    set_age(&p, age);
    p
}

/// A real tar holding a `db/` folder, as current Discourse's database-only backup.
fn tar(folder: &Path, name: &str, age: Duration) -> PathBuf {
    let src = folder.join("src");
    std::fs::create_dir_all(src.join("db")).unwrap();
    std::fs::write(src.join("db/toc.dat"), format!("toc of {name}")).unwrap();
    let p = folder.join(name);
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&p)
        .arg("-C")
        .arg(&src)
        .arg("db")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(&src).unwrap();
    set_age(&p, age);
    p
}

fn set_age(p: &Path, age: Duration) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_newer_file_that_cannot_be_used_fails_the_site_instead_of_storing_nothing() {
    let site = Site::new();
    sql_gz(
        &site.folder(),
        "forum-2026-09-24-033000-v20260901000000.sql.gz",
        30 * HOUR,
    );
    let (r1, _) = site.run();
    assert_eq!(r1.sites[0].outcome, Outcome::Stored, "{:?}", r1.sites[0]);

    // The forum's newest backup, under a name no Discourse writes (a version without a
    // migration): the old parser skipped it, found the stored backup again and exited 0.
    let odd = "forum-2026-09-25-033000-v2026-10-0.tar";
    tar(&site.folder(), odd, 6 * HOUR);
    let (r2, lines) = site.run();
    let s = &r2.sites[0];
    assert_eq!(s.outcome, Outcome::Failed, "{s:?}");
    assert_eq!(r2.exit_code, exit::ERROR);
    let err = s.error.as_deref().unwrap();
    assert!(err.contains(odd) && err.contains("newest file"), "{err}");
    assert!(err.contains("migration"), "says why: {err}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" error ") && l.contains(odd)),
        "{lines:?}"
    );
    assert!(
        site.metrics()
            .contains("dvault_unusable_backup_files{site=\"forum\"} 1\n"),
        "{}",
        site.metrics()
    );
}

#[test]
fn current_names_are_stored_and_an_older_unusable_file_is_a_warning() {
    let site = Site::new();
    let folder = site.folder();
    sql_gz(
        &folder,
        "forum-2026-09-24-033000-v20260901000000.sql.gz",
        30 * HOUR,
    );
    sql_gz(&folder, "forum-backup.tar.gz", 20 * HOUR);
    let current = "forum-2026-09-25-033000-v2026-9-0-latest-20260923080644.tar";
    tar(&folder, current, 6 * HOUR);
    let (r, lines) = site.run();
    let s = &r.sites[0];
    assert_eq!(s.outcome, Outcome::Stored, "{s:?}");
    assert_eq!(r.exit_code, exit::OK);
    assert_eq!(s.file.as_deref(), Some(current));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].contains("forum-backup.tar.gz"),
        "{:?}",
        s.warnings
    );
    let json = serde_json::to_value(s).unwrap();
    assert!(json["warnings"][0]
        .as_str()
        .unwrap()
        .contains("cannot be used"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" warn ") && l.contains("forum-backup.tar.gz")),
        "{lines:?}"
    );
    assert!(site
        .metrics()
        .contains("dvault_unusable_backup_files{site=\"forum\"} 1\n"));

    // The next run finds the same backup stored: nothing new, and still the warning.
    let (r2, _) = site.run();
    assert_eq!(r2.sites[0].outcome, Outcome::AlreadyStored);
    assert_eq!(r2.sites[0].warnings.len(), 1);
}
