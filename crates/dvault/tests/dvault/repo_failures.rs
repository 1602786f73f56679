//! Failures give clear errors and leave the repository sound: wrong password, missing
//! repository, bad settings, a full disk, and a backup killed with SIGKILL.

use crate::repo_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use repo_support::{make_backups, noise, sha256, Env};

#[test]
fn wrong_password_is_named_as_such() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let wrong = env.path().join("wrong");
    fs::write(&wrong, "not the password\n").unwrap();
    let out = env
        .dvault(repo)
        .env("DVAULT_PASSWORD_FILE", &wrong)
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong password") && err.contains(repo),
        "{err}"
    );
}

#[test]
fn missing_repository_and_missing_password_are_named() {
    let env = Env::new();
    let repo = env.path().join("nothing-here");
    let err = env.fails(repo.to_str().unwrap(), &["snapshots"]);
    assert!(
        err.contains("no repository at") && err.contains("nothing-here"),
        "{err}"
    );
    assert!(err.contains("dvault init"), "{err}");

    let out = env
        .dvault(repo.to_str().unwrap())
        .env_remove("DVAULT_PASSWORD_FILE")
        .arg("snapshots")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no repository password"), "{err}");

    let err = env.fails(
        repo.to_str().unwrap(),
        &["init", "--chunker", "1024,4096,16384"],
    );
    assert!(err.contains("4096"), "{err}");
    assert!(!repo.exists(), "a refused init creates nothing");
}

#[test]
fn init_refuses_an_existing_repository_and_creates_password_files_0600() {
    let env = Env::new();
    let repo = env.path().join("repo");
    let repo_s = repo.to_str().unwrap();
    let pw = env.path().join("new-password");
    env.ok(repo_s, &["init", "--password-file", pw.to_str().unwrap()]);
    let mode = fs::metadata(&pw).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "generated password file mode {mode:o}");
    assert!(fs::read_to_string(&pw).unwrap().trim().len() >= 32);
    let out = env
        .dvault(repo_s)
        .args(["snapshots", "--password-file", pw.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = env.fails(repo_s, &["init"]);
    assert!(err.contains("exists already"), "{err}");
}

/// Mounts a tmpfs of `mb` MiB at `dir`; `false` when mounting is not permitted here.
fn mount_tmpfs(dir: &std::path::Path, mb: u32) -> bool {
    fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes `len` bytes of noise gzipped (GNU gzip -1 -n) to `path`, which ends in `.gz`: big
/// enough to matter, and a real gzip file, since dvault refuses what is neither gzip nor tar.
fn gzipped_noise(path: &std::path::Path, seed: u64, len: usize) {
    let plain = path.with_extension("");
    fs::write(&plain, noise(seed, len)).unwrap();
    let st = Command::new("gzip")
        .args(["-1", "-n", "-f"])
        .arg(&plain)
        .status()
        .unwrap();
    assert!(
        st.success() && path.is_file(),
        "gzip of {}",
        plain.display()
    );
}

#[test]
fn full_disk_fails_clearly_and_earlier_snapshots_survive() {
    let env = Env::new();
    let mnt = env.path().join("small-disk");
    if !mount_tmpfs(&mnt, 20) {
        eprintln!("SKIPPED full_disk test: mounting a tmpfs is not permitted here (needs root)");
        return;
    }
    let _guard = Unmount(mnt.clone());
    let repo = mnt.join("repo");
    let repo = repo.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 11, 20_000);
    env.backup(repo, &files[1]);

    // 30 MB of noise cannot fit into what is left of 20 MiB.
    let big = env
        .path()
        .join("big-2024-05-01-033001-v20240229123456.sql.gz");
    gzipped_noise(&big, 7, 30 << 20);
    let err = env.fails(repo, &["backup", big.to_str().unwrap()]);
    assert!(
        err.contains("No space left on device") || err.to_lowercase().contains("no space"),
        "{err}"
    );
    fs::remove_file(&big).unwrap();

    env.ok(repo, &["check", "--read-data"]);
    let snaps = env.snapshots(repo);
    assert_eq!(snaps.len(), 1);
    assert_eq!(
        env.restore_sha(repo, snaps[0]["short_id"].as_str().unwrap()),
        sha256(&files[1])
    );
}

#[test]
fn killed_backup_leaves_repository_usable() {
    let env = Env::new();
    let repo_path = env.path().join("repo");
    let repo = repo_path.to_str().unwrap();
    env.ok(repo, &["init"]);
    let files = make_backups(env.path(), 12, 20_000);
    env.backup(repo, &files[0]);
    let packs_before = count_files(&repo_path.join("data"));

    let big = env
        .path()
        .join("big-2024-05-02-033001-v20240229123456.sql.gz");
    gzipped_noise(&big, 11, 60 << 20);
    let mut child = env
        .dvault(repo)
        .args(["backup", big.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has written at least one new pack, i.e. really mid-way.
    let deadline = Instant::now() + Duration::from_secs(50);
    loop {
        if count_files(&repo_path.join("data")) > packs_before {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "backup ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "no pack written within 50 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        env.snapshots(repo).len(),
        1,
        "the killed backup wrote no snapshot"
    );

    env.ok(repo, &["check", "--read-data"]);
    let first = &env.snapshots(repo)[0];
    assert_eq!(
        env.restore_sha(repo, first["short_id"].as_str().unwrap()),
        sha256(&files[0])
    );

    let again = env.backup(repo, &big);
    assert_eq!(again["outcome"], "stored");
    let id = again["snapshot"]["short_id"].as_str().unwrap().to_string();
    assert_eq!(env.restore_sha(repo, &id), sha256(&big));
    env.ok(repo, &["check"]);
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}
