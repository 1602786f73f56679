//! Drilling a snapshot of the repository.

use std::time::Instant;

use anyhow::{anyhow, Result};

use super::{drill_file_into, work_dir, DrillOptions, DrillReport};
use crate::repo::Repo;

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
