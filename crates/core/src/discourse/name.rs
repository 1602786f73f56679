//! Discourse's backup file names, every form written since v1.5, and what a file in the backups
//! folder or bucket is: a finished backup, one still being written, one that looks like a backup
//! but cannot be used, or something else.
//!
//! How Discourse builds the name (`<stem>` then the extension):
//! - before v1.6 (`lib/export/exporter.rb`): `"#{SiteSetting.title.parameterize}-#{@timestamp}"`
//!   and `.tar.gz`; the migration is in the archive's `meta.json`, not in the name;
//! - v1.6 to 2025 (`lib/backup_restore/backuper.rb`, later `creator.rb`):
//!   `"#{title}-#{@timestamp}-#{VERSION_PREFIX}#{BackupRestore.current_version}"` with
//!   `VERSION_PREFIX = "v"` (`lib/backup_restore.rb`) and the 14-digit migration, and `.tar.gz`, or
//!   `.sql.gz` without uploads; the format-A archive is first `<stem>.tar` and `gzip` turns it
//!   into `<stem>.tar.gz`;
//! - current (`creator.rb` with `archive_writer.rb`):
//!   `"#{filename}-v#{Discourse::VERSION::STRING.tr(".", "-")}-#{current_database_version}"`
//!   and `.tar` (also database-only), written as `<name>.tar.partial` and renamed at the end, e.g.
//!   `my-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar`.
//!
//! `@timestamp` is `Time.now.strftime("%Y-%m-%d-%H%M%S")`. The title is
//! `SiteSetting.title.parameterize` (older Discourse: possibly empty, e.g. an all-CJK title, so
//! the name starts with `-`); current Discourse cuts it to 64 characters and falls back to
//! `discourse` (`get_parameterized_title`). `discourse backup NAME` (`script/discourse`) replaces
//! `"#{title}-#{@timestamp}"` with the admin's NAME (its extension stripped), so such a name has
//! no time: it is then taken from the file's modification time. Discourse itself reads only
//! `-v(\d{14})` out of a name (`meta_data_handler.rb`) and orders backups by modification time
//! (`backup_store.rb`).

use std::sync::OnceLock;
use std::time::SystemTime;

use regex::Regex;
use serde::Serialize;

use super::Format;

/// The facts a Discourse backup file's name carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupName {
    /// The whole file name.
    pub file_name: String,
    /// The parameterized site title before the time (may be empty in older names); for an
    /// admin-chosen name ([`BackupName::chosen`]) the name the admin gave.
    pub title: String,
    /// Named by an admin (`discourse backup NAME`): no title and no time in the name.
    pub chosen: bool,
    /// `YYYY-MM-DD-HHMMSS`, when the backup was started (sorts chronologically); from the file's
    /// modification time when [`BackupName::time_from_mtime`]; `None` until then for chosen
    /// names.
    pub time: Option<String>,
    /// The time came from the file's modification time, not from its name.
    pub time_from_mtime: bool,
    /// Discourse's version as the name has it (`2026-9-0-latest`: dots written as dashes);
    /// `None` in names before the archive writer.
    pub version: Option<String>,
    /// The 14-digit migration Discourse's restore checks; `None` before v1.6 (it is in the
    /// archive's `meta.json` then).
    pub migration: Option<String>,
    /// The layout the extension says.
    pub format: Format,
}

/// What one file in a backups folder or bucket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A finished Discourse backup.
    Backup(BackupName),
    /// A backup Discourse is still writing (`.tar.partial`, format A's `.tar` before gzip).
    InProgress(String),
    /// Named like a backup (an extension Discourse lists), but not a name dvault can use: why.
    Unusable(String),
    /// Anything else (hidden files, notes, Discourse's `tmp/` chunks): not a backup.
    Other,
}

/// Sorts out one file name of a backups folder or bucket.
pub fn classify(file_name: &str) -> FileKind {
    if file_name.starts_with('.') {
        return FileKind::Other;
    }
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".tar.partial") {
        return FileKind::InProgress("still being written (.partial)".into());
    }
    let ext_len = [".tar.gz", ".sql.gz", ".tgz", ".tar", ".gz"]
        .iter()
        .find(|e| lower.ends_with(*e))
        .map(|e| e.len());
    let Some(ext_len) = ext_len else {
        return FileKind::Other;
    };
    let stem = &file_name[..file_name.len() - ext_len];
    let format = Format::from_file_name(file_name);
    if format == Format::Unknown {
        return FileKind::Unusable(
            "a .gz that is neither .tar.gz nor .sql.gz: Discourse lists it, but never writes such \
             a name"
                .into(),
        );
    }
    match versioned(stem) {
        Some((prefix, version, migration)) => {
            if format == Format::Tar && version.is_none() {
                // Format A's archive before `gzip` replaces it with the .tar.gz (`creator.rb`
                // `create_archive`); current Discourse always puts its version in a .tar name.
                return FileKind::InProgress(
                    "format A archive still being built (gzip has not run yet)".into(),
                );
            }
            let (title, time, chosen) = match titled(prefix) {
                Some((title, time)) => (title.to_string(), Some(time.to_string()), false),
                None => (prefix.to_string(), None, true),
            };
            if chosen && prefix.is_empty() {
                return FileKind::Unusable("nothing before -v<migration>".into());
            }
            FileKind::Backup(BackupName {
                file_name: file_name.to_string(),
                title,
                chosen,
                time,
                time_from_mtime: false,
                version: version.map(str::to_string),
                migration: Some(migration.to_string()),
                format,
            })
        }
        // Before v1.6: `<title>-<time>.tar.gz`, the migration in meta.json.
        None => match titled(stem) {
            Some((title, time)) if format == Format::TarGz => FileKind::Backup(BackupName {
                file_name: file_name.to_string(),
                title: title.to_string(),
                chosen: false,
                time: Some(time.to_string()),
                time_from_mtime: false,
                version: None,
                migration: None,
                format,
            }),
            _ if stem.contains("-v") => FileKind::Unusable(
                "its -v part is neither -v<14-digit migration> nor \
                 -v<version>-<14-digit migration>"
                    .into(),
            ),
            _ => FileKind::Unusable(
                "no -v<migration> in the name (Discourse's restore refuses it: \
                 meta_data_handler.rb) and not a pre-v1.6 <title>-<time>.tar.gz"
                    .into(),
            ),
        },
    }
}

/// Splits `<prefix>-v<migration>` or `<prefix>-v<version>-<migration>`; the last `-v` that gives
/// a valid tail wins, so a title containing `-v` stays in the prefix.
fn versioned(stem: &str) -> Option<(&str, Option<&str>, &str)> {
    static TAIL: OnceLock<Regex> = OnceLock::new();
    let tail = TAIL.get_or_init(|| {
        Regex::new(r"^(?:(?P<ver>[0-9][0-9A-Za-z.\-]*?)-)?(?P<mig>[0-9]{14})$")
            .expect("static regex is valid")
    });
    stem.rmatch_indices("-v").find_map(|(i, _)| {
        let c = tail.captures(&stem[i + 2..])?;
        Some((
            &stem[..i],
            c.name("ver").map(|m| m.as_str()),
            c.name("mig")?.as_str(),
        ))
    })
}

/// Splits `<title>-YYYY-MM-DD-HHMMSS` (title possibly empty); `None` when the prefix does not end
/// in a time (an admin-chosen name).
fn titled(prefix: &str) -> Option<(&str, &str)> {
    static TIME: OnceLock<Regex> = OnceLock::new();
    let re = TIME.get_or_init(|| {
        Regex::new(r"^(?:(?P<title>.*)-)?(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{6})$")
            .expect("static regex is valid")
    });
    let c = re.captures(prefix)?;
    let time = c.name("time")?.as_str();
    valid_time(time).then(|| (c.name("title").map_or("", |m| m.as_str()), time))
}

fn valid_time(t: &str) -> bool {
    jiff::civil::DateTime::strptime("%Y-%m-%d-%H%M%S", t).is_ok()
}

impl BackupName {
    /// Parses a finished backup's name; `None` for anything [`classify`] does not call a
    /// backup.
    pub fn parse(file_name: &str) -> Option<Self> {
        match classify(file_name) {
            FileKind::Backup(n) => Some(n),
            _ => None,
        }
    }

    /// Gives a name without a time (an admin-chosen one) the file's modification time, in UTC
    /// as Discourse's servers run. Names with a time are returned unchanged.
    pub fn with_mtime(mut self, modified: Option<SystemTime>) -> Self {
        if self.time.is_none() {
            if let Some(t) = modified.and_then(|m| jiff::Timestamp::try_from(m).ok()) {
                self.time = Some(t.strftime("%Y-%m-%d-%H%M%S").to_string());
                self.time_from_mtime = true;
            }
        }
        self
    }

    /// The site title the backup was made under, `None` for an admin-chosen name (its name
    /// says nothing about the site). Retention groups snapshots by it.
    pub fn site(&self) -> Option<&str> {
        (!self.chosen).then_some(self.title.as_str())
    }

    /// Orders backups oldest first: by time, then by name (a name without any time first).
    pub fn sort_key(&self) -> (&str, &str) {
        (self.time.as_deref().unwrap_or(""), &self.file_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(name: &str) -> BackupName {
        match classify(name) {
            FileKind::Backup(n) => n,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn current_names_with_a_dashed_version() {
        let n = backup("my-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar");
        assert_eq!(n.title, "my-forum");
        assert_eq!(n.time.as_deref(), Some("2026-09-25-120000"));
        assert_eq!(n.version.as_deref(), Some("2026-9-0-latest"));
        assert_eq!(n.migration.as_deref(), Some("20260923080644"));
        assert_eq!(n.format, Format::Tar);
        assert!(!n.chosen && !n.time_from_mtime);
        let b = backup("discourse-2025-11-02-033000-v3-5-0-beta5-dev-20251020120000.tar");
        assert_eq!(b.title, "discourse", "current fallback title");
        assert_eq!(b.version.as_deref(), Some("3-5-0-beta5-dev"));
        let dotted = backup("forum-2025-11-02-033000-v3.6.0.beta2-20251020120000.tar");
        assert_eq!(dotted.version.as_deref(), Some("3.6.0.beta2"));
    }

    #[test]
    fn older_names_with_the_migration_only() {
        let a = backup("my-forum-2024-03-01-033012-v20240220010101.tar.gz");
        assert_eq!((a.title.as_str(), a.format), ("my-forum", Format::TarGz));
        assert_eq!(a.version, None);
        assert_eq!(a.migration.as_deref(), Some("20240220010101"));
        assert_eq!(
            backup("f-2024-03-01-033012-v20240220010101.sql.gz").format,
            Format::SqlGz
        );
        assert_eq!(
            backup("f-2024-03-01-033012-v20240220010101.tgz").format,
            Format::TarGz
        );
        assert_eq!(
            backup("my-v2-forum-2015-06-01-033012.tar.gz").title,
            "my-v2-forum"
        );
        let old = backup("forum-2015-06-01-033012.tar.gz");
        assert_eq!(
            old.migration, None,
            "v1.5 and before: migration in meta.json"
        );
        assert_eq!(old.time.as_deref(), Some("2015-06-01-033012"));
    }

    #[test]
    fn odd_titles() {
        let empty = backup("-2019-01-02-030405-v20190101000000.tar.gz");
        assert_eq!(empty.title, "");
        assert_eq!(empty.site(), Some(""));
        assert_eq!(empty.time.as_deref(), Some("2019-01-02-030405"));
        let digits = backup("forum-2024-2024-03-01-033012-v20240220010101.tar.gz");
        assert_eq!(digits.title, "forum-2024");
        let with_v = backup("my-v2-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar");
        assert_eq!(with_v.title, "my-v2-forum");
        assert_eq!(with_v.version.as_deref(), Some("2026-9-0-latest"));
    }

    #[test]
    fn admin_chosen_names_take_the_mtime() {
        let n = backup("before-upgrade-v2026-9-0-latest-20260923080644.tar");
        assert!(n.chosen);
        assert_eq!(n.title, "before-upgrade");
        assert_eq!(n.site(), None);
        assert_eq!(n.time, None);
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
        let n = n.with_mtime(Some(t));
        assert_eq!(n.time.as_deref(), Some("2026-09-21-141320"));
        assert!(n.time_from_mtime);
        assert!(backup("x-v20240220010101.sql.gz").chosen);
        // Looks like a time but is not one: the admin's name.
        assert!(backup("2024-13-45-999999-v20240220010101.tar.gz").chosen);
    }

    #[test]
    fn files_being_written_are_in_progress() {
        for name in [
            "forum-2024-03-01-033012-v20240220010101.tar",
            "forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar.partial",
        ] {
            assert!(matches!(classify(name), FileKind::InProgress(_)), "{name}");
        }
    }

    #[test]
    fn backup_like_names_that_cannot_be_used_say_why() {
        for name in [
            "forum-2024-03-01-033012-v2024022001010.tar.gz",
            "forum-2026-09-25-120000-v2026-10-0.tar",
            "forum-backup.tar.gz",
            "forum-2024-03-01-033012.sql.gz",
            "dump.gz",
            "-v20240220010101.tar.gz",
        ] {
            match classify(name) {
                FileKind::Unusable(why) => assert!(!why.is_empty()),
                other => panic!("{name}: {other:?}"),
            }
        }
        for name in [
            "notes.txt",
            ".forum-2024-03-01-033012-v20240220010101.tar.gz",
            "tmp",
        ] {
            assert_eq!(classify(name), FileKind::Other, "{name}");
        }
    }

    #[test]
    fn sort_key_orders_by_time() {
        let a = backup("z-2024-03-01-033012-v20240220010101.tar.gz");
        let b = backup("a-2024-03-02-033012-v20240220010101.tar.gz");
        assert!(a.sort_key() < b.sort_key());
    }
}
