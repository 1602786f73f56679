//! Stopping on a signal (Ctrl-C, `systemctl stop`, a closed terminal) without leaving the
//! scratch trees and temporary files of this process behind: they hold the plain dump (private
//! messages, e-mail addresses) and are as large as the backup. Destructors do not run when a
//! signal ends the process, so the places that create such files register them here, and the
//! command line's signal thread calls [`exit_after_cleanup`].
//!
//! The files are removed only after the process has ended, by a small detached `sh`: removing
//! them while the process still runs could let a backup that is just finishing store a
//! snapshot of a half-deleted tree (rustic_core skips files it cannot read), which would then
//! count as "already stored". A process killed with SIGKILL leaves them to the next run's
//! stale-scratch cleanup, which recognises them by the dead process id in their names.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Set once a signal is stopping the process.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The signal that is stopping the process.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// How long the process may go on after a signal before it ends (milliseconds).
static GRACE_MS: AtomicU64 = AtomicU64::new(0);

/// Folders to search and the name prefix of this process's temporary entries in each.
static PATTERNS: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// A step to run before a signal ends the process.
type ExitStep = Box<dyn Fn() + Send + Sync>;

/// Steps [`exit_after_cleanup`] runs before the process ends (the repository lock files this
/// process holds, which only it can remove, and only while it still knows their names).
static ON_EXIT: Mutex<Vec<(u64, ExitStep)>> = Mutex::new(Vec::new());
static NEXT_STEP: AtomicU64 = AtomicU64::new(1);

/// Registers `step` to run when a signal ends the process; returns a number for
/// [`cancel_on_exit`].
pub fn on_exit(step: ExitStep) -> u64 {
    let n = NEXT_STEP.fetch_add(1, Ordering::SeqCst);
    ON_EXIT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((n, step));
    n
}

/// Forgets a step registered with [`on_exit`] (its work was done the ordinary way).
pub fn cancel_on_exit(n: u64) {
    ON_EXIT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(k, _)| *k != n);
}

/// Lets the process finish its bookkeeping for up to `d` after a signal (used by `dvault run`:
/// the site it was working on stops at its next step and still records its failure, sends its
/// failure ping and updates the metrics). Without it the process ends at once.
pub fn allow_grace(d: Duration) {
    GRACE_MS.store(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        Ordering::SeqCst,
    );
}

/// The time allowed by [`allow_grace`].
pub fn grace() -> Duration {
    Duration::from_millis(GRACE_MS.load(Ordering::SeqCst))
}

/// Marks the process as stopped by signal `sig`: work checks [`stopping`] between steps and
/// gives up.
pub fn begin_stop(sig: i32) {
    SIGNAL.store(sig, Ordering::SeqCst);
    STOPPING.store(true, Ordering::SeqCst);
}

/// The exit code for the signal that stopped the process (128 + its number, as shells say).
pub fn exit_code() -> i32 {
    128 + SIGNAL.load(Ordering::SeqCst)
}

/// Whether a signal is stopping the process.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// The name prefix `BASE<pid>-` for this process's temporaries in `dir`, registered for
/// removal when a signal stops the process (and recognisable by the pid once it is gone).
pub fn pid_prefix(dir: &Path, base: &str) -> String {
    let prefix = format!("{base}{}-", std::process::id());
    remove_on_interrupt(&dir.join(&prefix));
    prefix
}

/// Registers every entry beside `path_prefix` whose name starts with its file name (which
/// should contain this process's id) for removal when a signal stops the process.
pub fn remove_on_interrupt(path_prefix: &Path) {
    let dir = match path_prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = path_prefix
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entry = (dir, prefix);
    let mut p = PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
    if !p.contains(&entry) {
        p.push(entry);
    }
}

/// The entries that [`remove_on_interrupt`] registered and that exist now.
pub fn registered_entries() -> Vec<PathBuf> {
    let patterns = PATTERNS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut found = Vec::new();
    for (dir, prefix) in patterns {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(e.path());
            }
        }
    }
    found
}

/// Ends the process with `code` and has its registered temporaries removed once it is gone
/// (by a detached `sh` in its own session, so a closing terminal does not stop it). Returns
/// only if that helper could not be started; the entries are then removed here first.
pub fn exit_after_cleanup(code: i32) -> ! {
    // Taken out of the list first: a step must not wait for a thread that is itself waiting
    // for this list.
    let steps = std::mem::take(&mut *ON_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, step) in &steps {
        step();
    }
    let paths = registered_entries();
    if !paths.is_empty() {
        let pid = std::process::id().to_string();
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(r#"while kill -0 "$0" 2>/dev/null; do sleep 0.05; done; rm -rf -- "$@""#)
            .arg(&pid)
            .args(&paths)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: setsid only detaches the child from this process's session.
        unsafe {
            sh.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        if sh.spawn().is_err() {
            for p in &paths {
                let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
            }
        }
    }
    // _exit: no atexit handlers, so no race with worker threads still running.
    // SAFETY: ends the process; nothing after it runs.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_with_a_registered_prefix_are_found() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".x-restore-42-a/sub")).unwrap();
        std::fs::write(d.path().join(".x-restore-42-b"), "tmp").unwrap();
        std::fs::write(d.path().join(".x-restore-43-c"), "another process").unwrap();
        std::fs::write(d.path().join("backup.tar.gz"), "keep").unwrap();
        remove_on_interrupt(&d.path().join(".x-restore-42-"));
        let mut found = registered_entries();
        found.sort();
        assert_eq!(
            found,
            [
                d.path().join(".x-restore-42-a"),
                d.path().join(".x-restore-42-b")
            ]
        );
    }
}
