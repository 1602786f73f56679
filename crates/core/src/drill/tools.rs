//! Choosing the `psql` and `pg_restore` a drill loads with, the way Discourse chooses them.
//!
//! Discourse's restore looks for each client program in a fixed list of installation folders
//! and then on `PATH`, asks each candidate its version (`--version`, `(PostgreSQL) N.`), keeps
//! those no newer than the server's major version and takes the newest of them; with none it
//! stops with "No compatible pg_restore found for PostgreSQL N" (`BackupRestore::PostgresTools
//! .find`, lib/backup_restore/postgres_tools.rb). A program newer than the server is refused
//! because what it writes may use features the server lacks; one older than the dump refuses
//! the dump's archive version itself, and then the drill fails as Discourse's restore would.
//! Whether the chosen psql has `\restrict` is read from its version here too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The installation folders Discourse searches (`PostgresTools::BIN_DIRECTORIES`), as
/// (parent folder, prefix of the version folder, path below it); `PATH` comes after them.
const BIN_DIRECTORIES: [(&str, &str, &str); 7] = [
    ("/usr/lib/postgresql", "", "bin"),
    ("/usr", "pgsql-", "bin"),
    ("/Applications/Postgres.app/Contents/Versions", "", "bin"),
    ("/opt/local/lib", "postgresql", "bin"),
    ("/opt/homebrew/opt", "postgresql@", "bin"),
    ("/usr/local/opt", "postgresql@", "bin"),
    ("/opt", "postgresql", "bin"),
];

/// A client program found for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tool {
    /// Its path.
    pub path: PathBuf,
    /// Its major version.
    pub major: u32,
}

/// Finds `command` (`psql`, `pg_restore`) no newer than a server of major version
/// `server_major`: the newest such candidate, the first found on a tie. `preferred` (the
/// throwaway cluster's own installation) is looked at first. The error names the version that
/// was wanted and every candidate that was too new.
pub(crate) fn find(
    command: &str,
    server_major: u32,
    preferred: Option<&Path>,
) -> Result<Tool, String> {
    let mut best: Option<Tool> = None;
    let mut too_new = Vec::new();
    for path in candidates(command, preferred) {
        let Some(major) = major_version(&path) else {
            continue;
        };
        if major > server_major {
            too_new.push(format!("{} is {major}", path.display()));
            continue;
        }
        if best.as_ref().is_none_or(|b| major > b.major) {
            best = Some(Tool { path, major });
        }
    }
    best.ok_or_else(|| {
        let found = if too_new.is_empty() {
            "none found".to_string()
        } else {
            format!("found only newer ones: {}", too_new.join(", "))
        };
        format!(
            "no compatible {command} for PostgreSQL {server_major} ({found}): a {command} no \
             newer than the server is needed, as Discourse's restore requires; install the \
             PostgreSQL client programs version {server_major} or older"
        )
    })
}

/// Every executable file named `command` in the folders searched, each once, in search order.
fn candidates(command: &str, preferred: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = preferred.into_iter().map(Path::to_path_buf).collect();
    for (parent, prefix, below) in BIN_DIRECTORIES {
        let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path().join(below))
            .collect();
        found.sort();
        dirs.extend(found);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let path = dir.join(command);
        if is_executable(&path) && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The major version a program reports (`pg_restore (PostgreSQL) 15.18 (Debian ...)`).
pub(crate) fn major_version(program: &Path) -> Option<u32> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

/// `... (PostgreSQL) 15.18 ...` -> 15.
fn parse_major(text: &str) -> Option<u32> {
    let rest = &text[text.find("(PostgreSQL) ")? + "(PostgreSQL) ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if !rest[digits.len()..].starts_with('.') {
        return None;
    }
    digits.parse().ok()
}

/// The server's major version from `server_version_num` (`150018` -> 15).
pub(crate) fn major_of_version_num(num: &str) -> Option<u32> {
    let n: u32 = num.trim().parse().ok()?;
    Some(n / 10000)
}

/// Whether the psql `psql` has `\restrict`: added in the minor releases of August 2025
/// (13.22, 14.19, 15.14, 16.10, 17.6; CVE-2025-8714) and in every 18.
pub(crate) fn psql_has_restrict(psql: &Path) -> bool {
    let out = Command::new(psql)
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => return false,
    };
    restrict_supported(&text)
}

/// Reads `psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`.
fn restrict_supported(version: &str) -> bool {
    let Some(number) = version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
    else {
        return false;
    };
    let mut parts = number.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    match major {
        18.. => true,
        17 => minor >= 6,
        16 => minor >= 10,
        15 => minor >= 14,
        14 => minor >= 19,
        13 => minor >= 22,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines_give_their_major() {
        assert_eq!(
            parse_major("pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("psql (PostgreSQL) 18.6\n"), Some(18));
        assert_eq!(parse_major("psql (PostgreSQL) 18devel"), None);
        assert_eq!(parse_major("garbage"), None);
        assert_eq!(major_of_version_num("150018\n"), Some(15));
        assert_eq!(major_of_version_num("180006"), Some(18));
    }

    #[test]
    fn no_program_fits_a_server_older_than_all_of_them() {
        let err = find("pg_restore", 9, None).unwrap_err();
        assert!(err.contains("PostgreSQL 9"), "{err}");
        assert!(err.contains("version 9 or older"), "{err}");
    }

    #[test]
    fn restrict_is_known_from_the_minor_release_on() {
        assert!(restrict_supported(
            "psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        ));
        assert!(restrict_supported("psql (PostgreSQL) 18.1"));
        assert!(restrict_supported("psql (PostgreSQL) 17.6"));
        assert!(!restrict_supported("psql (PostgreSQL) 17.5"));
        assert!(!restrict_supported("psql (PostgreSQL) 15.13"));
        assert!(!restrict_supported("psql (PostgreSQL) 12.22"));
        assert!(!restrict_supported("garbage"));
    }
}
