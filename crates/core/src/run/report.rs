//! What a run says: the figures of a stored backup, each site's report, the whole run's report
//! and the log events the loop emits. Only data: how a log line looks (time stamp, text or
//! JSON) is the CLI's business (`dvault`'s `json_log::render`).

use serde::Serialize;

use super::{Backfilled, Stored};

/// `stored as snapshot X: read 1.2 GiB, added 30.5 MiB`, the one wording of a stored backup.
pub(super) fn stored_line(s: &Stored) -> String {
    format!(
        "stored as snapshot {}: read {}, added {}",
        s.snapshot,
        crate::figures::bytes(s.bytes_read),
        crate::figures::bytes(s.bytes_added)
    )
}

/// How one site's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new backup was stored.
    Stored,
    /// The newest backup was stored before; nothing new.
    AlreadyStored,
    /// Something failed (see `error`).
    Failed,
    /// Another run held the repository lock.
    Locked,
}

/// The report of one site.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    /// Site name.
    pub site: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The backup file considered.
    pub file: Option<String>,
    /// Its SHA-256.
    pub sha256: Option<String>,
    /// The snapshot holding it (new or existing).
    pub snapshot: Option<String>,
    /// Figures when a backup was stored.
    pub stored: Option<Stored>,
    /// Older backups of the source stored by this run before the newest, oldest first.
    pub backfilled: Vec<Backfilled>,
    /// Snapshots in the repository after the run.
    pub snapshots: Option<u64>,
    /// What retention did.
    pub retention: Option<String>,
    /// What the check did.
    pub check: Option<String>,
    /// What the drill did.
    pub drill: Option<String>,
    /// The error, when failed or locked.
    pub error: Option<String>,
    /// Warnings: files named like backups that cannot be used.
    pub warnings: Vec<String>,
    /// The copy over SSH, when the source is `ssh`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::source::ssh::Transfer>,
    /// What the run did in the site's second repository (`[sites.NAME.copy_to]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<SecondCopy>,
    /// Seconds the site took.
    pub seconds: f64,
}

impl SiteReport {
    /// A failed report of site `name` with nothing done yet, filled in as the steps go.
    pub(super) fn new(name: &str) -> Self {
        SiteReport {
            site: name.to_string(),
            outcome: Outcome::Failed,
            file: None,
            sha256: None,
            snapshot: None,
            stored: None,
            backfilled: Vec::new(),
            snapshots: None,
            retention: None,
            check: None,
            drill: None,
            error: None,
            warnings: Vec::new(),
            transfer: None,
            copy: None,
            seconds: 0.0,
        }
    }
}

/// The report of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// One entry per selected site.
    pub sites: Vec<SiteReport>,
    /// The exit code the command should return.
    pub exit_code: i32,
}

/// What a run did in a site's second repository (`[sites.NAME.copy_to]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SecondCopy {
    /// The second repository (password hidden).
    pub location: String,
    /// Snapshots copied into it by this run (short ids in the first repository).
    pub copied: Vec<String>,
    /// Snapshots it held already (same SHA-256).
    pub already_there: usize,
    /// What retention did there.
    pub retention: Option<String>,
    /// Snapshots in it after the run.
    pub snapshots: u64,
}

/// One line of the run's log.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LogEvent<'a> {
    /// `info`, `warn` or `error`.
    pub level: &'a str,
    /// The site it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<&'a str>,
    /// The text.
    pub message: &'a str,
}
