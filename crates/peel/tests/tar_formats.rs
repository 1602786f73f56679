//! Archives written by the real GNU tar (gnu, ustar, pax formats) and by Python's tarfile
//! round-trip bit for bit, and their members land in the tree under their own paths.

mod common;

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
