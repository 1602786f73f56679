//! Item 3 of issue 20: every write `dvault run` makes after the backup (the state file, the
//! metrics textfile) fails the run visibly when it fails: the site is reported failed with the
//! file named, the exit code says so, and the ping is /fail, never a success ping. A real
//! repository, a real gzip'd backup and a ping server on 127.0.0.1.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use dvault_core::config::Config;
use dvault_core::repo::{InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::run::{self, exit, LogEvent, Outcome, RunOptions, RunReport};
use dvault_testkit::{ping_server, PingServer};

struct World {
    dir: tempfile::TempDir,
    pings: PingServer,
}

/// One site with a stored-to-be backup; `textfile` and `state_dir` go into the config as given.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let folder = d.join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    let plain = folder.join("forum-2024-03-01-033000-v20240220010101.sql");
    std::fs::write(&plain, "COPY public.posts (id) FROM stdin;\n1\n\\.\n").unwrap();
    assert!(Command::new("gzip")
        .args(["-n", "-5"])
        .arg(&plain)
        .status()
        .unwrap()
        .success());
    let gz = folder.join("forum-2024-03-01-033000-v20240220010101.sql.gz");
    std::fs::File::options()
        .write(true)
        .open(&gz)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    std::fs::write(d.join("password"), "pw\n").unwrap();
    let mut cfg = RepoConfig::new(Location::Local(d.join("repo")));
    cfg.cache_dir = Some(d.join("cache"));
    Repo::init(&cfg, &Password::new("pw"), &InitOptions::default(), None).unwrap();
    World {
        dir,
        pings: ping_server(),
    }
}

impl World {
    fn run(&self, state_dir: &Path, textfile: &Path) -> (RunReport, Vec<String>) {
        let d = self.dir.path();
        let text = format!(
            "state_dir = {state:?}\ncache_dir = \"{d}/cache\"\n\
             [monitoring]\nprometheus_textfile = {textfile:?}\n\
             [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"50ms\"\n\
             [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n\
             [sites.forum.monitoring]\nping_url = \"{url}/ping/forum\"\n",
            state = state_dir.display().to_string(),
            textfile = textfile.display().to_string(),
            d = d.display(),
            url = self.pings.url,
        );
        let path = d.join("dvault.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut lines = Vec::new();
        let mut log = |e: &LogEvent<'_>| {
            lines.push(format!(
                "- {} [{}] {}",
                e.level,
                e.site.unwrap_or("-"),
                e.message
            ))
        };
        let report = run::run(
            &config,
            &run::RepoOpener::new(&config),
            RunOptions {
                site: None,
                drill: None,
                log: &mut log,
            },
        )
        .unwrap();
        (report, lines)
    }

    fn pings(&self) -> Vec<String> {
        self.pings
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|g| g.0.clone())
            .collect()
    }
}

#[test]
fn a_metrics_textfile_that_cannot_be_written_fails_the_run_and_pings_fail() {
    let w = world();
    // The textfile's folder is a regular file: no user, root included, can write there.
    let blocker = w.dir.path().join("node-exporter");
    std::fs::write(&blocker, "").unwrap();
    let textfile = blocker.join("dvault.prom");
    let (r, lines) = w.run(&w.dir.path().join("state"), &textfile);
    assert_eq!(r.exit_code, exit::ERROR, "{r:#?}");
    assert_eq!(r.sites[0].outcome, Outcome::Failed);
    // The backup itself was stored; the report says what failed afterwards, naming the file.
    assert!(r.sites[0].snapshot.is_some(), "{r:#?}");
    let err = r.sites[0].error.clone().unwrap();
    assert!(err.contains(&textfile.display().to_string()), "{err}");
    assert!(!lines.iter().any(|l| l.contains("done in")), "{lines:#?}");
    assert_eq!(w.pings(), ["/ping/forum/start", "/ping/forum/fail"]);
}

#[test]
fn a_state_file_that_cannot_be_written_fails_the_run_and_pings_fail() {
    let w = world();
    let state = w.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // sites/ is a file: the state file cannot be created (the lock folder still can).
    std::fs::write(state.join("sites"), "").unwrap();
    let (r, _) = w.run(&state, &w.dir.path().join("dvault.prom"));
    assert_eq!(r.exit_code, exit::ERROR, "{r:#?}");
    let err = r.sites[0].error.clone().unwrap();
    assert!(
        err.contains(&state.join("sites").display().to_string()),
        "{err}"
    );
    assert_eq!(w.pings(), ["/ping/forum/start", "/ping/forum/fail"]);
}

#[test]
fn when_every_write_works_the_run_pings_success() {
    let w = world();
    let textfile = w.dir.path().join("dvault.prom");
    let (r, _) = w.run(&w.dir.path().join("state"), &textfile);
    assert_eq!(r.exit_code, exit::OK, "{r:#?}");
    assert!(std::fs::read_to_string(&textfile)
        .unwrap()
        .contains("dvault_last_run_success{site=\"forum\"} 1"));
    assert_eq!(w.pings(), ["/ping/forum/start", "/ping/forum"]);
}
