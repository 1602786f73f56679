//! What an admin's first hour found: retention rules that keep nothing, files that are not
//! backups, restores over existing files, two backups at once, world-readable data, prune that
//! freed nothing, passwords restic reads differently, and errors that said their cause twice.

use crate::repo_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use repo_support::{make_backups, noise, sha256, sql_text, Env};

fn repo_of(env: &Env) -> String {
    env.path().join("repo").to_str().unwrap().to_string()
}

/// A test folder with a new repository in it.
fn with_repo() -> (Env, String) {
    let env = Env::new();
    let repo = repo_of(&env);
    env.ok(&repo, &["init"]);
    (env, repo)
}

/// Backs up `file` and returns the new snapshot's id.
fn backup_id(env: &Env, repo: &str, file: &Path) -> String {
    env.backup(repo, file)["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn du(path: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(path).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() { du(&e.path()) } else { m.len() };
    }
    n
}

/// Every file and folder under `path` with any permission bit for group or others.
fn shared_with_others(path: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mode = fs::metadata(path).unwrap().permissions().mode();
    if mode & 0o077 != 0 {
        found.push(format!("{} {:o}", path.display(), mode & 0o777));
    }
    if path.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            found.extend(shared_with_others(&e.unwrap().path()));
        }
    }
    found
}

#[test]
fn retention_rules_of_zero_are_refused_and_nothing_is_removed() {
    let (env, repo) = with_repo();
    let files = make_backups(env.path(), 1, 4096);
    env.backup(&repo, &files[1]);
    for rule in [
        vec!["--keep-daily", "0"],
        vec!["--keep-within", "0d"],
        vec!["--keep-daily", "0", "--keep-weekly", "0"],
    ] {
        let mut args = vec!["forget"];
        args.extend(&rule);
        let err = env.fails(&repo, &args);
        assert!(err.contains("greater than 0"), "{rule:?}: {err}");
    }
    assert_eq!(env.snapshots(&repo).len(), 1);
}

#[test]
fn a_file_that_is_not_a_backup_is_refused_naming_it() {
    let (env, repo) = with_repo();
    for (name, bytes) in [
        (
            "forum-2026-01-01-033014-v20250612081530.tar.gz",
            noise(7, 100_000),
        ),
        (
            "forum-2026-01-02-033014-v20250612081530.sql.gz",
            b"<html><body>502 Bad Gateway</body></html>\n".to_vec(),
        ),
    ] {
        let f = env.path().join(name);
        fs::write(&f, &bytes).unwrap();
        let err = env.fails(&repo, &["backup", f.to_str().unwrap()]);
        assert!(
            err.contains(name) && err.contains("not a Discourse backup"),
            "{err}"
        );
        assert_eq!(fs::read(&f).unwrap(), bytes, "the source file is untouched");
    }
    assert!(env.snapshots(&repo).is_empty());
}

#[test]
fn restore_leaves_an_existing_file_alone_unless_forced() {
    let (env, repo) = with_repo();
    let files = make_backups(env.path(), 1, 4096);
    let id = backup_id(&env, &repo, &files[0]);
    let keep = env.path().join("keep.txt");
    fs::write(&keep, "important\n").unwrap();
    let err = env.fails(&repo, &["restore", &id, "--to", keep.to_str().unwrap()]);
    assert!(
        err.contains("keep.txt") && err.contains("exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&keep).unwrap(), "important\n");
    env.ok(
        &repo,
        &["restore", &id, "--to", keep.to_str().unwrap(), "--force"],
    );
    assert_eq!(sha256(&keep), sha256(&files[0]));
}

#[test]
fn a_backup_while_another_dvault_holds_the_repository_stops_with_exit_11() {
    let (env, repo) = with_repo();
    let files = make_backups(env.path(), 1, 4096);
    // The same lock `dvault run` and every writing command take (flock: held by this process).
    let key = dvault_core::lock::location_key(&repo);
    let held =
        dvault_core::lock::RepoLock::acquire(&env.path().join("state"), &key, Default::default())
            .unwrap();
    let out = env
        .dvault(&repo)
        .args(["backup", files[1].to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{err}");
    assert!(
        err.contains(&std::process::id().to_string()),
        "names the holder: {err}"
    );
    drop(held);
    env.backup(&repo, &files[1]);
    assert_eq!(env.snapshots(&repo).len(), 1);
}

#[test]
fn what_dvault_writes_is_private_to_its_owner() {
    let (env, repo) = with_repo();
    let files = make_backups(env.path(), 1, 4096);
    let id = backup_id(&env, &repo, &files[0]);
    let to = env.path().join("restored.tar.gz");
    let tree = env.path().join("tree");
    env.ok(&repo, &["restore", &id, "--to", to.to_str().unwrap()]);
    env.ok(
        &repo,
        &["restore", &id, "--expanded", tree.to_str().unwrap()],
    );
    let mut open = shared_with_others(Path::new(&repo));
    open.extend(shared_with_others(&to));
    open.extend(shared_with_others(&tree));
    assert!(open.is_empty(), "readable by others: {open:#?}");
}

#[test]
fn prune_frees_the_space_of_removed_snapshots_at_once() {
    let (env, repo) = with_repo();
    // Two days with different incompressible uploads: the older day's data is its own.
    let day1 = format_a_with_own_uploads(env.path(), 1);
    let day2 = format_a_with_own_uploads(env.path(), 2);
    env.backup(&repo, &day1);
    let newest = backup_id(&env, &repo, &day2);
    let before = du(&Path::new(&repo).join("data"));
    env.ok(&repo, &["forget", "--keep-daily", "1", "--prune"]);
    let after = du(&Path::new(&repo).join("data"));
    assert!(
        after + 1_500_000 < before,
        "prune should free the older day's ~2 MB of uploads: {before} -> {after} bytes"
    );
    env.ok(&repo, &["check", "--read-data"]);
    assert_eq!(env.restore_sha(&repo, &newest), sha256(&day2));
}

/// Entries of `dir` whose names start with `prefix`.
fn entries_starting(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Whether `dir` becomes empty within 10 s (the temporaries of a stopped dvault are removed
/// just after it ends).
fn empty_soon(dir: &Path) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < until {
        if fs::read_dir(dir).unwrap().next().is_none() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Starts `cmd`, waits until an entry starting with `prefix` appears in `dir`, sends `sig`,
/// and returns the exit code and stderr.
fn interrupt_once_started(
    mut cmd: std::process::Command,
    dir: &Path,
    prefix: &str,
    sig: i32,
) -> (Option<i32>, String) {
    use std::time::{Duration, Instant};
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while entries_starting(dir, prefix).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before it wrote {prefix}*"
        );
        assert!(
            Instant::now() < deadline,
            "no {prefix}* in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: sends a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, sig) };
    let out = child.wait_with_output().unwrap();
    let err = format!("{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    (out.status.code(), err)
}

#[test]
fn a_stopped_backup_or_restore_leaves_no_temporary_data_behind() {
    let (env, repo) = with_repo();
    let big = format_a_with_own_uploads_of(env.path(), 1, 40_000_000);
    let scratch = env.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();

    let mut backup = env.dvault(&repo);
    backup
        .env("DVAULT_SCRATCH_DIR", &scratch)
        .args(["backup", big.to_str().unwrap()]);
    let (code, err) = interrupt_once_started(backup, &scratch, "dvault-backup-", libc::SIGTERM);
    assert_eq!(code, Some(128 + libc::SIGTERM), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert!(empty_soon(&scratch), "scratch left behind");
    assert!(
        env.snapshots(&repo).is_empty(),
        "no snapshot of a stopped backup"
    );
    env.ok(&repo, &["check"]);

    let id = backup_id(&env, &repo, &big);
    let out = env.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let to = out.join("restored.tar.gz");
    let mut restore = env.dvault(&repo);
    restore.args(["restore", &id, "--to", to.to_str().unwrap()]);
    let (code, err) = interrupt_once_started(restore, &out, ".dvault-restore-", libc::SIGINT);
    assert_eq!(code, Some(128 + libc::SIGINT), "{err}");
    assert!(
        empty_soon(&out),
        "left in the target folder: {:?}",
        entries_starting(&out, "")
    );
    assert_eq!(env.restore_sha(&repo, &id), sha256(&big));
}

/// A format-A backup of `day` (GNU tar and gzip) whose 2 MB upload no other day shares.
fn format_a_with_own_uploads(dir: &Path, day: u64) -> std::path::PathBuf {
    format_a_with_own_uploads_of(dir, day, 2_000_000)
}

/// A format-A backup of `day` whose upload of `bytes` no other day shares.
fn format_a_with_own_uploads_of(dir: &Path, day: u64, bytes: usize) -> std::path::PathBuf {
    let work = dir.join(format!("own-{day}"));
    let uploads = work.join("uploads/default/original/1X");
    fs::create_dir_all(&uploads).unwrap();
    fs::write(uploads.join("upload.bin"), noise(1000 + day, bytes)).unwrap();
    fs::write(work.join("dump.sql"), sql_text(2000, day)).unwrap();
    let sh = |cmd: &str| {
        let st = std::process::Command::new("sh")
            .args(["-c", cmd])
            .current_dir(&work)
            .status()
            .unwrap();
        assert!(st.success(), "{cmd}");
    };
    sh("gzip -5 -n dump.sql");
    let name = format!("forum-2026-01-0{day}-033014-v20250612081530.tar.gz");
    let out = dir.join(&name);
    sh(&format!(
        "tar -cf - dump.sql.gz uploads | gzip -5 > {}",
        out.display()
    ));
    out
}

#[test]
fn a_password_file_restic_would_read_differently_is_refused_at_init() {
    let env = Env::new();
    let repo = repo_of(&env);
    let pw = env.path().join("spaced-password");
    fs::write(&pw, "secret pass  \r\n").unwrap();
    let out = env
        .dvault(&repo)
        .env("DVAULT_PASSWORD_FILE", &pw)
        .arg("init")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("spaced-password") && err.contains("restic"),
        "{err}"
    );
    assert!(!Path::new(&repo).join("config").exists());
}

#[test]
fn an_error_says_its_cause_once() {
    let env = Env::new();
    let repo = repo_of(&env);
    let out = env
        .dvault(&repo)
        .args(["snapshots", "--password-file", "no-such-password-file"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-password-file"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn run_refuses_repository_options_it_would_ignore() {
    let env = Env::new();
    let cfg = env.path().join("dvault.toml");
    let out = env
        .dvault("/from/the/environment")
        .args(["run", "--config", cfg.to_str().unwrap()])
        .args(["--repo", "/nonexistent", "--state-dir", "stX"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // run does not take them at all: clap's usage error (exit 2) names the first one.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unexpected argument '--repo'"), "{err}");
    assert!(!env.path().join("stX").exists() && !Path::new("stX").exists());
    // From the environment (as a shell profile may set them) they are no reason to refuse:
    // the run goes on to its config file, which does not exist here.
    let out = env
        .dvault("/from/the/environment")
        .args(["run", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dvault.toml") && !err.contains("--repo"),
        "{err}"
    );
}
