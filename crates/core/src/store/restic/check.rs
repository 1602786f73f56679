//! `Repo::check`: rustic's check, guarded against the reads that crash rustic_core 0.13, with
//! the ledger's and the audit trail's findings and the cost of each damaged pack.

use super::*;

impl Repo {
    /// Checks the repository's structure and, with `read`, reads back packed data.
    pub fn check(&self, read: ReadData) -> Result<CheckReport, RepoError> {
        let (started, r) = (Instant::now(), self.check_unaudited(read));
        crate::audit::check(self, &r, started);
        r
    }

    pub(super) fn check_unaudited(&self, read: ReadData) -> Result<CheckReport, RepoError> {
        let mut opts = CheckOptions::default();
        match read {
            ReadData::None => {}
            ReadData::All => opts.read_data = true,
            ReadData::Percent(p) => {
                if !(p > 0.0 && p <= 100.0) {
                    return Err(RepoError::Invalid(format!(
                        "read-data subset {p}% is not in (0, 100]"
                    )));
                }
                opts.read_data = true;
                opts.read_data_subset = ReadSubsetOption::Percentage(p);
            }
        }
        let _lock = self.lock(LockKind::Read)?;
        let mut report = CheckReport {
            errors: Vec::new(),
            warnings: Vec::new(),
            checked: crate::repo::Checked {
                read_data: match read {
                    ReadData::None => "none".to_string(),
                    ReadData::All => "all".to_string(),
                    ReadData::Percent(p) => format!("{p}%"),
                },
                ..crate::repo::Checked::default()
            },
        };
        if let Ok(n) = self.with_open(|r| {
            r.list::<rustic_core::repofile::SnapshotId>()
                .map(|ids| ids.count() as u64)
                .map_err(self.err("listing the snapshots"))
        }) {
            report.checked.snapshots = n;
        }
        self.check_ledger(&mut report);
        self.check_audit(&mut report);
        // rustic_core 0.13 panics while reading a truncated pack (trees in the structure
        // pass, data with --read-data), which ends the process before any finding is printed.
        // So pack sizes are compared with the index first, and rustic's check runs only when
        // they agree.
        if self.pack_sizes_differ(&mut report) {
            report.warnings.push(
                "the rest of the check was skipped: a pack of the wrong size crashes \
                 rustic_core 0.13's reader; restore the pack from a copy or repair the index, \
                 then check again"
                    .to_string(),
            );
            return Ok(report);
        }
        if opts.read_data {
            let mut structure = opts;
            structure.read_data = false;
            if let Ok(results) =
                self.with_open(|r| r.check(structure).map_err(self.err("checking")))
            {
                if results
                    .0
                    .iter()
                    .any(|(level, _)| format!("{level:?}") != "Warn")
                {
                    opts = structure;
                    report.warnings.push(
                        "pack data was not read: the structure has errors already (and reading \
                         a truncated pack can crash rustic_core 0.13); repair them, then run \
                         check --read-data again"
                            .to_string(),
                    );
                }
            }
        }
        let read_all = opts.read_data && matches!(read, ReadData::All);
        match self.with_open(|r| r.check(opts).map_err(self.err("checking"))) {
            Ok(results) => {
                if read_all {
                    self.pack_hashes_differ(&mut report);
                }
                for (level, e) in results.0 {
                    // rustic_core's message of a pack it could not read carries its whole
                    // error report, backtrace included: one line is enough.
                    let e = one_line_text(&e.to_string());
                    // rustic_core does not export the level's type; its Debug name is stable.
                    if format!("{level:?}") == "Warn" {
                        report.warnings.push(e);
                    } else {
                        report.errors.push(e);
                    }
                }
                self.name_pack_costs(&mut report);
            }
            // rustic_core stops at the first snapshot or index file it cannot read; name
            // every such file, not only the first.
            Err(e) => {
                report.errors.push(one_line_repo(&e));
                self.with_open(|r| {
                    for (id, why) in damaged_files::<SnapshotFile>(r) {
                        report
                            .errors
                            .push(format!("snapshot file snapshots/{id} is damaged: {why}"));
                    }
                    for (id, why) in damaged_files::<IndexFile>(r) {
                        report
                            .errors
                            .push(format!("index file index/{id} is damaged: {why}"));
                    }
                    Ok(())
                })?;
            }
        }
        explain_unindexed_packs(&mut report);
        Ok(report)
    }

    /// For every pack that check's errors name, adds what it costs: the files and snapshots
    /// that need a blob in it.
    pub(super) fn name_pack_costs(&self, report: &mut CheckReport) {
        let blobs = self.with_open(|r| Ok(super::damage::PackBlobs::read(r)));
        let Ok(blobs) = blobs else { return };
        let packs = blobs.named_in(&report.errors);
        if packs.is_empty() {
            return;
        }
        let costs = self.with_index(|r| {
            let snapshots = labelled_snapshots(r);
            Ok(super::damage::cost(r, &blobs, &packs, &snapshots))
        });
        match costs {
            Ok(costs) => report
                .errors
                .extend(costs.iter().map(super::damage::PackCost::describe)),
            Err(e) => report.warnings.push(format!(
                "which files the damaged packs cost could not be worked out: {}",
                one_line_repo(&e)
            )),
        }
    }

    /// Adds an error for every tree pack whose SHA-256 is not its name, as restic's
    /// `check --read-data` finds. rustic_core 0.13 hashes every data pack and the packs of
    /// subtrees it reads, but never a pack that holds only snapshots' root trees (each audit
    /// snapshot writes one), so a damaged header there (the encrypted list of blobs at a
    /// pack's end, a quarter of a small pack) passed unnoticed. Tree packs are small; the data
    /// packs, the bulk of a repository, are read once, by rustic_core.
    pub(super) fn pack_hashes_differ(&self, report: &mut CheckReport) {
        use sha2::Digest as _;
        let Ok(backends) = self.cfg.location.backends_for(&self.cfg) else {
            return;
        };
        let be = backends.repository();
        let Ok(tree_packs) = self.with_open(|r| {
            let mut ids = std::collections::BTreeSet::new();
            for id in r
                .list::<rustic_core::repofile::IndexId>()
                .map_err(self.err("listing the index"))?
            {
                let Ok(index) = r.get_file::<IndexFile>(&id) else {
                    continue;
                };
                for p in index.packs.iter().chain(&index.packs_to_delete) {
                    if p.blob_type() == rustic_core::repofile::BlobType::Tree {
                        ids.insert(*p.id);
                    }
                }
            }
            Ok(ids)
        }) else {
            return;
        };
        for id in tree_packs {
            let hex = id.to_hex();
            match be.read_full(rustic_core::FileType::Pack, &id) {
                Ok(bytes) => {
                    let got = hex::encode(sha2::Sha256::digest(&bytes));
                    if got != hex.as_str() {
                        report.errors.push(format!(
                            "pack data/{} does not match its name: its SHA-256 is {got} \
                             (damaged or overwritten)",
                            hex.as_str()
                        ));
                    }
                }
                Err(e) => report.errors.push(format!(
                    "pack data/{}: cannot read it: {}",
                    hex.as_str(),
                    one_line_text(&e.to_string())
                )),
            }
        }
    }

    /// Adds an error for every pack whose size differs from what the index records; true
    /// when there was one. Damaged index files are left to rustic's check.
    pub(super) fn pack_sizes_differ(&self, report: &mut CheckReport) -> bool {
        let listed = self.cfg.location.backends_for(&self.cfg);
        let Ok(Ok(actual)) =
            listed.map(|b| b.repository().list_with_size(rustic_core::FileType::Pack))
        else {
            return false;
        };
        report.checked.packs = actual.len() as u64;
        report.checked.pack_bytes = actual.iter().map(|(_, s)| u64::from(*s)).sum();
        let actual: BTreeMap<rustic_core::Id, u32> = actual.into_iter().collect();
        let mut found = false;
        let _ = self.with_open(|r| {
            let Ok(ids) = r.list::<rustic_core::repofile::IndexId>() else {
                return Ok(());
            };
            for id in ids {
                let Ok(index) = r.get_file::<IndexFile>(&id) else {
                    continue;
                };
                for p in index.packs.iter().chain(&index.packs_to_delete) {
                    if let Some(&size) = actual.get(&*p.id) {
                        if size != p.pack_size() {
                            found = true;
                            report.errors.push(format!(
                                "pack data/{} is {size} bytes, but index file index/{} says {} \
                                 (truncated or overwritten)",
                                p.id.to_hex().as_str(),
                                id.to_hex().as_str(),
                                p.pack_size()
                            ));
                        }
                    }
                }
            }
            Ok(())
        });
        found
    }
}

/// Packs in no index file are harmless leftovers of an interrupted backup, unless snapshots
/// need blobs that no index file names: then an index file is missing, and check says so with
/// the packs that lost it.
pub(super) fn explain_unindexed_packs(report: &mut CheckReport) {
    let unindexed: Vec<String> = report
        .warnings
        .iter()
        .filter(|w| w.contains("not referenced in index"))
        .filter_map(|w| w.split_whitespace().nth(1).map(str::to_string))
        .collect();
    let needed_missing = report.errors.iter().any(|e| {
        e.contains("not found in index")
            || e.contains("not in index")
            || e.contains("missing in index")
    });
    if !unindexed.is_empty() && needed_missing {
        report.errors.push(format!(
            "an index file is missing: snapshots need blobs that no index file names, and \
             {} pack(s) are in no index file (data/{}); restores of the snapshots that need them \
             fail, and the others restore",
            unindexed.len(),
            unindexed.join(", data/")
        ));
    }
}
