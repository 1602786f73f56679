//! `dvault run` shows a backup's progress live, like `dvault backup`: the bytes read, and the
//! bytes stored (packed into new pack files) while the backup is still reading, not only in
//! the summary at the end. The backup holds 40 MiB of incompressible upload, more than one
//! pack file (rustic_core closes a data pack at 32 MiB), so a pack is written while the file
//! is still being read; the figures are compared with the pack files on disk.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dvault_core::config::Config;
use dvault_core::repo::{
    InitOptions, Location, Password, ProgressBar, ProgressBars, ProgressKind, Repo, RepoConfig,
};
use dvault_core::run::{self, LogEvent, Outcome, RunOptions};
use dvault_testkit::noise;

/// Counts what the run reports: bytes stored so far, bytes read, and the stored count seen by
/// the byte bars while they were still counting.
#[derive(Debug, Default)]
struct Tally {
    added: Arc<AtomicU64>,
    read: Arc<AtomicU64>,
    stored_while_reading: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Bytes {
    added: Arc<AtomicU64>,
    read: Arc<AtomicU64>,
    stored_while_reading: Arc<AtomicU64>,
}

impl ProgressBar for Bytes {
    fn set_length(&self, _len: u64) {}
    fn set_title(&self, _title: &str) {}
    fn inc(&self, n: u64) {
        self.read.fetch_add(n, Ordering::Relaxed);
        let added = self.added.load(Ordering::Relaxed);
        self.stored_while_reading
            .fetch_max(added, Ordering::Relaxed);
    }
    fn finish(&self) {}
}

#[derive(Debug)]
struct Nothing;

impl ProgressBar for Nothing {
    fn set_length(&self, _len: u64) {}
    fn set_title(&self, _title: &str) {}
    fn inc(&self, _n: u64) {}
    fn finish(&self) {}
}

impl ProgressBars for Tally {
    fn start(&self, kind: ProgressKind, _title: &str) -> Box<dyn ProgressBar> {
        match kind {
            ProgressKind::Bytes => Box::new(Bytes {
                added: self.added.clone(),
                read: self.read.clone(),
                stored_while_reading: self.stored_while_reading.clone(),
            }),
            _ => Box::new(Nothing),
        }
    }
    fn added(&self, bytes: u64) {
        self.added.fetch_add(bytes, Ordering::Relaxed);
    }
}

fn size_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                size_under(&p)
            } else {
                p.metadata().unwrap().len()
            }
        })
        .sum()
}

#[test]
fn run_shows_stored_bytes_while_the_backup_is_still_reading() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A current-format (.tar) Discourse backup: a small dump and one big upload.
    let work = d.join("work");
    let uploads = work.join("uploads/default/original/1X");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(
        work.join("dump.sql"),
        "COPY public.posts (id) FROM stdin;\n1\n\\.\n",
    )
    .unwrap();
    std::fs::write(uploads.join("video.bin"), noise(7, 40 << 20)).unwrap();
    let folder = d.join("backups");
    std::fs::create_dir_all(&folder).unwrap();
    let tar = folder.join("forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar");
    assert!(Command::new("tar")
        .current_dir(&work)
        .args(["--format=gnu", "-cf"])
        .arg(&tar)
        .args(["dump.sql", "uploads"])
        .status()
        .unwrap()
        .success());
    std::fs::File::options()
        .write(true)
        .open(&tar)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    std::fs::write(d.join("password"), "pw\n").unwrap();
    let mut cfg = RepoConfig::new(Location::Local(d.join("repo")));
    cfg.cache_dir = Some(d.join("cache"));
    Repo::init(&cfg, &Password::new("pw"), &InitOptions::default(), None).unwrap();
    let text = format!(
        "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
         [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"50ms\"\n\
         [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n",
        d = d.display(),
    );
    std::fs::write(d.join("dvault.toml"), text).unwrap();
    let config = Config::load(&d.join("dvault.toml")).unwrap_or_else(|e| panic!("{e}"));

    let tally = Arc::new(Tally::default());
    let mut lines = Vec::new();
    let mut log = |e: &LogEvent<'_>| {
        lines.push(format!(
            "{} [{}] {}",
            e.level,
            e.site.unwrap_or("-"),
            e.message
        ))
    };
    let report = run::run(
        &config,
        &run::RepoOpener::new(&config).with_progress(Some(tally.clone())),
        RunOptions {
            site: None,
            drill: None,
            log: &mut log,
        },
    )
    .unwrap();
    let site = &report.sites[0];
    assert_eq!(site.outcome, Outcome::Stored, "{report:#?}\n{lines:#?}");

    let packs = size_under(&d.join("repo/data"));
    let added = tally.added.load(Ordering::Relaxed);
    // Every pack byte written was shown, and the run's figure is what the repository grew by.
    assert_eq!(added, packs);
    let stored = site.stored.as_ref().unwrap();
    assert!(
        stored.bytes_added > 40 << 20 && stored.bytes_added <= packs,
        "{stored:?}"
    );
    // The byte bars saw stored bytes while they were still counting bytes read: a pack of
    // the upload was written before the end, and shown then.
    let live = tally.stored_while_reading.load(Ordering::Relaxed);
    assert!(
        live >= 32 << 20,
        "stored shown while reading: {live} of {added}"
    );
    assert!(
        live < added,
        "the last pack is written at the end: {live} of {added}"
    );
    assert!(tally.read.load(Ordering::Relaxed) >= 40 << 20);
}
