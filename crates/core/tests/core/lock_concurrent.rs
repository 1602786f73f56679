//! Two runs on one repository: the second waits or refuses with a message naming the holder; a
//! lock left by a killed process is cleared. The holders are real child processes (this test
//! binary re-run as `lock_concurrent::lock_holder_process`), killed with SIGKILL where a crash
//! is meant.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dvault_core::lock::{LockError, RepoLock};

const REPO: &str = "rest:http://127.0.0.1:8000/forum1/";

/// The full name of [`lock_holder_process`] for `--exact`.
const HOLDER_TEST: &str = "lock_concurrent::lock_holder_process";

/// Not a test of its own: the body of the child process the other tests start.
#[test]
#[ignore = "helper process for the lock tests"]
fn lock_holder_process() {
    let dir = std::env::var("DVAULT_TEST_LOCK_DIR").expect("started by a lock test");
    let hold_ms: u64 = std::env::var("DVAULT_TEST_LOCK_HOLD_MS")
        .unwrap()
        .parse()
        .unwrap();
    let lock = RepoLock::acquire(Path::new(&dir), REPO, Duration::ZERO).unwrap();
    println!("LOCKED {}", std::process::id());
    std::thread::sleep(Duration::from_millis(hold_ms));
    drop(lock);
}

fn holder(dir: &Path, hold_ms: u64) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            // The test's name in the crate's one test binary (its module path without the crate).
            HOLDER_TEST,
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DVAULT_TEST_LOCK_DIR", dir)
        .env("DVAULT_TEST_LOCK_HOLD_MS", hold_ms.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the child says it holds the lock.
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    loop {
        let line = lines.next().expect("child ended before locking").unwrap();
        if line.contains("LOCKED ") {
            break;
        }
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

#[test]
fn a_second_run_refuses_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = holder(dir.path(), 20_000);
    let started = Instant::now();
    let err = RepoLock::acquire(dir.path(), REPO, Duration::from_millis(500)).unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "waited the given time"
    );
    let text = err.to_string();
    assert!(matches!(err, LockError::Held { .. }));
    assert!(text.contains(&format!("pid {}", child.id())), "{text}");
    assert!(text.contains(REPO), "{text}");
    assert!(text.contains("locked by another dvault run"), "{text}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_second_run_waits_and_proceeds_when_the_first_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = holder(dir.path(), 800);
    let started = Instant::now();
    let lock = RepoLock::acquire(dir.path(), REPO, Duration::from_secs(20)).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it had to wait"
    );
    assert!(
        lock.stale.is_none(),
        "a clean release leaves no stale record"
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_lock_left_by_a_killed_run_is_cleared_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = holder(dir.path(), 60_000);
    let pid = child.id();
    child.kill().unwrap(); // SIGKILL: no destructor runs, the record stays in the file
    child.wait().unwrap();
    let lock = RepoLock::acquire(dir.path(), REPO, Duration::ZERO).unwrap();
    let stale = lock
        .stale
        .clone()
        .expect("the dead holder's record is reported");
    assert_eq!(stale.pid, pid);
    assert_eq!(stale.repository, REPO);
    drop(lock);
    let again = RepoLock::acquire(dir.path(), REPO, Duration::ZERO).unwrap();
    assert!(again.stale.is_none(), "the stale record was replaced");
}

#[test]
fn different_repositories_do_not_block_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = holder(dir.path(), 20_000);
    RepoLock::acquire(dir.path(), "/srv/dvault/other", Duration::ZERO).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
}
