//! The host's ledger of the snapshots it wrote (see `repo/snapshot_ledger.rs`): recorded after
//! each backup, trimmed after forget, and compared with the repository by check.

use super::*;

impl Repo {
    /// The ledger of this repository's snapshots in the state folder, when there is one.
    pub(crate) fn ledger_path(&self) -> Option<PathBuf> {
        let dir = self.cfg.state_dir.as_ref()?;
        let id = self
            .with_open(|r| Ok(r.config().id.to_hex().as_str().to_string()))
            .ok()?;
        Some(SnapshotLedger::path(dir, &id))
    }

    /// Notes a snapshot just written in the ledger. A failure is only warned about: the
    /// snapshot is stored either way.
    pub(crate) fn record_in_ledger(&self, info: &SnapshotInfo) {
        let Some(path) = self.ledger_path() else {
            return;
        };
        let keys = self.key_file_hashes();
        let r = SnapshotLedger::load(&path).and_then(|mut l| {
            l.location = self.cfg.location.to_string();
            l.keys = keys?;
            l.add(LedgerSnapshot {
                id: info.id.clone(),
                file_name: info.meta.file_name.clone(),
                written: jiff::Timestamp::now().to_string(),
            });
            l.save(&path)
        });
        if let Err(e) = r {
            tracing::warn!(
                "snapshot {} is stored, but the ledger could not be updated ({e:#}); \
                 `dvault check` will not notice if this snapshot disappears",
                info.short_id
            );
        }
    }

    /// SHA-256 of every key file as stored (raw bytes, read past rustic's key handling).
    pub(crate) fn key_file_hashes(&self) -> anyhow::Result<BTreeMap<String, String>> {
        use sha2::{Digest, Sha256};
        let be = self.cfg.location.backends_for(&self.cfg)?.repository();
        let mut out = BTreeMap::new();
        for id in be.list(rustic_core::FileType::Key)? {
            let bytes = be.read_full(rustic_core::FileType::Key, &id)?;
            out.insert(
                id.to_hex().as_str().to_string(),
                hex::encode(Sha256::digest(&bytes)),
            );
        }
        Ok(out)
    }

    /// Drops snapshots dvault removed from the ledger.
    pub(super) fn forget_in_ledger(&self, removed: &[String]) -> Result<(), RepoError> {
        let Some(path) = self.ledger_path() else {
            return Ok(());
        };
        SnapshotLedger::load(&path)
            .and_then(|mut l| {
                l.remove(removed);
                l.save(&path)
            })
            .map_err(|e| {
                RepoError::Invalid(format!(
                    "the snapshots were removed, but the ledger was not updated ({e:#}); \
                     `dvault check` will report them as missing until their entries are \
                     deleted from {}",
                    path.display()
                ))
            })
    }

    /// Adds an error for every snapshot the ledger has and the repository lacks: a deleted
    /// snapshot file leaves the rest of a restic repository consistent, so only the host's
    /// memory can tell.
    pub(super) fn check_ledger(&self, report: &mut CheckReport) {
        let Some(path) = self.ledger_path() else {
            return;
        };
        let ledger = match SnapshotLedger::load(&path) {
            Ok(l) => l,
            Err(e) => {
                report.errors.push(format!(
                    "the snapshot ledger cannot be read ({e:#}); missing snapshots cannot be \
                     detected"
                ));
                return;
            }
        };
        if ledger.snapshots.is_empty() {
            return;
        }
        let present = self.with_open(|r| {
            Ok(r.list::<SnapshotId>()
                .map_err(self.err("listing snapshots"))?
                .map(|id| id.to_hex().as_str().to_string())
                .collect::<Vec<_>>())
        });
        let present = match present {
            Ok(p) => p,
            Err(e) => {
                report.errors.push(e.to_string());
                return;
            }
        };
        match self.key_file_hashes() {
            Ok(now) => {
                for (id, sha) in &ledger.keys {
                    match now.get(id) {
                        Some(n) if n == sha => {}
                        Some(_) => report.errors.push(format!(
                            "key file keys/{id} changed since this host last wrote a snapshot \
                             (ledger {}): its unauthenticated fields were altered. If the key \
                             was changed on purpose, delete its entry from the ledger",
                            path.display()
                        )),
                        None => report.errors.push(format!(
                            "key file keys/{id} is missing; this host saw it when it last wrote \
                             a snapshot (ledger {})",
                            path.display()
                        )),
                    }
                }
            }
            Err(e) => report.errors.push(format!("reading the key files: {e:#}")),
        }
        for s in ledger.missing(&present) {
            report.errors.push(format!(
                "snapshot {} ({}) is missing: snapshots/{} is not in the repository, but this \
                 host wrote it on {} and never removed it (ledger {}); it was deleted or lost \
                 outside dvault. If it was removed on purpose with another tool, delete its \
                 entry from the ledger",
                s.id,
                s.file_name,
                s.id,
                s.written,
                path.display()
            ));
        }
    }
}
