//! Hostile and broken archives: each fails with an error that names the entry, the offset and
//! the cause; nothing is written outside the target directory, and no half-written directory
//! (or temporary sibling) is left behind.

use crate::common;

use std::path::Path;

use common::{all_paths, py, sh, PY_TAR};
use peel::ExpandOptions;

/// Expands `input` into `work/out`, expects failure, and checks that `work` holds exactly what it
/// held before (the input and the `outside` folder, untouched). Returns the error text.
fn expect_failure(work: &Path, input: &str) -> String {
    let before = all_paths(work);
    let err = peel::tree::expand_to_dir(
        &work.join(input),
        &work.join("out"),
        &ExpandOptions::default(),
    )
    .expect_err("expansion must fail");
    assert_eq!(
        all_paths(work),
        before,
        "nothing may be left behind or written elsewhere"
    );
    err.to_string()
}

fn setup() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("outside")).unwrap();
    work
}

#[test]
fn absolute_member_path_is_refused() {
    let work = setup();
    let target = work.path().join("outside/escaped");
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('abs.tar','wb').write(member('ok.txt', b'fine') + member({:?}, b'evil') + END)",
            target.display().to_string()
        ),
    );
    let err = expect_failure(work.path(), "abs.tar");
    assert!(err.contains("absolute path"), "{err}");
    assert!(err.contains("outside/escaped"), "names the entry: {err}");
    assert!(err.contains("at offset 1024"), "names the offset: {err}");
    assert!(!target.exists());
}

#[test]
fn member_path_climbing_out_is_refused() {
    let work = setup();
    py(
        work.path(),
        &format!("{PY_TAR}\nopen('dots.tar','wb').write(member('a/../../outside/escaped', b'evil') + END)"),
    );
    let err = expect_failure(work.path(), "dots.tar");
    assert!(err.contains("climbs out with '..'"), "{err}");
    assert!(err.contains("a/../../outside/escaped"), "{err}");
    assert!(!work.path().join("outside/escaped").exists());
}

#[test]
fn pax_path_with_nul_is_refused() {
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('nul.tar','wb').write(member('x', b'evil', fmt=tarfile.PAX_FORMAT, pax_headers={{'path': 'a\\x00b'}}) + END)"
        ),
    );
    let err = expect_failure(work.path(), "nul.tar");
    assert!(err.contains("NUL"), "{err}");
}

#[test]
fn member_written_through_a_symlink_is_refused() {
    let work = setup();
    let outside = work.path().join("outside");
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('link.tar','wb').write(member('link', type=tarfile.SYMTYPE, linkname={:?}) + member('link/escaped', b'evil') + END)",
            outside.display().to_string()
        ),
    );
    let err = expect_failure(work.path(), "link.tar");
    assert!(
        err.contains("would be written through the symbolic link \"link\""),
        "{err}"
    );
    assert!(
        err.contains("entry \"link/escaped\" at offset 512"),
        "{err}"
    );
    assert!(!outside.join("escaped").exists());
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nopen('dev.tar','wb').write(member('dev/null', type=tarfile.CHRTYPE, devmajor=1, devminor=3) + END)\nopen('fifo.tar','wb').write(member('a.txt', b'x') + member('pipe', type=tarfile.FIFOTYPE) + END)"
        ),
    );
    let err = expect_failure(work.path(), "dev.tar");
    assert!(err.contains("entry \"dev/null\" at offset 0"), "{err}");
    assert!(err.contains("device nodes and FIFOs"), "{err}");
    let err = expect_failure(work.path(), "fifo.tar");
    assert!(err.contains("entry \"pipe\" at offset 1024"), "{err}");
}

#[test]
fn absurd_size_field_is_refused_before_reading() {
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nti = tarfile.TarInfo('big.bin'); ti.size = 8 * 10**9; ti.uname = ti.gname = ''\nopen('absurd.tar','wb').write(ti.tobuf(format=tarfile.USTAR_FORMAT) + b'abc' + b'\\0' * 509 + END)"
        ),
    );
    let err = expect_failure(work.path(), "absurd.tar");
    assert!(err.contains("entry \"big.bin\" at offset 0"), "{err}");
    assert!(
        err.contains("size field says 8000000000 bytes but only 1536 bytes of input remain"),
        "{err}"
    );
}

#[test]
fn truncated_member_data_is_refused_in_a_stream() {
    // Read from a stream the input size is unknown: the shortfall shows when the data ends.
    let work = setup();
    py(
        work.path(),
        &format!("{PY_TAR}\nopen('cut.tar','wb').write(member('a.txt', b'y' * 5000)[:3000])"),
    );
    let mut f = std::fs::File::open(work.path().join("cut.tar")).unwrap();
    struct Null;
    impl peel::EntrySink for Null {
        fn entry(&mut self, _: &str, d: &mut dyn std::io::Read) -> std::io::Result<u64> {
            std::io::copy(d, &mut std::io::sink())
        }
    }
    let err = peel::expand_reader(
        &mut f,
        Some("cut.tar"),
        &mut Null,
        &ExpandOptions::default(),
    )
    .expect_err("truncated")
    .to_string();
    assert!(err.contains("entry \"a.txt\" at offset 0"), "{err}");
    assert!(
        err.contains("input ends after 2488 of 5000 data bytes"),
        "{err}"
    );
}

#[test]
fn gnu_sparse_member_is_refused() {
    let work = setup();
    sh(
        work.path(),
        "truncate -s 1M hole && printf data >> hole && tar --format=gnu --sparse -cf sparse.tar hole",
    );
    let err = expect_failure(work.path(), "sparse.tar");
    assert!(err.contains("GNU sparse files"), "{err}");
    assert!(err.contains("entry \"hole\" at offset 0"), "{err}");
}

#[test]
fn bad_header_checksum_after_the_first_member_is_refused() {
    let work = setup();
    py(
        work.path(),
        &format!(
            "{PY_TAR}\nb = bytearray(member('a.txt', b'x') + member('b.txt', b'y') + END)\nb[1024 + 10] ^= 0x55\nopen('sum.tar','wb').write(bytes(b))"
        ),
    );
    let err = expect_failure(work.path(), "sum.tar");
    assert!(err.contains("sum.tar: offset 1024"), "{err}");
    assert!(err.contains("checksum does not match"), "{err}");
}

#[test]
fn existing_non_empty_target_is_refused() {
    let work = setup();
    py(
        work.path(),
        &format!("{PY_TAR}\nopen('ok.tar','wb').write(member('a', b'1') + END)"),
    );
    std::fs::create_dir(work.path().join("out")).unwrap();
    std::fs::write(work.path().join("out/keep"), b"mine").unwrap();
    let err = expect_failure(work.path(), "ok.tar");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read(work.path().join("out/keep")).unwrap(),
        b"mine"
    );
}

#[test]
fn dir_sink_refuses_unsafe_paths_and_symlinked_parents() {
    use peel::EntrySink;
    let work = setup();
    let root = work.path().join("tree");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(work.path().join("outside"), root.join("link")).unwrap();
    let mut sink = peel::tree::DirSink::new(&root);
    for (path, why) in [
        ("../escaped", "'..'"),
        ("/abs", "absolute"),
        ("link/escaped", "symbolic link"),
        ("link", "symbolic link"),
    ] {
        let err = sink
            .entry(path, &mut &b"evil"[..])
            .expect_err(path)
            .to_string();
        assert!(err.contains(why) && err.contains(path), "{path}: {err}");
    }
    assert!(all_paths(&work.path().join("outside")).is_empty());
}
