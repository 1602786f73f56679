//! Helpers shared by the simulator's tests: a tiny forum, running real tools, reading tar
//! headers byte by byte, and peel's round trip.

use std::path::Path;
use std::process::Command;

use dvault_sim::{Options, Size};
use sha2::{Digest, Sha256};

/// A forum small enough for a test of a few seconds.
pub fn tiny(seed: u64) -> Options {
    Options {
        size: Size {
            users: 80,
            topics: 60,
            posts: 500,
            uploads: 24,
            max_image_side: 200,
        },
        ..Options::small(seed)
    }
}

/// Runs `cmd`, fails the test with its stderr unless it succeeds, returns its stdout.
pub fn sh(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("start command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `gzip -dc` of a file.
pub fn gunzip(path: &Path) -> Vec<u8> {
    sh(Command::new("gzip").arg("-dc").arg(path))
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// One ustar header block as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub typeflag: u8,
    pub linkname: String,
    pub uname: String,
    pub gname: String,
    /// For a PAX `x` header, its records.
    pub pax: Option<String>,
}

fn field(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn octal(b: &[u8]) -> u64 {
    let s = field(b);
    u64::from_str_radix(s.trim(), 8).unwrap_or_else(|_| panic!("octal field {s:?}"))
}

/// Every header of an uncompressed tar in order, plus the number of zero bytes after the last
/// entry (the end-of-archive marker and any padding).
pub fn headers(tar: &[u8]) -> (Vec<Header>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let b = &tar[at..at + 512];
        if b.iter().all(|&x| x == 0) {
            break;
        }
        let size = octal(&b[124..136]);
        let typeflag = b[156];
        let data = &tar[at + 512..at + 512 + size as usize];
        out.push(Header {
            name: field(&b[0..100]),
            mode: octal(&b[100..108]) as u32,
            uid: octal(&b[108..116]) as u32,
            gid: octal(&b[116..124]) as u32,
            size,
            typeflag,
            linkname: field(&b[157..257]),
            uname: field(&b[265..297]),
            gname: field(&b[297..329]),
            pax: (typeflag == b'x').then(|| String::from_utf8_lossy(data).into_owned()),
        });
        at += 512 + (size as usize).div_ceil(512) * 512;
    }
    let rest = &tar[at.min(tar.len())..];
    assert!(rest.iter().all(|&x| x == 0), "data after the end marker");
    (out, rest.len())
}

/// The names GNU tar lists (`tar -tf`, `z` for gzip), in archive order.
pub fn tar_names(path: &Path) -> Vec<String> {
    let flags = if path.extension().is_some_and(|e| e == "gz") {
        "-tzf"
    } else {
        "-tf"
    };
    String::from_utf8(sh(Command::new("tar").arg(flags).arg(path)))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// GNU tar's verbose listing (`tar -tvf`, `-tzvf` for gzip), line by line.
pub fn tar_verbose(path: &Path) -> Vec<String> {
    let flags = if path.extension().is_some_and(|e| e == "gz") {
        "-tzvf"
    } else {
        "-tvf"
    };
    String::from_utf8(sh(Command::new("tar")
        .env("TZ", "UTC")
        .arg("--numeric-owner")
        .arg(flags)
        .arg(path)))
    .unwrap()
    .lines()
    .map(str::to_string)
    .collect()
}

/// Expands `file` with peel into a fresh folder, rebuilds it, and checks the rebuild's SHA-256
/// equals the file's; returns peel's report.
pub fn peel_round_trip(file: &Path) -> peel::Report {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let (_, report) = peel::tree::expand_to_dir(file, &tree, &peel::ExpandOptions::default())
        .unwrap_or_else(|e| panic!("peel expand {}: {e}", file.display()));
    let rebuilt = dir.path().join("rebuilt");
    let mut out = std::fs::File::create(&rebuilt).unwrap();
    peel::tree::rebuild_from_dir(&tree, &mut out)
        .unwrap_or_else(|e| panic!("peel rebuild {}: {e}", file.display()));
    drop(out);
    assert_eq!(
        sha256(&rebuilt),
        sha256(file),
        "peel's rebuild of {} differs",
        file.display()
    );
    report
}

/// Every path below `dir` in the order `std::fs::read_dir` (readdir, Ruby's `Dir.each_child`)
/// gives, folders before their contents, as `prefix/...` names; `skip` is left out.
pub fn readdir_order(dir: &Path, prefix: &str, skip: Option<&str>) -> Vec<String> {
    let mut out = vec![prefix.to_string()];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = format!("{prefix}/{}", e.file_name().to_str().unwrap());
        if Some(name.as_str()) == skip {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            out.extend(readdir_order(&e.path(), &name, skip));
        } else {
            out.push(name);
        }
    }
    out
}
