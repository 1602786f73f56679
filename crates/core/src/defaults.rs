//! dvault's one set of defaults, used by `dvault run` and every single command alike (the CLI
//! takes them from here, never its own): the config file, the state folder (locks, ledgers, run
//! state), the metadata cache, and the standard install's backups folder. docs/commands.md
//! ("Defaults") lists them and the rule that settles each.

use std::path::{Path, PathBuf};

/// The folder of the config file and of the secrets `dvault setup` writes beside it.
pub const CONFIG_DIR: &str = "/etc/dvault";
/// The config file when neither `--config` nor `$DVAULT_CONFIG` names one.
pub const CONFIG_FILE: &str = "/etc/dvault/dvault.toml";
/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "DVAULT_CONFIG";
/// The standard install's local backups folder (inside the host's view of the container volume).
pub const DEFAULT_BACKUP_FOLDER: &str = "/var/discourse/shared/standalone/backups/default";
/// Where `dvault run` keeps its small state (last check, last drill, locks) unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/dvault";

/// The one default state folder of the single commands and `dvault run`, so that an admin's
/// `dvault forget --prune` by hand and the timer's run share this host's locks and ledgers:
/// `$STATE_DIRECTORY` (systemd's `StateDirectory=`, the first of several), else
/// `/var/lib/dvault` when this user can write there (root, or the service user that owns it)
/// or root can create it, else `$XDG_STATE_HOME/dvault` (`~/.local/state/dvault`) for a user
/// without a system folder, else `/var/lib/dvault`.
pub fn default_state_dir() -> PathBuf {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(v) = nonempty("STATE_DIRECTORY") {
        let s = v.to_string_lossy();
        return PathBuf::from(s.split(':').next().unwrap_or(DEFAULT_STATE_DIR));
    }
    let system = Path::new(DEFAULT_STATE_DIR);
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root || writable(system) {
        return system.to_path_buf();
    }
    nonempty("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .map_or_else(|| system.to_path_buf(), |d| d.join("dvault"))
}

/// The one default metadata cache of the single commands and `dvault run` (under dvault's
/// own name, never rustic's `~/.cache/rustic`): `$CACHE_DIRECTORY` (systemd's
/// `CacheDirectory=`, the first of several), else `<state_dir>/cache`.
pub fn default_cache_dir(state_dir: &Path) -> PathBuf {
    match std::env::var_os("CACHE_DIRECTORY") {
        Some(v) if !v.is_empty() => {
            let s = v.to_string_lossy();
            PathBuf::from(s.split(':').next().unwrap_or_default())
        }
        _ => state_dir.join("cache"),
    }
}

/// Whether this process may create files in the folder `dir`.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
    dir.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}
