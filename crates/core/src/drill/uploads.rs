//! Upload files: the SHA-1 of every file under `uploads/` in the backup, and the check of the
//! restored `uploads` table against them.
//!
//! Where a row's file is in the backup, as Discourse puts it there:
//! - uploads on the forum's disk have urls `/uploads/<db>/original/...` and the archive holds
//!   the folder `uploads/<db>` as it is (`creator.rb` `add_local_uploads_to_archive`);
//! - uploads stored on S3 (`url NOT LIKE '/%' OR url LIKE '//%'`, e.g.
//!   `//bucket.s3.dualstack.us-east-1.amazonaws.com/original/1X/abc.png`) are downloaded into
//!   the archive when `include_s3_uploads_in_backups` is on, at
//!   `File.join(Discourse.store.upload_path, s3_store.get_path_for_upload(upload))`
//!   (`creator.rb` `upload_path_in_archive`), i.e. `uploads/<db>/` followed by the url's
//!   `original/<n>X/...` part (`FileStore::BaseStore::UPLOAD_PATH_REGEX`,
//!   `lib/file_store/base_store.rb`), or, for a url without one, the path computed from the id,
//!   SHA-1 and extension (`get_path_for`). A multisite S3 url
//!   (`//bucket.../uploads/<site>/original/...`, see `uploads_restorer.rb`) maps the same way.
//!
//! Every row whose file the backup holds is checked by SHA-1; only rows whose file is absent
//! and may rightly be (S3-stored uploads without `include_s3_uploads_in_backups`) are "not
//! checked", and counted.

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde::Serialize;
use sha1::{Digest, Sha1};

/// The upload files a backup holds, by their path in the archive (`uploads/default/...`).
#[derive(Debug, Default, Clone)]
pub struct UploadIndex {
    files: BTreeMap<String, String>,
    /// Hard links (path, target) whose target was not seen yet.
    pending_links: Vec<(String, String)>,
}

impl UploadIndex {
    /// Hashes a file's content and records it under `path`.
    pub fn add_file(&mut self, path: &str, data: &mut dyn Read) -> io::Result<()> {
        let mut hasher = Sha1::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = data.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        self.files
            .insert(path.to_string(), hex::encode(hasher.finalize()));
        Ok(())
    }

    /// Records a hard link: `path` has the content of `target` (Discourse's format B stores
    /// duplicate uploads this way).
    pub fn add_link(&mut self, path: &str, target: &str) {
        match self.files.get(target) {
            Some(sha1) => {
                let sha1 = sha1.clone();
                self.files.insert(path.to_string(), sha1);
            }
            None => self
                .pending_links
                .push((path.to_string(), target.to_string())),
        }
    }

    /// Resolves hard links whose target came later in the archive.
    pub fn resolve_links(&mut self) {
        for (path, target) in std::mem::take(&mut self.pending_links) {
            if let Some(sha1) = self.files.get(&target).cloned() {
                self.files.insert(path, sha1);
            }
        }
    }

    /// The number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The SHA-1 (hex) of the file at `path`.
    pub fn sha1(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }

    /// The database folders under `uploads/` (`default` on a standard install).
    pub fn db_dirs(&self) -> Vec<&str> {
        let mut dirs: Vec<&str> = self
            .files
            .keys()
            .filter_map(|p| p.strip_prefix("uploads/")?.split_once('/').map(|(d, _)| d))
            .collect();
        dirs.dedup();
        dirs
    }
}

/// An `uploads` row whose file is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadProblem {
    /// `uploads.id`.
    pub id: i64,
    /// `uploads.url`.
    pub url: String,
    /// The path looked up in the backup.
    pub path: String,
    /// The file's SHA-1 in the backup; `None` when the file is missing.
    pub actual_sha1: Option<String>,
    /// The SHA-1 the row records (`sha1`, or `original_sha1` for secure uploads).
    pub expected_sha1: Vec<String>,
}

impl std::fmt::Display for UploadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.actual_sha1 {
            None => write!(
                f,
                "upload {} ({}): file {} is missing from the backup",
                self.id, self.url, self.path
            ),
            Some(actual) => write!(
                f,
                "upload {} ({}): file {} has SHA-1 {actual}, the row records {}",
                self.id,
                self.url,
                self.path,
                self.expected_sha1.join(" / ")
            ),
        }
    }
}

/// The result of checking the `uploads` table against the backup's files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UploadsCheck {
    /// Whether rows were checked against files (see `note` when not).
    pub checked: bool,
    /// Why the check was skipped, or a remark.
    pub note: Option<String>,
    /// Rows in `uploads`.
    pub rows: u64,
    /// Rows whose url points into the local uploads (`/uploads/...`).
    pub local_rows: u64,
    /// Rows stored elsewhere (S3).
    pub remote_rows: u64,
    /// Of those, rows whose file the backup holds (`include_s3_uploads_in_backups`): checked.
    pub remote_in_backup: u64,
    /// Rows whose file the backup does not hold and need not (S3-stored uploads of a backup
    /// made without them): not checked.
    pub not_checked: u64,
    /// Upload files in the backup.
    pub files_in_backup: u64,
    /// Rows whose file is present with a matching SHA-1.
    pub sha1_verified: u64,
    /// Rows whose file is present but whose row records no SHA-1.
    pub present_without_sha1: u64,
    /// Rows whose file is missing or different.
    pub problems: Vec<UploadProblem>,
}

/// One row of the `uploads` table, as the drill reads it.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadRow<'a> {
    /// `id`.
    pub id: i64,
    /// `url`.
    pub url: &'a str,
    /// `sha1`.
    pub sha1: Option<&'a str>,
    /// `original_sha1` (secure uploads).
    pub original_sha1: Option<&'a str>,
    /// `extension`, for the path of an S3 url without `original/<n>X/`.
    pub extension: Option<&'a str>,
}

impl UploadsCheck {
    /// Checks one row against the index.
    pub fn check(&mut self, index: &UploadIndex, row: &UploadRow<'_>) {
        self.rows += 1;
        let expected: Vec<String> = [row.original_sha1, row.sha1]
            .into_iter()
            .flatten()
            .filter(|s| is_sha1_hex(s))
            .map(str::to_ascii_lowercase)
            .collect();
        let (path, found) = if let Some(path) = local_path(row.url) {
            self.local_rows += 1;
            let found = index.sha1(&path).map(str::to_string);
            if found.is_none() {
                self.problems.push(UploadProblem {
                    id: row.id,
                    url: row.url.to_string(),
                    path,
                    actual_sha1: None,
                    expected_sha1: expected,
                });
                return;
            }
            (path, found)
        } else {
            self.remote_rows += 1;
            let rel = remote_relative_path(row);
            let hit = rel.and_then(|rel| {
                index.db_dirs().into_iter().find_map(|db| {
                    let p = format!("uploads/{db}/{rel}");
                    index.sha1(&p).map(|s| (p, s.to_string()))
                })
            });
            let Some((path, sha1)) = hit else {
                self.not_checked += 1;
                return;
            };
            self.remote_in_backup += 1;
            (path, Some(sha1))
        };
        let actual = found.unwrap_or_default();
        if expected.is_empty() {
            self.present_without_sha1 += 1;
        } else if expected.contains(&actual) {
            self.sha1_verified += 1;
        } else {
            self.problems.push(UploadProblem {
                id: row.id,
                url: row.url.to_string(),
                path,
                actual_sha1: Some(actual),
                expected_sha1: expected,
            });
        }
    }

    /// Checks one row (`id`, `url`, `sha1`, `original_sha1`) against the index.
    pub fn check_row(
        &mut self,
        index: &UploadIndex,
        id: i64,
        url: &str,
        sha1: Option<&str>,
        original_sha1: Option<&str>,
    ) {
        self.check(
            index,
            &UploadRow {
                id,
                url,
                sha1,
                original_sha1,
                extension: None,
            },
        );
    }
}

/// Where Discourse puts an S3-stored upload under `uploads/<db>/` in a backup: the url's
/// `original/<n>X/...` part (`UPLOAD_PATH_REGEX = %r{/(original/\d+X/.*)}`), else the path
/// `get_path_for("original", id, sha1, ".ext")` computes (both in `lib/file_store/base_store.rb`).
fn remote_relative_path(row: &UploadRow<'_>) -> Option<String> {
    let url = row.url.split(['?', '#']).next().unwrap_or(row.url);
    let from_url = url.match_indices("/original/").find_map(|(i, m)| {
        let rest = &url[i + 1..];
        let after = &url[i + m.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        (digits > 0 && after[digits..].starts_with("X/")).then_some(rest)
    });
    let rel = match from_url {
        Some(rel) => rel.to_string(),
        None => {
            let sha1 = row.sha1.filter(|s| is_sha1_hex(s))?;
            let ext = row.extension.filter(|e| !e.is_empty())?;
            let depth = if row.id > 0 {
                ((row.id as f64 / 1000.0).log(16.0).ceil() as i64).max(0) as usize
            } else {
                0
            };
            let tree: String = sha1.chars().take(depth).map(|c| format!("{c}/")).collect();
            format!("original/{}X/{tree}{sha1}.{ext}", depth + 1)
        }
    };
    (!rel.split('/').any(|c| c == ".." || c.is_empty())).then_some(rel)
}

/// The path in the backup of an upload stored on the forum's own disk: its url is
/// `/uploads/<db>/...` and the backup holds `uploads/<db>/...`. `None` for other urls
/// (`//bucket.s3...`, `https://cdn...`).
pub fn local_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("/uploads/")?;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    if rest.is_empty() || rest.split('/').any(|c| c == ".." || c.is_empty()) {
        return None;
    }
    Some(format!("uploads/{rest}"))
}

fn is_sha1_hex(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_map_into_the_backup() {
        assert_eq!(
            local_path("/uploads/default/original/1X/ab.png").as_deref(),
            Some("uploads/default/original/1X/ab.png")
        );
        assert_eq!(
            local_path("//bucket.s3.amazonaws.com/original/1X/ab.png"),
            None
        );
        assert_eq!(local_path("/uploads/default/../../etc/passwd"), None);
    }

    #[test]
    fn rows_are_matched_by_sha1_or_original_sha1() {
        let mut index = UploadIndex::default();
        index
            .add_file("uploads/default/original/1X/a.png", &mut &b"abc"[..])
            .unwrap();
        index.add_link(
            "uploads/default/original/1X/b.png",
            "uploads/default/original/1X/a.png",
        );
        let abc = "a9993e364706816aba3e25717850c26c9cd0d89d";
        let random = "0123456789012345678901234567890123456789";
        let mut check = UploadsCheck::default();
        check.check_row(
            &index,
            1,
            "/uploads/default/original/1X/a.png",
            Some(abc),
            None,
        );
        check.check_row(
            &index,
            2,
            "/uploads/default/original/1X/b.png",
            Some(random),
            Some(abc),
        );
        check.check_row(
            &index,
            3,
            "/uploads/default/original/1X/c.png",
            Some(abc),
            None,
        );
        check.check_row(
            &index,
            4,
            "/uploads/default/original/1X/a.png",
            Some(random),
            None,
        );
        check.check_row(&index, 5, "//s3/x.png", Some(abc), None);
        assert_eq!(check.sha1_verified, 2);
        assert_eq!(check.remote_rows, 1);
        assert_eq!(check.not_checked, 1);
        let msgs: Vec<String> = check.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(
            msgs[0].contains("upload 3") && msgs[0].contains("missing"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].contains("upload 4") && msgs[1].contains(&format!("SHA-1 {abc}")),
            "{}",
            msgs[1]
        );
    }

    #[test]
    fn s3_stored_uploads_in_the_backup_are_checked_by_sha1() {
        let mut index = UploadIndex::default();
        let abc = "a9993e364706816aba3e25717850c26c9cd0d89d";
        index
            .add_file("uploads/default/original/1X/abc.png", &mut &b"abc"[..])
            .unwrap();
        // A duplicate upload: Discourse writes it as a hard link to the first (`creator.rb`).
        index.add_link(
            "uploads/default/original/1X/dup.png",
            "uploads/default/original/1X/abc.png",
        );
        index
            .add_file("uploads/default/original/1X/bad.png", &mut &b"xyz"[..])
            .unwrap();
        // No original/<n>X/ in the url: the path comes from id 5000, the SHA-1 and extension.
        index
            .add_file(
                &format!("uploads/default/original/2X/a/{abc}.jpeg"),
                &mut &b"abc"[..],
            )
            .unwrap();
        let mut check = UploadsCheck::default();
        let s3 = "//bucket.s3.dualstack.us-east-1.amazonaws.com";
        for (id, url) in [
            (1, format!("{s3}/original/1X/abc.png")),
            (2, format!("{s3}/original/1X/dup.png")),
            (3, format!("{s3}/uploads/othersite/original/1X/abc.png")),
            (4, format!("{s3}/original/1X/bad.png")),
            (6, format!("{s3}/original/1X/gone.png")),
        ] {
            check.check(
                &index,
                &UploadRow {
                    id,
                    url: &url,
                    sha1: Some(abc),
                    ..UploadRow::default()
                },
            );
        }
        check.check(
            &index,
            &UploadRow {
                id: 5000,
                url: "https://cdn.example.com/some/other/path",
                sha1: Some(abc),
                extension: Some("jpeg"),
                ..UploadRow::default()
            },
        );
        assert_eq!(check.remote_rows, 6);
        assert_eq!(check.remote_in_backup, 5, "{check:?}");
        assert_eq!(check.sha1_verified, 4, "{check:?}");
        assert_eq!(check.not_checked, 1, "only the absent file");
        assert_eq!(check.problems.len(), 1);
        assert_eq!(check.problems[0].id, 4);
        assert_eq!(
            check.problems[0].path,
            "uploads/default/original/1X/bad.png"
        );
    }
}
