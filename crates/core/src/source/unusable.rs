//! Files named like Discourse backups that dvault cannot use: never passed over silently. Each
//! is warned about and counted, and one newer than the newest usable backup fails the site,
//! since it is most likely the forum's newest backup.

use std::time::SystemTime;

use super::SourceError;

/// A file in the backups folder or bucket that is named like a Discourse backup (an extension
/// Discourse lists) but whose name no Discourse writes, so dvault cannot use it. Never passed
/// over silently: the run warns about each, counts them in a metric, and fails when one is the
/// newest file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unusable {
    /// The path, or `s3://bucket/key`.
    pub origin: String,
    /// Why it cannot be used.
    pub reason: String,
    /// When it was last modified.
    #[serde(skip)]
    pub modified: Option<SystemTime>,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is named like a Discourse backup but cannot be used: {}",
            self.origin, self.reason
        )
    }
}

/// Fails when a file named like a backup that cannot be used is newer than the newest usable
/// backup (or there is none): that file is most likely the forum's newest backup, and storing an
/// older one every day while saying nothing is what must never happen. Otherwise hands the
/// unusable files back for warnings.
pub(super) fn check_unusable(
    where_: &str,
    newest: Option<SystemTime>,
    unusable: Vec<Unusable>,
) -> Result<Vec<Unusable>, SourceError> {
    let newer = unusable
        .iter()
        .filter(|u| match (u.modified, newest) {
            (Some(m), Some(n)) => m > n,
            (_, None) => true,
            (None, Some(_)) => false,
        })
        .max_by_key(|u| u.modified);
    if let Some(u) = newer {
        let usable = match newest {
            Some(_) => "an older usable backup exists, but storing it would miss this one",
            None => "no usable backup exists",
        };
        return Err(SourceError::Unusable {
            message: format!(
                "{where_}: the newest file {u}; {usable}. Rename it to the name Discourse gave \
                 it (<title>-<YYYY-MM-DD-HHMMSS>-v<version>-<migration>.tar or \
                 ...-v<migration>.tar.gz/.sql.gz) or move it out of the backups folder"
            ),
            files: unusable.len(),
        });
    }
    Ok(unusable)
}
