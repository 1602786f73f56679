//! The drill step of `dvault run`: the [`DrillHook`] the run loop calls when a site's drill is
//! due, and [`RepoDrillHook`], which drills the snapshot the run names from the store the run
//! already opened (a restic-format repository, or a Tarsnap site's archives).

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::{drill_snapshot, work_dir, DrillInput, DrillOptions, DrillReport, PostgresTarget};
use crate::config::{DrillConfig, SiteConfig};
use crate::store::{RestoreError, Store};

/// The restore-drill step of `dvault run`, run when `[sites.X.drill]` is due; the run loop
/// holds the repository lock while it runs.
pub trait DrillHook {
    /// Proves that `snapshot` (a snapshot id, or a Tarsnap archive name) of the site restores,
    /// taking it out of `store` (the site's store, which the run opened); `Ok` carries a
    /// one-line summary. The run loop names the snapshot, because "the newest snapshot of the
    /// repository" may belong to another site sharing the repository, or tie in time with
    /// another backup of the same moment.
    fn drill(
        &self,
        name: &str,
        site: &SiteConfig,
        drill: &DrillConfig,
        snapshot: &str,
        store: &dyn Store,
        log: &mut dyn FnMut(&str),
    ) -> Result<DrillDone>;
}

/// What a drill that passed says: its one-line summary and how long the restore took.
#[derive(Debug, Clone)]
pub struct DrillDone {
    /// The one-line summary.
    pub summary: String,
    /// The restore's time in seconds (`dvault_last_drill_restore_seconds`).
    pub restore_secs: f64,
}

/// The drill step of `dvault run`: drills the snapshot the run names into the server of
/// `[sites.X.drill] postgres_url`, or a throwaway cluster.
#[derive(Debug, Clone, Default)]
pub struct RepoDrillHook {
    /// Where the original is rebuilt (the config's `scratch_dir`); `$TMPDIR` when `None`.
    pub scratch_dir: Option<PathBuf>,
}

impl DrillHook for RepoDrillHook {
    fn drill(
        &self,
        _name: &str,
        _site: &SiteConfig,
        drill: &DrillConfig,
        snapshot: &str,
        store: &dyn Store,
        log: &mut dyn FnMut(&str),
    ) -> Result<DrillDone> {
        let opts = DrillOptions {
            target: match &drill.postgres_url {
                Some(url) => PostgresTarget::Url(url.clone()),
                None => PostgresTarget::Temp,
            },
            work_dir: self.scratch_dir.clone(),
            // The same cap as the scheduled backup's expansion (peel's defaults).
            cap: Default::default(),
        };
        let report = match store.repository() {
            // A repository drill also leaves its audit record, and can put the snapshot back.
            Some(repo) => {
                let report = drill_snapshot(repo, Some(snapshot), &opts)?;
                if let (true, Some(t)) = (report.ok, &drill.put_back) {
                    log(&crate::putback::after_drill(
                        repo,
                        snapshot,
                        t,
                        drill.put_back_restore.as_ref(),
                        &self.scratch_dir,
                    )?);
                }
                report
            }
            None => drill_original(store, snapshot, &opts)?,
        };
        for f in &report.failures {
            log(&format!("drill failure: {f}"));
        }
        let line = super::one_line(&report);
        if report.ok {
            Ok(DrillDone {
                summary: line,
                restore_secs: report.timings.restore_secs,
            })
        } else {
            Err(anyhow!(line))
        }
    }
}

/// Reads `snapshot`'s original file back from `store` and drills it against the SHA-256 the
/// store recorded when it was stored (for Tarsnap, the host's ledger).
fn drill_original(store: &dyn Store, snapshot: &str, opts: &DrillOptions) -> Result<DrillReport> {
    let work = work_dir(opts)?;
    match store.restore_original(snapshot, work.path()) {
        Ok(original) => {
            let mut report = super::drill(
                &DrillInput::File {
                    path: original.path,
                    expected_sha256: Some(original.sha256),
                },
                opts,
            )?;
            report.snapshot = Some(original.snapshot);
            Ok(report)
        }
        Err(RestoreError::Unreadable { file_name, error }) => {
            let mut report = DrillReport::new(file_name);
            report.snapshot = Some(snapshot.to_string());
            report.failures.push(format!("{error:#}"));
            Ok(report)
        }
        Err(RestoreError::Unknown(e)) => Err(e),
    }
}
