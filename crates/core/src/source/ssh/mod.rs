//! The forum's backups folder read over SFTP from a separate backup machine (the pull topology:
//! the forum host holds neither the repository password nor storage credentials; see
//! docs/threat-model.md and contrib/ssh-pull/).
//!
//! Names and completeness are judged exactly as in the folder source ([`super::folder`]):
//! [`crate::discourse::classify`] for names, two listings a settle time apart (a file whose size
//! or mtime changed is still being written), and a `.tar.gz` whose `.tar` still exists is not
//! finished (gzip is running). The newest complete backup is copied into the scratch folder while
//! it is hashed ([`transfer`]); what is already stored is then skipped by that SHA-256, so no
//! `sha256sum` is needed on the forum host. An interrupted copy is resumed.
//!
//! # Why OpenSSH's `ssh` as the transport
//! The SSH connection is made by OpenSSH's own client, run as a subprocess with its SFTP
//! subsystem (`ssh -s HOST sftp`); the SFTP protocol on its pipes is spoken by the
//! `openssh-sftp-client` crate (maintained by the openssh-rust project, used by OpenDAL's SFTP
//! service and already in dvault's dependency tree through OpenDAL). The alternatives looked at,
//! all on crates.io:
//! - `russh` + `russh-sftp` (pure Rust): host key checking, known_hosts parsing (hashed names,
//!   `[host]:port`, `@revoked`) and the agent protocol would be dvault's code to get right, on a
//!   younger implementation.
//! - `ssh2` (libssh2, C): a smaller and less reviewed SSH implementation than OpenSSH, with a
//!   known_hosts reader that lacks `@cert-authority`/`@revoked`, and a C build to maintain.
//! - the `sftp` command in batch mode: its `ls -l` is for people (modification times to the
//!   minute, locale-dependent), and it cannot hash while it copies.
//!
//! OpenSSH is the most reviewed SSH implementation, it is what the admin already uses to reach
//! the forum host, and it keeps secrets out of dvault: keys come from the identity file or the
//! agent, host keys are checked by `ssh` itself against known_hosts (or a pinned fingerprint,
//! [`hostkey`]), and its own `ssh_config` options (ProxyJump, ...) work as usual.

pub mod command;
pub mod config;
pub mod hostkey;
pub mod transfer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_core::Stream;

use super::folder::{settle_entries, Listing, Selection};
use super::SourceError;
use crate::discourse::{classify, FileKind};
use command::Connection;
pub use config::{Location, SshSourceConfig};
pub use transfer::show_progress;

/// Figures of one copy over SSH, for the run report and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Transfer {
    /// Bytes that crossed the network in this run.
    pub bytes_transferred: u64,
    /// Bytes already in the scratch folder from an interrupted (or finished) earlier copy.
    pub resumed_from: u64,
    /// Seconds the copy took.
    pub seconds: f64,
    /// SHA-256 of the whole file, hashed from its first byte in this run.
    pub sha256: String,
}

/// A Discourse backups folder on another host, read-only over SFTP.
pub struct SshSource {
    cfg: SshSourceConfig,
    loc: Location,
    settle: Duration,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for SshSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SshSource({})", self.describe())
    }
}

impl SshSource {
    /// The source of `cfg`; `settle`: how long sizes and mtimes must stay unchanged. Nothing is
    /// contacted yet.
    pub fn from_config(cfg: &SshSourceConfig, settle: Duration) -> Result<Self, SourceError> {
        let loc = cfg
            .location()
            .map_err(|m| SourceError::Ssh(format!("source.ssh.location {m}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Ssh(format!("cannot start the SSH runtime: {e}")))?;
        Ok(SshSource {
            cfg: cfg.clone(),
            loc,
            settle,
            rt,
        })
    }

    /// `sftp://USER@HOST:PORT/FOLDER`, for messages.
    pub fn describe(&self) -> String {
        format!("sftp://{}{}", self.loc.describe(), self.loc.folder)
    }

    fn remote_path(&self, file: &str) -> String {
        format!("{}/{file}", self.loc.folder.trim_end_matches('/'))
    }

    fn err(&self, m: impl std::fmt::Display) -> SourceError {
        SourceError::Ssh(format!("{}: {m}", self.describe()))
    }

    /// The finished backups and the unusable files, as [`super::folder::FolderSource::scan`].
    pub fn scan(&self) -> Result<Listing, SourceError> {
        self.rt.block_on(async {
            let conn = Connection::open(&self.cfg, &self.loc)
                .await
                .map_err(SourceError::Ssh)?;
            let r = self.scan_on(&conn).await;
            conn.close().await;
            Ok(r?.0)
        })
    }

    /// The newest complete backup, applying the folder source's settle rule.
    pub fn newest_complete(&self) -> Result<Selection, SourceError> {
        self.rt.block_on(async {
            let conn = Connection::open(&self.cfg, &self.loc)
                .await
                .map_err(SourceError::Ssh)?;
            let r = self.newest_on(&conn).await;
            conn.close().await;
            r
        })
    }

    /// Lists the folder: backups (oldest first), unusable files, and every name (for the
    /// `.tar`-beside-`.tar.gz` rule).
    async fn scan_on(&self, conn: &Connection) -> Result<(Listing, BTreeSet<String>), SourceError> {
        let folder = &self.loc.folder;
        let list_err = |e: &dyn std::fmt::Display| {
            let said = conn.ssh_said();
            self.err(format!(
                "cannot list the backups folder: {e}{}",
                if said.is_empty() {
                    String::new()
                } else {
                    format!(" ({said})")
                }
            ))
        };
        let mut fs = conn.sftp.fs();
        let dir = fs.open_dir(folder).await.map_err(|e| list_err(&e))?;
        let mut rd = Box::pin(dir.read_dir());
        let mut out = Listing::default();
        let mut names = BTreeSet::new();
        while let Some(entry) = std::future::poll_fn(|cx| Stream::poll_next(rd.as_mut(), cx)).await
        {
            let entry = entry.map_err(|e| list_err(&e))?;
            let Some(name) = entry.filename().to_str().map(str::to_string) else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            names.insert(name.clone());
            let kind = classify(&name);
            if matches!(kind, FileKind::Other | FileKind::InProgress(_)) {
                continue;
            }
            let mut meta = entry.metadata();
            // Follows symlinks on purpose, as the folder source does.
            if meta.file_type().is_some_and(|t| t.is_symlink()) {
                match fs.metadata(self.remote_path(&name)).await {
                    Ok(m) => meta = m,
                    Err(_) => continue, // dangling, or deleted meanwhile
                }
            }
            if !meta.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let modified = meta
                .modified()
                .map_or(SystemTime::UNIX_EPOCH, |t| t.as_system_time());
            let path = PathBuf::from(self.remote_path(&name));
            let origin = self.loc.origin(&name);
            out.add(kind, path, origin, meta.len().unwrap_or(0), modified);
        }
        out.sort();
        Ok((out, names))
    }

    /// The folder source's rule over SFTP (see [`settle_entries`]): the newest backup whose size
    /// and mtime stayed the same over the settle wait and whose `.tar` (gzip still running) is
    /// gone, and the complete ones below it.
    async fn newest_on(&self, conn: &Connection) -> Result<Selection, SourceError> {
        let (before, _) = self.scan_on(conn).await?;
        let mut selection = Selection {
            unusable: before.unusable,
            ..Selection::default()
        };
        if before.backups.is_empty() {
            return Ok(selection);
        }
        if !self.settle.is_zero() {
            tokio::time::sleep(self.settle).await;
        }
        let (after, names) = self.scan_on(conn).await?;
        settle_entries(
            before.backups,
            after.backups,
            self.settle,
            &mut selection,
            |entry| {
                let tar = entry.name.file_name.trim_end_matches(".gz");
                names.contains(tar).then(|| tar.to_string())
            },
        );
        Ok(selection)
    }

    /// The folder under `scratch` (default `$TMPDIR`) that holds this source's copies: one per
    /// account, host and folder, so two sources never share partial files.
    pub fn scratch_dir(&self, scratch: Option<&Path>) -> PathBuf {
        use sha2::Digest as _;
        let base = scratch.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let id = hex::encode(sha2::Sha256::digest(self.describe().as_bytes()));
        base.join(format!("dvault-ssh-{}", &id[..16]))
    }

    /// Picks the newest complete backup and copies it into the scratch folder (resuming an
    /// interrupted copy). `before`: with the admin API, names listed before the forum was asked
    /// for a backup (only a new one counts).
    pub fn fetch_newest(
        &self,
        scratch: Option<&Path>,
        note: super::Note<'_>,
        fresh_only: Option<&BTreeSet<String>>,
    ) -> Result<Option<super::Picked>, SourceError> {
        let dir = self.scratch_dir(scratch);
        self.rt.block_on(async {
            let conn = Connection::open(&self.cfg, &self.loc)
                .await
                .map_err(SourceError::Ssh)?;
            let r = self.pick_and_copy(&conn, &dir, note, fresh_only).await;
            conn.close().await;
            r
        })
    }

    async fn pick_and_copy(
        &self,
        conn: &Connection,
        dir: &Path,
        note: super::Note<'_>,
        fresh_only: Option<&BTreeSet<String>>,
    ) -> Result<Option<super::Picked>, SourceError> {
        let mut selection = self.newest_on(conn).await?;
        if let (Some(before), Some(e)) = (fresh_only, &selection.newest) {
            if before.contains(&e.name.file_name) {
                return Err(SourceError::NothingFound(format!(
                    "{}: no new complete backup appeared (newest is still {}); see the backup \
                     logs in the forum's admin panel",
                    self.describe(),
                    e.name.file_name
                )));
            }
        }
        let newest_modified = selection.newest.as_ref().map(|e| e.modified);
        let unusable = super::check_unusable(
            &self.describe(),
            newest_modified,
            std::mem::take(&mut selection.unusable),
        )?;
        let Some(entry) = selection.newest.take() else {
            return Ok(None);
        };
        let remote = entry.path.to_string_lossy().to_string();
        let origin = self.loc.origin(&entry.name.file_name);
        let file = conn
            .sftp
            .open(&remote)
            .await
            .map_err(|e| self.err(format!("cannot open {remote}: {e}")))?;
        let job = transfer::Job {
            remote: &remote,
            origin: &origin,
            file_name: &entry.name.file_name,
            size: entry.size,
            modified: entry.modified,
            dir,
            limit: self.cfg.bandwidth_limit,
        };
        let (path, figures) = transfer::fetch(file, &job, &mut *note).await.map_err(|m| {
            let said = conn.ssh_said();
            SourceError::Ssh(if said.is_empty() {
                m
            } else {
                format!("{m} (ssh: {said})")
            })
        })?;
        Ok(Some(super::Picked {
            path,
            name: entry.name,
            size: entry.size,
            modified: Some(entry.modified),
            origin,
            passed_over: selection
                .passed_over
                .into_iter()
                .map(|p| format!("{}: {}", self.loc.origin(&file_name(&p.path)), p.reason))
                .collect(),
            unusable,
            transfer: Some(figures),
            // Backfill over SSH would copy every older file across the network on a first
            // run; only the newest is pulled (the folder and S3 sources backfill).
            older: Vec::new(),
            _download: None,
        }))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}
