//! What a snapshot says about the backup file it holds: the original file name, size and
//! SHA-256, the Discourse facts read from the file name, the format, the peel report, the host
//! and the source.
//!
//! The name and the format are read by [`crate::discourse`], the one place that knows
//! Discourse's backup names; [`DiscourseName`] is how those facts are recorded in a snapshot
//! (its field names are those of snapshots already written, so they all stay readable).

use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::discourse::BackupName;
pub use crate::discourse::Format;

/// Facts a Discourse backup file name carries, as recorded in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscourseName {
    /// The parameterized site title before the time (`""` for an empty title); `None` for an
    /// admin-chosen name and for files that are not Discourse backups.
    pub site: Option<String>,
    /// `YYYY-MM-DD-HHMMSS` when Discourse made the backup.
    pub taken: Option<String>,
    /// `taken` is the file's modification time (an admin-chosen name carries no time).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub taken_from_mtime: bool,
    /// The name an admin gave with `discourse backup NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_name: Option<String>,
    /// Discourse version as the name writes it (`2026-9-0-latest`), in current names only.
    pub version: Option<String>,
    /// The 14-digit migration timestamp Discourse's restore checks.
    pub migration: Option<String>,
}

impl From<&BackupName> for DiscourseName {
    fn from(n: &BackupName) -> Self {
        DiscourseName {
            site: n.site().map(str::to_string),
            taken: n.time.clone(),
            taken_from_mtime: n.time_from_mtime,
            chosen_name: n.chosen.then(|| n.title.clone()),
            version: n.version.clone(),
            migration: n.migration.clone(),
        }
    }
}

impl DiscourseName {
    /// The facts of `file_name`; all `None` when it is not a Discourse backup's name.
    pub fn of_file_name(file_name: &str) -> Self {
        BackupName::parse(file_name)
            .map(|n| DiscourseName::from(&n))
            .unwrap_or_default()
    }
}

/// Everything dvault records about one backup file in its snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupMeta {
    /// The original file name (no directories).
    pub file_name: String,
    /// Size of the original file in bytes.
    pub size: u64,
    /// SHA-256 of the original file, lower-case hex; a restore must reproduce it.
    pub sha256: String,
    /// Layout of the file.
    pub format: Format,
    /// Site, time, version and migration from the file name.
    pub discourse: DiscourseName,
    /// Host that made the snapshot.
    pub host: String,
    /// Where the file came from (a path, a bucket key, ...).
    pub source: String,
    /// The site name of the config file (`[sites.NAME]`) the backup was stored for; retention
    /// groups by it. `None`: stored without a config site (grouped by the name's title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Upload files in the backup (under `uploads/`); `None`: stored before dvault counted them.
    /// Retention prefers a backup with uploads over a database-only one of the same period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploads: Option<u64>,
    /// peel's report on how each layer was taken apart (methods, stored layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peel: Option<serde_json::Value>,
}

impl BackupMeta {
    /// Reads `path` once to measure its size and SHA-256 and fills in the facts its name gives.
    /// `source` describes where it came from; the host is this machine's name.
    pub fn for_file(path: &Path, source: &str) -> io::Result<Self> {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: not a file name", path.display()),
                )
            })?;
        let (size, sha256) = sha256_file(path)?;
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let discourse = BackupName::parse(&file_name)
            .map(|n| DiscourseName::from(&n.with_mtime(modified)))
            .unwrap_or_default();
        Ok(Self {
            format: Format::from_file_name(&file_name),
            discourse,
            file_name,
            size,
            sha256,
            host: hostname(),
            source: source.to_string(),
            site: None,
            uploads: None,
            peel: None,
        })
    }
}

/// Size and SHA-256 (hex) of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    // Only a regular file: `/dev/zero` or a FIFO would be hashed forever.
    let mut f = peel::input::open_file(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    sha256_reader(&mut f).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Size and SHA-256 (hex) of everything `r` yields.
pub fn sha256_reader(r: &mut dyn Read) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

/// This machine's host name (from the kernel; `unknown` when it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_a_name_gives_site_and_migration() {
        let n = DiscourseName::of_file_name("forum-2024-03-01-033001-v20240229123456.tar.gz");
        assert_eq!(n.site.as_deref(), Some("forum"));
        assert_eq!(n.taken.as_deref(), Some("2024-03-01-033001"));
        assert_eq!(n.migration.as_deref(), Some("20240229123456"));
        assert_eq!(n.version, None);
    }

    #[test]
    fn current_name_gives_dashed_version_and_migration() {
        let n = DiscourseName::of_file_name(
            "my-site-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar",
        );
        assert_eq!(n.site.as_deref(), Some("my-site"));
        assert_eq!(n.version.as_deref(), Some("2026-9-0-latest"));
        assert_eq!(n.migration.as_deref(), Some("20260923080644"));
        assert_eq!(Format::from_file_name("x.tar"), Format::Tar);
    }

    #[test]
    fn other_names_have_no_discourse_facts_and_old_records_read() {
        assert_eq!(
            DiscourseName::of_file_name("notes.txt"),
            DiscourseName::default()
        );
        assert_eq!(Format::from_file_name("a.sql.gz"), Format::SqlGz);
        let old: DiscourseName = serde_json::from_str(
            r#"{"site":"f","taken":"2024-03-01-033001","version":null,"migration":"20240229123456"}"#,
        )
        .unwrap();
        assert!(!old.taken_from_mtime && old.chosen_name.is_none());
        let json = serde_json::to_string(&old).unwrap();
        assert!(!json.contains("taken_from_mtime"), "{json}");
    }
}
