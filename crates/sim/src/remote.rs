//! S3-stored uploads in a backup, chosen and grouped the way Discourse's backup does it
//! (`lib/backup_restore/creator.rb`, `add_remote_uploads_to_archive`), for both generations:
//!
//! - Only with `enable_s3_uploads` and `include_s3_uploads_in_backups` (else "Skipping uploads
//!   stored on S3.").
//! - The rows are Discourse's own query, run here unchanged against the simulated database:
//!   `Upload.where("url NOT LIKE '/%' OR url LIKE '//%'").pluck(COALESCE(NULLIF(original_sha1,
//!   ''), sha1), id, url, sha1, ...)`, without ORDER BY, so in the table's physical order.
//! - Rows are grouped by that first column (a Ruby Hash: groups in order of their first row,
//!   rows in order within a group). The first row of a group is downloaded once; the others
//!   become hard links to it, except one whose path equals one already archived.
//! - Each row's path in the archive is `uploads/default/` plus the key its URL holds
//!   (`FileStore::BaseStore#get_path_for_upload`, `lib/file_store/base_store.rb`: the part of
//!   the URL matching `/(original/\d+X/.*)`; the S3 store adds no prefix on a single site).
//!
//! "Downloading" copies the object from the folder standing in for the bucket.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::forum::{Forum, DATABASE};

/// One upload row with its file on S3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUpload {
    /// `uploads.id`.
    pub id: u32,
    /// `uploads.url`.
    pub url: String,
    /// The key of the object below the bucket and the path below `uploads/default/` in the
    /// backup, e.g. `original/1X/<sha1>.png`.
    pub key: String,
}

/// The uploads of one content (same `original_sha1`, or `sha1` where there is none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The grouping key.
    pub sha1: String,
    /// The rows; the first is the one downloaded.
    pub uploads: Vec<RemoteUpload>,
}

impl Group {
    /// The paths (below `uploads/default/`) after the first that become hard links to it:
    /// every other row's path, each once, none equal to the first's (Discourse's
    /// `archived_paths` set in `process_upload_group`).
    pub fn links(&self) -> Vec<&str> {
        let first = self.uploads[0].key.as_str();
        let mut seen = vec![first];
        let mut out = Vec::new();
        for u in &self.uploads[1..] {
            if !seen.contains(&u.key.as_str()) {
                seen.push(&u.key);
                out.push(u.key.as_str());
            }
        }
        out
    }
}

/// Whether this forum's backups include S3-stored uploads (`SiteSetting.Upload.enable_s3_uploads`
/// and `include_s3_uploads_in_backups`).
pub fn included(forum: &Forum) -> bool {
    let o = forum.options();
    o.uploads_on_s3 && o.include_s3_uploads
}

/// The S3-stored uploads grouped by content, in Discourse's order (see the module comment).
pub fn groups(forum: &Forum) -> Result<Vec<Group>> {
    let out = forum
        .cluster()
        .psql(
            DATABASE,
            "SELECT COALESCE(NULLIF(original_sha1, ''), sha1), id, url, sha1 FROM uploads \
             WHERE url NOT LIKE '/%' OR url LIKE '//%';",
        )
        .context("listing the uploads stored on S3")?;
    let mut groups: Vec<Group> = Vec::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('|').collect();
        let [key_sha1, id, url, _sha1] = f.as_slice() else {
            bail!("unexpected row from the uploads query: {line:?}");
        };
        let Some(key) = key_of(url) else {
            // Discourse would compute the path from id and sha1; the simulator writes no such URL.
            bail!("upload {id}: URL {url:?} holds no original/<depth>X/ key");
        };
        let up = RemoteUpload {
            id: id.parse().with_context(|| format!("upload id {id:?}"))?,
            url: url.to_string(),
            key,
        };
        match groups.iter_mut().find(|g| g.sha1 == *key_sha1) {
            Some(g) => g.uploads.push(up),
            None => groups.push(Group {
                sha1: key_sha1.to_string(),
                uploads: vec![up],
            }),
        }
    }
    Ok(groups)
}

/// The part of an upload URL after the host that matches `/(original/\d+X/.*)`
/// (`UPLOAD_PATH_REGEX` of `lib/file_store/base_store.rb`; the first such match).
pub fn key_of(url: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = url[from..].find("/original/") {
        let start = from + i + 1;
        let rest = &url[start + "original/".len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with("X/") {
            return Some(url[start..].to_string());
        }
        from = start;
    }
    None
}

/// "Downloads" the object `key` into `dest` (a copy from the bucket folder).
pub fn download(forum: &Forum, key: &str, dest: &Path) -> Result<PathBuf> {
    let src = forum.upload_root().join(key);
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::copy(&src, dest)
        .with_context(|| format!("downloading {} to {}", src.display(), dest.display()))?;
    Ok(dest.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_url_like_discourse_upload_path_regex() {
        assert_eq!(
            key_of("//b.s3.dualstack.us-east-1.amazonaws.com/original/1X/abc.png").as_deref(),
            Some("original/1X/abc.png")
        );
        assert_eq!(
            key_of("//b.s3.amazonaws.com/original/3X/a/b/abc.jpeg").as_deref(),
            Some("original/3X/a/b/abc.jpeg")
        );
        assert_eq!(key_of("//b.s3.amazonaws.com/optimized/1X/abc.png"), None);
        assert_eq!(key_of("//b.s3.amazonaws.com/original/XX/abc.png"), None);
    }

    #[test]
    fn links_skip_the_first_path_and_repeats() {
        let up = |id, key: &str| RemoteUpload {
            id,
            url: format!("//b/{key}"),
            key: key.into(),
        };
        let g = Group {
            sha1: "s".into(),
            uploads: vec![
                up(1, "original/1X/a.png"),
                up(2, "original/1X/b.png"),
                up(3, "original/1X/a.png"),
                up(4, "original/1X/b.png"),
            ],
        };
        assert_eq!(g.links(), vec!["original/1X/b.png"]);
    }
}
