//! What to remove when dvault is stopped by a signal (Ctrl-C, `systemctl stop`, a closed
//! terminal): the scratch trees and temporary files of this process. They hold the plain dump
//! (private messages, e-mail addresses) and are as large as the backup. Destructors do not run
//! when a signal ends the process, so the places that create such files register them here and
//! the command line's signal thread calls [`remove_registered`] before it exits. A process
//! killed with SIGKILL leaves them to the next run's stale-scratch cleanup, which recognises
//! them by the dead process id in their names.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set once a signal is stopping the process.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether a signal is stopping the process: workers that fail because their scratch files
/// were just removed should then stay quiet instead of reporting an error.
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Folders to search and the name prefix of this process's temporary entries in each.
static PATTERNS: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// Registers every entry of `dir` whose name starts with `prefix` (which should contain this
/// process's id) for removal if a signal stops the process.
pub fn remove_on_interrupt(dir: &Path, prefix: impl Into<String>) {
    let entry = (dir.to_path_buf(), prefix.into());
    let mut p = PATTERNS.lock().unwrap_or_else(|e| e.into_inner());
    if !p.contains(&entry) {
        p.push(entry);
    }
}

/// Removes what [`remove_on_interrupt`] registered; returns the paths removed. Other threads
/// keep running until the process exits and may create entries again (a restore's writers
/// recreate their folders), so passes repeat until two in a row, 20 ms apart, find nothing
/// (at most one second).
pub fn remove_registered() -> Vec<PathBuf> {
    STOPPING.store(true, Ordering::SeqCst);
    let mut removed = Vec::new();
    let mut quiet = 0;
    for _ in 0..50 {
        let found = remove_pass();
        quiet = if found.is_empty() { quiet + 1 } else { 0 };
        for p in found {
            if !removed.contains(&p) {
                removed.push(p);
            }
        }
        if quiet == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    removed
}

/// One pass over the registered folders.
fn remove_pass() -> Vec<PathBuf> {
    let patterns = PATTERNS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut removed = Vec::new();
    for (dir, prefix) in patterns {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            let path = e.path();
            let gone = if e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if gone.is_ok() {
                removed.push(path);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entries_with_a_registered_prefix_are_removed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(".x-restore-42-a/sub")).unwrap();
        std::fs::write(d.path().join(".x-restore-42-b"), "tmp").unwrap();
        std::fs::write(d.path().join(".x-restore-43-c"), "another process").unwrap();
        std::fs::write(d.path().join("backup.tar.gz"), "keep").unwrap();
        remove_on_interrupt(d.path(), ".x-restore-42-");
        let mut removed = remove_registered();
        removed.sort();
        assert_eq!(
            removed,
            [
                d.path().join(".x-restore-42-a"),
                d.path().join(".x-restore-42-b")
            ]
        );
        let mut left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".x-restore-43-c", "backup.tar.gz"]);
    }
}
