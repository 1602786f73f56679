//! Progress reporting of a backup: the live "stored" count equals the bytes of the pack files
//! the backup wrote, the byte bars see the plain bytes read, and peeling shows a spinner.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dvault_core::repo::{
    BackupOutcome, InitOptions, Location, Password, ProgressBar, ProgressBars, ProgressKind, Repo,
    RepoConfig,
};
use dvault_core::snapshot::BackupMeta;

#[derive(Debug, Default)]
struct Tally {
    added: AtomicU64,
    bytes: Arc<AtomicU64>,
    spinners: std::sync::Mutex<Vec<String>>,
}

#[derive(Debug)]
struct Counted(Option<Arc<AtomicU64>>);

impl ProgressBar for Counted {
    fn set_length(&self, _len: u64) {}
    fn set_title(&self, _title: &str) {}
    fn inc(&self, n: u64) {
        if let Some(c) = &self.0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
    fn finish(&self) {}
}

impl ProgressBars for Tally {
    fn start(&self, kind: ProgressKind, title: &str) -> Box<dyn ProgressBar> {
        if kind == ProgressKind::Spinner {
            self.spinners.lock().unwrap().push(title.to_string());
        }
        Box::new(Counted(
            (kind == ProgressKind::Bytes).then(|| self.bytes.clone()),
        ))
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
fn stored_bytes_shown_live_equal_the_pack_files_written() {
    let tmp = tempfile::tempdir().unwrap();
    let sim_opts = dvault_sim::Options {
        formats: vec![dvault_sim::Format::A],
        ..dvault_sim::Options::small(3)
    };
    let files = dvault_sim::generate(&sim_opts, &tmp.path().join("backups")).unwrap();
    let backup = &files[0].path;
    let repo_dir = tmp.path().join("repo");
    let mut cfg = RepoConfig::new(Location::parse(repo_dir.to_str().unwrap()).unwrap());
    cfg.cache_dir = Some(tmp.path().join("cache"));
    let pw = Password::new("progress test password");
    Repo::init(&cfg, &pw, &InitOptions::default(), None).unwrap();
    let tally = Arc::new(Tally::default());
    let repo = Repo::open(&cfg, &pw, Some(tally.clone())).unwrap();
    let meta = BackupMeta::for_file(backup, "test").unwrap();
    let BackupOutcome::Stored(summary) = repo.backup_file(backup, &meta).unwrap() else {
        panic!("a new repository had the backup already");
    };
    let packs = size_under(&repo_dir.join("data"));
    assert!(packs > 0);
    assert_eq!(tally.added.load(Ordering::Relaxed), packs);
    assert!(
        summary.bytes_added_packed <= packs,
        "{summary:?} vs {packs}"
    );
    assert!(tally.bytes.load(Ordering::Relaxed) >= summary.bytes_processed);
    // Peeling, which reports no counts, still shows that something is happening.
    let spinners = tally.spinners.lock().unwrap();
    assert!(
        spinners.contains(&format!("peeling and proving {}", meta.file_name)),
        "{spinners:?}"
    );
}
