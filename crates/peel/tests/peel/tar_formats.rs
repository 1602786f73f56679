//! Archives written by the real GNU tar (gnu, ustar, pax formats) and by Python's tarfile
//! round-trip bit for bit, and their members land in the tree under their own paths.

use crate::common;

use common::{files, make_sample_tree, round_trip, sh};
use peel::Node;

fn tar_round_trip(format: &str) {
    let work = tempfile::tempdir().unwrap();
    make_sample_tree(work.path());
    sh(
        work.path(),
        &format!("tar --format={format} -cf sample.tar -C src ."),
    );
    let (tree, recipe, report) = round_trip(work.path(), &work.path().join("sample.tar"));
    assert!(matches!(recipe.root, Node::Tar(_)), "root is a tar layer");
    assert_eq!(report.layers.len(), 1);
    assert_eq!(report.layers[0].kind, "tar");
    let got = files(&tree);
    // GNU tar stores whichever of the two hard-linked names it meets first as the file.
    let a = ["a.txt", "sub/hardlink.txt"].map(|p| got.contains(&p.to_string()));
    assert!(
        a[0] ^ a[1],
        "one of the hard-linked names is an entry: {got:?}"
    );
    assert!(got.contains(&"sub/random.bin".to_string()));
    assert!(got.contains(&format!("{}/long.txt", "d".repeat(120))));
    assert!(got.contains(&format!("{}/{}", "e".repeat(150), "f".repeat(140))));
    assert!(got.contains(&"zero".to_string()));
    // Links are recipe-only.
    assert!(!got.iter().any(|p| p.contains("symlink")));
    let first = if a[0] { "a.txt" } else { "sub/hardlink.txt" };
    assert_eq!(
        std::fs::read(tree.join(first)).unwrap(),
        b"hello\n",
        "entry holds the member's data"
    );
}

#[test]
fn gnu_format_round_trips_with_long_names_and_links() {
    tar_round_trip("gnu");
}

#[test]
fn ustar_format_round_trips_with_links() {
    // ustar cannot hold the 150+140-byte name; GNU tar refuses it, so use a tree that fits.
    let work = tempfile::tempdir().unwrap();
    sh(
        work.path(),
        &format!(
            "mkdir -p src/{d}/sub && printf hi > src/{d}/sub/file.txt && printf s > src/short && ln src/short src/hl && ln -s x src/sl && mkdir src/empty
             tar --format=ustar -cf ustar.tar -C src .",
            d = format!("{}/{}", "u".repeat(60), "v".repeat(60))
        ),
    );
    let (tree, _, _) = round_trip(work.path(), &work.path().join("ustar.tar"));
    let got = files(&tree);
    assert!(got.contains(&format!(
        "{}/{}/sub/file.txt",
        "u".repeat(60),
        "v".repeat(60)
    )));
    assert_eq!(got.len(), 2, "one of short/hl is a link: {got:?}");
}

#[test]
fn pax_format_round_trips_with_long_names_and_links() {
    tar_round_trip("posix");
}

fn tar_recipe(recipe: &peel::Recipe) -> &peel::tar::TarRecipe {
    match &recipe.root {
        Node::Tar(t) => t,
        other => panic!("root is not a tar: {other:?}"),
    }
}

#[test]
fn ustar_ending_with_exactly_1024_zero_bytes_keeps_its_end() {
    // Discourse's Ruby writer: ustar, empty uname/gname, two zero blocks, no record padding.
    let work = tempfile::tempdir().unwrap();
    common::py(
        work.path(),
        &format!(
            "{}\nopen('ruby.tar','wb').write(member('db/toc.dat', b't' * 700) + member('uploads/a.png', b'\\x89PNG' + b'p' * 100) + END)",
            common::PY_TAR
        ),
    );
    let len = std::fs::metadata(work.path().join("ruby.tar"))
        .unwrap()
        .len();
    assert_eq!(len, 512 + 1024 + 512 + 512 + 1024, "no record padding");
    let (tree, recipe, _) = round_trip(work.path(), &work.path().join("ruby.tar"));
    assert_eq!(tar_recipe(&recipe).end_zeros, 1024);
    assert!(tar_recipe(&recipe).after.is_none());
    assert_eq!(files(&tree), vec!["db/toc.dat", "uploads/a.png"]);
}

#[test]
fn gnu_tar_record_padding_is_kept() {
    let work = tempfile::tempdir().unwrap();
    sh(
        work.path(),
        "printf abc > a && tar --format=gnu -cf rec.tar a && tar --format=gnu -b 1 -cf b1.tar a",
    );
    let (_, recipe, _) = round_trip(work.path(), &work.path().join("rec.tar"));
    assert_eq!(tar_recipe(&recipe).end_zeros, 10240 - 1024);
    let (_, recipe, _) = round_trip(work.path(), &work.path().join("b1.tar"));
    assert_eq!(tar_recipe(&recipe).end_zeros, 1024);
}

#[test]
fn non_zero_padding_and_bytes_after_the_end_are_kept_exactly() {
    let work = tempfile::tempdir().unwrap();
    common::py(
        work.path(),
        &format!(
            "{}\nm = bytearray(member('a.txt', b'hello'))\nm[600:610] = b'GARBAGE!!!'\nopen('odd.tar','wb').write(bytes(m) + member('b.txt', b'b') + END + b'\\0' * 100 + b'trailing junk' + b'\\0' * 7)",
            common::PY_TAR
        ),
    );
    let (tree, recipe, _) = round_trip(work.path(), &work.path().join("odd.tar"));
    let t = tar_recipe(&recipe);
    assert!(t.members[0].pad.is_some(), "non-zero padding recorded");
    assert!(t.members[1].pad.is_none(), "zero padding not recorded");
    assert_eq!(t.end_zeros, 1124);
    let after = std::fs::read(tree.join(".peel/tar/0.after")).unwrap();
    assert_eq!(after, b"trailing junk\0\0\0\0\0\0\0");
}

#[test]
fn duplicate_members_get_suffixes_and_round_trip() {
    let work = tempfile::tempdir().unwrap();
    common::py(
        work.path(),
        &format!(
            "{}\nopen('dup.tar','wb').write(member('a.txt', b'one') + member('a.txt', b'two') + member('.peel/recipe.json', b'x') + END)",
            common::PY_TAR
        ),
    );
    let (tree, _, _) = round_trip(work.path(), &work.path().join("dup.tar"));
    assert_eq!(
        files(&tree),
        vec![".peel~1/recipe.json", "a.txt", "a.txt~1"]
    );
    assert_eq!(std::fs::read(tree.join("a.txt~1")).unwrap(), b"two");
}

#[test]
fn pax_global_headers_round_trip() {
    let work = tempfile::tempdir().unwrap();
    common::py(
        work.path(),
        "with tarfile.open('g.tar', 'w', format=tarfile.PAX_FORMAT, pax_headers={'comment': 'made by a test'}) as t:\n    ti = tarfile.TarInfo('a.txt'); ti.size = 3; t.addfile(ti, io.BytesIO(b'abc'))",
    );
    let head = std::fs::read(work.path().join("g.tar")).unwrap();
    assert_eq!(head[156], b'g', "the archive starts with a global header");
    let (tree, recipe, _) = round_trip(work.path(), &work.path().join("g.tar"));
    assert_eq!(
        tar_recipe(&recipe).members[0].blocks,
        3,
        "g header, its data, a.txt's header"
    );
    assert_eq!(files(&tree), vec!["a.txt"]);
}

#[test]
fn gnu_long_link_blocks_are_kept() {
    let work = tempfile::tempdir().unwrap();
    make_sample_tree(work.path());
    sh(work.path(), "tar --format=gnu -cf s.tar -C src .");
    let raw = std::fs::read(work.path().join("s.tar")).unwrap();
    assert!(
        raw.chunks(512)
            .any(|b| b[156] == b'K' && b.starts_with(b"././@LongLink")),
        "GNU tar wrote a 'K' block"
    );
    let (_, recipe, _) = round_trip(work.path(), &work.path().join("s.tar"));
    assert!(tar_recipe(&recipe).members.iter().any(|m| m.blocks >= 3));
}
