//! Audit records (see [`crate::audit`]) written and read as restic snapshots.
//!
//! A child module of `store/restic/` so that the rustic types stay behind the repository's own
//! interface, like the rest of the engine.

use std::collections::BTreeSet;

use super::*;
use crate::audit::{gaps, AuditRecord, FILE_NAME, TAG as AUDIT_TAG};

impl Repo {
    /// Appends `record` as a new audit snapshot (with an append lock, as a backup takes);
    /// returns its id. Its `previous` is set to the newest audit record now in the repository.
    pub fn append_audit(&self, record: &AuditRecord) -> Result<String, RepoError> {
        let _lock = self.lock(LockKind::Append)?;
        let mut rec = record.clone();
        rec.id.clear();
        rec.previous = self.audit_files()?.last().map(full_id);
        let bad = |e: serde_json::Error| RepoError::Invalid(format!("audit record: {e}"));
        let scratch = self.scratch("audit")?;
        let tree = scratch.path().join("tree");
        let io = |source| RepoError::Io {
            path: tree.clone(),
            source,
        };
        fs::create_dir_all(&tree).map_err(io)?;
        let pretty = serde_json::to_string_pretty(&rec).map_err(bad)?;
        fs::write(tree.join(FILE_NAME), format!("{pretty}\n")).map_err(io)?;

        let op = rec.operation.as_str();
        let outcome = match rec.outcome {
            crate::audit::AuditOutcome::Ok => "ok",
            crate::audit::AuditOutcome::Failed => "failed",
        };
        let mut opts = SnapshotOptions::default();
        opts.label = Some(format!("dvault audit: {op}"));
        opts.description = Some(serde_json::to_string(&rec).map_err(bad)?);
        opts.host = Some(rec.host.clone());
        opts.command = Some(format!("dvault audit record ({op})"));
        opts.time = rec
            .time
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC));
        let snap = opts
            .add_tags(&format!("{AUDIT_TAG},op:{op},outcome:{outcome}"))
            .and_then(|o| o.to_snapshot())
            .map_err(self.err("preparing the audit record"))?;
        let mut backup = BackupOptions::default();
        backup.as_path = Some(PathBuf::from("/"));
        backup.parent_opts.force = true;
        let source = PathList::from_string(&tree.to_string_lossy())
            .map_err(self.err("naming the audit record"))?
            .sanitize()
            .map_err(|e| RepoError::Invalid(format!("{}: {e}", tree.display())))?;
        let src = StableSource::new(&tree).map_err(self.err("reading the audit record"))?;
        let paths = source.paths();
        let snap = self.with_ids(|repo| {
            repo.archive(&backup, &src, snap, &paths)
                .map_err(self.err("storing the audit record"))
        })?;
        Ok(full_id(&snap))
    }

    /// Every audit record, oldest first. A record whose description cannot be read is warned
    /// about and left out.
    pub fn audit_records(&self) -> Result<Vec<AuditRecord>, RepoError> {
        let mut out = Vec::new();
        for s in self.audit_files()? {
            let id = full_id(&s);
            match serde_json::from_str::<AuditRecord>(s.description.as_deref().unwrap_or("")) {
                Ok(mut r) => {
                    r.id = id;
                    out.push(r);
                }
                Err(e) => tracing::warn!("audit snapshot {id} holds no readable record: {e}"),
            }
        }
        Ok(out)
    }

    /// The audit snapshots, oldest first (damaged snapshot files are left out: `check` names
    /// them).
    fn audit_files(&self) -> Result<Vec<SnapshotFile>, RepoError> {
        let mut all = self.with_open(|r| match r.get_all_snapshots() {
            Ok(all) => Ok(all),
            Err(_) => {
                let ids: Vec<SnapshotId> = r
                    .list::<SnapshotId>()
                    .map_err(self.err("listing snapshots"))?
                    .collect();
                Ok(ids
                    .into_iter()
                    .filter_map(|id| {
                        let mut s = r.get_file::<SnapshotFile>(&id).ok()?;
                        s.id = id;
                        Some(s)
                    })
                    .collect())
            }
        })?;
        all.retain(|s| s.tags.contains(AUDIT_TAG));
        all.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(all)
    }

    /// Adds an error for every gap the audit trail shows (see [`gaps`]), unless the ledger
    /// check named the same snapshot already.
    pub(super) fn check_audit(&self, report: &mut CheckReport) {
        let records = match self.audit_records() {
            Ok(r) => r,
            Err(e) => {
                report
                    .warnings
                    .push(format!("the audit trail could not be read: {e}"));
                return;
            }
        };
        if records.is_empty() {
            return;
        }
        let present = self.with_open(|r| {
            Ok(r.list::<SnapshotId>()
                .map_err(self.err("listing snapshots"))?
                .map(|id| id.to_hex().as_str().to_string())
                .collect::<BTreeSet<_>>())
        });
        let present = match present {
            Ok(p) => p,
            Err(e) => {
                report.errors.push(e.to_string());
                return;
            }
        };
        for gap in gaps::find(&records, &present) {
            let head = gap.split(" is missing").next().unwrap_or(&gap).to_string();
            if !report.errors.iter().any(|e| e.starts_with(&head)) {
                report.errors.push(gap);
            }
        }
    }
}
