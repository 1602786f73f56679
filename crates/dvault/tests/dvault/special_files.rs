//! A backup argument that is not a regular file: `dvault backup /dev/zero` or a FIFO once
//! hung forever. Every command that takes a backup file refuses a FIFO, a device, a directory
//! and a socket at once, naming the file and what it is. Each run has a time limit, so a
//! regression fails instead of hanging the suite.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DVAULT: &str = env!("CARGO_BIN_EXE_dvault");

/// Runs dvault with `args` in `dir`; kills it and fails the test after 30 seconds. Returns the
/// exit code and stderr.
fn run_with_timeout(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(DVAULT)
        .args(args)
        .current_dir(dir)
        .env("DVAULT_PASSWORD", "unused")
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dvault {args:?} still running after 30 s: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The commands that take a backup file, with `{}` where the file goes.
const COMMANDS: &[&[&str]] = &[
    &["inspect", "{}"],
    &["expand", "{}", "out"],
    &["expand", "{}", "--tar", "out.tar"],
    &["backup", "--repo", "repo", "{}"],
    &["drill", "--postgres-temp", "--file", "{}"],
];

fn refused_by_every_command(dir: &Path, file: &Path, what: &str) {
    let shown = file.display().to_string();
    for cmd in COMMANDS {
        let args: Vec<&str> = cmd
            .iter()
            .map(|a| if *a == "{}" { shown.as_str() } else { a })
            .collect();
        let (code, err) = run_with_timeout(dir, &args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&shown) && err.contains(&format!("{what}, not a regular file")),
            "{args:?} names the file and what it is: {err}"
        );
        assert!(err.lines().count() <= 2, "{args:?}: a short error: {err}");
    }
    assert!(!dir.join("out").exists() && !dir.join("out.tar").exists());
    assert!(!dir.join("repo").exists(), "nothing was opened or created");
}

#[test]
fn a_fifo_is_refused_at_once_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("forum.tar.gz");
    mkfifo(&fifo);
    refused_by_every_command(dir.path(), &fifo, "a FIFO (named pipe)");
}

#[test]
fn dev_zero_is_refused_at_once_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    refused_by_every_command(dir.path(), Path::new("/dev/zero"), "a character device");
}

#[test]
fn a_directory_and_a_socket_are_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    refused_by_every_command(dir.path(), &folder, "a directory");
    let sock = dir.path().join("s.tar");
    let _listener = UnixListener::bind(&sock).unwrap();
    let (code, err) = run_with_timeout(dir.path(), &["inspect", "s.tar"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("s.tar: a socket, not a regular file"), "{err}");
    assert!(err.contains("give `-` to read standard input"), "{err}");
}

#[test]
fn standard_input_still_works_through_dash() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .args([
            "-euo",
            "pipefail",
            "-c",
            &format!("seq 1 1000 | gzip -5 | {DVAULT} inspect - > report.txt"),
        ])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let report = std::fs::read_to_string(dir.path().join("report.txt")).unwrap();
    assert!(report.contains("gzip"), "{report}");
}
