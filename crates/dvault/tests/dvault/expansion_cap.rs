//! The decompression-bomb cap on the command line: `--max-expansion-ratio` and
//! `--expansion-slack` of `dvault expand` and `dvault backup` change what is accepted.

use crate::repo_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use repo_support::Env;

/// 4 MiB of zeros through the real gzip: about 4 KiB, a ratio near 1000.
fn bomb(dir: &Path) -> PathBuf {
    let plain = dir.join("zeros.sql");
    fs::write(&plain, vec![0u8; 4 << 20]).unwrap();
    let st = Command::new("gzip")
        .args(["-n", "-6"])
        .arg(&plain)
        .status()
        .unwrap();
    assert!(st.success());
    let gz = dir.join("zeros.sql.gz");
    assert!(fs::metadata(&gz).unwrap().len() < 40_000);
    gz
}

#[test]
fn expand_refuses_past_the_ratio_and_the_flag_lets_it_through() {
    let env = Env::new();
    let gz = bomb(env.path());
    let expand = |dir: &str, extra: &[&str]| {
        env.dvault("unused")
            .arg("expand")
            .arg(&gz)
            .arg(env.path().join(dir))
            .args(extra)
            .output()
            .unwrap()
    };
    // Peel's default slack (256 MiB) covers 4 MiB whatever the ratio.
    assert!(expand("a", &[]).status.success());
    let out = expand("b", &["--expansion-slack", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("decompression bomb") && err.contains("200 times the input plus 0 bytes"),
        "{err}"
    );
    // A slack of 1 KiB (given with a unit) is as good as none for 4 MiB of zeros.
    let out = expand("b2", &["--expansion-slack", "1KiB"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plus 1024 bytes"), "{err}");
    let out = expand(
        "c",
        &["--expansion-slack", "0", "--max-expansion-ratio", "100000"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::metadata(env.path().join("c/zeros.sql")).unwrap().len(),
        4 << 20
    );
}

#[test]
fn backup_takes_the_same_cap() {
    let env = Env::new();
    let gz = bomb(env.path());
    let repo = env.path().join("repo");
    let r = repo.to_str().unwrap();
    env.ok(r, &["init"]);
    let f = gz.to_str().unwrap();
    let err = env.fails(r, &["backup", f, "--expansion-slack", "0"]);
    assert!(
        err.contains("zeros.sql.gz") && err.contains("decompression bomb"),
        "{err}"
    );
    assert!(env.snapshots(r).is_empty());
    env.ok(
        r,
        &[
            "backup",
            f,
            "--expansion-slack",
            "0",
            "--max-expansion-ratio",
            "100000",
        ],
    );
    assert_eq!(env.snapshots(r).len(), 1);
}
