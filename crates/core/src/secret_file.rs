//! Files that hold secrets (the repository password, a Discourse API key, S3 or REST
//! credentials, a Tarsnap key, and the config file that names them): a warning on stderr when
//! the file's group or other users may read it, or an error in strict mode (`dvault --strict`,
//! or `strict_permissions = true` in the config file).
//!
//! Only the file's own mode is looked at, as OpenSSH does for a private key: a folder that
//! happens to shield a 0644 file today may not tomorrow, and `chmod 600` costs nothing.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Whether a readable secret file is an error for the rest of the process.
static STRICT: AtomicBool = AtomicBool::new(false);

/// Files already warned about: a run reads the same password file several times.
static WARNED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Makes a secret file that group or others can read an error (on) or a warning (off) for the
/// rest of the process.
pub fn set_strict(on: bool) {
    STRICT.store(on, Ordering::Relaxed);
}

/// Whether strict mode is on (see [`set_strict`]).
pub fn strict() -> bool {
    STRICT.load(Ordering::Relaxed)
}

/// Checks the mode of the secret file `path`; `what` says what it holds ("password file").
/// Readable by group or others: a warning naming the file and its mode (once per file and
/// process), or in strict mode an [`io::ErrorKind::PermissionDenied`] error saying why (the
/// caller names the file). A file that cannot be examined passes: reading it reports that.
pub fn check(path: &Path, what: &str) -> io::Result<()> {
    check_as(path, what, strict())
}

fn check_as(path: &Path, what: &str, strict: bool) -> io::Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o7777;
    let who = match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (false, false) => return Ok(()),
        (true, true) => "its group and all other users",
        (true, false) => "its group",
        (false, true) => "all other users",
    };
    let why = format!(
        "readable by {who} (mode {mode:04o}); make it private with `chmod 600 {}`",
        path.display()
    );
    if strict {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{why} (refused: strict permissions are on)"),
        ));
    }
    let first = WARNED
        .lock()
        .map(|mut w| w.insert(path.to_path_buf()))
        .unwrap_or(true);
    if first {
        tracing::warn!("{what} {} is {why}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn private_files_pass_and_readable_ones_are_refused_when_strict() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        fs::write(&f, "secret\n").unwrap();
        for (mode, ok) in [(0o600, true), (0o400, true), (0o640, false), (0o604, false)] {
            fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
            // check_as: the process-wide switch stays off for the other tests.
            assert!(
                check_as(&f, "password file", false).is_ok(),
                "a warning only"
            );
            let r = check_as(&f, "password file", true);
            assert_eq!(r.is_ok(), ok, "mode {mode:o}");
            if let Err(e) = r {
                let e = e.to_string();
                assert!(e.contains(&format!("(mode {mode:04o})")) && e.contains("chmod 600"));
            }
        }
        assert!(check_as(&dir.path().join("missing"), "password file", true).is_ok());
    }
}
