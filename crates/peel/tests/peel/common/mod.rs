//! Helpers shared by the integration tests: running real tools, hashing, round trips.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Runs a shell command in `dir`; panics with its stderr when it fails.
pub fn sh(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "command failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read file")))
}

/// Expands `input` into a fresh directory, rebuilds it, and asserts the rebuilt bytes have the
/// original SHA-256. Returns the tree directory, recipe and report.
pub fn round_trip(work: &Path, input: &Path) -> (PathBuf, peel::Recipe, peel::Report) {
    let tree = work.join(format!(
        "tree-{}",
        input.file_name().unwrap().to_string_lossy()
    ));
    let (recipe, report) = peel::tree::expand_to_dir(input, &tree, &peel::ExpandOptions::default())
        .unwrap_or_else(|e| panic!("expand {}: {e}", input.display()));
    let out = work.join("rebuilt");
    let mut f = std::fs::File::create(&out).unwrap();
    let digest = peel::tree::rebuild_from_dir(&tree, &mut f)
        .unwrap_or_else(|e| panic!("rebuild {}: {e}", input.display()));
    drop(f);
    let want = sha256_file(input);
    assert_eq!(sha256_file(&out), want, "rebuilt bytes differ");
    assert_eq!(digest.sha256, want);
    assert_eq!(recipe.original.sha256, want);
    std::fs::remove_file(&out).unwrap();
    (tree, recipe, report)
}

/// Every file under `dir` (relative paths, sorted), without the `.peel` directory.
pub fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.retain(|p| !p.starts_with(".peel/"));
    out.sort();
    out
}

/// Makes a small tree of files with long names, a hard link, a symlink and an empty dir.
pub fn make_sample_tree(dir: &Path) {
    let long_dir = "d".repeat(120);
    let long_name = format!("{}/{}", "e".repeat(150), "f".repeat(140));
    // A link target over 100 bytes: a GNU 'K' block or a PAX linkpath record.
    let long_target = format!("../{}/long.txt", "d".repeat(120));
    sh(
        dir,
        &format!(
            "mkdir -p src/sub src/empty src/{long_dir} src/$(dirname {long_name})
             printf 'hello\\n' > src/a.txt
             head -c 5000 /dev/urandom > src/sub/random.bin
             printf 'x%.0s' $(seq 1 700) > src/{long_dir}/long.txt
             printf 'deep' > src/{long_name}
             ln src/a.txt src/sub/hardlink.txt
             ln -s ../a.txt src/sub/symlink
             ln -s {long_target} src/sub/symlink-long
             : > src/zero"
        ),
    );
}

/// Runs a Python 3 script (with `tarfile`, `io`, `os` imported) in `dir`.
pub fn py(dir: &Path, script: &str) {
    let full = format!("import tarfile, io, os, sys\n{script}");
    let out = Command::new("python3")
        .arg("-c")
        .arg(full)
        .current_dir(dir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Python source defining `member(name, data=b"", **attrs)` -> the bytes of one ustar member
/// (header, data, padding), and `END` = 1024 zero bytes, for hand-made archives.
pub const PY_TAR: &str = r#"
def member(name, data=b"", fmt=tarfile.USTAR_FORMAT, **attrs):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 1700000000
    ti.uname = ""
    ti.gname = ""
    for k, v in attrs.items():
        setattr(ti, k, v)
    buf = ti.tobuf(format=fmt, encoding="utf-8", errors="surrogateescape")
    pad = (512 - len(data) % 512) % 512
    return buf + data + b"\0" * pad
END = b"\0" * 1024
"#;

/// Every path under `dir` (files, dirs, links), relative and sorted, `.peel` included.
pub fn all_paths(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}
