//! The dedup layout on the forum simulator's real backups (real PostgreSQL, pg_dump, tar and
//! gzip): every format lays out and reassembles bit-exact, and backups stored through the
//! repository restore to the original SHA-256 (by dvault, and by the stock restic plus
//! `rebuild_tree`).

use std::path::Path;
use std::process::Command;

use dvault_core::layout;
use dvault_core::repo::{self, InitOptions, Location, Password, Repo, RepoConfig};
use dvault_core::snapshot::{sha256_file, BackupMeta};

fn simulate(days: u32) -> (tempfile::TempDir, Vec<dvault_sim::BackupFile>) {
    let out = tempfile::tempdir().unwrap();
    let opts = dvault_sim::Options {
        days,
        ..dvault_sim::Options::small(11)
    };
    let files = dvault_sim::generate(&opts, out.path()).expect("simulator backups");
    (out, files)
}

#[test]
fn simulator_dumps_of_every_format_lay_out_and_rebuild_bit_exact() {
    let (_out, files) = simulate(1);
    assert_eq!(files.len(), 6);
    for f in files.iter().filter(|f| f.day == 1) {
        let work = tempfile::tempdir().unwrap();
        let tree = work.path().join("tree");
        peel::tree::expand_to_dir(&f.path, &tree, &peel::ExpandOptions::default())
            .expect("peel expands");
        let report = layout::apply(&tree).expect("layout applies");
        let laid: Vec<_> = report.files.iter().filter(|r| r.laid_out).collect();
        match f.format {
            // One plain dump: its big tables (posts, users, topics, ...) become columns.
            dvault_sim::Format::A | dvault_sim::Format::Sql => {
                assert_eq!(laid.len(), 1, "{:?}: {report:?}", f.format);
                assert!(laid[0].blocks >= 5, "{report:?}");
                assert!(laid[0].plain_blocks.is_empty(), "{report:?}");
            }
            // Directory format: one data file per table; the big ones are laid out.
            // Their column names come from toc.dat: a post edit's columns share one file there
            // too.
            dvault_sim::Format::B => {
                assert!(laid.len() >= 5, "{report:?}");
                assert!(laid.iter().all(|r| r.file.starts_with("db/")), "{report:?}");
                let grouped = laid.iter().any(|r| {
                    let block = tree
                        .join(layout::LAYOUT_DIR)
                        .join(&r.file)
                        .join("0000-public.posts");
                    std::fs::read_dir(block).is_ok_and(|d| {
                        d.filter_map(Result::ok).any(|e| {
                            let n = e.file_name().to_string_lossy().into_owned();
                            n.contains("-raw+cooked+updated_at")
                        })
                    })
                });
                assert!(
                    grouped,
                    "no posts data file with named, grouped columns: {report:?}"
                );
            }
        }
        assert!(tree.join(layout::LAYOUT_DIR).join("index.json").is_file());
        layout::undo(&tree).expect("layout undoes");
        let mut out = Vec::new();
        let (size, sha) = repo::rebuild_tree(&tree, &mut out).expect("peel rebuilds");
        let (want_size, want_sha) = sha256_file(&f.path).unwrap();
        assert_eq!((size, sha), (want_size, want_sha), "{:?}", f.format);
    }
}

const PASSWORD: &str = "layout test password";

/// Tree bytes a backup of `file` stores into a new, empty repository under `dir`.
fn tree_bytes_into_new_repo(file: &Path, dir: &Path) -> u64 {
    let sub = dir.join("fresh");
    std::fs::create_dir_all(&sub).unwrap();
    let (fresh, _) = open_repo(&sub);
    let meta = BackupMeta::for_file(file, "test").unwrap();
    match fresh.backup_file(file, &meta).unwrap() {
        repo::BackupOutcome::Stored(s) => s.tree_bytes_added_packed,
        other => panic!("{other:?}"),
    }
}

fn open_repo(dir: &Path) -> (Repo, RepoConfig) {
    let mut cfg = RepoConfig::new(Location::Local(dir.join("repo")));
    cfg.cache_dir = Some(dir.join("cache"));
    cfg.scratch_dir = Some(dir.to_path_buf());
    let pw = Password::new(PASSWORD);
    let r = Repo::init(&cfg, &pw, &InitOptions::default(), None).expect("init");
    (r, cfg)
}

#[test]
fn two_days_through_the_repository_restore_bit_exact_and_expand_to_plain_dumps() {
    let (_out, files) = simulate(1);
    let work = tempfile::tempdir().unwrap();
    let (repo, cfg) = open_repo(work.path());
    let picked: Vec<_> = files
        .iter()
        .filter(|f| matches!(f.format, dvault_sim::Format::A | dvault_sim::Format::B))
        .collect();
    assert_eq!(picked.len(), 4);
    let mut ids = Vec::new();
    for f in &picked {
        let meta = BackupMeta::for_file(&f.path, "test").unwrap();
        match repo.backup_file(&f.path, &meta).expect("backup") {
            repo::BackupOutcome::Stored(s) => {
                let l = s.layout.expect("a layout report");
                assert!(l.files.iter().any(|x| x.laid_out), "{l:?}");
                assert!(s.snapshot.tags.iter().any(|t| t == "layout:1"));
                ids.push((s.snapshot.id, meta));
            }
            other => panic!("not stored: {other:?}"),
        }
    }
    // Unchanged folders give identical tree blobs (fixed metadata in the stored nodes): the same
    // backup with one byte appended after the gzip member stores almost no new tree data.
    let a0 = picked
        .iter()
        .find(|f| f.day == 0 && f.format == dvault_sim::Format::A)
        .unwrap();
    let first_trees = tree_bytes_into_new_repo(&a0.path, work.path());
    let twin = work.path().join(a0.path.file_name().unwrap());
    let mut bytes = std::fs::read(&a0.path).unwrap();
    bytes.push(0);
    std::fs::write(&twin, bytes).unwrap();
    let meta = BackupMeta::for_file(&twin, "test").unwrap();
    let repo::BackupOutcome::Stored(s) = repo.backup_file(&twin, &meta).unwrap() else {
        panic!("the twin is a new file")
    };
    assert!(
        s.tree_bytes_added_packed * 4 < first_trees,
        "twin added {} bytes of trees, the first backup {first_trees}",
        s.tree_bytes_added_packed
    );
    ids.push((s.snapshot.id, meta));

    for (id, meta) in &ids {
        let out = work.path().join("restored");
        repo.restore_file(id, &out).expect("restore");
        assert_eq!(
            sha256_file(&out).unwrap().1,
            meta.sha256,
            "{}",
            meta.file_name
        );
        std::fs::remove_file(&out).unwrap();
    }
    let last_of = |ext: &str| {
        ids.iter()
            .rev()
            .find(|(_, m)| m.file_name.ends_with(ext))
            .expect("a snapshot of that format")
    };
    let (a1, b1) = (last_of(".tar.gz"), last_of(".tar"));
    // --expanded gives the normal tree: dump.sql (format A) or db/*.dat (format B).
    let exp_a = work.path().join("exp-a");
    repo.restore_expanded(&a1.0, &exp_a).unwrap();
    assert!(exp_a.join("dump.sql").is_file());
    assert!(!exp_a.join(layout::LAYOUT_DIR).exists());
    let exp_b = work.path().join("exp-b");
    repo.restore_expanded(&b1.0, &exp_b).unwrap();
    assert!(exp_b.join("db/toc.dat").is_file());
    assert!(!exp_b.join(layout::LAYOUT_DIR).exists());
    let dats = std::fs::read_dir(exp_b.join("db")).unwrap().count();
    assert!(dats > 5, "{dats} files in db/");

    // The stock restic restores the laid-out tree; rebuild_tree puts the dumps back.
    let pw_file = work.path().join("pw");
    std::fs::write(&pw_file, PASSWORD).unwrap();
    let by_restic = work.path().join("by-restic");
    let st = Command::new("restic")
        .arg("-r")
        .arg(cfg.location.to_string())
        .arg("--password-file")
        .arg(&pw_file)
        .arg("--no-cache")
        .args(["restore", &a1.0, "--target"])
        .arg(&by_restic)
        .output()
        .expect("restic runs");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(by_restic
        .join(layout::LAYOUT_DIR)
        .join("index.json")
        .is_file());
    let mut out = Vec::new();
    let (_, sha) = repo::rebuild_tree(&by_restic, &mut out).expect("rebuild");
    assert_eq!(sha, a1.1.sha256);
}
