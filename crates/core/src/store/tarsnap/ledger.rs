//! What a host has stored in Tarsnap, by SHA-256 of the original backup.
//!
//! A backup host with a write-only Tarsnap key cannot list or read archives, so it cannot ask
//! Tarsnap whether today's backup is already there. The ledger, a small JSON file in dvault's
//! state folder, remembers each archive it wrote with the original file's name, size and
//! SHA-256: that is how `dvault run` skips a backup it stored before, and what a drill checks
//! the rebuilt file against.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// One archive written to Tarsnap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The archive's name.
    pub archive: String,
    /// The original backup's file name.
    pub file_name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256 (hex).
    pub sha256: String,
}

/// The archives of one site, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    /// Every archive this host wrote and has not seen deleted.
    pub archives: Vec<LedgerEntry>,
}

impl Ledger {
    /// The ledger file of `site` in `state_dir`.
    pub fn path(state_dir: &Path, site: &str) -> PathBuf {
        state_dir.join(format!("{site}.tarsnap.json"))
    }

    /// Reads the ledger; an absent file is an empty ledger.
    pub fn load(path: &Path) -> Result<Ledger> {
        crate::repo::state_file::load(path, "dvault Tarsnap ledger")
    }

    /// Writes the ledger atomically (temporary file, fsync, rename), so a crash leaves either
    /// the old or the new one.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::repo::state_file::save(path, self)
    }

    /// The archive holding a file with this SHA-256.
    pub fn find(&self, sha256: &str) -> Option<&LedgerEntry> {
        self.archives.iter().find(|e| e.sha256 == sha256)
    }

    /// The entry of the archive named `archive`.
    pub fn archive(&self, archive: &str) -> Option<&LedgerEntry> {
        self.archives.iter().find(|e| e.archive == archive)
    }

    /// The newest archive written.
    pub fn newest(&self) -> Option<&LedgerEntry> {
        self.archives.last()
    }

    /// Forgets the archives in `deleted`.
    pub fn remove(&mut self, deleted: &[String]) {
        self.archives.retain(|e| !deleted.contains(&e.archive));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn ledger_round_trips_and_finds_by_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = Ledger::path(dir.path(), "forum");
        assert!(Ledger::load(&path).unwrap().archives.is_empty());
        let mut l = Ledger::default();
        for (i, a) in ["a1", "a2"].iter().enumerate() {
            l.archives.push(LedgerEntry {
                archive: a.to_string(),
                file_name: format!("f{i}"),
                size: i as u64,
                sha256: format!("{i:064}"),
            });
        }
        l.save(&path).unwrap();
        let mut back = Ledger::load(&path).unwrap();
        assert_eq!(back.find(&format!("{:064}", 1)).unwrap().archive, "a2");
        back.remove(&["a2".to_string()]);
        assert_eq!(back.newest().unwrap().archive, "a1");
        fs::write(&path, "not json").unwrap();
        let err = format!("{:#}", Ledger::load(&path).unwrap_err());
        assert!(
            err.contains("forum.tarsnap.json") && err.contains("ledger"),
            "{err}"
        );
    }
}
