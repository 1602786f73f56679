//! Discourse's S3 backup bucket (`backup_location = s3`): find the newest complete backup under
//! the database's prefix (`default/`) and download it to a temporary file.
//!
//! Names are judged by [`crate::discourse::classify`], as in the folder source, so both sources
//! agree on what a finished Discourse backup is, which is newest, and which objects are named
//! like backups but cannot be used (reported, never passed over silently). Discourse lists the
//! bucket's backups by key pattern (`s3_backup_store.rb` `file_regex`) and writes current
//! backups with a multipart upload, so an object appears only once complete. An S3 object appears only once its upload
//! is complete, but a key can be overwritten; so, like the folder source, a listing is taken
//! twice a settle time apart and an object whose size or ETag changed in between is passed over.
//! The download is streamed to disk (never held in memory), and it is bound to the listed ETag
//! (`If-Match`) so that an object replaced mid-download fails instead of mixing two files.
//! Objects are only listed and read: nothing in the bucket is ever written or deleted.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use opendal::options::{ListOptions, ReaderOptions};

use super::{SourceError, Unusable};
use crate::config::S3SourceConfig;
use crate::discourse::{classify, BackupName, FileKind};
use crate::s3::{Credentials, Target};

/// One backup object in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    /// Full key inside the bucket (prefix included).
    pub key: String,
    /// Parsed file name (the key's last part).
    pub name: BackupName,
    /// Size in bytes when listed.
    pub size: u64,
    /// ETag when listed (changes when the object is overwritten).
    pub etag: Option<String>,
    /// Last-Modified when listed.
    pub modified: Option<SystemTime>,
}

/// What looking for the newest complete backup found.
#[derive(Debug, Clone, Default)]
pub struct S3Selection {
    /// The newest complete backup, if any.
    pub newest: Option<S3Object>,
    /// Older complete backups, oldest first.
    pub older: Vec<S3Object>,
    /// Newer objects passed over, with the reason, for the log.
    pub passed_over: Vec<String>,
    /// Objects named like backups that cannot be used, oldest first.
    pub unusable: Vec<Unusable>,
}

/// A Discourse S3 backup bucket, read-only.
#[derive(Debug)]
pub struct S3Source {
    target: Target,
    settle: Duration,
    op: opendal::blocking::Operator,
}

impl S3Source {
    /// Connects (lazily: no request is sent yet) to the bucket of `cfg`; keys come from its
    /// `credentials_file`, else the environment. `settle`: how long sizes must stay unchanged.
    pub fn from_config(cfg: &S3SourceConfig, settle: Duration) -> Result<Self, SourceError> {
        let credentials = Credentials::load(cfg.credentials_file.as_deref())
            .map_err(|e| SourceError::S3(format!("source.s3 (bucket {}): {e}", cfg.bucket)))?;
        let target = Target {
            endpoint: cfg.endpoint.clone(),
            bucket: cfg.bucket.clone(),
            prefix: cfg.prefix.trim_matches('/').to_string(),
            region: cfg.region.clone(),
            credentials,
        };
        let op = crate::s3::blocking_operator(&target).map_err(SourceError::S3)?;
        Ok(Self { target, settle, op })
    }

    /// `endpoint bucket B prefix P/`, for messages.
    pub fn describe(&self) -> String {
        self.target.describe()
    }

    /// `s3://bucket/key`, recorded as the snapshot's source.
    pub fn origin(&self, obj: &S3Object) -> String {
        format!("s3://{}/{}", self.target.bucket, obj.key)
    }

    fn fail(&self, what: &str, e: &opendal::Error) -> SourceError {
        SourceError::S3(crate::s3::explain(&self.target, what, &e.to_string()))
    }

    /// Every object directly under the prefix whose name is a finished Discourse backup, oldest
    /// first (by the time in the name, or Last-Modified for admin-chosen names, then the name,
    /// as the folder source orders them).
    pub fn list(&self) -> Result<Vec<S3Object>, SourceError> {
        Ok(self.scan()?.0)
    }

    /// The finished backups and the objects named like backups that cannot be used.
    pub fn scan(&self) -> Result<(Vec<S3Object>, Vec<Unusable>), SourceError> {
        let entries = self
            .op
            .list_options("", ListOptions::default())
            .map_err(|e| self.fail("cannot list the backups", &e))?;
        let prefix = if self.target.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.target.prefix)
        };
        let mut out = Vec::new();
        let mut unusable = Vec::new();
        for entry in entries {
            let meta = entry.metadata();
            if !meta.is_file() {
                continue;
            }
            let key = format!("{prefix}{}", entry.path());
            let modified = meta.last_modified().map(SystemTime::from);
            match classify(entry.name()) {
                FileKind::Backup(name) => out.push(S3Object {
                    key,
                    name: name.with_mtime(modified),
                    size: meta.content_length(),
                    etag: meta.etag().map(str::to_string),
                    modified,
                }),
                FileKind::Unusable(reason) => unusable.push(Unusable {
                    origin: format!("s3://{}/{key}", self.target.bucket),
                    reason,
                    modified,
                }),
                FileKind::InProgress(_) | FileKind::Other => {}
            }
        }
        out.sort_by(|a, b| a.name.sort_key().cmp(&b.name.sort_key()));
        unusable.sort_by(|a, b| (a.modified, &a.origin).cmp(&(b.modified, &b.origin)));
        Ok((out, unusable))
    }

    /// The newest backup whose size and ETag stayed the same over the settle wait.
    pub fn newest_complete(&self) -> Result<S3Selection, SourceError> {
        let (before, unusable) = self.scan()?;
        let mut selection = S3Selection {
            unusable,
            ..S3Selection::default()
        };
        if before.is_empty() {
            return Ok(selection);
        }
        if !self.settle.is_zero() {
            std::thread::sleep(self.settle);
        }
        let after: BTreeMap<String, S3Object> = self
            .list()?
            .into_iter()
            .map(|o| (o.key.clone(), o))
            .collect();
        let settled = super::settle::settle(
            before,
            &after,
            |o| o.key.clone(),
            |then, now| {
                (now.size != then.size || now.etag != then.etag).then(|| {
                    format!(
                        "still changing ({} -> {} bytes in {:?})",
                        then.size, now.size, self.settle
                    )
                })
            },
            |o, reason| {
                selection
                    .passed_over
                    .push(format!("{}: {reason}", self.origin(&o)))
            },
        );
        selection.newest = settled.newest;
        selection.older = settled.older;
        Ok(selection)
    }

    /// Streams `obj` into a new temporary file in `dir` (default `$TMPDIR`), checking that the
    /// object did not change since it was listed and that every byte arrived.
    pub fn download(
        &self,
        obj: &S3Object,
        dir: Option<&Path>,
    ) -> Result<tempfile::TempPath, SourceError> {
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let io = |e: std::io::Error| SourceError::Io {
            path: dir.clone(),
            message: format!("downloading {}: {e}", self.origin(obj)),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".dvault-s3-")
            .tempfile_in(&dir)
            .map_err(io)?;
        let key = self.relative_key(obj);
        let opts = ReaderOptions {
            if_match: obj.etag.clone(),
            ..ReaderOptions::default()
        };
        let reader = self
            .op
            .reader_options(key, opts)
            .and_then(|r| r.into_std_read(0..obj.size))
            .map_err(|e| self.fail(&format!("cannot read {}", obj.key), &e))?;
        let (file, path) = tmp.into_parts();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
        let copied = std::io::copy(&mut reader, &mut out).map_err(|e| {
            SourceError::S3(crate::s3::explain(
                &self.target,
                &format!("reading {}", obj.key),
                &e.to_string(),
            ))
        })?;
        out.flush().map_err(io)?;
        if copied != obj.size {
            return Err(SourceError::S3(format!(
                "{}: {} ended after {copied} of {} bytes (changed or cut short while \
                 downloading); the next run tries again",
                self.describe(),
                obj.key,
                obj.size
            )));
        }
        Ok(path)
    }

    /// The key relative to the operator's root (the prefix).
    fn relative_key<'a>(&self, obj: &'a S3Object) -> &'a str {
        if self.target.prefix.is_empty() {
            &obj.key
        } else {
            obj.key
                .strip_prefix(&self.target.prefix)
                .map_or(&obj.key, |k| k.trim_start_matches('/'))
        }
    }
}
