//! What a snapshot says about the backup file it holds: the original file name, size and
//! SHA-256, the Discourse version and migration read from the file name, the format, the peel
//! report, the host and the source.
//!
//! Discourse names its backups `<site>-YYYY-MM-DD-HHMMSS-v<migration>.tar.gz` (format A),
//! `...-v<migration>.sql.gz` (SQL only) and `...-v<version>-<migration>.tar` (format B); the
//! migration is the 14-digit timestamp Discourse's restore reads with `-v(\d{14})`.

use std::io::{self, Read};
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The layout of a Discourse backup file, told by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// `.tar.gz`: gzip of a GNU tar holding `dump.sql.gz` and `uploads/`.
    A,
    /// `.sql.gz`: the pg_dump output alone.
    #[serde(rename = "SQL")]
    Sql,
    /// `.tar`: an uncompressed ustar with a directory-format dump in `db/`.
    B,
    /// Any other file (stored and restored exactly, without Discourse facts).
    #[serde(rename = "unknown")]
    Unknown,
}

impl Format {
    /// The format a file name implies.
    pub fn from_file_name(name: &str) -> Self {
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Self::A
        } else if name.ends_with(".sql.gz") {
            Self::Sql
        } else if name.ends_with(".tar") {
            Self::B
        } else {
            Self::Unknown
        }
    }

    /// Short name used in tags and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Sql => "SQL",
            Self::B => "B",
            Self::Unknown => "unknown",
        }
    }
}

/// Facts a Discourse backup file name carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscourseName {
    /// The site (database) name before the timestamp.
    pub site: Option<String>,
    /// `YYYY-MM-DD-HHMMSS` when Discourse made the backup.
    pub taken: Option<String>,
    /// Discourse version, only in format-B names (`-v<version>-<migration>`).
    pub version: Option<String>,
    /// The 14-digit migration timestamp Discourse's restore checks.
    pub migration: Option<String>,
}

/// Parses `<site>-YYYY-MM-DD-HHMMSS-v<...>.<ext>`; fields that do not match stay `None`.
pub fn parse_file_name(name: &str) -> DiscourseName {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"^(?P<site>.+?)-(?P<taken>\d{4}-\d{2}-\d{2}-\d{6})-v(?P<ver>.+?)\.(?:tar\.gz|tgz|sql\.gz|tar)$",
        )
        .expect("static regex")
    });
    let Some(c) = re.captures(name) else {
        return DiscourseName::default();
    };
    let ver = &c["ver"];
    let (version, migration) = if is_migration(ver) {
        (None, Some(ver.to_string()))
    } else {
        match ver.rsplit_once('-') {
            Some((v, m)) if is_migration(m) => (Some(v.to_string()), Some(m.to_string())),
            _ => (Some(ver.to_string()), None),
        }
    };
    DiscourseName {
        site: Some(c["site"].to_string()),
        taken: Some(c["taken"].to_string()),
        version,
        migration,
    }
}

fn is_migration(s: &str) -> bool {
    s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit())
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
        Ok(Self {
            format: Format::from_file_name(&file_name),
            discourse: parse_file_name(&file_name),
            file_name,
            size,
            sha256,
            host: hostname(),
            source: source.to_string(),
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
        let n = parse_file_name("forum-2024-03-01-033001-v20240229123456.tar.gz");
        assert_eq!(n.site.as_deref(), Some("forum"));
        assert_eq!(n.taken.as_deref(), Some("2024-03-01-033001"));
        assert_eq!(n.migration.as_deref(), Some("20240229123456"));
        assert_eq!(n.version, None);
    }

    #[test]
    fn format_b_name_gives_version_and_migration() {
        let n = parse_file_name("my-site-2025-06-01-120000-v3.5.0.beta5-dev-20250530101010.tar");
        assert_eq!(n.site.as_deref(), Some("my-site"));
        assert_eq!(n.version.as_deref(), Some("3.5.0.beta5-dev"));
        assert_eq!(n.migration.as_deref(), Some("20250530101010"));
        assert_eq!(Format::from_file_name("x.tar"), Format::B);
    }

    #[test]
    fn other_names_have_no_discourse_facts() {
        assert_eq!(parse_file_name("notes.txt"), DiscourseName::default());
        assert_eq!(Format::from_file_name("a.sql.gz"), Format::Sql);
    }
}
