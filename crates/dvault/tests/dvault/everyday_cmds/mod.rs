//! The everyday commands of issue 21 against real repositories: `stats`, `ls`, `find`, `diff`,
//! `key`, `copy`, `config validate|generate`, `run --dry-run` and `--quiet`.
//!
//! What each command says is checked against an independent source: paths against the real
//! `tar --list` of the backup, row counts against the COPY blocks of the dump as `gzip -dc`
//! gives it, keys against the stock `restic`, copies by restoring them bit-exact and by
//! `restic check` on the target (local, REST via `rclone serve restic`, S3 via Garage).
//!
//! The shared set-up (simulated backups, a filled repository, counting a dump's rows) is here;
//! one file per group of commands.

use crate::repo_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use repo_support::{sha256, Env};
use serde_json::Value;

mod browse;
mod config_and_run;
mod copy;
mod keys;

/// Two days of the simulator's backups (formats A, SQL and B each day), in day order.
fn sim_backups(dir: &Path) -> Vec<dvault_sim::BackupFile> {
    let opts = dvault_sim::Options {
        days: 1,
        ..dvault_sim::Options::small(21)
    };
    let files = dvault_sim::generate(&opts, &dir.join("backups")).unwrap();
    assert_eq!(files.len(), 6);
    files
}

fn of(files: &[dvault_sim::BackupFile], day: u32, format: dvault_sim::Format) -> PathBuf {
    files
        .iter()
        .find(|f| f.day == day && f.format == format)
        .unwrap()
        .path
        .clone()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A local repository holding all six backups; returns the snapshot id of each file.
fn filled(env: &Env, files: &[dvault_sim::BackupFile]) -> (String, BTreeMap<PathBuf, String>) {
    let repo = env.path().join("repo").display().to_string();
    env.ok(&repo, &["init"]);
    let mut ids = BTreeMap::new();
    for f in files {
        let v = env.backup(&repo, &f.path);
        ids.insert(
            f.path.clone(),
            v["snapshot"]["id"].as_str().unwrap().to_string(),
        );
    }
    (repo, ids)
}

/// The members of a tar file as the real `tar --list` names them (no trailing `/`).
fn tar_paths(file: &Path) -> BTreeSet<String> {
    let out = Command::new("tar").arg("-tf").arg(file).output().unwrap();
    assert!(out.status.success());
    text(&out)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Rows of each COPY block of a plain dump, counted here from the text itself.
fn copy_rows(sql: &[u8]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in sql.split(|&b| b == b'\n') {
        if line == b"\\." {
            current = None;
            continue;
        }
        if let Some(t) = &current {
            *out.get_mut(t).unwrap() += 1;
            continue;
        }
        let l = String::from_utf8_lossy(line);
        if let Some(rest) = l.strip_prefix("COPY ") {
            let table = rest.split(' ').next().unwrap().to_string();
            out.insert(table.clone(), 0);
            current = Some(table);
        }
    }
    out
}

/// The row counts of the SQL-only backup `file` (its dump, through the real gzip).
fn rows_of_sql_gz(file: &Path) -> BTreeMap<String, u64> {
    let out = Command::new("gzip").arg("-dc").arg(file).output().unwrap();
    assert!(out.status.success());
    copy_rows(&out.stdout)
}

fn tables_json(env: &Env, repo: &str, id: &str) -> BTreeMap<String, u64> {
    let v = json(&env.ok(repo, &["ls", id, "--tables", "--json"]));
    v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The stock `restic` on `repo` with the password file `pw`.
fn restic(env: &Env, repo: &str, pw: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .env("RESTIC_PASSWORD_FILE", pw)
        .env("RESTIC_CACHE_DIR", env.path().join("restic-cache"))
        .args(["-r", repo])
        .args(args)
        .output()
        .expect("the restic program (Debian package `restic`) is installed")
}

fn secret(env: &Env, name: &str, value: &str) -> PathBuf {
    let p = env.path().join(name);
    fs::write(&p, format!("{value}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}
