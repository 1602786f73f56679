//! The forum simulator's backups (formats A, SQL-only and B, two days of a changing forum)
//! round-trip bit for bit through `dvault expand` and `dvault rebuild`, no layer is kept as
//! stored bytes, and the pg_dump layers are found at zlib level 4.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

const DVAULT: &str = env!("CARGO_BIN_EXE_dvault");

fn dvault(args: &[&str]) -> Vec<u8> {
    let out = Command::new(DVAULT).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dvault {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn simulated_backups_round_trip_without_stored_layers() {
    let work = tempfile::tempdir().unwrap();
    let opts = dvault_sim::Options {
        days: 1,
        ..dvault_sim::Options::small(7)
    };
    let files = dvault_sim::generate(&opts, &work.path().join("backups")).unwrap();
    assert_eq!(files.len(), 6, "three formats, two days");
    for f in &files {
        let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
        let tree = work.path().join(format!("tree-{name}"));
        let out = work.path().join(format!("out-{name}"));
        let report: serde_json::Value = serde_json::from_slice(&dvault(&[
            "expand",
            "--json",
            f.path.to_str().unwrap(),
            tree.to_str().unwrap(),
        ]))
        .unwrap();
        dvault(&["rebuild", tree.to_str().unwrap(), out.to_str().unwrap()]);
        assert_eq!(sha256(&out), sha256(&f.path), "{name}");
        assert_eq!(report["stored_fallback"], false, "{name}: {report:#}");
        let layers = report["layers"].as_array().unwrap();
        assert!(
            layers
                .iter()
                .all(|l| l["kind"] == "gzip" || l["kind"] == "tar"),
            "{name}: {report:#}"
        );
        let methods: Vec<&str> = layers.iter().filter_map(|l| l["method"].as_str()).collect();
        if name.ends_with(".tar.gz") {
            assert_eq!(methods[0], "gzip -5", "{name}");
        }
        assert!(
            methods.iter().any(|m| m.starts_with("zlib level 4")),
            "{name}: the pg_dump layer is zlib level 4: {methods:?}"
        );
        if name.ends_with(".sql.gz") {
            assert!(tree.join(name.trim_end_matches(".gz")).is_file());
        } else {
            assert!(
                tree.join("dump.sql").is_file() || tree.join("db/toc.dat").is_file(),
                "{name}"
            );
        }
    }
}
