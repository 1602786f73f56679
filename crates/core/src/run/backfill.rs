//! The backlog of `dvault run`: the complete backups of a source that are newer than the newest
//! backup of the site already stored, besides the newest one itself (which the run loop
//! handles). Discourse keeps `maximum_backups` files, so after a few days without a run, or on
//! a first run, several backups wait in the folder; they are stored oldest first, then
//! retention runs once.
//!
//! "Not stored yet" means newer (by the time in the name) than the site's newest stored backup,
//! not "no snapshot holds it": a backup older than that was either stored and later removed by
//! retention, or deliberately left behind, and storing it again would fight retention on every
//! run. A first run (nothing of the site stored) takes the whole folder, bounded by
//! `source.backfill_limit` (the newest that many, the newest backup included); the ones over the
//! limit are named in the log and never stored. Each backup is still checked by SHA-256 before
//! it is stored, so nothing is stored twice.
//!
//! An older backup that fails to store is a warning, not the site's failure: a damaged old file
//! would otherwise stop the newest backup from being stored on every run.

use anyhow::Context as _;

use super::site::SiteLog;
use super::{Store, Stored};
use crate::config::SiteConfig;
use crate::source::{self, Older, Picked};

/// One older backup stored (or found stored) by this run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Backfilled {
    /// Its file name.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// The snapshot holding it.
    pub snapshot: String,
    /// Figures when it was stored by this run (`None`: already stored).
    pub stored: Option<Stored>,
}

/// The older backups (of `older`, oldest first) to store, oldest first, and those left over
/// the limit (also `dvault run --dry-run`'s list).
pub fn pending<'p>(
    older: &'p [Older],
    newest_stored: Option<&str>,
    limit: u32,
) -> (Vec<&'p Older>, Vec<&'p Older>) {
    let newer: Vec<&Older> = older
        .iter()
        .filter(|o| match (o.name.time.as_deref(), newest_stored) {
            (Some(t), Some(stored)) => t > stored,
            (Some(_), None) => true,
            // No time at all: nothing says it is new.
            (None, _) => false,
        })
        .collect();
    // The newest backup counts as one of the limit.
    let room = (limit as usize).saturating_sub(1);
    let left = newer.len().saturating_sub(room);
    (newer[left..].to_vec(), newer[..left].to_vec())
}

/// Stores the older backups the run has not stored yet (see the module doc); the figures of
/// each go into `done`, problems into `warnings`.
pub(super) fn store_older(
    site: &SiteConfig,
    scratch: Option<&std::path::Path>,
    store: &dyn Store,
    picked: &Picked,
    log: &mut SiteLog<'_>,
    done: &mut Vec<Backfilled>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<()> {
    if picked.older.is_empty() {
        return Ok(());
    }
    // The folder or bucket prefix, for snapshots stored before the config's site was recorded.
    let prefix = picked
        .origin
        .strip_suffix(picked.name.file_name.as_str())
        .unwrap_or(&picked.origin);
    let newest_stored = store.newest_stored(prefix)?;
    let (todo, over) = pending(
        &picked.older,
        newest_stored.as_deref(),
        site.source.backfill_limit,
    );
    let left = over.len();
    if left > 0 {
        log.say(
            "info",
            &format!(
                "{left} older backup(s) not stored: source.backfill_limit = {} (the newest \
                 backups are stored first)",
                site.source.backfill_limit
            ),
        );
    }
    for older in todo {
        if crate::interrupt::stopping() {
            anyhow::bail!("stopped by a signal before storing {}", older.origin);
        }
        match store_one(site, scratch, store, older, log) {
            Ok(b) => done.push(b),
            Err(e) => {
                let w = format!("older backup {} not stored: {e:#}", older.origin);
                log.say("warn", &w);
                warnings.push(w);
            }
        }
    }
    Ok(())
}

fn store_one(
    site: &SiteConfig,
    scratch: Option<&std::path::Path>,
    store: &dyn Store,
    older: &Older,
    log: &mut SiteLog<'_>,
) -> anyhow::Result<Backfilled> {
    let picked = source::fetch_older(&site.source, scratch, older)?;
    let (_, sha) = crate::snapshot::sha256_file(&picked.path)
        .with_context(|| format!("reading {}", picked.origin))?;
    if let Some(snap) = store.find_sha256(&sha)? {
        log.say(
            "info",
            &format!(
                "{} is already stored in snapshot {snap}",
                older.name.file_name
            ),
        );
        return Ok(Backfilled {
            file: older.name.file_name.clone(),
            sha256: sha,
            snapshot: snap,
            stored: None,
        });
    }
    log.say(
        "info",
        &format!(
            "storing the older backup {} ({})",
            picked.origin,
            crate::figures::bytes(picked.size)
        ),
    );
    let stored = store.store(&picked, &sha)?;
    log.say("info", &super::stored_line(&stored));
    Ok(Backfilled {
        file: older.name.file_name.clone(),
        sha256: sha,
        snapshot: stored.snapshot.clone(),
        stored: Some(stored),
    })
}
