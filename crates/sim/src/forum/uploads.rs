//! Upload files on disk, laid out like Discourse's local file store.

use std::path::Path;

use anyhow::{Context, Result};
use rand::Rng;
use sha1::{Digest, Sha1};

use super::*;
use crate::images;

impl Forum {
    /// Makes an image (or, for `dup`, re-uploads an existing file's content as a secure upload
    /// with a random sha1, as Discourse does), writes it below [`Forum::upload_root`] (local
    /// `uploads/default` or the S3 bucket), and records it.
    pub(super) fn add_upload(
        &mut self,
        id: u32,
        post_id: u32,
        created: i64,
        dup: bool,
    ) -> Result<()> {
        let mut rng = rng_for(self.opts.seed, S_UPLOAD, id as u64);
        let root = self.upload_root();
        let (bytes, ext, content_sha1, sha1, dims) = if dup && !self.uploads.is_empty() {
            let src = self.uploads[rng.random_range(0..self.uploads.len())].clone();
            let bytes = std::fs::read(root.join(&src.path))
                .with_context(|| format!("reading upload {}", src.path))?;
            let ext = src.path.rsplit('.').next().unwrap_or("png").to_string();
            let mut random = [0u8; 20];
            rng.fill(&mut random);
            (
                bytes,
                ext,
                src.content_sha1.clone(),
                hex::encode(random),
                src.dims,
            )
        } else {
            let img = images::random_image(&mut rng, self.opts.size.max_image_side)?;
            let sha = hex::encode(Sha1::digest(&img.bytes));
            // A thumbnail under optimized/, which backups leave out.
            if rng.random_ratio(1, 3) {
                let (tw, th) = (img.width.min(120), img.height.min(120));
                let thumb = images::thumbnail(&mut rng, tw, th)?;
                let p = root.join(upload_path(
                    "optimized",
                    id,
                    &sha,
                    &format!("_2_{tw}x{th}.png"),
                ));
                write_file(&p, &thumb, created)?;
            }
            let dims = (img.width, img.height);
            (img.bytes, img.extension.to_string(), sha.clone(), sha, dims)
        };
        let path = upload_path("original", id, &sha1, &format!(".{ext}"));
        write_file(&root.join(&path), &bytes, created)?;
        self.uploads.push(UploadMeta {
            id,
            sha1,
            content_sha1,
            path,
            filesize: bytes.len() as u64,
            dims,
            post_id,
        });
        Ok(())
    }
}

/// Path of an upload below `uploads/default/`, as Discourse's file store lays it out: a depth
/// that grows with the id (`1X` up to id 1000, then one hex folder per factor 16).
pub fn upload_path(kind: &str, id: u32, sha1: &str, suffix: &str) -> String {
    let depth = if id as f64 / 1000.0 > 1.0 {
        ((id as f64 / 1000.0).log(16.0)).ceil() as usize
    } else {
        0
    };
    let depth = depth.min(sha1.len());
    let mut p = format!("{kind}/{}X/", depth + 1);
    for c in sha1.chars().take(depth) {
        p.push(c);
        p.push('/');
    }
    p.push_str(sha1);
    p.push_str(suffix);
    p
}

fn write_file(path: &Path, bytes: &[u8], mtime_micros: i64) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    set_mtime(path, mtime_micros / 1_000_000)
}

/// Sets a file's or folder's modification time (seconds since the epoch).
pub fn set_mtime(path: &Path, secs: i64) -> Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.set_modified(t)
        .with_context(|| format!("setting the mtime of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_paths_follow_discourse_depths() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            upload_path("original", 5, sha, ".png"),
            format!("original/1X/{sha}.png")
        );
        assert_eq!(
            upload_path("original", 1000, sha, ".png"),
            format!("original/1X/{sha}.png")
        );
        assert_eq!(
            upload_path("original", 1001, sha, ".png"),
            format!("original/2X/0/{sha}.png")
        );
        assert_eq!(
            upload_path("original", 20_000, sha, ".jpeg"),
            format!("original/3X/0/1/{sha}.jpeg")
        );
    }
}
