//! Upload files: the SHA-1 of every file under `uploads/` in the backup, and the check of the
//! restored `uploads` table against them.

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
    /// Rows stored elsewhere (S3, CDN), not checked.
    pub remote_rows: u64,
    /// Upload files in the backup.
    pub files_in_backup: u64,
    /// Local rows whose file is present with a matching SHA-1.
    pub sha1_verified: u64,
    /// Local rows whose file is present but whose row records no SHA-1.
    pub present_without_sha1: u64,
    /// Rows whose file is missing or different.
    pub problems: Vec<UploadProblem>,
}

impl UploadsCheck {
    /// Checks one row (`id`, `url`, `sha1`, `original_sha1`) against the index.
    pub fn check_row(
        &mut self,
        index: &UploadIndex,
        id: i64,
        url: &str,
        sha1: Option<&str>,
        original_sha1: Option<&str>,
    ) {
        self.rows += 1;
        let Some(path) = local_path(url) else {
            self.remote_rows += 1;
            return;
        };
        self.local_rows += 1;
        let expected: Vec<String> = [original_sha1, sha1]
            .into_iter()
            .flatten()
            .filter(|s| is_sha1_hex(s))
            .map(str::to_ascii_lowercase)
            .collect();
        match index.sha1(&path) {
            None => self.problems.push(UploadProblem {
                id,
                url: url.to_string(),
                path,
                actual_sha1: None,
                expected_sha1: expected,
            }),
            Some(_) if expected.is_empty() => self.present_without_sha1 += 1,
            Some(actual) if expected.iter().any(|e| e == actual) => self.sha1_verified += 1,
            Some(actual) => self.problems.push(UploadProblem {
                id,
                url: url.to_string(),
                path,
                actual_sha1: Some(actual.to_string()),
                expected_sha1: expected,
            }),
        }
    }
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
}
