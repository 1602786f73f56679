//! `dvault report`: what the operator has, per site, from the repository and the run state.
//!
//! Every figure that matters comes from the repository itself (the snapshots, the summaries
//! restic writes into them, the sizes of its files, and the audit trail), so a fresh host with
//! only the password can report on an existing repository; this host's run state adds when its
//! own runs last succeeded. [`text`] prints it, [`html`] draws it as one static page.

pub mod cost;
pub mod html;
mod plots;
pub mod sites;
pub mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::{AuditOutcome, AuditRecord, Operation};
use crate::config::Pricing;
use crate::repo::restic::figures::SnapshotFigures;
use crate::repo::{Repo, RepoError};
use crate::run::SiteState;
use cost::Cost;

/// Seconds in a day.
const DAY: f64 = 86_400.0;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it was made (RFC 3339).
    pub generated: String,
    /// One entry per site.
    pub sites: Vec<SiteReport>,
}

/// What one site has.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    /// The site (the config's name, or the site title in the backups' names).
    pub site: String,
    /// The repository (any password hidden).
    pub repository: String,
    /// Snapshots of the site.
    pub snapshots: u64,
    /// Time of the oldest (RFC 3339).
    pub oldest: Option<String>,
    /// Time of the newest.
    pub newest: Option<String>,
    /// The newest backup.
    pub last_backup: Option<LastBackup>,
    /// Bytes the repository occupies in its storage (all sites in it).
    pub repository_bytes: u64,
    /// Sum of the sizes of the original files the site's snapshots hold.
    pub original_bytes: u64,
    /// `original_bytes / repository_bytes`.
    pub dedup_ratio: Option<f64>,
    /// Bytes stored per day over the 30 days up to the newest snapshot (the first snapshot of
    /// the repository, which stores everything, not counted).
    pub growth_per_day: Option<f64>,
    /// The last successful check (from the audit trail, else this host's run state).
    pub last_check: Option<Event>,
    /// The last successful drill.
    pub last_drill: Option<Event>,
    /// The last failed check or drill after the last successful one, if any.
    pub last_failure: Option<Event>,
    /// Costs at the configured prices (`None` without `[pricing]`).
    pub cost: Option<Cost>,
    /// This host's run state of the site (`None` outside a config).
    pub run_state: Option<SiteState>,
    /// Series for the plots.
    pub history: History,
}

/// The newest backup's figures.
#[derive(Debug, Clone, Serialize)]
pub struct LastBackup {
    /// Snapshot time (the time in the backup's name).
    pub time: String,
    /// Short snapshot id.
    pub snapshot: String,
    /// Original file name.
    pub file: String,
    /// Seconds the backup took (the audit record's whole backup, else restic's storing step).
    pub seconds: f64,
    /// Size of the original file.
    pub bytes_read: u64,
    /// New data, before compression.
    pub bytes_added: u64,
    /// New data as stored.
    pub bytes_stored: u64,
}

/// A check, drill or other recorded operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// What it was (`check`, `drill`, ...).
    pub operation: String,
    /// When it ended (RFC 3339).
    pub time: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took.
    pub seconds: Option<f64>,
    /// A drill's restore time (taking the original out of the repository).
    pub restore_seconds: Option<f64>,
    /// The error or note.
    pub detail: Option<String>,
}

/// Time series (Unix seconds, value) for the plots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    /// Estimated repository size at each backup: the size now less what later backups stored.
    pub size: Vec<(f64, f64)>,
    /// Bytes stored per day (UTC days of the snapshot times).
    pub daily_growth: Vec<(f64, f64)>,
    /// Seconds of each backup, at the snapshot time.
    pub backup_seconds: Vec<(f64, f64)>,
    /// Seconds of each restore (restores and drills' restore steps), at the record time.
    pub restore_seconds: Vec<(f64, f64)>,
    /// Checks, drills, forgets and prunes as they happened.
    pub events: Vec<Event>,
}

/// Reports on the snapshots of `repo`, grouped by `site_of` (`None` leaves a snapshot out).
/// `state` gives a site's run state, `pricing` the prices.
pub fn gather(
    repo: &Repo,
    site_of: &dyn Fn(&SnapshotFigures) -> Option<String>,
    state: &dyn Fn(&str) -> Option<SiteState>,
    pricing: Option<&Pricing>,
) -> Result<Vec<SiteReport>, RepoError> {
    let storage = repo.storage_figures()?;
    let all = repo.snapshot_figures()?;
    let audit = repo.audit_records().unwrap_or_else(|e| {
        tracing::warn!("the audit trail could not be read: {e}");
        Vec::new()
    });
    let first_id = all.first().map(|s| s.info.id.clone());
    let mut groups: BTreeMap<String, Vec<&SnapshotFigures>> = BTreeMap::new();
    for s in &all {
        if let Some(site) = site_of(s) {
            groups.entry(site).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for (site, snaps) in groups {
        let ids: Vec<&str> = snaps.iter().map(|s| s.info.id.as_str()).collect();
        // The audit records of this site: those naming one of its snapshots, and the
        // repository-wide ones (check, prune) that name none.
        let records: Vec<&AuditRecord> = audit
            .iter()
            .filter(|r| {
                r.snapshots.is_empty()
                    || matches!(r.operation, Operation::Forget | Operation::Prune)
                    || r.snapshots
                        .iter()
                        .any(|id| ids.iter().any(|s| s.starts_with(id.as_str())))
            })
            .collect();
        let newest = snaps.last().copied();
        let egress = match (pricing, newest) {
            (Some(_), Some(n)) => Some(repo.restore_egress(&n.info.id)?),
            _ => None,
        };
        let st = state(&site);
        let mut r = SiteReport {
            site: site.clone(),
            repository: crate::redact::string(&repo.location().to_string()),
            snapshots: snaps.len() as u64,
            oldest: snaps.first().map(|s| s.info.time.clone()),
            newest: newest.map(|s| s.info.time.clone()),
            last_backup: newest.map(|n| last_backup(n, &records)),
            repository_bytes: storage.bytes,
            original_bytes: snaps.iter().map(|s| s.info.meta.size).sum(),
            dedup_ratio: None,
            growth_per_day: growth_per_day(&snaps, first_id.as_deref()),
            last_check: last_ok(&records, Operation::Check),
            last_drill: last_ok(&records, Operation::Drill),
            last_failure: None,
            cost: match (pricing, &egress) {
                (Some(p), Some(e)) => Some(Cost::new(p, storage.bytes, e.bytes, e.requests)),
                (Some(p), None) => Some(Cost::new(p, storage.bytes, 0, 0)),
                _ => None,
            },
            run_state: st.clone(),
            history: history(&snaps, &records, storage.bytes),
        };
        if r.repository_bytes > 0 {
            r.dedup_ratio = Some(r.original_bytes as f64 / r.repository_bytes as f64);
        }
        r.last_failure = last_failure(&r.history.events, &r.last_check, &r.last_drill);
        if let Some(st) = &st {
            r.last_check = r
                .last_check
                .or_else(|| from_state("check", st.last_check_success_time));
            r.last_drill = r
                .last_drill
                .or_else(|| from_state("drill", st.last_drill_success_time));
        }
        out.push(r);
    }
    Ok(out)
}

fn unix(rfc3339: &str) -> f64 {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0)
}

fn rfc3339(unix: f64) -> String {
    jiff::Timestamp::from_millisecond((unix * 1000.0) as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn last_backup(n: &SnapshotFigures, records: &[&AuditRecord]) -> LastBackup {
    let recorded = records
        .iter()
        .rev()
        .find(|r| r.operation == Operation::Backup && r.snapshots.contains(&n.info.id))
        .and_then(|r| r.seconds);
    LastBackup {
        time: n.info.time.clone(),
        snapshot: n.info.short_id.clone(),
        file: n.info.meta.file_name.clone(),
        seconds: recorded.unwrap_or(n.backup_seconds),
        bytes_read: n.info.meta.size,
        bytes_added: n.data_added,
        bytes_stored: n.data_added_packed,
    }
}

/// Stored bytes per day in the 30 days up to the newest snapshot, leaving out the repository's
/// first snapshot (it stores everything, which is no growth).
fn growth_per_day(snaps: &[&SnapshotFigures], first: Option<&str>) -> Option<f64> {
    let newest = unix(&snaps.last()?.info.time);
    let window: Vec<&&SnapshotFigures> = snaps
        .iter()
        .filter(|s| newest - unix(&s.info.time) <= 30.0 * DAY)
        .collect();
    let counted: Vec<&&&SnapshotFigures> = window
        .iter()
        .filter(|s| Some(s.info.id.as_str()) != first)
        .collect();
    if counted.is_empty() {
        return None;
    }
    let start = window
        .iter()
        .map(|s| unix(&s.info.time))
        .fold(newest, f64::min);
    let days = ((newest - start) / DAY).max(1.0);
    Some(
        counted
            .iter()
            .map(|s| s.data_added_packed as f64)
            .sum::<f64>()
            / days,
    )
}

fn event(r: &AuditRecord) -> Event {
    Event {
        operation: r.operation.as_str().to_string(),
        time: r.time.clone(),
        ok: r.outcome == AuditOutcome::Ok,
        seconds: r.seconds,
        restore_seconds: r.figures.restore_seconds,
        detail: r.detail.clone(),
    }
}

fn last_ok(records: &[&AuditRecord], op: Operation) -> Option<Event> {
    records
        .iter()
        .rev()
        .find(|r| r.operation == op && r.outcome == AuditOutcome::Ok)
        .map(|r| event(r))
}

/// The newest failed check or drill that is newer than the last success of its kind.
fn last_failure(events: &[Event], check: &Option<Event>, drill: &Option<Event>) -> Option<Event> {
    events
        .iter()
        .rev()
        .filter(|e| !e.ok && (e.operation == "check" || e.operation == "drill"))
        .find(|e| {
            let last = if e.operation == "check" { check } else { drill };
            last.as_ref().is_none_or(|l| unix(&l.time) < unix(&e.time))
        })
        .cloned()
}

fn from_state(op: &str, t: Option<f64>) -> Option<Event> {
    Some(Event {
        operation: op.to_string(),
        time: rfc3339(t?),
        ok: true,
        seconds: None,
        restore_seconds: None,
        detail: Some("from this host's run state".to_string()),
    })
}

fn history(snaps: &[&SnapshotFigures], records: &[&AuditRecord], repo_bytes: u64) -> History {
    let mut h = History::default();
    let mut later = 0u64;
    for s in snaps.iter().rev() {
        let size = repo_bytes.saturating_sub(later);
        h.size.push((unix(&s.info.time), size as f64));
        later += s.data_added_packed;
    }
    h.size.reverse();
    let mut days: BTreeMap<i64, f64> = BTreeMap::new();
    for s in snaps {
        let day = (unix(&s.info.time) / DAY).floor() as i64;
        *days.entry(day).or_default() += s.data_added_packed as f64;
        let recorded = records
            .iter()
            .find(|r| r.operation == Operation::Backup && r.snapshots.contains(&s.info.id))
            .and_then(|r| r.seconds);
        h.backup_seconds
            .push((unix(&s.info.time), recorded.unwrap_or(s.backup_seconds)));
    }
    h.daily_growth = days.into_iter().map(|(d, b)| (d as f64 * DAY, b)).collect();
    for r in records {
        let restore = match r.operation {
            Operation::Drill => r.figures.restore_seconds,
            Operation::Restore | Operation::PutBack => r.seconds,
            _ => None,
        };
        if let (Some(secs), AuditOutcome::Ok) = (restore, r.outcome) {
            h.restore_seconds.push((r.unix_time(), secs));
        }
        if r.operation != Operation::Backup {
            h.events.push(event(r));
        }
    }
    h
}
