//! The drill step of `dvault run` with two sites in one repository: each site's drill restores
//! that site's own snapshot (the one the run stored or found), never the newest snapshot of
//! another site, and of two backups with the same timestamp (format A `.tar.gz` and format B
//! `.tar`) it restores the one the run just stored. Real simulator backups, a real restic-format
//! repository, real drills into a throwaway PostgreSQL cluster.

use std::path::Path;

use dvault_core::config::Config;
use dvault_core::drill::RepoDrillHook;
use dvault_core::repo::{InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::run::{self, exit, Outcome, RepoOpener, RunOptions, RunReport, SiteReport};

fn sim(site: &str, seed: u64, date: (i64, u32, u32), formats: Vec<dvault_sim::Format>, out: &Path) {
    let opts = dvault_sim::Options {
        site: site.into(),
        start_date: date,
        formats,
        ..dvault_sim::Options::small(seed)
    };
    dvault_sim::generate(&opts, out).unwrap();
}

/// The simulator's file of `site` whose name ends with `ext`.
fn pick(pool: &Path, ext: &str) -> std::path::PathBuf {
    let mut found: Vec<_> = std::fs::read_dir(pool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    assert_eq!(found.len(), 1, "{ext} in {}: {found:?}", pool.display());
    found.pop().unwrap()
}

fn copy_into(file: &Path, folder: &Path) -> String {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(file, folder.join(&name)).unwrap();
    name
}

fn site<'a>(r: &'a RunReport, name: &str) -> &'a SiteReport {
    r.sites.iter().find(|s| s.site == name).unwrap()
}

fn run_with(config: &Config, hook: Option<&RepoDrillHook>) -> (RunReport, String) {
    let mut lines = Vec::new();
    let mut log = |e: &run::LogEvent<'_>| {
        lines.push(format!(
            "- {} [{}] {}",
            e.level,
            e.site.unwrap_or("-"),
            e.message
        ))
    };
    let report = run::run(
        config,
        &RepoOpener::new(config),
        RunOptions {
            site: None,
            drill: hook.map(|h| h as &dyn run::DrillHook),
            log: &mut log,
        },
    )
    .unwrap();
    (report, lines.join("\n"))
}

#[test]
fn each_site_drills_its_own_snapshot_in_a_shared_repository() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // community's backup is a day older than forum's: the repository's newest snapshot is
    // forum's, which is what community's drill must not take.
    sim(
        "community",
        3,
        (2025, 12, 31),
        vec![dvault_sim::Format::Sql],
        &w.join("pool-community"),
    );
    sim(
        "forum",
        4,
        (2026, 1, 1),
        vec![dvault_sim::Format::A, dvault_sim::Format::B],
        &w.join("pool-forum"),
    );
    let community_sql = pick(&w.join("pool-community"), ".sql.gz");
    let forum_a = pick(&w.join("pool-forum"), ".tar.gz");
    let forum_b = pick(&w.join("pool-forum"), ".tar");
    // The two forum files share their timestamp, so their snapshots share their time.
    let stamp = |p: &Path| p.file_name().unwrap().to_string_lossy()[6..23].to_string();
    assert_eq!(stamp(&forum_a), stamp(&forum_b));

    let repo = w.join("repo");
    let pw = w.join("password");
    std::fs::write(&pw, "shared secret\n").unwrap();
    let mut cfg = RepoConfig::new(Location::parse(repo.to_str().unwrap()).unwrap());
    cfg.cache_dir = Some(w.join("cache"));
    Repo::init(
        &cfg,
        &Password::new("shared secret"),
        &InitOptions::default(),
        None,
    )
    .unwrap();
    let mut text = format!(
        "state_dir = \"{w}/state\"\ncache_dir = \"{w}/cache\"\n",
        w = w.display()
    );
    for name in ["community", "forum"] {
        let folder = w.join(name);
        std::fs::create_dir(&folder).unwrap();
        text.push_str(&format!(
            "[sites.{name}.source]\nfolder = \"{}\"\nsettle = \"0s\"\n\
             [sites.{name}.repository]\nlocation = \"{}\"\npassword_file = \"{}\"\n\
             [sites.{name}.drill]\nevery = \"1s\"\n",
            folder.display(),
            repo.display(),
            pw.display()
        ));
    }
    // forum's drill (the last section) then puts its backup into a staging forum's backups
    // folder.
    let staging = w.join("staging-backups");
    std::fs::create_dir(&staging).unwrap();
    text.push_str(&format!("put_back = \"{}\"\n", staging.display()));
    let config_path = w.join("dvault.toml");
    std::fs::write(&config_path, text).unwrap();
    let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let hook = RepoDrillHook { scratch_dir: None };

    // First run without drills: both sites store their backup.
    let community_name = copy_into(&community_sql, &w.join("community"));
    let forum_a_name = copy_into(&forum_a, &w.join("forum"));
    let (r, log) = run_with(&config, None);
    assert_eq!(r.exit_code, exit::OK, "{log}");
    assert_eq!(site(&r, "community").outcome, Outcome::Stored, "{log}");
    assert_eq!(
        site(&r, "forum").file.as_deref(),
        Some(forum_a_name.as_str())
    );

    // forum's format B backup of the same moment appears; drills are due for both sites.
    let forum_b_name = copy_into(&forum_b, &w.join("forum"));
    std::fs::remove_file(w.join("forum").join(&forum_a_name)).unwrap();
    let (r, log) = run_with(&config, Some(&hook));
    assert_eq!(r.exit_code, exit::OK, "{log}");

    let c = site(&r, "community");
    assert_eq!(c.outcome, Outcome::AlreadyStored, "{log}");
    let drill = c.drill.as_deref().unwrap_or_default();
    assert!(
        drill.starts_with(&format!("{community_name} restored: ")),
        "community's drill must restore community's backup: {drill}\n{log}"
    );

    let f = site(&r, "forum");
    assert_eq!(f.outcome, Outcome::Stored, "{log}");
    assert_eq!(f.file.as_deref(), Some(forum_b_name.as_str()));
    let drill = f.drill.as_deref().unwrap_or_default();
    assert!(
        drill.starts_with(&format!("{forum_b_name} restored: ")),
        "forum's drill must restore the .tar just stored, not the .tar.gz of the same time: \
         {drill}\n{log}"
    );
    // The drilled backup is in the staging folder, bit-exact, under its own name.
    let placed = staging.join(&forum_b_name);
    assert_eq!(
        std::fs::read(&placed).unwrap(),
        std::fs::read(&forum_b).unwrap(),
        "{log}"
    );
    assert!(
        log.contains(&format!("put {forum_b_name} back into")),
        "{log}"
    );
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 1, "{log}");
    // The restore's time is kept for the dvault_last_drill_restore_seconds metric.
    for name in ["community", "forum"] {
        let state = dvault_core::run::SiteState::load(&config.state_dir(), name).unwrap();
        let secs = state.last_drill_restore_seconds;
        assert!(secs.is_some_and(|s| s > 0.0), "{name}: {secs:?}");
    }
    // The log names each site's own file in its drill line.
    assert!(
        log.contains(&format!("[community] drill: {community_name} restored"))
            && log.contains(&format!("[forum] drill: {forum_b_name} restored")),
        "{log}"
    );
}
