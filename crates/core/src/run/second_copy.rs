//! The site's second repository (`[sites.NAME.copy_to]`, the off-site copy of the 3-2-1 rule):
//! after the run stored into the first repository and applied retention there, the site's
//! snapshots the second one lacks are copied into it with `dvault copy`'s machinery
//! ([`crate::repo::copy`]: blobs re-encrypted for its key, deduplication kept, the dvault record
//! with the SHA-256 proof carried over, this host's ledger of it updated), then the same
//! retention is applied there.
//!
//! Which snapshots: the site's snapshots in the first repository newer (by the backup's time)
//! than the site's newest in the second, and always the newest one. So a copy that failed in
//! an earlier run is caught up by the next, and a first run with `copy_to` copies everything;
//! an older snapshot that retention removed from the second repository is not copied back on
//! every run (the rule `backfill` follows for the source).
//!
//! A failure here fails the site (exit code, fail ping): the admin asked for two copies.

use anyhow::Context as _;

use super::site::{SiteLog, SiteRun};
use super::state::{now_secs, SiteState};
use super::{SecondCopy, SiteReport};
use crate::config::RepositoryConfig;
use crate::lock::RepoLock;
use crate::repo::SnapshotInfo;
use crate::store::Store;

/// Copies the site's new snapshots into `second` and applies retention there.
pub(super) fn copy(
    run: &SiteRun<'_>,
    store: &dyn Store,
    second: &RepositoryConfig,
    log: &mut SiteLog<'_>,
    report: &mut SiteReport,
    state: &mut SiteState,
) -> anyhow::Result<()> {
    let (config, name) = (run.config, run.name);
    // The first repository is the one the run already opened and holds the lock of.
    let source = store
        .repository()
        .context("copy_to needs the site's [repository]")?;
    let location = crate::redact::string(&second.location);
    let wait = config.lock_wait.unwrap_or_default();
    // This host's lock of the second repository, as `dvault copy` takes it.
    let _lock = RepoLock::acquire(
        run.state_dir,
        &crate::lock::location_key(&second.location),
        wait,
    )?;
    let target =
        super::open_repository(second, Some(config.cache_dir()), config.scratch_dir.clone())
            .with_context(|| format!("repository {location}"))?
            .with_state_dir(run.state_dir.to_path_buf())
            .with_lock_wait(wait);
    let ids = to_copy(&source.snapshots()?, &target.snapshots()?, name);
    if ids.is_empty() {
        // (An empty list would mean "every snapshot" to `copy_to`.)
        anyhow::bail!("no snapshot of site {name} in the first repository to copy");
    }
    log.say(
        "info",
        &format!("copying {} snapshot(s) to {location}", ids.len()),
    );
    let done = source
        .copy_to(&target, &ids)
        .with_context(|| format!("copying to {location}"))?;
    let mut out = SecondCopy {
        location: location.clone(),
        copied: done
            .copied
            .iter()
            .map(|c| c.source_id[..8].to_string())
            .collect(),
        already_there: done.already_there.len(),
        ..SecondCopy::default()
    };
    log.say(
        "info",
        &format!(
            "copied {} snapshot(s) to {location}, {} were there already",
            out.copied.len(),
            out.already_there
        ),
    );
    if let Some(r) = run.site.retention.as_ref().filter(|r| r.forget) {
        let f = target
            .forget(&r.for_site(name), false)
            .with_context(|| format!("retention in {location}"))?;
        let kept = f.decisions.iter().filter(|d| d.keep).count();
        let summary = format!("kept {kept}, removed {}", f.removed.len());
        log.say("info", &format!("retention in {location}: {summary}"));
        out.retention = Some(summary);
    }
    out.snapshots = target.snapshots()?.len() as u64;
    state.last_copy_success_time = Some(now_secs());
    state.copy_snapshots = Some(out.snapshots);
    report.copy = Some(out);
    Ok(())
}

/// The short ids of the site's snapshots in `first` to copy (see the module doc), oldest
/// first. Snapshots stored before the config's site was recorded count by no site at all.
fn to_copy(first: &[SnapshotInfo], second: &[SnapshotInfo], site: &str) -> Vec<String> {
    let of_site = |s: &&SnapshotInfo| s.meta.site.as_deref() == Some(site);
    let newest_there = second
        .iter()
        .filter(of_site)
        .filter_map(|s| s.meta.discourse.taken.clone())
        .max();
    let mut mine: Vec<&SnapshotInfo> = first.iter().filter(of_site).collect();
    mine.sort_by(|a, b| a.meta.discourse.taken.cmp(&b.meta.discourse.taken));
    let newest = mine.last().map(|s| s.id.clone());
    mine.iter()
        .filter(|s| {
            Some(&s.id) == newest.as_ref()
                || match (&s.meta.discourse.taken, &newest_there) {
                    (Some(t), Some(n)) => t > n,
                    (_, None) => true,
                    (None, Some(_)) => false,
                }
        })
        .map(|s| s.short_id.clone())
        .collect()
}
