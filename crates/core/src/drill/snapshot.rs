//! Drilling a snapshot of the repository, and the drill step of `dvault run`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use super::{drill_file_into, work_dir, DrillInput, DrillOptions, DrillReport, PostgresTarget};
use crate::config::{DrillConfig, SiteConfig};
use crate::repo::tarsnap::{TarsnapConfig, TarsnapStore};
use crate::repo::tarsnap_ledger::Ledger;
use crate::repo::Repo;
use crate::run::{DrillDone, DrillHook};

/// Takes snapshot `id` (the newest dvault snapshot when `None`) out of `repo`, rebuilds the
/// original file (the repository checks its SHA-256 against the snapshot's record) and drills
/// it. A snapshot that cannot be taken out (a damaged pack, a missing blob) is a failure in the
/// report; `Err` means the drill could not run.
pub fn drill_snapshot(repo: &Repo, id: Option<&str>, opts: &DrillOptions) -> Result<DrillReport> {
    let (started, scope) = (Instant::now(), crate::audit::Scope::enter());
    let r = drill_snapshot_unaudited(repo, id, opts);
    drop(scope);
    crate::audit::drill(repo, id, &r, started);
    r
}

fn drill_snapshot_unaudited(
    repo: &Repo,
    id: Option<&str>,
    opts: &DrillOptions,
) -> Result<DrillReport> {
    let started = Instant::now();
    let id = match id {
        Some(id) => id.to_string(),
        None => repo
            .snapshots()?
            .last()
            .map(|s| s.id.clone())
            .ok_or_else(|| anyhow!("the repository has no dvault snapshots to drill"))?,
    };
    let work = work_dir(opts)?;
    let info = repo
        .snapshots()?
        .into_iter()
        .find(|s| s.id.starts_with(&id));
    let name = info
        .as_ref()
        .map(|i| i.meta.file_name.clone())
        .unwrap_or_else(|| format!("snapshot {id}"));
    let mut report = DrillReport::new(name.clone());
    report.snapshot = Some(info.as_ref().map_or(id.clone(), |i| i.short_id.clone()));
    let out = work.path().join(
        std::path::Path::new(&name)
            .file_name()
            .unwrap_or_else(|| std::ffi::OsStr::new("backup")),
    );
    let t = Instant::now();
    match repo.restore_file(&id, &out) {
        Ok(info) => {
            report.timings.rebuild_secs = t.elapsed().as_secs_f64();
            report.snapshot = Some(info.short_id.clone());
            drill_file_into(
                &out,
                Some(info.meta.sha256.clone()),
                opts,
                work.path(),
                &mut report,
            )?;
        }
        Err(e) => {
            report.timings.rebuild_secs = t.elapsed().as_secs_f64();
            report.failures.push(format!(
                "snapshot {}: taking {name} out of the repository failed: {e:#}",
                report.snapshot.as_deref().unwrap_or(&id)
            ));
        }
    }
    report.timings.total_secs = started.elapsed().as_secs_f64();
    report.ok = report.failures.is_empty();
    Ok(report)
}

/// The drill step of `dvault run`: drills the snapshot the run names (of a site's repository,
/// or an archive of a Tarsnap site) into the server of `[sites.X.drill] postgres_url`, or a
/// throwaway cluster.
#[derive(Debug, Clone, Default)]
pub struct RepoDrillHook {
    /// Repository metadata cache (the config's `cache_dir`).
    pub cache_dir: Option<PathBuf>,
    /// Where the original is rebuilt (the config's `scratch_dir`); `$TMPDIR` when `None`.
    pub scratch_dir: Option<PathBuf>,
    /// dvault's state folder, where a Tarsnap site's ledger is.
    pub state_dir: Option<PathBuf>,
}

impl DrillHook for RepoDrillHook {
    fn drill(
        &self,
        name: &str,
        site: &SiteConfig,
        drill: &DrillConfig,
        snapshot: &str,
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
        let report = match (&site.tarsnap, &site.repository) {
            (Some(t), _) => self.drill_tarsnap(name, t, snapshot, &opts)?,
            (None, Some(r)) => {
                let repo = crate::run::open_repository(
                    r,
                    self.cache_dir.clone(),
                    self.scratch_dir.clone(),
                )
                .with_context(|| format!("site {name}: opening {}", r.location))?;
                let report = drill_snapshot(&repo, Some(snapshot), &opts)?;
                if let (true, Some(t)) = (report.ok, &drill.put_back) {
                    log(&crate::putback::after_drill(
                        &repo,
                        snapshot,
                        t,
                        drill.put_back_restore.as_ref(),
                        &self.scratch_dir,
                    )?);
                }
                report
            }
            (None, None) => return Err(anyhow!("site {name} has no store to drill")),
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

impl RepoDrillHook {
    /// Reads archive `archive` back from Tarsnap (with the admin key) and drills the rebuilt
    /// file against the SHA-256 the ledger recorded when it was stored.
    fn drill_tarsnap(
        &self,
        name: &str,
        t: &TarsnapConfig,
        archive: &str,
        opts: &DrillOptions,
    ) -> Result<DrillReport> {
        let state_dir = self
            .state_dir
            .as_deref()
            .ok_or_else(|| anyhow!("site {name}: no state folder to find the Tarsnap ledger in"))?;
        let ledger_path = Ledger::path(state_dir, name);
        let ledger = Ledger::load(&ledger_path)?;
        let entry = ledger.archive(archive).ok_or_else(|| {
            anyhow!(
                "site {name}: {} does not list Tarsnap archive {archive} to drill",
                ledger_path.display()
            )
        })?;
        let work = work_dir(opts)?;
        let out = work.path().join(&entry.file_name);
        let mut file =
            std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
        let restored = TarsnapStore::new(t.clone()).restore(&entry.archive, &mut file);
        drop(file);
        if let Err(e) = restored {
            let mut report = DrillReport::new(entry.file_name.clone());
            report.snapshot = Some(entry.archive.clone());
            report.failures.push(format!(
                "tarsnap archive {}: reading it back failed: {e:#}",
                entry.archive
            ));
            return Ok(report);
        }
        let mut report = super::drill(
            &DrillInput::File {
                path: out,
                expected_sha256: Some(entry.sha256.clone()),
            },
            opts,
        )?;
        report.snapshot = Some(entry.archive.clone());
        Ok(report)
    }
}
