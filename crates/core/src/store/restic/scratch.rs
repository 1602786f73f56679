//! Scratch folders of backups and restores, named with the process id, and the removal of
//! what runs killed with SIGKILL left behind (each leftover can hold a whole peeled tree).

use super::*;

impl Repo {
    pub(crate) fn scratch(&self, what: &str) -> Result<tempfile::TempDir, RepoError> {
        if crate::interrupt::stopping() {
            return Err(RepoError::Invalid(
                "stopped by a signal: no new scratch folder".to_string(),
            ));
        }
        let base = self
            .cfg
            .scratch_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        // Scratch folders are named `dvault-WHAT-PID-...`.
        remove_stale(&base, |name| {
            name.strip_prefix("dvault-")?
                .split_once('-')?
                .1
                .split_once('-')
                .map(|(pid, _)| pid)
        });
        let prefix = crate::interrupt::pid_prefix(&base, &format!("dvault-{what}-"));
        tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&base)
            .map_err(|source| RepoError::Io { path: base, source })
    }
}

/// Removes what killed runs left in `base`: a run killed with SIGKILL cannot clean up, and each
/// leftover holds a whole peeled tree. `pid_of` gives the process id in an entry's name (None:
/// not ours); only entries whose process is gone are touched.
pub(super) fn remove_stale(base: &Path, pid_of: impl Fn(&str) -> Option<&str>) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if let Some(pid) = pid_of(&name.to_string_lossy()) {
            remove_if_dead(&e, pid);
        }
    }
}

/// Removes what killed runs left in `base` under names `PREFIX<pid>-...`.
pub(crate) fn remove_stale_of(base: &Path, prefix: &str) {
    remove_stale(base, |name| {
        Some(name.strip_prefix(prefix)?.split_once('-')?.0)
    });
}

/// Removes `e` (a folder or file) when `pid` names a process that no longer exists.
pub(super) fn remove_if_dead(e: &fs::DirEntry, pid: &str) {
    let Ok(pid) = pid.parse::<libc::pid_t>() else {
        return;
    };
    if pid <= 0 || process_alive(pid) {
        return;
    }
    tracing::info!("removing {} left by a killed run", e.path().display());
    let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
        fs::remove_dir_all(e.path())
    } else {
        fs::remove_file(e.path())
    };
}

/// Whether process `pid` exists (`kill(pid, 0)`; EPERM: it exists but is not ours).
pub(super) fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
