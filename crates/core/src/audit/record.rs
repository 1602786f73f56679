//! One audit record: what was done, by whom, to which snapshots, and how it ended.
//!
//! Stored as JSON; every field but the first few has a default, so records written by an older
//! or newer dvault still read.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::repo::{RepoError, SnapshotInfo};

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// `backup` (or a backup of `run`).
    Backup,
    /// `restore --to` / `--expanded`.
    Restore,
    /// `restore --to-discourse` or a drill's `put_back`.
    PutBack,
    /// A restore drill.
    Drill,
    /// `check`.
    Check,
    /// `forget` (not a dry run).
    Forget,
    /// The prune of `forget --prune`.
    Prune,
}

impl Operation {
    /// The name as written in records and tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Backup => "backup",
            Operation::Restore => "restore",
            Operation::PutBack => "put-back",
            Operation::Drill => "drill",
            Operation::Check => "check",
            Operation::Forget => "forget",
            Operation::Prune => "prune",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It succeeded.
    Ok,
    /// It failed (see `detail`).
    Failed,
}

/// Figures of the operation (those that apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Backup: size of the original file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
    /// Backup: new data before compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_added: Option<u64>,
    /// Backup: new data as stored (compressed, encrypted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_stored: Option<u64>,
    /// Drill: seconds to take the original out of the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<f64>,
    /// Forget: snapshots removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// Prune: bytes freed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freed_bytes: Option<u64>,
    /// Prune: repository size afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_bytes: Option<u64>,
    /// Check: errors found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    /// Check: warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<u64>,
}

/// One record of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The audit snapshot holding the record (full hex id); set when read, not stored.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// When the operation ended (RFC 3339, UTC).
    pub time: String,
    /// Host it ran on.
    pub host: String,
    /// User it ran as (`name (uid N)`; the name from `$USER`, which that user can set).
    pub user: String,
    /// What was done.
    pub operation: Operation,
    /// The command line, any password in a URL hidden.
    #[serde(default)]
    pub command: String,
    /// Snapshots involved (full hex ids): stored, restored, drilled, removed.
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// The original backup files involved.
    #[serde(default)]
    pub files: Vec<String>,
    /// Their SHA-256s.
    #[serde(default)]
    pub sha256: Vec<String>,
    /// The site, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The error of a failure, or a note (where a restore went, "already stored").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How long it took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Figures that apply to the operation.
    #[serde(default)]
    pub figures: Figures,
    /// The newest audit record the writer saw (full hex id); lets `check` notice a deleted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// dvault version that wrote it.
    #[serde(default)]
    pub version: String,
}

impl AuditRecord {
    /// A successful record of `operation` by this process, ending now.
    pub fn now(operation: Operation, started: Instant) -> Self {
        let command: Vec<String> = std::env::args().collect();
        AuditRecord {
            id: String::new(),
            time: jiff::Timestamp::now().to_string(),
            host: crate::snapshot::hostname(),
            user: current_user(),
            operation,
            command: crate::redact::text(&command.join(" ")).into_owned(),
            snapshots: Vec::new(),
            files: Vec::new(),
            sha256: Vec::new(),
            site: None,
            outcome: AuditOutcome::Ok,
            detail: None,
            seconds: Some(started.elapsed().as_secs_f64()),
            figures: Figures::default(),
            previous: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Marks it failed with `e` as the detail.
    pub(crate) fn failed(&mut self, e: &RepoError) {
        self.outcome = AuditOutcome::Failed;
        self.detail = Some(crate::redact::string(&e.to_string()));
    }

    /// Names the snapshot (`id` as given when `info` is unknown) and its file.
    pub(crate) fn snapshot_info(&mut self, id: &str, info: Option<&SnapshotInfo>) {
        match info {
            Some(i) => {
                self.snapshots.push(i.id.clone());
                self.files.push(i.meta.file_name.clone());
                self.sha256.push(i.meta.sha256.clone());
                self.site.clone_from(&i.meta.discourse.site);
            }
            None => self.snapshots.push(id.to_string()),
        }
    }

    /// Seconds since the Unix epoch of `time` (0 when unreadable).
    pub fn unix_time(&self) -> f64 {
        self.time
            .parse::<jiff::Timestamp>()
            .map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0)
    }
}

/// `name (uid N)`: the name from the environment (as `id -un` would say for a login), the uid
/// from the kernel.
fn current_user() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| passwd_name(uid))
        .unwrap_or_else(|| "?".to_string());
    format!("{name} (uid {uid})")
}

/// The user's name in the password database (for a cron or systemd job without `$USER`).
fn passwd_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: pwd and result are written by getpwuid_r; buf outlives the use of pw_name.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) != 0
            || result.is_null()
        {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}
