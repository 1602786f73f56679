//! The tar stream ([`peel::tarstream`]): nested layers round-trip through it bit for bit, it is
//! deterministic, and a stream that is reordered, cut short, padded with an extra member or not
//! a dvault stream at all is refused with an error naming the entry. Inputs are made with the
//! real tar and gzip.

use crate::common;

use std::path::{Path, PathBuf};

use common::{sh, sha256_file};
use sha2::{Digest, Sha256};

/// A tar with a gzip member, a nested .tar.gz, a path over 100 bytes, a member that looks like
/// gzip but is not (kept as plain bytes after its entries were handed out), all in a gzip.
fn sample(dir: &Path) -> PathBuf {
    sh(
        dir,
        "mkdir -p src/inner src/$(printf 'd%.0s' {1..70})/$(printf 'e%.0s' {1..70})
         seq 1 30000 > src/dump.sql && gzip -n -6 src/dump.sql
         seq 1 5000 > src/inner/a.txt && tar --format=gnu -cf - -C src inner | gzip -9 > src/nested.tar.gz
         rm -r src/inner
         echo long > src/$(printf 'd%.0s' {1..70})/$(printf 'e%.0s' {1..70})/file.txt
         printf '\\x1f\\x8b\\x08\\x00 not really gzip' > src/fake.gz
         python3 -c 'import random,sys; random.seed(7); sys.stdout.buffer.write(random.randbytes(100000))' > src/photo.jpg
         tar --format=gnu -cf - -C src . | gzip -5 > backup.tar.gz",
    );
    dir.join("backup.tar.gz")
}

fn expand(input: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    peel::tarstream::expand_to_tar(
        input,
        Some("backup.tar.gz"),
        &mut out,
        &peel::ExpandOptions::default(),
    )
    .unwrap_or_else(|e| panic!("expand: {e}"));
    out
}

fn rebuild(stream: &[u8]) -> peel::Result<Vec<u8>> {
    let mut out = Vec::new();
    peel::tarstream::rebuild_from_tar(&mut &stream[..], &mut out)?;
    Ok(out)
}

/// The stream's regular members, in order.
fn members(stream: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(stream);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (path, data)
        })
        .collect()
}

/// A tar of `members` written by the tar crate (other headers than dvault's own).
fn write(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn nested_layers_round_trip_through_the_stream_deterministically() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample(tmp.path());
    let stream = expand(&input);
    assert_eq!(
        hex::encode(Sha256::digest(&stream)),
        hex::encode(Sha256::digest(expand(&input))),
        "two expansions differ"
    );
    let names: Vec<String> = members(&stream).into_iter().map(|m| m.0).collect();
    assert_eq!(names[0], ".peel/recipe.json");
    assert!(names[1].starts_with(".peel/tar/"), "{names:?}");
    assert!(names
        .iter()
        .any(|n| n.ends_with("/file.txt") && n.len() > 140));
    assert!(names.iter().any(|n| n == "dump.sql"), "{names:?}");
    let rebuilt = rebuild(&stream).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&rebuilt)), sha256_file(&input));
    // Re-encoded by another writer (as borg or tarsnap do): still the same original.
    let again = rebuild(&write(&members(&stream))).unwrap();
    assert_eq!(again, rebuilt);
}

#[test]
fn a_reordered_stream_names_the_entry_it_found_and_the_one_it_needed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = members(&expand(&sample(tmp.path())));
    let n = m.len();
    m.swap(n - 1, n - 2);
    let (a, b) = (m[n - 1].0.clone(), m[n - 2].0.clone());
    let err = rebuild(&write(&m)).unwrap_err().to_string();
    assert!(
        err.contains(&format!("has entry {b:?}")) && err.contains(&format!("needs {a:?}")),
        "{err}"
    );
}

#[test]
fn a_stream_cut_short_names_the_missing_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = members(&expand(&sample(tmp.path())));
    let last = m.pop().unwrap().0;
    let err = rebuild(&write(&m)).unwrap_err().to_string();
    assert!(
        err.contains(&format!("ends before entry {last:?}")),
        "{err}"
    );
}

#[test]
fn an_extra_member_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = members(&expand(&sample(tmp.path())));
    m.push(("intruder.txt".into(), b"x".to_vec()));
    let err = rebuild(&write(&m)).unwrap_err().to_string();
    assert!(
        err.contains("\"intruder.txt\"") && err.contains("not used by the recipe"),
        "{err}"
    );
}

#[test]
fn a_plain_tar_is_not_a_dvault_stream() {
    let m = vec![("notes.txt".to_string(), b"hello".to_vec())];
    let err = rebuild(&write(&m)).unwrap_err().to_string();
    assert!(
        err.contains("must start with .peel/recipe.json") && err.contains("notes.txt"),
        "{err}"
    );
}

#[test]
fn a_changed_entry_fails_the_rebuild_check() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = members(&expand(&sample(tmp.path())));
    let i = m.iter().position(|(p, _)| p == "photo.jpg").unwrap();
    m[i].1[10] ^= 1;
    let err = rebuild(&write(&m)).unwrap_err().to_string();
    // Caught either by the final SHA-256 or earlier, when recompressing the changed data no longer
    // gives the deflate stream the recipe recorded (which one depends on the bytes).
    assert!(
        err.starts_with("rebuild mismatch: expected")
            || (err.contains("produced") && err.contains("the recipe says")),
        "{err}"
    );
}
