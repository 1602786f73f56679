//! Layers inside layers: gzip members of a tar, a .tgz inside a tar, and members that look like
//! containers but are not peelable. Names in the tree, fallbacks, and determinism.

use crate::common;

use std::path::Path;

use common::{files, round_trip, sh};
use peel::gzip::Method;
use peel::{ExpandOptions, Node};

/// A tar with gzip members of every kind peel meets in a backup, and a few that only look
/// like containers.
fn make_nested(work: &Path) {
    sh(
        work,
        "mkdir -p src/uploads/default inner
         seq 1 40000 | sed 's/$/\tsome row text/' > dump.sql
         gzip -9 -c dump.sql > src/dump.sql.gz
         seq 1 3000 > inner/a.txt && head -c 20000 /dev/urandom > inner/b.bin
         tar --format=gnu -cf - -C inner . | gzip -6 > src/uploads.tgz
         (printf '\\377\\330\\377\\340'; head -c 30000 /dev/urandom) > src/uploads/default/photo.jpg
         head -c 300 src/dump.sql.gz > src/broken.gz
         python3 -c \"import tarfile,io; t=tarfile.TarInfo('../escape'); t.size=1; b=t.tobuf(format=tarfile.USTAR_FORMAT)+b'x'+b'\\0'*511+b'\\0'*1024; open('src/evil.tar','wb').write(b)\"
         tar --format=gnu -cf nested.tar -C src dump.sql.gz uploads.tgz uploads broken.gz evil.tar",
    );
}

#[test]
fn the_profile_times_every_gzip_layer_and_stays_out_of_the_json_report() {
    let work = tempfile::tempdir().unwrap();
    make_nested(work.path());
    let (_, _, report) = round_trip(work.path(), &work.path().join("nested.tar"));
    let p = &report.profile;
    let located: Vec<&str> = p.layers.iter().map(|l| l.location.as_str()).collect();
    for layer in ["nested.tar>dump.sql.gz", "nested.tar>uploads.tgz"] {
        assert!(located.contains(&layer), "{layer} missing from {located:?}");
    }
    for l in &p.layers {
        // Each layer's decompressing thread runs within the expansion.
        let own = l.read_s + l.decompress_s + l.probe_s + l.downstream_s;
        assert!(own > 0.0 && own <= p.wall_s, "{l:?} in {p:?}");
        assert!(l.proof_s + l.proof_idle_s <= p.wall_s, "{l:?} in {p:?}");
    }
    let dump = &p.layers[located
        .iter()
        .position(|&l| l == "nested.tar>dump.sql.gz")
        .unwrap()];
    // The whole member fits in the probe: it is proven there, not in the proof thread.
    assert!(dump.probe_s > 0.0 && dump.proof_s == 0.0, "{dump:?}");
    assert!(p.read_input_s > 0.0 && p.store_entries_s > 0.0, "{p:?}");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json.get("profile").is_none(), "{json}");
}

#[test]
fn gzip_and_tar_members_are_peeled_and_named_for_people() {
    let work = tempfile::tempdir().unwrap();
    make_nested(work.path());
    let (tree, recipe, report) = round_trip(work.path(), &work.path().join("nested.tar"));
    assert_eq!(
        files(&tree),
        vec![
            "broken.gz",
            "dump.sql",
            "evil.tar",
            "uploads.tar/a.txt",
            "uploads.tar/b.bin",
            "uploads/default/photo.jpg",
        ]
    );
    assert_eq!(
        std::fs::read(tree.join("dump.sql")).unwrap(),
        std::fs::read(work.path().join("dump.sql")).unwrap()
    );
    let Node::Tar(t) = &recipe.root else {
        panic!("root is tar")
    };
    let Some(Node::Gzip { gzip, inner }) = &t.members[0].data else {
        panic!("dump.sql.gz is a gzip layer: {:?}", t.members[0].data)
    };
    assert_eq!(gzip.members[0].method, Method::GnuGzip { level: 9 });
    assert!(matches!(**inner, Node::Entry { .. }));
    let kinds: Vec<(&str, &str)> = report
        .layers
        .iter()
        .map(|l| (l.location.as_str(), l.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("nested.tar", "tar"),
            ("nested.tar>dump.sql.gz", "gzip"),
            ("nested.tar>uploads.tgz", "gzip"),
            ("nested.tar>uploads.tgz>gunzip", "tar"),
            ("nested.tar>broken.gz", "plain"),
            ("nested.tar>evil.tar", "plain"),
        ]
    );
    let evil = &report.layers[5];
    assert!(
        evil.note.as_deref().unwrap().contains("climbs out"),
        "{evil:?}"
    );
    assert!(!report.stored_fallback);
    assert!(!work.path().join("escape").exists());
}

#[test]
fn same_input_gives_a_byte_identical_tree_and_recipe() {
    let work = tempfile::tempdir().unwrap();
    make_nested(work.path());
    let input = work.path().join("nested.tar");
    let opts = ExpandOptions::default();
    peel::tree::expand_to_dir(&input, &work.path().join("one"), &opts).unwrap();
    peel::tree::expand_to_dir(&input, &work.path().join("two"), &opts).unwrap();
    let one = common::all_paths(&work.path().join("one"));
    assert_eq!(one, common::all_paths(&work.path().join("two")));
    assert!(one.contains(&".peel/recipe.json".to_string()));
    for p in &one {
        let a = work.path().join("one").join(p);
        if a.is_file() {
            assert_eq!(
                std::fs::read(&a).unwrap(),
                std::fs::read(work.path().join("two").join(p)).unwrap(),
                "{p} differs between two expansions"
            );
        }
    }
}

#[test]
fn tar_gz_made_by_gzip_5_is_gnu_gzip_level_5() {
    let work = tempfile::tempdir().unwrap();
    common::make_sample_tree(work.path());
    sh(
        work.path(),
        "seq 1 100000 > src/big.txt && tar --format=gnu -cf - -C src . | gzip -5 > sample.tar.gz",
    );
    let (tree, recipe, report) = round_trip(work.path(), &work.path().join("sample.tar.gz"));
    let Node::Gzip { gzip, inner } = &recipe.root else {
        panic!("root is gzip")
    };
    assert_eq!(gzip.members[0].method, Method::GnuGzip { level: 5 });
    assert!(matches!(**inner, Node::Tar(_)));
    assert!(files(&tree).contains(&"big.txt".to_string()));
    assert_eq!(report.layers[0].method.as_deref(), Some("gzip -5"));
}

#[test]
fn bare_sql_gz_becomes_the_name_without_gz() {
    let work = tempfile::tempdir().unwrap();
    sh(
        work.path(),
        "seq 1 50000 > x.sql && python3 -c \"import zlib,gzip; open('forum-v1.sql.gz','wb').write(gzip.compress(open('x.sql','rb').read(), 4, mtime=0))\"",
    );
    let (tree, recipe, _) = round_trip(work.path(), &work.path().join("forum-v1.sql.gz"));
    assert_eq!(files(&tree), vec!["forum-v1.sql"]);
    let Node::Gzip { gzip, .. } = &recipe.root else {
        panic!("root is gzip")
    };
    assert!(
        matches!(gzip.members[0].method, Method::Zlib { level: 4, .. }),
        "{:?}",
        gzip.members[0].method
    );
}

fn no_methods() -> ExpandOptions {
    let mut opts = ExpandOptions::default();
    opts.gzip.zlib = false;
    opts.gzip.gnu_gzip = false;
    opts.gzip.preflate = false;
    opts
}

#[test]
fn unreproducible_gzip_layers_are_stored_by_reading_the_input_again() {
    let work = tempfile::tempdir().unwrap();
    make_nested(work.path());
    sh(
        work.path(),
        "gzip -5 -c nested.tar > nested.tar.gz && tar --format=gnu -cf plain.tar -C src dump.sql.gz uploads",
    );
    // With no method allowed, every gzip layer is stored: at the root (re-read from the
    // file) and as a member of a tar (re-read, skipped to its offset).
    for (input, stored_name) in [
        ("nested.tar.gz", "nested.tar.gz"),
        ("plain.tar", "dump.sql.gz"),
    ] {
        let path = work.path().join(input);
        let tree = work.path().join(format!("t-{input}"));
        let (recipe, report) = peel::tree::expand_to_dir(&path, &tree, &no_methods()).unwrap();
        assert!(report.stored_fallback);
        assert!(
            files(&tree).contains(&stored_name.to_string()),
            "{:?}",
            files(&tree)
        );
        assert!(!files(&tree).contains(&"dump.sql".to_string()), "discarded");
        let mut out = Vec::new();
        let d = peel::rebuild(&recipe, &mut peel::tree::DirSource::new(&tree), &mut out).unwrap();
        assert_eq!(d.sha256, common::sha256_file(&path));
    }
}

#[test]
fn unreproducible_member_inside_a_reproducible_gzip_is_stored_from_the_decompressed_stream() {
    let work = tempfile::tempdir().unwrap();
    make_nested(work.path());
    // Outer layer by zlib at level 6 (Python); inner dump.sql.gz by zlib's Huffman-only
    // strategy, which no method tries once GNU gzip and preflate are off.
    sh(
        work.path(),
        "python3 -c \"
import zlib, struct, gzip
data = open('dump.sql', 'rb').read()
c = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_HUFFMAN_ONLY)
body = c.compress(data) + c.flush()
gz = b'\\x1f\\x8b\\x08\\0\\0\\0\\0\\0\\0\\x03' + body + struct.pack('<II', zlib.crc32(data), len(data))
open('src/dump.sql.gz', 'wb').write(gz)
\"
         tar --format=gnu -cf huff.tar -C src dump.sql.gz uploads
         python3 -c \"import gzip; open('outer.tar.gz','wb').write(gzip.compress(open('huff.tar','rb').read(), 6, mtime=0))\"",
    );
    let mut opts = ExpandOptions::default();
    opts.gzip.gnu_gzip = false;
    opts.gzip.preflate = false;
    let path = work.path().join("outer.tar.gz");
    let tree = work.path().join("t");
    let (recipe, report) = peel::tree::expand_to_dir(&path, &tree, &opts).unwrap();
    let stored: Vec<&str> = report
        .layers
        .iter()
        .filter(|l| l.kind == "stored")
        .map(|l| l.location.as_str())
        .collect();
    assert_eq!(stored, vec!["outer.tar.gz>gunzip>dump.sql.gz"], "{report}");
    assert_eq!(
        std::fs::read(tree.join("dump.sql.gz")).unwrap(),
        std::fs::read(work.path().join("src/dump.sql.gz")).unwrap()
    );
    let mut out = Vec::new();
    let d = peel::rebuild(&recipe, &mut peel::tree::DirSource::new(&tree), &mut out).unwrap();
    assert_eq!(d.sha256, common::sha256_file(&path));
}

#[test]
fn a_stream_cannot_be_stored_and_says_so() {
    let work = tempfile::tempdir().unwrap();
    sh(work.path(), "seq 1 1000 | gzip -5 > s.gz");
    let mut f = std::fs::File::open(work.path().join("s.gz")).unwrap();
    struct Null;
    impl peel::EntrySink for Null {
        fn entry(&mut self, _: &str, d: &mut dyn std::io::Read) -> std::io::Result<u64> {
            std::io::copy(d, &mut std::io::sink())
        }
    }
    let err = peel::expand_reader(&mut f, Some("s.gz"), &mut Null, &no_methods())
        .expect_err("cannot re-read")
        .to_string();
    assert!(
        err.contains("s.gz: this layer must be kept as its original bytes"),
        "{err}"
    );
    assert!(err.contains("expand from a file"), "{err}");
}
