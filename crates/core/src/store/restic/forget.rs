//! `Repo::forget`: restic's retention rules applied per site (`retention.rs` decides
//! what to keep), the removal of the rest under the exclusive lock, then the optional prune,
//! and the audit record of it all. A child of `store/restic/`, whose private helpers it uses.

use super::*;

impl Repo {
    /// Applies `rule` to the dvault snapshots of each site; removes the others unless
    /// `dry_run`, then with the rule's `prune` deletes the data no snapshot needs any more.
    /// (The rule's `forget` is the caller's decision to call this at all.)
    pub fn forget(&self, rule: &Retention, dry_run: bool) -> Result<ForgetReport, RepoError> {
        let (started, r) = (Instant::now(), self.forget_unaudited(rule, dry_run));
        crate::audit::forget(self, dry_run, rule.prune, &r, started);
        r
    }

    fn forget_unaudited(&self, rule: &Retention, dry_run: bool) -> Result<ForgetReport, RepoError> {
        if rule.is_empty() {
            return Err(RepoError::Invalid(
                "forget needs at least one --keep-* rule greater than 0 (refusing to remove every snapshot)"
                    .to_string(),
            ));
        }
        // Exclusive before the snapshots are read: no backup may add packs meanwhile.
        let _lock = match dry_run {
            true => None,
            false => self.lock(LockKind::Exclusive)?,
        };
        let mut groups: BTreeMap<String, Vec<SnapshotFile>> = BTreeMap::new();
        let snapshots = self.dvault_snapshots()?;
        // Snapshots stored before the site was recorded (`meta.site` absent) belong to a
        // site's retention when no other site is recorded in the repository: a one-site
        // repository, as every repository was then. Otherwise an upgrade would leave them
        // to pile up forever.
        let other_site = |only: &String| {
            snapshots.iter().any(|s| {
                snapshot_info(s)
                    .and_then(|i| i.meta.site)
                    .is_some_and(|site| &site != only)
            })
        };
        let legacy_is_ours = rule.only_site.as_ref().is_some_and(|o| !other_site(o));
        for s in snapshots.iter().cloned() {
            let info = snapshot_info(&s);
            if let Some(only) = &rule.only_site {
                match info.as_ref().and_then(|i| i.meta.site.as_ref()) {
                    Some(site) if site == only => {}
                    None if legacy_is_ours => {}
                    _ => continue,
                }
            }
            let site = match &rule.only_site {
                Some(only) => format!("site:{only}"),
                None => info
                    .map(|i| super::retention::group(&i.meta))
                    .unwrap_or_default(),
            };
            groups.entry(site).or_default().push(s);
        }
        let mut decisions = Vec::new();
        let mut remove = Vec::new();
        for (_, snaps) in groups {
            let meta = |s: &SnapshotFile| snapshot_info(s).map(|i| i.meta);
            for d in super::retention::apply(rule, snaps, meta) {
                if !d.keep {
                    remove.push(d.snapshot.id);
                }
                if let Some(info) = snapshot_info(&d.snapshot) {
                    decisions.push(ForgetDecision {
                        snapshot: info,
                        keep: d.keep,
                        reasons: d.reasons,
                        note: d.note,
                    });
                }
            }
        }
        decisions.sort_by(|a, b| a.snapshot.time.cmp(&b.snapshot.time));
        let mut report = ForgetReport {
            decisions,
            dry_run,
            removed: Vec::new(),
            pruned_bytes: None,
            prune: None,
        };
        if dry_run {
            return Ok(report);
        }
        if !remove.is_empty() {
            self.with_open(|r| {
                r.delete_snapshots(&remove)
                    .map_err(|e| self.deletion_error(r, "forget", &e))
            })?;
            report.removed = remove
                .iter()
                .map(|id| id.to_hex().as_str().to_string())
                .collect();
            self.forget_in_ledger(&report.removed)?;
        }
        if rule.prune {
            let pruned = self.with_open(|r| {
                let pack_bytes = || -> Result<u64, RepoError> {
                    let be = self.cfg.location.backends_for(&self.cfg)?.repository();
                    let packs = be
                        .list_with_size(rustic_core::FileType::Pack)
                        .map_err(self.err("listing the pack files"))?;
                    Ok(packs.iter().map(|(_, size)| u64::from(*size)).sum())
                };
                super::prune::run(r, pack_bytes).map_err(|e| match e {
                    super::prune::PruneError::Plan(e) => self.err("planning prune")(e),
                    super::prune::PruneError::List(e) => e,
                    super::prune::PruneError::Prune(e) => self.deletion_error(r, "prune", &e),
                })
            })?;
            report.pruned_bytes = Some(pruned.freed_bytes);
            report.prune = Some(pruned);
        }
        Ok(report)
    }

    /// A failed deletion on a server that allows no deletion gets a message that says so.
    pub(super) fn deletion_error(
        &self,
        repo: &Repository<OpenStatus>,
        operation: &str,
        e: &rustic_core::RusticError,
    ) -> RepoError {
        let text = e.display_log();
        let refused = [
            "403",
            "Forbidden",
            "append-only",
            "405",
            "Method Not Allowed",
        ]
        .iter()
        .any(|m| text.contains(m));
        if refused || repo.config().append_only == Some(true) {
            RepoError::AppendOnly {
                location: self.cfg.location.to_string(),
                operation: operation.to_string(),
            }
        } else {
            RepoError::rustic(&self.cfg.location, operation, e)
        }
    }
}
