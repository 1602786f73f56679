//! Writers exclude each other through the repository's own lock files (restic's format): a
//! prune never runs beside a backup, whichever program (dvault or the stock `restic`) and
//! whichever state folder or spelling of the location each uses. Each test pauses the first
//! process with SIGSTOP while it holds its lock (a slow backup, made deterministic), lets the
//! second one find the lock (exit 11 naming the holder, or wait with `--retry-lock`), and then
//! proves nothing was lost: `restic check --read-data` clean and every restore exact.

use crate::repo_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use repo_support::{make_backups, noise, sha256, Env};

/// The stock restic on `repo` with the env's password.
fn restic(env: &Env, repo: &str) -> Command {
    let mut c = Command::new("restic");
    c.env("RESTIC_PASSWORD_FILE", &env.password_file)
        .env("RESTIC_CACHE_DIR", env.path().join("restic-cache"))
        .env_remove("RESTIC_PASSWORD")
        .env_remove("RESTIC_REPOSITORY")
        .arg("--repo")
        .arg(repo);
    c
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (restic: Debian package `restic`)"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn restic_ok(env: &Env, repo: &str, args: &[&str]) -> String {
    let out = output(restic(env, repo).args(args));
    assert!(out.status.success(), "restic {args:?}: {}", text(&out));
    text(&out)
}

/// The lock files in a local repository.
fn locks(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo.join("locks"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 64)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits until `child` has a lock file in `repo`, then freezes it (SIGSTOP) while it holds
/// it; returns the lock's id.
fn pause_holding_lock(child: &mut Child, repo: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(id) = locks(repo).pop() {
            signal(child, "STOP");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the first process ended before it could be paused"
            );
            assert_eq!(
                locks(repo),
                std::slice::from_ref(&id),
                "its lock is still there"
            );
            return id;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the first process ended ({status}) without a lock file being seen");
        }
        assert!(Instant::now() < deadline, "no lock file appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// Asserts that `child` is still running `for_at_least` from now (it is waiting for a lock).
fn still_waiting(child: &mut Child, for_at_least: Duration) {
    std::thread::sleep(for_at_least);
    assert!(
        child.try_wait().unwrap().is_none(),
        "it should still be waiting for the lock"
    );
}

/// Waits for `child`, insists on success, returns its stdout.
fn finish(child: Child, what: &str) -> Vec<u8> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what}: {}", text(&out));
    out.stdout
}

/// The snapshot id in `dvault backup --json` output.
fn snapshot_id(stdout: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    v["snapshot"]["id"].as_str().unwrap().to_string()
}

/// A repository with two dvault snapshots of old backups, and a newer backup file with
/// ~2 MB of uploads to store next.
fn repo_with_history(env: &Env) -> (PathBuf, PathBuf) {
    let repo = env.path().join("prepo");
    env.ok(repo.to_str().unwrap(), &["init"]);
    for f in make_backups(env.path(), 1, 40_000).iter().take(2) {
        env.backup(repo.to_str().unwrap(), f);
    }
    let newer = make_backups(env.path(), 9, 2_000_000).remove(0);
    (repo, newer)
}

fn spawn_backup(env: &Env, repo: &Path, file: &Path) -> Child {
    env.dvault(repo.to_str().unwrap())
        .args(["backup", "--json"])
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `dvault forget --keep-last 1 --prune` as an admin would type it by hand: relative
/// location, its own state folder.
fn admin_prune(env: &Env, extra: &[&str]) -> Command {
    let mut c = env.dvault("prepo");
    c.current_dir(env.path())
        .env("DVAULT_STATE_DIR", env.path().join("state-admin"))
        .args(["forget", "--keep-last", "1", "--prune"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Nothing lost: restic reads every byte, the kept snapshot restores exactly.
fn nothing_lost(env: &Env, repo: &Path, kept: &str, file: &Path) {
    let r = repo.to_str().unwrap();
    restic_ok(env, r, &["check", "--read-data"]);
    let snaps = env.snapshots(r);
    assert!(
        snaps.iter().any(|s| s["id"] == kept),
        "snapshot {kept} is kept: {snaps:?}"
    );
    assert_eq!(env.restore_sha(r, kept), sha256(file));
    assert_eq!(locks(repo), Vec::<String>::new(), "no lock left behind");
}

#[test]
fn dvault_prune_from_another_state_folder_and_spelling_waits_for_a_dvault_backup() {
    let env = Env::new();
    let (repo, newer) = repo_with_history(&env);
    let mut backup = spawn_backup(&env, &repo, &newer);
    pause_holding_lock(&mut backup, &repo);

    let out = output(&mut admin_prune(&env, &[]));
    let err = text(&out);
    assert_eq!(out.status.code(), Some(11), "{err}");
    assert!(
        err.contains(&format!("pid {} on {}", backup.id(), hostname())),
        "the holder is named: {err}"
    );
    assert_eq!(
        env.snapshots(repo.to_str().unwrap()).len(),
        2,
        "nothing removed"
    );

    let mut prune = admin_prune(&env, &["--retry-lock", "2m"]).spawn().unwrap();
    still_waiting(&mut prune, Duration::from_millis(1500));
    signal(&backup, "CONT");
    let stored = snapshot_id(&finish(backup, "backup"));
    finish(prune, "prune after waiting");
    let snaps = env.snapshots(repo.to_str().unwrap());
    assert_eq!(snaps.len(), 1, "the prune ran after the backup: {snaps:?}");
    let kept = snaps[0]["id"].as_str().unwrap().to_string();
    assert_eq!(kept, stored, "the new backup is the one kept");
    nothing_lost(&env, &repo, &kept, &newer);
}

#[test]
fn stock_restic_sees_a_dvault_backup_lock_and_its_prune_refuses() {
    let env = Env::new();
    let (repo, newer) = repo_with_history(&env);
    let r = repo.to_str().unwrap();
    let mut backup = spawn_backup(&env, &repo, &newer);
    let id = pause_holding_lock(&mut backup, &repo);

    let listed = restic_ok(&env, r, &["list", "locks", "--no-lock"]);
    assert!(listed.contains(&id), "restic lists dvault's lock: {listed}");
    let json = restic_ok(&env, r, &["cat", "lock", &id, "--no-lock"]);
    let lock: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(lock["pid"], backup.id(), "{lock}");
    assert_eq!(lock["hostname"], hostname().as_str());
    assert_eq!(lock["exclusive"], false);
    assert!(lock["time"].as_str().unwrap().starts_with("20"), "{lock}");

    let out = output(restic(&env, r).arg("prune"));
    let err = text(&out);
    assert!(!out.status.success(), "restic prune must refuse: {err}");
    assert!(
        err.contains("already locked") && err.contains(&format!("PID {}", backup.id())),
        "{err}"
    );

    signal(&backup, "CONT");
    let kept = snapshot_id(&finish(backup, "backup"));
    restic_ok(&env, r, &["prune"]);
    nothing_lost(&env, &repo, &kept, &newer);
}

#[test]
fn dvault_prune_waits_for_a_stock_restic_backup() {
    let env = Env::new();
    let (repo, newer) = repo_with_history(&env);
    let r = repo.to_str().unwrap();
    env.backup(r, &newer);
    // restic's own files, about 2 MB.
    let data = env.path().join("data");
    fs::create_dir_all(&data).unwrap();
    for i in 0..4 {
        fs::write(data.join(format!("f{i}")), noise(100 + i, 500_000)).unwrap();
    }
    let mut rb = restic(&env, r)
        .args(["backup", "--json"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    pause_holding_lock(&mut rb, &repo);

    let out = output(&mut admin_prune(&env, &[]));
    let err = text(&out);
    assert_eq!(out.status.code(), Some(11), "{err}");
    assert!(
        err.contains(&format!("pid {} on {}", rb.id(), hostname())),
        "the holder is named: {err}"
    );
    let mut prune = admin_prune(&env, &["--retry-lock", "2m"]).spawn().unwrap();
    still_waiting(&mut prune, Duration::from_millis(1500));
    signal(&rb, "CONT");
    finish(rb, "restic backup");
    finish(prune, "dvault prune after waiting");

    let snaps = env.snapshots(r);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let kept = snaps[0]["id"].as_str().unwrap().to_string();
    nothing_lost(&env, &repo, &kept, &newer);
    // restic's own snapshot is whole too.
    let target = env.path().join("restored");
    let data_path = data.to_str().unwrap();
    let target_path = target.to_str().unwrap();
    restic_ok(
        &env,
        r,
        &[
            "restore",
            "latest",
            "--path",
            data_path,
            "--target",
            target_path,
        ],
    );
    for i in 0..4 {
        let back = target
            .join(data.strip_prefix("/").unwrap())
            .join(format!("f{i}"));
        assert_eq!(fs::read(&back).unwrap(), noise(100 + i, 500_000), "f{i}");
    }
}

#[test]
fn a_killed_backup_leaves_a_stale_lock_that_the_next_prune_clears() {
    let env = Env::new();
    let (repo, newer) = repo_with_history(&env);
    let mut backup = spawn_backup(&env, &repo, &newer);
    let id = pause_holding_lock(&mut backup, &repo);
    signal(&backup, "KILL");
    backup.wait().unwrap();
    assert_eq!(locks(&repo), [id], "kill -9 leaves the lock file");

    // Same host, dead pid: stale by restic's rule, so the prune goes ahead at once.
    let out = output(&mut admin_prune(&env, &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stale"), "says so: {}", text(&out));
    let r = repo.to_str().unwrap();
    let snaps = env.snapshots(r);
    assert_eq!(snaps.len(), 1);
    let kept = snaps[0]["id"].as_str().unwrap().to_string();
    // The newest of the two old backups (the .sql.gz of day 1).
    let old = fs::read_dir(env.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.to_string_lossy()
                .ends_with("033002-v20240229123456.sql.gz")
        })
        .unwrap();
    nothing_lost(&env, &repo, &kept, &old);
}

#[test]
fn ctrl_c_removes_the_lock() {
    let env = Env::new();
    let (repo, newer) = repo_with_history(&env);
    let mut backup = spawn_backup(&env, &repo, &newer);
    pause_holding_lock(&mut backup, &repo);
    signal(&backup, "INT");
    signal(&backup, "CONT");
    let out = backup.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert_eq!(locks(&repo), Vec::<String>::new(), "the lock went with it");
    restic_ok(&env, repo.to_str().unwrap(), &["check"]);
}

#[test]
fn through_an_append_only_rest_server_the_lock_is_seen_and_removed() {
    let env = Env::new();
    let store = env.path().join("store");
    fs::create_dir_all(&store).unwrap();
    let port = repo_support::free_port();
    let mut server = Command::new("rclone")
        .args(["serve", "restic", "--append-only", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rclone (Debian package `rclone`) is installed");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "rclone did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("rest:http://127.0.0.1:{port}/r");
    env.ok(&url, &["init"]);
    let file = make_backups(env.path(), 3, 2_000_000).remove(0);
    let mut backup = env
        .dvault(&url)
        .args(["backup", "--json"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let repo = store.join("r");
    pause_holding_lock(&mut backup, &repo);
    // The server's folder, as the backup server's admin would prune it.
    let out = output(restic(&env, repo.to_str().unwrap()).arg("prune"));
    assert!(
        !out.status.success() && text(&out).contains("already locked"),
        "{}",
        text(&out)
    );
    signal(&backup, "CONT");
    let id = snapshot_id(&finish(backup, "backup"));
    assert_eq!(
        locks(&repo),
        Vec::<String>::new(),
        "removed through the server"
    );
    assert_eq!(env.restore_sha(&url, &id), sha256(&file));
    let _ = server.kill();
    let _ = server.wait();
}
