//! Gzip members proven in parallel (`ExpandOptions::parallel_proofs`) give exactly what proving
//! them one after another gives: the same recipe, the same entries byte for byte, the same layer
//! reports, on inputs made by the real `gzip` and `tar` in the shape of a format B backup (a tar
//! of `db/NNNN.dat.gz` members, as `pg_dump --format=directory` writes them) and of gzip streams
//! with many members. Failures stay where they were: a corrupted member is named, and a member
//! no method reproduces is stored as on the sequential path.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{self, sh};
use peel::{ExpandOptions, Recipe};

/// Path and SHA-256 of every file of a tree (the recipe included).
fn tree_files(dir: &Path) -> BTreeMap<String, String> {
    common::all_paths(dir)
        .into_iter()
        .filter(|p| dir.join(p).is_file())
        .map(|p| {
            let sha = common::sha256_file(&dir.join(&p));
            (p, sha)
        })
        .collect()
}

/// Expands `input` with `parallel` proofs at once (0: sequential) into a fresh directory.
fn expand(work: &Path, input: &str, parallel: usize, base: &ExpandOptions) -> Expanded {
    let opts = ExpandOptions {
        parallel_proofs: parallel,
        ..base.clone()
    };
    let tree = work.join(format!("tree-{input}-{parallel}"));
    let path = work.join(input);
    let (recipe, report) = peel::tree::expand_to_dir(&path, &tree, &opts)
        .unwrap_or_else(|e| panic!("expand {input} with {parallel} proofs at once: {e}"));
    let mut out = Vec::new();
    let digest = peel::tree::rebuild_from_dir(&tree, &mut out).unwrap();
    assert_eq!(
        digest.sha256,
        common::sha256_file(&path),
        "{input}: rebuilt"
    );
    Expanded {
        files: tree_files(&tree),
        layers: serde_json::to_value(&report.layers).unwrap(),
        recipe,
    }
}

#[derive(Debug, PartialEq)]
struct Expanded {
    recipe: Recipe,
    files: BTreeMap<String, String>,
    layers: serde_json::Value,
}

/// Asserts that every degree of parallelism gives what the sequential path gives; returns that.
fn same_as_sequential(work: &Path, input: &str, opts: &ExpandOptions) -> Expanded {
    let sequential = expand(work, input, 0, opts);
    for parallel in [1, 2, 8] {
        let got = expand(work, input, parallel, opts);
        assert_eq!(
            got, sequential,
            "{input}: {parallel} proofs at once differ from the sequential path"
        );
    }
    sequential
}

/// Text shaped like the rows of a table, different per member.
pub(crate) const ROWS: &str =
    "seq 1 $n | sed \"s/$/\\tuser$n\\t2024-01-0$((n % 9 + 1)) 12:00:00\\tsome post text $n/\"";

/// A format B shaped tar: `toc.dat` and `db/NNNN.dat.gz` members of many sizes, compressed by
/// GNU gzip at several levels, one of them far larger than the probe.
pub(crate) fn make_format_b(work: &Path, members: u32) {
    sh(
        work,
        &format!(
            "mkdir -p b/db
             printf 'PGDMP toc' > b/db/toc.dat
             for i in $(seq 1 {members}); do
               n=$(( (i * 7919) % 20000 + 10 )); f=b/db/$((3000 + i)).dat.gz
               {ROWS} | gzip -$(( i % 9 + 1 )) -n > $f
             done
             n=300000; {ROWS} | gzip -6 -n > b/db/9999.dat.gz
             tar --format=gnu -cf format-b.tar -C b db"
        ),
    );
}

#[test]
fn format_b_members_proven_in_parallel_give_the_sequential_recipe_and_entries() {
    let work = tempfile::tempdir().unwrap();
    make_format_b(work.path(), 24);
    sh(work.path(), "gzip -5 -n -c format-b.tar > format-b.tar.gz");
    let opts = ExpandOptions::default();
    for input in ["format-b.tar", "format-b.tar.gz"] {
        let got = same_as_sequential(work.path(), input, &opts);
        let gunzipped = got
            .files
            .keys()
            .filter(|p| p.contains("db/") && p.ends_with(".dat") && !p.ends_with("toc.dat"))
            .count();
        assert_eq!(
            gunzipped, 25,
            "{input}: every member peeled: {:?}",
            got.files
        );
    }
}

#[test]
fn many_members_in_one_gzip_stream_are_proven_in_parallel_and_put_back_in_order() {
    let work = tempfile::tempdir().unwrap();
    // 120 members (as `gzip` appends them, or pigz and split tools write them), with the levels
    // mixed, and a tar holding that stream next to a plain member.
    sh(
        work.path(),
        &format!(
            "for i in $(seq 1 120); do n=$(( i * 37 % 900 + 5 )); {ROWS} | gzip -$(( i % 9 + 1 )) -n; done > many.gz
             for i in $(seq 1 120); do n=$(( i * 37 % 900 + 5 )); {ROWS} | wc -c; done > sizes
             mkdir t && cp many.gz t/many.gz && seq 1 100 > t/plain.txt
             tar --format=gnu -cf many.tar -C t many.gz plain.txt"
        ),
    );
    let opts = ExpandOptions::default();
    let got = same_as_sequential(work.path(), "many.gz", &opts);
    let peel::Node::Gzip { gzip, .. } = &got.recipe.root else {
        panic!("many.gz is a gzip layer: {:?}", got.recipe.root);
    };
    assert_eq!(gzip.members.len(), 120);
    // The members are in file order.
    let sizes: Vec<u64> = std::fs::read_to_string(work.path().join("sizes"))
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let got_sizes: Vec<u64> = gzip.members.iter().map(|m| m.plain_size).collect();
    assert_eq!(got_sizes, sizes);
    same_as_sequential(work.path(), "many.tar", &opts);
}

#[test]
fn a_corrupted_member_is_kept_or_named_in_parallel_as_in_sequence() {
    let work = tempfile::tempdir().unwrap();
    make_format_b(work.path(), 6);
    // A multi-member stream whose third member's deflate body is overwritten in the middle, the
    // same stream cut off inside that member, and a format B tar with one db/ member overwritten.
    sh(
        work.path(),
        &format!(
            "for i in 1 2 3 4 5 6; do n=$(( i * 2000 )); {ROWS} | gzip -6 -n > m$i.gz; done
             cat m1.gz m2.gz m3.gz m4.gz m5.gz m6.gz > multi.gz
             start=$(( $(stat -c %s m1.gz) + $(stat -c %s m2.gz) )); printf '%s' $start > start3
             head -c $(( start + $(stat -c %s m3.gz) / 2 )) multi.gz > cut.gz
             head -c 64 /dev/zero | tr '\\0' '\\377' | dd of=multi.gz bs=1 seek=$(( start + $(stat -c %s m3.gz) / 2 )) conv=notrunc status=none
             f=b/db/3004.dat.gz
             head -c 64 /dev/zero | tr '\\0' '\\377' | dd of=$f bs=1 seek=$(( $(stat -c %s $f) / 2 )) conv=notrunc status=none
             tar --format=gnu -cf broken-b.tar -C b db"
        ),
    );
    let start = std::fs::read_to_string(work.path().join("start3")).unwrap();
    for parallel in [0, 2] {
        let opts = ExpandOptions {
            parallel_proofs: parallel,
            ..ExpandOptions::default()
        };
        let tree = work.path().join(format!("t-cut-{parallel}"));
        let err = peel::tree::expand_to_dir(&work.path().join("cut.gz"), &tree, &opts)
            .expect_err("a stream cut inside a member fails")
            .to_string();
        assert!(
            err.contains(&format!("truncated gzip member (starts at byte {start})")),
            "{parallel} proofs at once: the error names the third member (at byte {start}): {err}"
        );
    }
    // Overwritten deflate data still decodes here (to other bytes, with a CRC that no longer
    // matches): no method reproduces it, so the layer is kept as its original bytes, the same
    // way in parallel (which expands again, one member after another) as in sequence.
    let got = same_as_sequential(work.path(), "multi.gz", &ExpandOptions::default());
    assert!(
        matches!(got.recipe.root, peel::Node::Stored { .. }),
        "{:?}",
        got.recipe.root
    );
    let got = same_as_sequential(work.path(), "broken-b.tar", &ExpandOptions::default());
    let layers = got.layers.as_array().unwrap();
    let kept = layers
        .iter()
        .find(|l| l["location"].as_str().unwrap().ends_with("db/3004.dat.gz"))
        .expect("a report for the overwritten member");
    assert_ne!(kept["kind"], "gzip", "{kept}");
    assert!(got.files.contains_key("db/3004.dat.gz"), "{:?}", got.files);
    assert!(got.files.contains_key("db/3003.dat"), "{:?}", got.files);
}

#[test]
fn a_member_no_method_reproduces_is_stored_as_on_the_sequential_path() {
    let work = tempfile::tempdir().unwrap();
    make_format_b(work.path(), 8);
    // One member from an encoder that is no candidate (zlib with memLevel 1); preflate is off,
    // so only that layer is stored and every other one is proven.
    sh(
        work.path(),
        "python3 -c \"import zlib,struct
data=b''.join(b'%d\\tuser\\ttext\\n' % i for i in range(200000))
c=zlib.compressobj(6, zlib.DEFLATED, -15, 1)
body=c.compress(data)+c.flush()
open('b/db/3005.dat.gz','wb').write(b'\\x1f\\x8b\\x08\\x00\\x00\\x00\\x00\\x00\\x00\\x03'+body+struct.pack('<II', zlib.crc32(data), len(data)))\"
         tar --format=gnu -cf odd-b.tar -C b db",
    );
    let mut opts = ExpandOptions::default();
    opts.gzip.preflate = false;
    let got = same_as_sequential(work.path(), "odd-b.tar", &opts);
    assert!(
        got.files.contains_key("db/3005.dat.gz") && !got.files.contains_key("db/3005.dat"),
        "stored: {:?}",
        got.files
    );
    assert!(got.files.contains_key("db/3004.dat"), "{:?}", got.files);
}
