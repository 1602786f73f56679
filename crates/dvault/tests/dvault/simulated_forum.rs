//! The forum simulator's backups (formats A, SQL-only and B, two days of a changing forum)
//! round-trip bit for bit through `dvault expand` and `dvault rebuild`, no layer is kept as
//! stored bytes, and the pg_dump layers are found at zlib level 4. And, end to end (issue 16),
//! every generation and format Discourse writes goes through `dvault run` (stored once, drilled
//! with every upload in the backup verified) and `dvault restore --to` bit for bit.

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

/// One backup of [`every_generation_and_format_is_stored_once_restored_and_drilled`].
struct Case {
    /// The site of the config file that reads it (one source folder per case).
    site: &'static str,
    file: std::path::PathBuf,
    /// Upload rows the drill must verify by SHA-1: every row of the forum when the backup holds
    /// every file (local uploads, or S3-stored ones included), 0 for a database-only backup.
    verified: u64,
    /// The forum keeps its uploads on S3 (every row's url is `//bucket...`).
    s3: bool,
}

/// Writes day 0 of a small forum in `formats` into `out`; returns the files (named by their
/// extension) and the forum's number of `uploads` rows.
fn forum_backups(
    opts: dvault_sim::Options,
    formats: &[dvault_sim::Format],
    work: &Path,
    out: &Path,
) -> (Vec<std::path::PathBuf>, u64) {
    let forum = dvault_sim::Forum::create(&opts, work).unwrap();
    let files = dvault_sim::write_backups(&forum, out, formats).unwrap();
    let uploads = forum.row_counts().unwrap()["uploads"];
    (files.into_iter().map(|f| f.path).collect(), uploads)
}

fn run_json(config: &Path, site: &str) -> serde_json::Value {
    let out = Command::new(DVAULT)
        .args(["run", "--json", "--site", site, "--config"])
        .arg(config)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        out.status.success() && report["exit_code"] == 0,
        "dvault run --site {site}: {report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report["sites"][0].clone()
}

/// Issue 16's end-to-end test: for each generation and format Discourse writes (current `.tar`
/// with uploads, database-only and with S3-stored uploads; older `.tar.gz`, with S3-stored
/// uploads appended, and `.sql.gz`), `dvault run` stores the backup, its drill restores it into a
/// throwaway cluster and verifies every upload row whose file the backup holds by SHA-1, a second
/// run stores nothing, and `restore --to` gives the file back bit for bit. One repository for
/// all cases.
#[test]
fn every_generation_and_format_is_stored_once_restored_and_drilled() {
    use dvault_sim::Format;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let local = dvault_sim::Options::small(7);
    let (files, local_rows) = forum_backups(
        local.clone(),
        &[Format::A, Format::Sql, Format::B],
        &w.join("forum-local"),
        &w.join("pool-local"),
    );
    let pick = |files: &[std::path::PathBuf], ext: &str| {
        files
            .iter()
            .find(|p| p.to_string_lossy().ends_with(ext))
            .unwrap_or_else(|| panic!("no {ext} in {files:?}"))
            .clone()
    };
    let (db_only, _) = forum_backups(
        dvault_sim::Options {
            with_uploads: false,
            start_date: (2026, 1, 2),
            ..local.clone()
        },
        &[Format::B],
        &w.join("forum-db-only"),
        &w.join("pool-db-only"),
    );
    let (s3_files, s3_rows) = forum_backups(
        dvault_sim::Options {
            uploads_on_s3: true,
            include_s3_uploads: true,
            start_date: (2026, 1, 3),
            ..local
        },
        &[Format::A, Format::B],
        &w.join("forum-s3"),
        &w.join("pool-s3"),
    );
    assert!(local_rows > 0 && s3_rows > 0, "{local_rows} {s3_rows}");
    let cases = [
        Case {
            site: "current",
            file: pick(&files, ".tar"),
            verified: local_rows,
            s3: false,
        },
        Case {
            site: "current-db-only",
            file: pick(&db_only, ".tar"),
            verified: 0,
            s3: false,
        },
        Case {
            site: "current-s3",
            file: pick(&s3_files, ".tar"),
            verified: s3_rows,
            s3: true,
        },
        Case {
            site: "older",
            file: pick(&files, ".tar.gz"),
            verified: local_rows,
            s3: false,
        },
        Case {
            site: "older-s3",
            file: pick(&s3_files, ".tar.gz"),
            verified: s3_rows,
            s3: true,
        },
        Case {
            site: "older-sql",
            file: pick(&files, ".sql.gz"),
            verified: 0,
            s3: false,
        },
    ];

    let repo = w.join("repo");
    let pw = w.join("password");
    std::fs::write(&pw, "generations\n").unwrap();
    let repo_args = |cmd: &str| -> Vec<String> {
        [
            cmd,
            "--repo",
            repo.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
            "--cache-dir",
            w.join("cache").to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = repo_args("init");
    dvault(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // No postgres_url: each drill starts its own throwaway cluster (`--postgres-temp`).
    let mut text = format!(
        "state_dir = \"{w}/state\"\ncache_dir = \"{w}/cache\"\n",
        w = w.display()
    );
    for c in &cases {
        let folder = w.join(c.site);
        std::fs::create_dir(&folder).unwrap();
        text.push_str(&format!(
            "[sites.{s}.source]\nfolder = \"{f}\"\nsettle = \"0s\"\n\
             [sites.{s}.repository]\nlocation = \"{r}\"\npassword_file = \"{p}\"\n\
             [sites.{s}.drill]\nevery = \"1s\"\n",
            s = c.site,
            f = folder.display(),
            r = repo.display(),
            p = pw.display()
        ));
    }
    let config = w.join("dvault.toml");
    std::fs::write(&config, text).unwrap();
    let snapshots = || -> Vec<serde_json::Value> {
        let mut args = repo_args("snapshots");
        args.push("--json".into());
        let out = dvault(&args.iter().map(String::as_str).collect::<Vec<_>>());
        serde_json::from_slice::<Vec<serde_json::Value>>(&out).unwrap()
    };

    for (i, c) in cases.iter().enumerate() {
        let name = c.file.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::copy(&c.file, w.join(c.site).join(&name)).unwrap();
        let want = sha256(&c.file);

        let first = run_json(&config, c.site);
        assert_eq!(first["outcome"], "stored", "{name}: {first:#}");
        assert_eq!(first["file"], name.as_str(), "{name}: {first:#}");
        let id = first["snapshot"].as_str().unwrap().to_string();
        let list = snapshots();
        assert_eq!(list.len(), i + 1, "{name}: one new snapshot");
        let snap = list
            .iter()
            .find(|s| s["id"].as_str().is_some_and(|s| s.starts_with(&id)) || s["short_id"] == id)
            .unwrap_or_else(|| panic!("{name}: snapshot {id} not listed: {list:#?}"));
        assert_eq!(snap["meta"]["sha256"], want.as_str(), "{name}: {snap:#}");
        assert_eq!(snap["meta"]["file_name"], name.as_str(), "{name}: {snap:#}");
        // The drill passed and verified by SHA-1 every upload row whose file the backup holds:
        // all of the forum's rows (S3-stored ones too, so none was left "not checked").
        let drill = first["drill"].as_str().unwrap_or_default();
        assert!(
            drill.starts_with(&format!("{name} restored: ")),
            "{name}: {drill}"
        );
        assert!(
            drill.contains(&format!(", {} upload files verified in ", c.verified)),
            "{name}: {} upload rows to verify: {drill}",
            c.verified
        );

        // The drill's full report has the figures the run's line leaves out: S3-stored rows
        // found in the backup, and rows not checked.
        let mut args = repo_args("drill");
        args.extend([id.clone(), "--postgres-temp".into(), "--json".into()]);
        let out = dvault(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let u = &report["uploads"];
        assert_eq!(report["ok"], true, "{name}: {report:#}");
        if c.verified == 0 {
            assert_eq!(u["checked"], false, "{name}: {u:#}");
            assert!(
                u["note"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("database-only"),
                "{name}: {u:#}"
            );
        } else {
            assert_eq!(u["checked"], true, "{name}: {u:#}");
            assert_eq!(u["rows"], c.verified, "{name}: {u:#}");
            assert_eq!(u["sha1_verified"], c.verified, "{name}: {u:#}");
            assert_eq!(u["not_checked"], 0, "{name}: {u:#}");
            assert_eq!(u["problems"], serde_json::json!([]), "{name}: {u:#}");
            let (s3, local) = if c.s3 {
                (c.verified, 0)
            } else {
                (0, c.verified)
            };
            assert_eq!(u["remote_rows"], s3, "{name}: {u:#}");
            assert_eq!(u["remote_in_backup"], s3, "{name}: {u:#}");
            assert_eq!(u["local_rows"], local, "{name}: {u:#}");
        }

        let second = run_json(&config, c.site);
        assert_eq!(second["outcome"], "already_stored", "{name}: {second:#}");
        assert_eq!(second["snapshot"], first["snapshot"], "{name}");
        assert!(second["stored"].is_null(), "{name}: {second:#}");
        assert_eq!(second["snapshots"], first["snapshots"], "{name}");
        assert_eq!(snapshots().len(), i + 1, "{name}: nothing new stored");

        let to = w.join(format!("restored-{name}"));
        let mut args = repo_args("restore");
        args.extend([id.clone(), "--to".into(), to.display().to_string()]);
        dvault(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(sha256(&to), want, "{name}: restore --to is bit-exact");
        std::fs::remove_file(&to).unwrap();
    }
}
