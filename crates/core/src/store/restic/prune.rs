//! Prune: deletes the pack files no snapshot needs and repacks partly used ones, with restic's
//! default tolerance, and reports what it really did.
//!
//! rustic_core 0.13's defaults differ from restic's in one way that matters on a small
//! repository: it repacks at most 10 % of the repository per run (`max_repack`), where restic
//! has no such limit (`--max-repack-size` unset). A dvault prune therefore left a quarter of a
//! small repository unused that `restic prune` would have repacked. dvault uses restic's
//! defaults: no repack limit, at most 5 % unused data left (`--max-unused 5%`).
//!
//! The figures come from the plan (packs deleted and repacked, bytes of blobs in them) and from
//! listing the pack files before and after, which is what the storage really freed: the plan's
//! `size_to_delete` counts only packs marked for deletion by an earlier prune, which dvault
//! never leaves (it deletes at once), so it said "freed 0 bytes" while `data/` shrank.

use rustic_core::{LimitOption, OpenStatus, PruneOptions, Repository};

use crate::repo::{PruneReport, RepoError};

/// Bytes of one blob's entry in a pack header (type, length, id; restic's design.rst), for an
/// uncompressed blob; a compressed one has 4 more (its uncompressed length).
const HEADER_ENTRY: u64 = 37;
/// Bytes a pack header costs besides its entries: IV and MAC of its encryption, and the
/// 4-byte header length at the end of the pack.
const PACK_OVERHEAD: u64 = 16 + 16 + 4;

/// restic's defaults (see the module docs), deleting at once: rustic_core otherwise keeps
/// unused packs 23 h after marking them (for backups running at the same time from other
/// hosts), so a prune would free nothing today. dvault's commands that write hold the
/// repository lock, and restic's own prune deletes at once too.
pub(crate) fn options() -> PruneOptions {
    let mut opts = PruneOptions::default();
    opts.instant_delete = true;
    opts.max_repack = LimitOption::Unlimited;
    opts.max_unused = LimitOption::Percentage(5);
    opts
}

/// Plans and runs the prune; `pack_bytes` lists the total size of the pack files (called
/// before and after). Returns the report, or rustic's error of the step that failed.
pub(crate) fn run(
    repo: &Repository<OpenStatus>,
    pack_bytes: impl Fn() -> Result<u64, RepoError>,
) -> Result<PruneReport, PruneError> {
    let opts = options();
    let plan = repo.prune_plan(&opts).map_err(PruneError::Plan)?;
    let mut report = PruneReport::default();
    // Header entries of the blobs that go, and header overhead (IV, MAC, length) per pack.
    let mut header_bytes = 0;
    for (key, d) in &plan.stats.debug.0 {
        // rustic_core does not export the enum's type; its Debug name is stable.
        match format!("{:?}", key.todo).as_str() {
            // With instant deletion, packs an earlier prune marked go too.
            "MarkDelete" | "Delete" | "KeepMarked" | "KeepMarkedAndCorrect" => {
                report.packs_deleted += d.packs;
                report.bytes_deleted += d.used_size + d.unused_size;
                header_bytes +=
                    (d.used_blobs + d.unused_blobs) * HEADER_ENTRY + d.packs * PACK_OVERHEAD;
            }
            "Repack" => {
                report.packs_repacked += d.packs;
                report.bytes_repacked += d.used_size + d.unused_size;
                report.bytes_unused_dropped += d.unused_size;
                // The used blobs' entries move to the new packs; the dropped ones go.
                header_bytes += d.unused_blobs * HEADER_ENTRY;
            }
            _ => {}
        }
    }
    // Packs in no index file are deleted whole too.
    report.packs_deleted += plan.stats.packs_unref;
    report.bytes_deleted += plan.stats.size_unref;
    report.planned_freed_bytes = report.bytes_deleted + report.bytes_unused_dropped + header_bytes;
    report.unused_bytes_left = plan.stats.size_sum().unused_after_prune();
    report.pack_bytes_before = pack_bytes().map_err(PruneError::List)?;
    repo.prune(&opts, plan).map_err(PruneError::Prune)?;
    report.pack_bytes_after = pack_bytes().map_err(PruneError::List)?;
    report.freed_bytes = report
        .pack_bytes_before
        .saturating_sub(report.pack_bytes_after);
    Ok(report)
}

/// Which step of a prune failed.
pub(crate) enum PruneError {
    /// Planning (reading the index and snapshots).
    Plan(Box<rustic_core::RusticError>),
    /// Listing the pack files.
    List(RepoError),
    /// Repacking and deleting.
    Prune(Box<rustic_core::RusticError>),
}
