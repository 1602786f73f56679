//! Hostile archives and recipes, as an attacker would craft them: path traversal in every form,
//! odd bytes in names, decompression bombs, absurd size fields, and recipes that point outside
//! their tree. Each asserts the error text (naming the entry), that nothing lands outside the
//! target directory, and, where the input is accepted, the bit-exact round trip.

use crate::common;

use std::io::{self, Read};
use std::path::Path;

use common::{all_paths, py, round_trip, sh, PY_TAR};
use peel::ExpandOptions;

fn setup() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("outside")).unwrap();
    work
}

/// Expands `work/input` into `work/out` and expects failure; `work` must hold afterwards exactly
/// what it held before. Returns the error text.
fn refused(work: &Path, input: &str, opts: &ExpandOptions) -> String {
    let before = all_paths(work);
    let err = peel::tree::expand_to_dir(&work.join(input), &work.join("out"), opts)
        .expect_err("expansion must fail")
        .to_string();
    assert_eq!(all_paths(work), before, "nothing may be left or escape");
    err
}

/// A sink that counts and keeps nothing (a bomb must not need the disk to be caught).
struct Count(u64);

impl peel::EntrySink for Count {
    fn entry(&mut self, _: &str, data: &mut dyn Read) -> io::Result<u64> {
        let n = io::copy(data, &mut io::sink())?;
        self.0 += n;
        Ok(n)
    }
}

#[test]
fn hard_link_then_a_file_through_it_is_refused() {
    let work = setup();
    let outside = work.path().join("outside");
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('hard.tar','wb').write(member('a.txt', b'x') + member('h', type=tarfile.LNKTYPE, linkname={:?}) + member('h/escaped', b'evil') + END)",
            outside.display().to_string()
        ),
    );
    let err = refused(work.path(), "hard.tar", &ExpandOptions::default());
    assert!(
        err.contains("entry \"h/escaped\" at offset 1536")
            && err.contains("would be written through the hard link \"h\""),
        "{err}"
    );
    assert!(all_paths(&outside).is_empty());
}

#[test]
fn symlink_chains_and_deep_symlinks_are_refused() {
    // A symlink to a symlink, then a file through the second one, one directory down.
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('chain.tar','wb').write(member('d', type=tarfile.DIRTYPE) + member('d/l1', type=tarfile.SYMTYPE, linkname='../..') + member('d/l2', type=tarfile.SYMTYPE, linkname='l1') + member('d/l2/outside/escaped', b'evil') + END)"
        ),
    );
    let err = refused(work.path(), "chain.tar", &ExpandOptions::default());
    assert!(
        err.contains("entry \"d/l2/outside/escaped\"")
            && err.contains("through the symbolic link \"d/l2\""),
        "{err}"
    );
    assert!(all_paths(&work.path().join("outside")).is_empty());
}

#[test]
fn traversal_through_gnu_long_names_and_pax_paths_is_refused() {
    let work = setup();
    let abs = work.path().join("outside/escaped").display().to_string();
    let long_dots = format!("{}/../../../outside/escaped", "d".repeat(120));
    py(
        work.path(),
        &format!(
            "{PY_TAR}\n\
             open('gnu-abs.tar','wb').write(member({abs:?} + '/' + 'x' * 100, b'evil', fmt=tarfile.GNU_FORMAT) + END)\n\
             open('gnu-dots.tar','wb').write(member({long_dots:?}, b'evil', fmt=tarfile.GNU_FORMAT) + END)\n\
             open('pax-dots.tar','wb').write(member('harmless', b'evil', fmt=tarfile.PAX_FORMAT, pax_headers={{'path': '../outside/escaped'}}) + END)"
        ),
    );
    for (file, why, name) in [
        ("gnu-abs.tar", "absolute path", abs.as_str()),
        ("gnu-dots.tar", "climbs out with '..'", long_dots.as_str()),
        ("pax-dots.tar", "climbs out with '..'", "../outside/escaped"),
    ] {
        let err = refused(work.path(), file, &ExpandOptions::default());
        assert!(err.contains(why) && err.contains(name), "{file}: {err}");
        assert!(err.starts_with(file), "names the file: {err}");
    }
    assert!(all_paths(&work.path().join("outside")).is_empty());
}

#[test]
fn traversal_inside_a_nested_tar_gz_is_refused_with_the_layer_path() {
    let work = setup();
    py(
        work.path(),
        &format!("{PY_TAR}\nopen('inner.tar','wb').write(member('../../outside/escaped', b'evil') + END)"),
    );
    sh(
        work.path(),
        "gzip -6 -n inner.tar && mkdir src && mv inner.tar.gz src/ && tar --format=ustar -cf outer.tar -C src inner.tar.gz",
    );
    // The nested tar cannot be peeled safely, so it is kept as its original compressed bytes
    // (an upload may be any file), and the bytes still come back exactly.
    let (tree, _recipe, report) = round_trip(work.path(), &work.path().join("outer.tar"));
    let notes: Vec<String> = report
        .layers
        .iter()
        .filter_map(|l| l.note.clone())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("climbs out with '..'") && n.contains("../../outside/escaped")),
        "{notes:?}"
    );
    assert!(tree.join("inner.tar.gz").is_file());
    assert!(all_paths(&work.path().join("outside")).is_empty());
}

#[test]
fn gzip_file_name_field_never_names_an_entry() {
    // FNAME is attacker-chosen; entry names come from the input's own name only.
    let work = setup();
    py(
        work.path(),
        "import gzip\nwith open('evil.gz','wb') as f:\n    g = gzip.GzipFile(filename='../../outside/escaped', mode='wb', fileobj=f, mtime=0)\n    g.write(b'evil' * 1000)\n    g.close()",
    );
    let (tree, recipe, _) = round_trip(work.path(), &work.path().join("evil.gz"));
    assert!(tree.join("evil").is_file(), "{:?}", all_paths(&tree));
    let json = serde_json::to_string(&recipe.root).unwrap();
    assert!(json.contains("\"path\":\"evil\""), "{json}");
    assert!(all_paths(&work.path().join("outside")).is_empty());
}

#[test]
fn names_with_newlines_stay_inside_and_round_trip() {
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('nl.tar','wb').write(member('dir\\nx', type=tarfile.DIRTYPE) + member('dir\\nx/a\\nb.txt', b'one') + member('c\\r\\n.txt', b'two') + END)"
        ),
    );
    let (tree, _, _) = round_trip(work.path(), &work.path().join("nl.tar"));
    assert_eq!(std::fs::read(tree.join("dir\nx/a\nb.txt")).unwrap(), b"one");
    assert_eq!(std::fs::read(tree.join("c\r\n.txt")).unwrap(), b"two");
    assert!(all_paths(&work.path().join("outside")).is_empty());
}

#[test]
fn errors_about_names_with_control_bytes_stay_on_one_line() {
    // A name made to forge log lines: the message escapes it.
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('forge.tar','wb').write(member('a\\nERROR ok: all fine\\n/../x', b'evil') + END)"
        ),
    );
    let err = refused(work.path(), "forge.tar", &ExpandOptions::default());
    assert!(!err.contains('\n'), "{err:?}");
    assert!(
        err.contains(r#"entry "a\nERROR ok: all fine\n/../x" at offset 0"#),
        "{err}"
    );
}

#[test]
fn nul_in_a_gnu_long_name_ends_the_name_and_stays_inside() {
    // GNU tar reads a long name up to its first NUL; so do we, and what follows is inert.
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\n\
             name = b'safe\\0/../../outside/escaped'\n\
             ln = tarfile.TarInfo('././@LongLink'); ln.type = tarfile.GNUTYPE_LONGNAME; ln.size = len(name) + 1\n\
             hdr = ln.tobuf(format=tarfile.GNU_FORMAT)\n\
             data = name + b'\\0'; data += b'\\0' * ((512 - len(data) % 512) % 512)\n\
             open('nul.tar','wb').write(hdr + data + member('placeholder', b'data', fmt=tarfile.GNU_FORMAT) + END)"
        ),
    );
    let (tree, _, _) = round_trip(work.path(), &work.path().join("nul.tar"));
    assert_eq!(std::fs::read(tree.join("safe")).unwrap(), b"data");
    assert!(all_paths(&work.path().join("outside")).is_empty());
}

/// Writes a gzip file of `gib` GiB of zeros (about 1 MiB per GiB), optionally gzipped twice.
fn zero_bomb(dir: &Path, name: &str, mib: u32, twice: bool) {
    py(
        dir,
        &format!(
            "import zlib\n\
             c = zlib.compressobj(9, zlib.DEFLATED, 31)\n\
             z = bytes(1 << 20)\n\
             out = b''.join([c.compress(z) for _ in range({mib})]) + c.flush()\n\
             if {twice}:\n    c2 = zlib.compressobj(9, zlib.DEFLATED, 31); out = c2.compress(out) + c2.flush()\n\
             open({name:?}, 'wb').write(out)",
            twice = if twice { "True" } else { "False" }
        ),
    );
}

#[test]
fn gzip_bomb_stops_at_the_cap_with_a_clear_error() {
    let work = setup();
    zero_bomb(work.path(), "bomb.gz", 1024, false);
    let size = std::fs::metadata(work.path().join("bomb.gz"))
        .unwrap()
        .len();
    assert!(size < 2 << 20, "1 GiB of zeros in {size} bytes");
    // Default cap: 200 times the input plus 256 MiB, about 460 MB here, well short of 1 GiB.
    let mut count = Count(0);
    let err = peel::expand_path(
        &work.path().join("bomb.gz"),
        &mut count,
        &ExpandOptions::default(),
    )
    .expect_err("a bomb must be refused")
    .to_string();
    assert!(
        err.contains("entry \"bomb\"") && err.contains("decompression bomb"),
        "{err}"
    );
    assert!(
        count.0 < 600 << 20,
        "stopped early, after {} bytes",
        count.0
    );

    // A smaller cap, set by the caller, writing a tree: nothing is left behind.
    let opts = ExpandOptions {
        max_expansion_ratio: 10,
        expansion_slack: 1 << 20,
        ..Default::default()
    };
    let err = refused(work.path(), "bomb.gz", &opts);
    assert!(
        err.contains("the cap is 10 times the input plus 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn nested_gzip_bomb_is_caught_too() {
    // gzip of a gzip of 1 GiB of zeros: a few KiB that each layer multiplies.
    let work = setup();
    zero_bomb(work.path(), "double.gz", 1024, true);
    let size = std::fs::metadata(work.path().join("double.gz"))
        .unwrap()
        .len();
    assert!(size < 64 << 10, "{size}");
    let mut count = Count(0);
    let err = peel::expand_path(
        &work.path().join("double.gz"),
        &mut count,
        &ExpandOptions::default(),
    )
    .expect_err("a nested bomb must be refused")
    .to_string();
    assert!(err.contains("decompression bomb"), "{err}");
    assert!(
        count.0 <= 300 << 20,
        "stopped early, after {} bytes",
        count.0
    );
}

#[test]
fn bomb_inside_a_tar_member_is_kept_unpeeled_and_round_trips() {
    // An upload may be any file: a gzip bomb among them is stored as its compressed bytes,
    // the backup still works, and the report says why.
    let work = setup();
    zero_bomb(work.path(), "zeros.gz", 64, false);
    sh(
        work.path(),
        "mkdir src && mv zeros.gz src/ && printf hi > src/a.txt && tar --format=ustar -cf up.tar -C src a.txt zeros.gz",
    );
    let mut opts = ExpandOptions {
        max_expansion_ratio: 4,
        expansion_slack: 1 << 20,
        ..Default::default()
    };
    opts.gzip.gnu_gzip = false;
    let tree = work.path().join("tree");
    let (recipe, report) =
        peel::tree::expand_to_dir(&work.path().join("up.tar"), &tree, &opts).unwrap();
    let note = report
        .layers
        .iter()
        .find_map(|l| l.note.clone().filter(|n| n.contains("decompression bomb")))
        .unwrap_or_else(|| panic!("{:?}", report.layers));
    assert!(note.contains("entry \"zeros\""), "{note}");
    assert_eq!(
        std::fs::read(tree.join("zeros.gz")).unwrap(),
        std::fs::read(work.path().join("src/zeros.gz")).unwrap()
    );
    assert!(
        !tree.join("zeros").exists(),
        "the bomb's entry was taken back"
    );
    let mut out = Vec::new();
    let digest = peel::tree::rebuild_from_dir(&tree, &mut out).unwrap();
    assert_eq!(digest, recipe.original);
    assert_eq!(out, std::fs::read(work.path().join("up.tar")).unwrap());
}

/// A tar whose first member claims 10 TB (`fmt`: GNU base-256 size field or a PAX size record)
/// but holds 3 bytes.
fn ten_tb(dir: &Path, name: &str, fmt: &str) {
    py(
        dir,
        &format!(
            "{PY_TAR}\nti = tarfile.TarInfo('huge.bin'); ti.size = 10**13; ti.uname = ti.gname = ''\n\
             open({name:?},'wb').write(ti.tobuf(format=tarfile.{fmt}) + b'abc' + bytes(509) + END)"
        ),
    );
}

#[test]
fn ten_terabyte_size_field_is_refused_from_a_file_and_from_a_stream() {
    let work = setup();
    for (file, fmt) in [("gnu.tar", "GNU_FORMAT"), ("pax.tar", "PAX_FORMAT")] {
        ten_tb(work.path(), file, fmt);
        let err = refused(work.path(), file, &ExpandOptions::default());
        assert!(
            err.contains("entry \"huge.bin\" at offset")
                && err.contains("size field says 10000000000000 bytes but only"),
            "{file}: {err}"
        );

        // From a stream the size is unknown: the data runs out first, and nothing is
        // allocated for the claimed size.
        let mut f = std::fs::File::open(work.path().join(file)).unwrap();
        let err = peel::expand_reader(&mut f, Some(file), &mut Count(0), &ExpandOptions::default())
            .expect_err("10 TB of data is not there")
            .to_string();
        assert!(
            err.contains("entry \"huge.bin\"")
                && err.contains("input ends after 1536 of 10000000000000 data bytes"),
            "{file}: {err}"
        );
    }

    // Inside gzip (the Discourse format A shape) the limit is unknown too.
    sh(work.path(), "gzip -5 -n -c gnu.tar > gnu.tar.gz");
    let err = refused(work.path(), "gnu.tar.gz", &ExpandOptions::default());
    assert!(
        err.contains("gnu.tar.gz>gunzip: entry \"huge.bin\"")
            && err.contains("of 10000000000000 data bytes"),
        "{err}"
    );
}

/// Expands a small tar into `work/tree`, then rewrites its recipe with `edit` on the JSON text.
fn tree_with_recipe(work: &Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    py(
        work,
        &format!("{PY_TAR}\nopen('ok.tar','wb').write(member('a.txt', b'inside') + END)"),
    );
    let tree = work.join("tree");
    peel::tree::expand_to_dir(&work.join("ok.tar"), &tree, &ExpandOptions::default()).unwrap();
    let recipe = tree.join(peel::tree::RECIPE_PATH);
    let json = std::fs::read_to_string(&recipe).unwrap();
    let edited = edit(json.clone());
    assert_ne!(edited, json, "the edit must change the recipe");
    std::fs::write(&recipe, edited).unwrap();
    tree
}

#[test]
fn recipe_pointing_outside_its_tree_is_refused_on_rebuild() {
    let work = setup();
    let secret = work.path().join("outside/secret");
    std::fs::write(&secret, b"secret").unwrap();
    let abs = secret.display().to_string();
    for (target, why) in [
        ("../outside/secret", "climbs out with '..'"),
        (abs.as_str(), "absolute path"),
        ("./a.txt", "empty or '.' component"),
    ] {
        let tree = tree_with_recipe(work.path(), |j| {
            j.replace("\"path\":\"a.txt\"", &format!("\"path\":{target:?}"))
        });
        let mut out = Vec::new();
        let err = peel::tree::rebuild_from_dir(&tree, &mut out)
            .expect_err(target)
            .to_string();
        assert!(err.contains(why) && err.contains(target), "{target}: {err}");
        assert!(
            !out.windows(6).any(|w| w == b"secret"),
            "{target}: nothing of the outside file may be read"
        );
        std::fs::remove_dir_all(&tree).unwrap();
    }

    // The tar header entry of the recipe, pointed outside.
    let tree = tree_with_recipe(work.path(), |j| {
        j.replace("\".peel/tar/0.headers\"", "\"../outside/secret\"")
    });
    let err = peel::tree::rebuild_from_dir(&tree, &mut Vec::new())
        .expect_err("headers outside")
        .to_string();
    assert!(
        err.contains("../outside/secret") && err.contains("'..'"),
        "{err}"
    );
    std::fs::remove_dir_all(&tree).unwrap();

    // An entry replaced by a symbolic link to a file outside the tree.
    let tree = tree_with_recipe(work.path(), |j| j.replace("\"size\":6", "\"size\":6 "));
    std::fs::remove_file(tree.join("a.txt")).unwrap();
    std::os::unix::fs::symlink(&secret, tree.join("a.txt")).unwrap();
    let mut out = Vec::new();
    let err = peel::tree::rebuild_from_dir(&tree, &mut out)
        .expect_err("symlinked entry")
        .to_string();
    assert!(
        err.contains("a.txt") && err.contains("symbolic link"),
        "{err}"
    );
    assert!(!out.windows(6).any(|w| w == b"secret"));
}

#[test]
fn recipe_with_absurd_sizes_fails_without_allocating_them() {
    let work = setup();
    let tree = tree_with_recipe(work.path(), |j| {
        j.replace("\"size\":6", &format!("\"size\":{}", u64::MAX))
    });
    let err = peel::tree::rebuild_from_dir(&tree, &mut Vec::new())
        .expect_err("absurd size")
        .to_string();
    assert!(
        err.contains("a.txt") && err.contains(&u64::MAX.to_string()),
        "{err}"
    );
}
