//! `dvault report` and `dvault audit` on real repositories built by `dvault backup` over the
//! simulator's days: the figures match the repository's files, the HTML page shows its plots
//! in a real headless Chromium, the audit trail records every operation, survives an
//! append-only REST server and a `forget --prune`, reveals deleted snapshots, and the stock
//! restic still checks the repository. Failure and recovery hooks run from `dvault run`.

use crate::repo_support;

mod browser;
mod hooks;
mod rest;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use repo_support::{sha256, Env};
use serde_json::Value;

/// PATH with the newest PostgreSQL's binaries first (for `drill --postgres-temp`).
pub fn pg_path() -> String {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    let old = std::env::var("PATH").unwrap_or_default();
    match dirs.last() {
        Some(d) => format!("{}:{old}", d.display()),
        None => old,
    }
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `days + 1` daily backups of a small simulated forum in the current format (`.tar`).
pub fn sim_backups(dir: &Path, days: u32) -> Vec<PathBuf> {
    let opts = dvault_sim::Options {
        days,
        formats: vec![dvault_sim::Format::B],
        ..dvault_sim::Options::small(22)
    };
    let mut files: Vec<PathBuf> = dvault_sim::generate(&opts, dir)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    files.sort();
    files
}

/// `dvault audit --json`, parsed.
pub fn audit(env: &Env, repo: &str) -> Vec<Value> {
    json(&env.ok(repo, &["audit", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// The operations of the records, in order.
pub fn ops(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["operation"].as_str().unwrap().to_string())
        .collect()
}

/// The stock restic checks the repository (a folder).
pub fn restic_checks(env: &Env, repo: &Path) {
    let out = Command::new("restic")
        .args(["--no-cache", "-r"])
        .arg(repo)
        .arg("--password-file")
        .arg(&env.password_file)
        .arg("check")
        .output()
        .expect("restic (Debian package) is installed");
    assert!(
        out.status.success(),
        "restic check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sum of the sizes of the repository's files that `report` counts (keys, snapshots, index,
/// packs), read from the folder itself.
fn repo_bytes(repo: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let m = e.metadata().unwrap();
                        if m.is_dir() {
                            walk(&e.path())
                        } else {
                            m.len()
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    ["keys", "snapshots", "index", "data"]
        .iter()
        .map(|d| walk(&repo.join(d)))
        .sum()
}

#[test]
fn report_and_audit_trail_over_simulated_days() {
    let env = Env::new();
    let repo_dir = env.path().join("repo");
    let repo = repo_dir.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = sim_backups(&env.path().join("backups"), 3);
    assert_eq!(files.len(), 4);
    for f in &files {
        assert_eq!(env.backup(repo, f)["outcome"], "stored");
    }
    env.ok(repo, &["check"]);
    let drill = env
        .dvault(repo)
        .env("PATH", pg_path())
        .args(["drill", "--postgres-temp", "--json"])
        .output()
        .unwrap();
    assert!(
        drill.status.success(),
        "{}",
        String::from_utf8_lossy(&drill.stderr)
    );
    let restored = env.path().join("restored.tar");
    env.ok(
        repo,
        &["restore", "latest", "--to", restored.to_str().unwrap()],
    );
    let forget = json(&env.ok(repo, &["forget", "--keep-last", "2", "--prune", "--json"]));
    let removed: Vec<String> = forget["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(removed.len(), 2);

    // Every operation left one record, in order, each naming the one before.
    let records = audit(&env, repo);
    assert_eq!(
        ops(&records),
        ["backup", "backup", "backup", "backup", "check", "drill", "restore", "forget", "prune"]
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["outcome"], "ok", "{r}");
        assert!(!r["host"].as_str().unwrap().is_empty() && !r["user"].as_str().unwrap().is_empty());
        let previous = if i == 0 {
            Value::Null
        } else {
            records[i - 1]["id"].clone()
        };
        assert_eq!(r["previous"], previous, "record {i} names its predecessor");
    }
    for (r, f) in records.iter().zip(&files) {
        assert_eq!(r["sha256"][0], sha256(f).as_str(), "{r}");
    }
    assert_eq!(records[6]["sha256"][0], sha256(&restored).as_str());
    let mut forgotten: Vec<&str> = records[7]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    forgotten.sort();
    let mut removed: Vec<&str> = removed.iter().map(String::as_str).collect();
    removed.sort();
    assert_eq!(forgotten, removed);
    let drill_restore = records[5]["figures"]["restore_seconds"].as_f64().unwrap();
    assert!(drill_restore > 0.0, "{}", records[5]);
    // `--since` in the future lists nothing.
    let later = json(&env.ok(repo, &["audit", "--json", "--since", "2999-01-01"]));
    assert_eq!(later.as_array().unwrap().len(), 0);

    // Audit records are no backups: not listed, not removed by retention; restic reads them.
    assert_eq!(env.snapshots(repo).len(), 2);
    restic_checks(&env, &repo_dir);

    // The report, from a config with prices.
    let config = env.path().join("dvault.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
             [pricing]\nname = \"test prices\"\ncurrency = \"EUR\"\nstorage_per_gib_month = 20.0\n\
             per_1000_requests = 5.0\negress_per_gib = 90.0\n\
             [sites.forum.repository]\nlocation = \"{repo}\"\npassword_file = \"{pw}\"\n",
            d = env.path().display(),
            pw = env.password_file.display()
        ),
    )
    .unwrap();
    let html = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("report-artefacts")
        .join("report.html");
    std::fs::create_dir_all(html.parent().unwrap()).unwrap();
    let out = env
        .dvault(repo)
        .env_remove("DVAULT_REPOSITORY")
        .args(["report", "--json", "--config", config.to_str().unwrap()])
        .args(["--html", html.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let site = &report["sites"][0];
    assert_eq!(site["site"], "forum");
    assert_eq!(site["snapshots"], 2);
    let on_disk = repo_bytes(&repo_dir);
    assert_eq!(site["repository_bytes"], on_disk);
    let originals: u64 = files[2..].iter().map(|f| f.metadata().unwrap().len()).sum();
    assert_eq!(site["original_bytes"], originals);
    let ratio = site["dedup_ratio"].as_f64().unwrap();
    assert!((ratio - originals as f64 / on_disk as f64).abs() < 1e-9);
    assert!(site["growth_per_day"].as_f64().unwrap() > 0.0, "{site}");
    assert_eq!(
        site["last_backup"]["file"],
        files[3].file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(site["last_check"]["ok"], true);
    assert_eq!(
        site["last_drill"]["restore_seconds"].as_f64().unwrap(),
        drill_restore
    );
    let cost = &site["cost"];
    let gib = (1u64 << 30) as f64;
    let storage = cost["storage_per_month"].as_f64().unwrap();
    assert!(
        (storage - on_disk as f64 / gib * 20.0).abs() < 1e-9,
        "{cost}"
    );
    let restore_bytes = cost["restore_bytes"].as_u64().unwrap();
    let requests = cost["restore_requests"].as_u64().unwrap();
    assert!(restore_bytes > 0 && restore_bytes < on_disk, "{cost}");
    let expected = restore_bytes as f64 / gib * 90.0 + requests as f64 / 1000.0 * 5.0;
    assert!((cost["full_restore"].as_f64().unwrap() - expected).abs() < 1e-9);

    // The page in a real browser: its plots and figures are in the DOM.
    browser::shows_report(&html, 2);

    // A snapshot deleted behind dvault's back, seen from a fresh host (no ledger): the audit
    // trail names it. So does a deleted audit record.
    let fresh = env.path().join("fresh-state");
    let kept = &env.snapshots(repo)[1];
    let kept_id = kept["id"].as_str().unwrap();
    std::fs::remove_file(repo_dir.join("snapshots").join(kept_id)).unwrap();
    let check_audit = records[4]["id"].as_str().unwrap();
    std::fs::remove_file(repo_dir.join("snapshots").join(check_audit)).unwrap();
    let out = env
        .dvault(repo)
        .env("DVAULT_STATE_DIR", &fresh)
        .arg("check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("snapshot {kept_id}")) && err.contains("no forget record"),
        "{err}"
    );
    assert!(
        err.contains(&format!("audit record {check_audit} is missing")),
        "{err}"
    );
}
