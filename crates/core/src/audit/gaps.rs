//! Gaps in the repository that the audit trail reveals.
//!
//! A deleted snapshot file leaves the rest of a restic repository consistent; only a record of
//! it can tell. Two kinds are found: a backup snapshot that an audit record says was stored,
//! that is gone, and that no forget record removed; and an audit record that a later record
//! names as its predecessor, that is gone.

use std::collections::BTreeSet;

use super::{AuditRecord, Operation};

/// The problems found, one line each (for `check`'s errors).
pub fn find(records: &[AuditRecord], present: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let forgotten: BTreeSet<&str> = records
        .iter()
        .filter(|r| r.operation == Operation::Forget)
        .flat_map(|r| r.snapshots.iter().map(String::as_str))
        .collect();
    let mut named = BTreeSet::new();
    for r in records.iter().filter(|r| r.operation == Operation::Backup) {
        for (i, id) in r.snapshots.iter().enumerate() {
            if present.contains(id) || forgotten.contains(id.as_str()) || !named.insert(id) {
                continue;
            }
            out.push(format!(
                "snapshot {id} ({}) is missing: audit record {} says {} stored it on {}, and \
                 no forget record removed it; it was deleted outside dvault",
                r.files.get(i).map_or("?", String::as_str),
                short(&r.id),
                r.host,
                r.time
            ));
        }
    }
    let ids: BTreeSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let mut reported = BTreeSet::new();
    for r in records {
        let Some(prev) = &r.previous else { continue };
        if ids.contains(prev.as_str()) || !reported.insert(prev) {
            continue;
        }
        out.push(format!(
            "audit record {prev} is missing: the record {} ({} on {}) follows it; an audit \
             record was deleted",
            short(&r.id),
            r.operation.as_str(),
            r.time
        ));
    }
    out
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditOutcome;

    fn rec(id: &str, op: Operation, snaps: &[&str], previous: Option<&str>) -> AuditRecord {
        let mut r = AuditRecord::now(op, std::time::Instant::now());
        r.id = id.to_string();
        r.snapshots = snaps.iter().map(|s| s.to_string()).collect();
        r.files = snaps.iter().map(|s| format!("{s}.tar.gz")).collect();
        r.previous = previous.map(str::to_string);
        r.outcome = AuditOutcome::Ok;
        r
    }

    #[test]
    fn a_vanished_snapshot_without_forget_record_is_a_gap() {
        let records = vec![
            rec("a1", Operation::Backup, &["s1"], None),
            rec("a2", Operation::Backup, &["s2"], Some("a1")),
            rec("a3", Operation::Backup, &["s3"], Some("a2")),
            rec("a4", Operation::Forget, &["s1"], Some("a3")),
        ];
        let present: BTreeSet<String> = ["s3", "a1", "a2", "a3", "a4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let gaps = find(&records, &present);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(
            gaps[0].contains("snapshot s2 (s2.tar.gz) is missing"),
            "{gaps:?}"
        );
    }

    #[test]
    fn a_deleted_audit_record_is_named_by_its_successor() {
        let records = vec![
            rec("a1", Operation::Check, &[], None),
            rec("a3", Operation::Check, &[], Some("a2")),
        ];
        let gaps = find(&records, &BTreeSet::new());
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].contains("audit record a2 is missing"), "{gaps:?}");
    }
}
