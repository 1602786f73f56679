//! Gzip members recompressed in parallel on rebuild (`RebuildOptions::parallel_jobs`) give the
//! original file byte for byte at any job count and buffer cap: tar members that are gzip layers
//! (format B's `db/NNNN.dat.gz`, made by the real `gzip` and by zlib at pg_dump's settings), and
//! the members of one gzip stream. A huge first member followed by many small ones rebuilds
//! with a tiny buffer cap (the bound holds back the small ones and does not deadlock), and a
//! missing or damaged entry fails naming it, with the error the sequential path gives.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::common::sh;
use crate::parallel::{make_format_b, ROWS};
use peel::{Node, RebuildOptions};

/// Longest a rebuild here may take before the test calls it a deadlock.
const DEADLINE: Duration = Duration::from_secs(600);

/// Rebuilds the tree `tree` with `jobs` members at once and a buffer cap of `cap` bytes, on a
/// thread of its own so that a deadlock fails the test instead of hanging it.
fn rebuild(tree: &Path, jobs: usize, cap: usize) -> peel::Result<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let tree = tree.to_path_buf();
    std::thread::spawn(move || {
        let opts = RebuildOptions {
            parallel_jobs: jobs,
            buffer_cap: cap,
        };
        let mut out = Vec::new();
        let r = peel::tree::rebuild_from_dir_with(&tree, &mut out, &opts).map(|_| out);
        let _ = tx.send(r);
    });
    rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        panic!("rebuild with {jobs} jobs and a cap of {cap} bytes: no result after {DEADLINE:?}")
    })
}

/// Expands `input` (under `work`) into a tree, once; returns the tree and the recipe.
fn expand(work: &Path, input: &str) -> (std::path::PathBuf, peel::Recipe) {
    let tree = work.join(format!("tree-{input}"));
    if tree.exists() {
        let recipe = peel::tree::read_recipe(&tree.join(peel::tree::RECIPE_PATH)).unwrap();
        return (tree, recipe);
    }
    let (recipe, _) =
        peel::tree::expand_to_dir(&work.join(input), &tree, &peel::ExpandOptions::default())
            .unwrap_or_else(|e| panic!("expand {input}: {e}"));
    (tree, recipe)
}

/// Asserts that the rebuild gives the bytes of `input` at every job count and cap.
fn same_bytes_at_any_job_count(work: &Path, input: &str, caps: &[usize]) {
    let original = std::fs::read(work.join(input)).unwrap();
    let (tree, _) = expand(work, input);
    for jobs in [0, 1, 2, 8] {
        for &cap in caps {
            let got = rebuild(&tree, jobs, cap)
                .unwrap_or_else(|e| panic!("{input}: rebuild with {jobs} jobs, cap {cap}: {e}"));
            assert!(
                got == original,
                "{input}: rebuilt with {jobs} jobs and a cap of {cap} bytes: {} bytes, differ \
                 from the original's {}",
                got.len(),
                original.len()
            );
        }
    }
}

fn default_cap() -> usize {
    RebuildOptions::default().buffer_cap
}

/// Tar members whose data is a gzip layer.
fn gzip_members(node: &Node) -> usize {
    match node {
        Node::Tar(t) => t
            .members
            .iter()
            .filter(|m| matches!(m.data, Some(Node::Gzip { .. })))
            .count(),
        Node::Gzip { inner, .. } => gzip_members(inner),
        _ => 0,
    }
}

/// pg_dump's own `.dat.gz` files: zlib level 4, gzip wrapper (no name, mtime 0), as pg_dump's
/// `--compress=4` writes them through zlib.
fn add_pg_dump_like_members(work: &Path, dir: &str, count: u32) {
    sh(
        work,
        &format!(
            "python3 -c \"import zlib
for i in range({count}):
    data=b''.join(b'%d\\tuser%d\\t2024-01-01 12:00:00\\tpost text %d\\n' % (r, r % 97, r * i) for r in range(2000 + i * 1500))
    c=zlib.compressobj(4, zlib.DEFLATED, 31)
    open('{dir}/%d.dat.gz' % (5000 + i),'wb').write(c.compress(data)+c.flush())\""
        ),
    );
}

#[test]
fn format_b_rebuilds_byte_for_byte_with_1_2_and_8_jobs() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    make_format_b(w, 24);
    add_pg_dump_like_members(w, "b/db", 8);
    sh(
        w,
        "tar --format=gnu -cf format-b.tar -C b db && gzip -5 -n -c format-b.tar > format-b.tar.gz",
    );
    let (_, recipe) = expand(w, "format-b.tar");
    assert_eq!(
        gzip_members(&recipe.root),
        33,
        "every .dat.gz is a gzip layer"
    );
    same_bytes_at_any_job_count(w, "format-b.tar", &[default_cap(), 64 * 1024]);
    same_bytes_at_any_job_count(w, "format-b.tar.gz", &[default_cap()]);
}

#[test]
fn members_of_one_gzip_stream_rebuild_byte_for_byte_in_parallel() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // 120 members, levels mixed, then trailing zeros (as some tape tools leave), and that
    // stream inside a tar beside a plain file.
    sh(
        w,
        &format!(
            "for i in $(seq 1 120); do n=$(( i * 37 % 900 + 5 )); {ROWS} | gzip -$(( i % 9 + 1 )) -n; done > many.gz
             head -c 512 /dev/zero >> many.gz
             mkdir t && cp many.gz t/many.gz && seq 1 100 > t/plain.txt
             tar --format=gnu -cf many.tar -C t many.gz plain.txt"
        ),
    );
    let (_, recipe) = expand(w, "many.gz");
    let Node::Gzip { gzip, .. } = &recipe.root else {
        panic!("many.gz is a gzip layer: {:?}", recipe.root);
    };
    assert_eq!(gzip.members.len(), 120);
    same_bytes_at_any_job_count(w, "many.gz", &[default_cap(), 4096]);
    same_bytes_at_any_job_count(w, "many.tar", &[default_cap()]);
}

#[test]
fn a_huge_first_member_then_many_small_ones_rebuild_within_a_small_cap() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // The first member compresses to megabytes, far over the cap; the 60 after it are small and
    // done long before it, so they fill the cap and wait for their turn.
    sh(
        w,
        &format!(
            "mkdir -p h/db
             n=400000; {ROWS} | gzip -1 -n > h/db/0000.dat.gz
             for i in $(seq 1 60); do n=$(( i * 53 + 10 )); {ROWS} | gzip -$(( i % 9 + 1 )) -n > h/db/$((1000 + i)).dat.gz; done
             tar --format=gnu --sort=name -cf huge-first.tar -C h db
             {{ n=400000; {ROWS} | gzip -1 -n; for i in $(seq 1 60); do n=$(( i * 53 + 10 )); {ROWS} | gzip -6 -n; done; }} > huge-first.gz"
        ),
    );
    let size = std::fs::metadata(w.join("h/db/0000.dat.gz")).unwrap().len();
    assert!(size > 1 << 20, "the first member is large: {size} bytes");
    same_bytes_at_any_job_count(w, "huge-first.tar", &[4096, 256 * 1024]);
    same_bytes_at_any_job_count(w, "huge-first.gz", &[4096]);
}

#[test]
fn a_missing_or_damaged_member_fails_naming_it_as_in_sequence() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    make_format_b(w, 12);
    sh(w, "tar --format=gnu -cf format-b.tar -C b db");
    let original = std::fs::read(w.join("format-b.tar")).unwrap();
    let (tree, _) = expand(w, "format-b.tar");
    let errors = |what: &str| -> Vec<String> {
        [0, 1, 2, 8]
            .into_iter()
            .map(|jobs| {
                let err = rebuild(&tree, jobs, 64 * 1024)
                    .map(|_| ())
                    .expect_err(&format!("{what}: rebuild with {jobs} jobs fails"));
                err.to_string()
            })
            .collect()
    };
    let assert_named = |what: &str, got: &[String], name: &str| {
        assert!(got[0].contains(name), "{what}: names {name}: {}", got[0]);
        for (jobs, e) in [1, 2, 8].iter().zip(&got[1..]) {
            assert_eq!(
                e, &got[0],
                "{what}: the error with {jobs} jobs is the sequential one"
            );
        }
    };

    // A member's content missing from the tree.
    let missing = tree.join("db/3005.dat");
    let kept = w.join("kept.dat");
    std::fs::rename(&missing, &kept).unwrap();
    let got = errors("missing");
    assert_named("missing", &got, "db/3005.dat");
    std::fs::rename(&kept, &missing).unwrap();
    assert!(rebuild(&tree, 2, 64 * 1024).unwrap() == original);

    // A member's content cut short.
    let content = std::fs::read(&missing).unwrap();
    std::fs::write(&missing, &content[..content.len() / 2]).unwrap();
    let got = errors("truncated");
    assert_named("truncated", &got, "db/3005.dat");
    // Changed but of the same size: recompressed into other bytes, and the SHA-256 of the
    // whole (checked as always) says so.
    let mut changed = content.clone();
    changed[content.len() / 2] ^= 0x20;
    std::fs::write(&missing, &changed).unwrap();
    // (Or, when the new bytes compress to another length, the member's deflate size says it.)
    let got = errors("changed");
    assert!(
        got[0].starts_with("rebuild mismatch:")
            || got[0].contains("deflate bytes, the recipe says"),
        "{got:?}"
    );
    assert!(got.iter().all(|e| e == &got[0]), "{got:?}");
    std::fs::write(&missing, &content).unwrap();
    assert!(rebuild(&tree, 8, 4096).unwrap() == original);
}

/// A tree on disk that counts how many gzip members' contents (`db/NNNN.dat`, not the plain
/// `db/toc.dat`, which the writer copies itself) are open at once.
struct Counting {
    dir: peel::tree::DirSource,
    root: std::path::PathBuf,
    open: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

struct Opened {
    inner: Box<dyn Read + Send>,
    open: Arc<AtomicUsize>,
}

impl Read for Opened {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl peel::EntrySource for Counting {
    fn open(&mut self, path: &str) -> std::io::Result<Box<dyn Read + Send>> {
        let inner = self.dir.open(path)?;
        if !path.ends_with(".dat") || path.ends_with("toc.dat") {
            return Ok(inner);
        }
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        // Long enough for the other jobs to open theirs when they run at the same time.
        std::thread::sleep(Duration::from_millis(50));
        Ok(Box::new(Opened {
            inner,
            open: Arc::clone(&self.open),
        }))
    }

    fn try_clone(&self) -> Option<Box<dyn peel::EntrySource>> {
        Some(Box::new(Counting {
            dir: peel::tree::DirSource::new(&self.root),
            root: self.root.clone(),
            open: Arc::clone(&self.open),
            most: Arc::clone(&self.most),
        }))
    }
}

#[test]
fn format_b_members_are_recompressed_at_once_up_to_the_job_count() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    make_format_b(w, 16);
    sh(w, "tar --format=gnu -cf format-b.tar -C b db");
    let original = std::fs::read(w.join("format-b.tar")).unwrap();
    let (tree, recipe) = expand(w, "format-b.tar");
    for jobs in [0, 1, 2, 4] {
        let most = Arc::new(AtomicUsize::new(0));
        let mut source = Counting {
            dir: peel::tree::DirSource::new(&tree),
            root: tree.clone(),
            open: Arc::new(AtomicUsize::new(0)),
            most: Arc::clone(&most),
        };
        let opts = RebuildOptions {
            parallel_jobs: jobs,
            ..RebuildOptions::default()
        };
        let mut out = Vec::new();
        peel::rebuild_with(&recipe, &mut source, &mut out, &opts).unwrap();
        assert!(out == original, "{jobs} jobs: the original bytes");
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= jobs.max(1),
            "{jobs} jobs: at most that many members at once, saw {most}"
        );
        if jobs >= 2 {
            assert!(
                most >= 2,
                "{jobs} jobs: members rebuilt side by side, saw {most}"
            );
        }
    }
}
