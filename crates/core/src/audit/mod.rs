//! The audit trail: who did what to the backups, kept in the repository itself.
//!
//! Every backup, restore, put-back, drill, check, forget and prune appends one record (time,
//! host, user, command, the snapshots and SHA-256s involved, the outcome and its figures). A
//! record is a small restic snapshot of its own: tag [`TAG`], the record as JSON in the
//! snapshot's description and as the one file `dvault-audit.json` in its tree. So it lives
//! where the backups live (off-site, encrypted), the stock `restic` still checks and reads the
//! repository, and on an append-only server the backup host cannot delete it. dvault's own
//! listing and retention count only snapshots tagged `dvault`, so audit records are never
//! listed as backups nor removed by `forget`.
//!
//! Each record names the newest audit record it saw (`previous`), so `dvault check` notices a
//! deleted record as well as a backup snapshot that vanished without a forget record (see
//! [`gaps`]). The writing (rustic) side is in `store/restic/audit_store.rs`.

pub mod gaps;
mod record;

pub use record::{AuditOutcome, AuditRecord, Figures, Operation};

use std::cell::Cell;
use std::time::Instant;

use crate::repo::{BackupOutcome, CheckReport, ForgetReport, Repo, RepoError, SnapshotInfo};
use crate::snapshot::BackupMeta;

/// Tag of every audit snapshot. Stock restic users keep them with `--keep-tag dvault-audit`.
pub const TAG: &str = "dvault-audit";

/// Name of the one file in an audit snapshot's tree (`restic dump ID dvault-audit.json`).
pub const FILE_NAME: &str = "dvault-audit.json";

thread_local! {
    // Depth of operations that write their own record (drill, put-back): the restores they do
    // on the way are part of that record, not records of their own.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// While alive, restores on this thread are covered by an outer record (a drill's, a
/// put-back's) and write none of their own.
#[derive(Debug)]
pub struct Scope(());

impl Scope {
    /// Enters an operation that writes its own record.
    pub fn enter() -> Self {
        DEPTH.with(|d| d.set(d.get() + 1));
        Scope(())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

fn nested() -> bool {
    DEPTH.with(|d| d.get() > 0)
}

/// Appends `record`; a failure is a warning, never the operation's failure (it happened).
pub fn append(repo: &Repo, record: AuditRecord) {
    if std::env::var_os("DVAULT_AUDIT").is_some_and(|v| v == "off") {
        return;
    }
    if let Err(e) = repo.append_audit(&record) {
        tracing::warn!(
            "{} finished, but its audit record could not be written to {}: {e}",
            record.operation.as_str(),
            repo.location()
        );
    }
}

/// Records a backup (stored, already stored, or failed).
pub fn backup(
    repo: &Repo,
    meta: &BackupMeta,
    result: &Result<BackupOutcome, RepoError>,
    started: Instant,
) {
    let mut r = AuditRecord::now(Operation::Backup, started);
    r.files.push(meta.file_name.clone());
    r.sha256.push(meta.sha256.clone());
    r.site.clone_from(&meta.discourse.site);
    r.figures.bytes_read = Some(meta.size);
    match result {
        Ok(BackupOutcome::Stored(s)) => {
            r.snapshots.push(s.snapshot.id.clone());
            r.figures.bytes_added = Some(s.bytes_added_packed);
            r.figures.bytes_stored = Some(s.bytes_added_packed);
        }
        Ok(BackupOutcome::AlreadyStored { snapshot }) => {
            r.snapshots.push(snapshot.id.clone());
            r.detail = Some(format!("already stored in snapshot {}", snapshot.short_id));
        }
        Err(e) => r.failed(e),
    }
    append(repo, r);
}

/// Records a restore of snapshot `id` (skipped inside a drill or put-back).
pub fn restore(
    repo: &Repo,
    id: &str,
    to: &std::path::Path,
    result: &Result<SnapshotInfo, RepoError>,
    started: Instant,
) {
    if nested() {
        return;
    }
    let mut r = AuditRecord::now(Operation::Restore, started);
    r.detail = Some(format!("to {}", to.display()));
    r.snapshot_info(id, result.as_ref().ok());
    if let Err(e) = result {
        r.failed(e);
    }
    append(repo, r);
}

/// Records a check with its error and warning counts.
pub fn check(repo: &Repo, result: &Result<CheckReport, RepoError>, started: Instant) {
    let mut r = AuditRecord::now(Operation::Check, started);
    match result {
        Ok(c) => {
            r.figures.errors = Some(c.errors.len() as u64);
            r.figures.warnings = Some(c.warnings.len() as u64);
            if !c.is_ok() {
                r.outcome = AuditOutcome::Failed;
                r.detail = c.errors.first().cloned();
            }
        }
        Err(e) => r.failed(e),
    }
    append(repo, r);
}

/// Records a forget (the snapshots it removed) and, when it pruned, the prune. Dry runs change
/// nothing and are not recorded.
pub fn forget(
    repo: &Repo,
    dry_run: bool,
    prune: bool,
    result: &Result<ForgetReport, RepoError>,
    started: Instant,
) {
    if dry_run {
        return;
    }
    let mut r = AuditRecord::now(Operation::Forget, started);
    match result {
        Ok(f) => {
            for d in f
                .decisions
                .iter()
                .filter(|d| f.removed.contains(&d.snapshot.id))
            {
                r.snapshots.push(d.snapshot.id.clone());
                r.files.push(d.snapshot.meta.file_name.clone());
                r.sha256.push(d.snapshot.meta.sha256.clone());
            }
            r.figures.removed = Some(f.removed.len() as u64);
            append(repo, r);
            if let Some(p) = &f.prune {
                let mut p_rec = AuditRecord::now(Operation::Prune, started);
                p_rec.figures.freed_bytes = Some(p.freed_bytes);
                p_rec.figures.repository_bytes = repo.storage_figures().ok().map(|s| s.bytes);
                append(repo, p_rec);
            }
        }
        Err(e) => {
            r.failed(e);
            // Which of the two failed is in the error; an append-only refusal is the usual one.
            if prune {
                r.detail = Some(format!("forget --prune: {}", r.detail.unwrap_or_default()));
            }
            append(repo, r);
        }
    }
}

/// Records a restore drill of snapshot `id` (`None`: the newest) with its timings.
pub fn drill(
    repo: &Repo,
    id: Option<&str>,
    result: &anyhow::Result<crate::drill::DrillReport>,
    started: Instant,
) {
    let mut r = AuditRecord::now(Operation::Drill, started);
    match result {
        Ok(d) => {
            let info = d
                .snapshot
                .as_deref()
                .and_then(|s| repo.find(s).ok())
                .or_else(|| id.and_then(|s| repo.find(s).ok()));
            r.snapshot_info(
                d.snapshot.as_deref().or(id).unwrap_or("latest"),
                info.as_ref(),
            );
            if r.sha256.is_empty() && !d.sha256.is_empty() {
                r.sha256.push(d.sha256.clone());
            }
            r.figures.restore_seconds = Some(d.timings.rebuild_secs);
            if !d.ok {
                r.outcome = AuditOutcome::Failed;
                r.detail = Some(format!(
                    "{} problem(s), first: {}",
                    d.failures.len(),
                    d.failures.first().map_or("-", String::as_str)
                ));
            }
        }
        Err(e) => {
            r.snapshot_info(id.unwrap_or("latest"), None);
            r.outcome = AuditOutcome::Failed;
            r.detail = Some(crate::redact::string(&format!("{e:#}")));
        }
    }
    append(repo, r);
}

/// Records a put-back of snapshot `id` into a forum's backups.
pub fn put_back(
    repo: &Repo,
    id: &str,
    target: &str,
    result: &Result<crate::putback::PutBack, crate::putback::PutBackError>,
    started: Instant,
) {
    let mut r = AuditRecord::now(Operation::PutBack, started);
    match result {
        Ok(p) => {
            r.snapshot_info(id, Some(&p.snapshot));
            r.detail = Some(format!("into {}", p.placed_at));
        }
        Err(e) => {
            r.snapshot_info(id, repo.find(id).ok().as_ref());
            r.outcome = AuditOutcome::Failed;
            r.detail = Some(format!(
                "into {target}: {}",
                crate::redact::string(&e.to_string())
            ));
        }
    }
    append(repo, r);
}
