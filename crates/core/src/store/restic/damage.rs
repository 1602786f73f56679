//! What a damaged or missing pack costs: the files and snapshots that need a blob in it.
//!
//! `check` names damaged packs by the first 8 hex digits of their id (rustic_core's messages);
//! a failed restore names none at all. Both then look the packs up in the index files, list
//! the blobs in each, and walk every snapshot's tree for files (and folders) that need one of
//! them, so the admin reads "pack data/… costs uploads/…/img2.jpg in snapshot 1a2b3c4d
//! (forum-2024-03-04-….tar)" instead of a pack id alone.

use std::collections::{BTreeMap, BTreeSet};

use rustic_core::repofile::{IndexFile, IndexId, SnapshotFile};
use rustic_core::{Id, IndexedFullStatus, LsOptions, Open, Repository};

/// Files listed per snapshot before "and N more".
const FILES_SHOWN: usize = 8;

/// The blobs of each pack (by pack id), from every readable index file.
pub(crate) struct PackBlobs(BTreeMap<Id, BTreeSet<Id>>);

impl PackBlobs {
    /// Reads the index files; unreadable ones are left out (check reports them itself).
    pub(crate) fn read<S: Open>(repo: &Repository<S>) -> Self {
        let mut packs = BTreeMap::new();
        if let Ok(ids) = repo.list::<IndexId>() {
            for id in ids {
                let Ok(index) = repo.get_file::<IndexFile>(&id) else {
                    continue;
                };
                for p in index.packs.iter().chain(&index.packs_to_delete) {
                    let blobs: &mut BTreeSet<Id> = packs.entry(*p.id).or_default();
                    blobs.extend(p.blobs.iter().map(|b| *b.id));
                }
            }
        }
        Self(packs)
    }

    /// The packs that check's `findings` name (by a full id or its first 8 hex digits).
    pub(crate) fn named_in(&self, findings: &[String]) -> Vec<Id> {
        let mut out = Vec::new();
        for id in self.0.keys() {
            let hex = id.to_hex();
            let short = &hex.as_str()[..8];
            let named = findings.iter().any(|f| {
                f.match_indices(short).any(|(at, _)| {
                    // Not part of a longer hex word other than the full id itself.
                    let before = f[..at].chars().next_back();
                    !before.is_some_and(|c| c.is_ascii_hexdigit())
                })
            });
            if named && !out.contains(id) {
                out.push(*id);
            }
        }
        out
    }
}

/// What one damaged pack costs.
pub(crate) struct PackCost {
    /// The pack's full id (hex).
    pub pack: String,
    /// For each snapshot (its label) that needs the pack: the paths that need it.
    pub snapshots: BTreeMap<String, BTreeSet<String>>,
}

impl PackCost {
    /// One line: the pack, then each snapshot with the files it loses.
    pub(crate) fn describe(&self) -> String {
        if self.snapshots.is_empty() {
            return format!(
                "pack data/{} costs no snapshot (no snapshot needs a blob in it)",
                self.pack
            );
        }
        let per_snapshot: Vec<String> = self
            .snapshots
            .iter()
            .map(|(label, paths)| {
                let mut shown: Vec<&str> = paths.iter().take(FILES_SHOWN).map(|p| &**p).collect();
                let more = paths.len().saturating_sub(FILES_SHOWN);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                if shown.is_empty() {
                    shown.push("(its directory listing)");
                }
                format!("snapshot {label}: {}{more}", shown.join(", "))
            })
            .collect();
        format!(
            "pack data/{} costs {} snapshot(s): {}",
            self.pack,
            self.snapshots.len(),
            per_snapshot.join("; ")
        )
    }
}

/// Walks every snapshot in `snapshots` (with its label) for the files and folders that need a
/// blob of one of `packs`.
pub(crate) fn cost(
    repo: &Repository<IndexedFullStatus>,
    blobs: &PackBlobs,
    packs: &[Id],
    snapshots: &[(String, SnapshotFile)],
) -> Vec<PackCost> {
    let mut out: Vec<PackCost> = packs
        .iter()
        .map(|p| PackCost {
            pack: p.to_hex().as_str().to_string(),
            snapshots: BTreeMap::new(),
        })
        .collect();
    let in_pack: Vec<&BTreeSet<Id>> = packs
        .iter()
        .map(|p| blobs.0.get(p).unwrap_or(&EMPTY))
        .collect();
    let mut note = |which: usize, label: &str, path: String| {
        out[which]
            .snapshots
            .entry(label.to_string())
            .or_default()
            .insert(path);
    };
    let find = |id: &Id| in_pack.iter().position(|s| s.contains(id));
    for (label, snap) in snapshots {
        if let Some(w) = find(&snap.tree) {
            note(w, label, "(every file: its top folder listing)".to_string());
            continue;
        }
        let Ok(root) = repo.node_from_snapshot_and_path(snap, "") else {
            continue;
        };
        let Ok(nodes) = repo.ls(&root, &LsOptions::default()) else {
            continue;
        };
        // A damaged folder listing ends the walk of this snapshot: what is below it was
        // noted with the folder.
        for (path, node) in nodes.map_while(Result::ok) {
            let path = path.to_string_lossy().into_owned();
            if let Some(w) = node.subtree.as_ref().and_then(|t| find(t)) {
                note(w, label, format!("{path}/ (the whole folder)"));
            }
            for data in node.content.iter().flatten() {
                if let Some(w) = find(data) {
                    note(w, label, path.clone());
                }
            }
        }
    }
    out
}

static EMPTY: BTreeSet<Id> = BTreeSet::new();
