//! The layouts of Discourse backup files (docs/operations.md, "Backup names and formats").
//!
//! One type answers "which format is this" everywhere: from a file's name for the sources and
//! the snapshot record, and from its first bytes in the drill. Its serialized names are the ones
//! snapshots already carry (`A`, `SQL`, `B`, `unknown`); the drill report's older spellings
//! (`tar_gz`, `sql_gz`, `tar`, `sql`) are still read.

use serde::{Deserialize, Serialize};

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// `.tar.gz` (or `.tgz`): a gzip'd GNU tar holding `dump.sql.gz` and `uploads/<db>/`
    /// (Discourse until 2025, `creator.rb` before the archive writer); before v1.6 `meta.json`
    /// and a plain `dump.sql` (`lib/export/exporter.rb`).
    #[serde(rename = "A", alias = "tar_gz")]
    TarGz,
    /// `.sql.gz`: pg_dump's compressed plain dump alone (older database-only backups).
    #[serde(rename = "SQL", alias = "sql_gz")]
    SqlGz,
    /// `.tar`: an uncompressed tar with a directory-format dump `db/` and, unless database-only,
    /// `uploads/<db>/` (current Discourse: `creator.rb` with `archive_writer.rb`).
    #[serde(rename = "B", alias = "tar")]
    Tar,
    /// An uncompressed plain SQL dump: not written by Discourse, but the drill loads one.
    #[serde(rename = "plain_sql", alias = "sql")]
    PlainSql,
    /// Any other file (stored and restored exactly, without Discourse facts).
    #[serde(rename = "unknown")]
    Unknown,
}

impl Format {
    /// The format a file name implies by its extension.
    pub fn from_file_name(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            Self::TarGz
        } else if lower.ends_with(".sql.gz") {
            Self::SqlGz
        } else if lower.ends_with(".tar") {
            Self::Tar
        } else if lower.ends_with(".sql") {
            Self::PlainSql
        } else {
            Self::Unknown
        }
    }

    /// Short name used in snapshot tags and tables (`format:A`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TarGz => "A",
            Self::SqlGz => "SQL",
            Self::Tar => "B",
            Self::PlainSql => "plain SQL",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TarGz => "tar.gz (dump.sql.gz + uploads)",
            Self::SqlGz => "sql.gz (database only)",
            Self::Tar => "tar (directory dump db/ + uploads)",
            Self::PlainSql => "plain SQL",
            Self::Unknown => "unknown",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_give_the_format() {
        assert_eq!(
            Format::from_file_name("a-v20240101010101.tar.gz"),
            Format::TarGz
        );
        assert_eq!(Format::from_file_name("A.TGZ"), Format::TarGz);
        assert_eq!(Format::from_file_name("a.sql.gz"), Format::SqlGz);
        assert_eq!(Format::from_file_name("a.tar"), Format::Tar);
        assert_eq!(Format::from_file_name("notes.txt"), Format::Unknown);
    }

    #[test]
    fn snapshot_and_old_drill_spellings_both_read() {
        for (json, f) in [
            ("\"A\"", Format::TarGz),
            ("\"tar_gz\"", Format::TarGz),
            ("\"SQL\"", Format::SqlGz),
            ("\"sql_gz\"", Format::SqlGz),
            ("\"B\"", Format::Tar),
            ("\"tar\"", Format::Tar),
            ("\"sql\"", Format::PlainSql),
            ("\"unknown\"", Format::Unknown),
        ] {
            assert_eq!(serde_json::from_str::<Format>(json).unwrap(), f, "{json}");
        }
        assert_eq!(serde_json::to_string(&Format::Tar).unwrap(), "\"B\"");
    }
}
