//! The snapshots this host wrote to a repository and has not removed itself.
//!
//! In the restic format a deleted snapshot file leaves no trace: every other file is still
//! consistent, so no check of the repository alone can notice it. The backup host remembers
//! each snapshot it wrote (and forgets the ones it removes with `dvault forget`) in a small
//! JSON file in its state folder, one per repository (named by the repository's id, so a copy
//! of the repository at another place is the same repository). `dvault check` then names any
//! snapshot the ledger has and the repository lacks. Snapshots written by other hosts or tools
//! are not in it and are not checked this way. See docs/threat-model.md for what it cannot do
//! (whoever controls the backup host can edit the ledger too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// One snapshot this host wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    /// The snapshot's id (full hex).
    pub id: String,
    /// The original backup's file name.
    pub file_name: String,
    /// When it was written (RFC 3339, the host's clock).
    pub written: String,
}

/// The snapshots of one repository that this host wrote, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotLedger {
    /// Where the repository was when the ledger was last written (for people reading it), with
    /// any password in it replaced by `***`.
    pub location: String,
    /// Every snapshot written here and not removed by dvault.
    pub snapshots: Vec<LedgerSnapshot>,
    /// SHA-256 of each key file (by id) when this host last wrote a snapshot: a key file's
    /// JSON fields other than the encrypted master key (creation time, user, host) are not
    /// authenticated, so a change there is visible only against a record.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

impl SnapshotLedger {
    /// The ledger of the repository with id `repo_id` in `state_dir`.
    pub fn path(state_dir: &Path, repo_id: &str) -> PathBuf {
        state_dir
            .join("repositories")
            .join(format!("{repo_id}.snapshots.json"))
    }

    /// Reads the ledger; an absent file is an empty ledger.
    pub fn load(path: &Path) -> Result<Self> {
        super::state_file::load(path, "dvault snapshot ledger")
    }

    /// Writes the ledger atomically. A location with a password (as older versions stored it)
    /// is written with the password hidden.
    pub fn save(&self, path: &Path) -> Result<()> {
        let shown = crate::redact::text(&self.location);
        if shown != self.location {
            let mut clean = self.clone();
            clean.location = shown.into_owned();
            return super::state_file::save(path, &clean);
        }
        super::state_file::save(path, self)
    }

    /// Records a snapshot just written.
    pub fn add(&mut self, entry: LedgerSnapshot) {
        if !self.snapshots.iter().any(|s| s.id == entry.id) {
            self.snapshots.push(entry);
        }
    }

    /// Forgets the snapshots dvault removed.
    pub fn remove(&mut self, removed: &[String]) {
        self.snapshots.retain(|s| !removed.contains(&s.id));
    }

    /// The recorded snapshots whose ids are not in `present` (full hex ids).
    pub fn missing<'a>(&'a self, present: &[String]) -> Vec<&'a LedgerSnapshot> {
        self.snapshots
            .iter()
            .filter(|s| !present.contains(&s.id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> LedgerSnapshot {
        LedgerSnapshot {
            id: id.to_string(),
            file_name: format!("{id}.tar.gz"),
            written: "2026-11-25T00:00:00Z".to_string(),
        }
    }

    #[test]
    fn ledger_round_trips_and_names_missing_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let path = SnapshotLedger::path(dir.path(), "r1");
        let mut l = SnapshotLedger::load(&path).unwrap();
        assert!(l.snapshots.is_empty());
        for id in ["aa", "bb", "cc"] {
            l.add(entry(id));
        }
        l.add(entry("aa"));
        l.remove(&["cc".to_string()]);
        l.save(&path).unwrap();
        let back = SnapshotLedger::load(&path).unwrap();
        assert_eq!(back.snapshots.len(), 2);
        let missing = back.missing(&["aa".to_string(), "zz".to_string()]);
        assert_eq!(missing, vec![&entry("bb")]);
        std::fs::write(&path, "{").unwrap();
        let err = format!("{:#}", SnapshotLedger::load(&path).unwrap_err());
        assert!(
            err.contains("r1.snapshots.json") && err.contains("ledger"),
            "{err}"
        );
    }
}
