//! Which Discourse schema a backup needs, read from its name as Discourse's restore reads it,
//! so that a put-back refuses a backup the site's restore would refuse
//! (`lib/backup_restore/meta_data_handler.rb`: a migration newer than the site's schema, or a
//! name without one).

use super::{Options, PutBackError};
use crate::repo::SnapshotInfo;

/// Refuses a backup newer than the site's schema; notes a name Discourse cannot restore.
pub(super) fn check_migration(
    info: &SnapshotInfo,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Result<(), PutBackError> {
    let name = &info.meta.file_name;
    let Some(backup) = migration_in_name(name) else {
        notes.push(format!(
            "{name} has no `-v<14-digit migration>` in its name: Discourse's restore refuses such \
             a name (\"Migration version is missing from the filename\"); rename it to the \
             site's pattern before restoring"
        ));
        return Ok(());
    };
    if let Some(site) = &opts.site_migration {
        if !(site.len() == 14 && site.bytes().all(|b| b.is_ascii_digit())) {
            return Err(PutBackError::Target(format!(
                "--site-migration {site:?}: expected the site's 14-digit schema version \
                 (`SELECT max(version) FROM schema_migrations`)"
            )));
        }
        // Equal-length digit strings compare as numbers.
        if backup.as_str() > site.as_str() {
            return Err(PutBackError::TooNew {
                name: name.clone(),
                backup,
                site: site.clone(),
            });
        }
    }
    Ok(())
}

/// The 14 digits Discourse's restore reads from a name: the first `-v` followed by exactly 14
/// digits (`/-v(\d{14})/`), or, in names with a dashed Discourse version, the 14 digits ending
/// the `-v...-DIGITS` part.
pub fn migration_in_name(name: &str) -> Option<String> {
    let digits14 = |s: &str| {
        let d: String = s.chars().take_while(char::is_ascii_digit).collect();
        (d.len() >= 14).then(|| d[..14].to_string())
    };
    let mut rest = name;
    while let Some(i) = rest.find("-v") {
        if let Some(d) = digits14(&rest[i + 2..]) {
            return Some(d);
        }
        rest = &rest[i + 2..];
    }
    // `-v2026-9-0-latest-20260923080644.tar`: the last dash-separated 14-digit part.
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit('-').find_map(|part| {
        (part.len() == 14 && part.bytes().all(|b| b.is_ascii_digit())).then(|| part.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_migration_is_read_as_discourse_reads_it() {
        for (name, want) in [
            (
                "forum-2024-01-02-030405-v20231220123456.tar.gz",
                Some("20231220123456"),
            ),
            (
                "forum-2024-01-02-030405-v20231220123456.sql.gz",
                Some("20231220123456"),
            ),
            (
                "my-forum-2026-09-25-120000-v2026-9-0-latest-20260923080644.tar",
                Some("20260923080644"),
            ),
            (
                "-2024-01-02-030405-v20231220123456.tar.gz",
                Some("20231220123456"),
            ),
            ("chosen-by-admin.tar.gz", None),
        ] {
            assert_eq!(migration_in_name(name).as_deref(), want, "{name}");
        }
    }
}
