//! `dvault run --dry-run`: what a run would do, site by site, without doing any of it.
//!
//! For each site: the backup the run would take from its source (the newest complete one,
//! without the settle wait and without asking the forum's admin API for a new one), whether
//! the repository holds it already (by SHA-256, as the run decides), and what the site's
//! retention rule would remove. Nothing is written: no snapshot, no lock, no state, no ping,
//! no metrics; the repository is only read (rustic_core may fill its metadata cache).

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, SiteConfig};
use crate::repo::ForgetDecision;
use crate::source::Older;

/// What the run would do for one site.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SitePlan {
    /// The site's name.
    pub site: String,
    /// Where its backups come from.
    pub source: String,
    /// The backup file the run would take (`None`: the source holds none).
    pub file: Option<String>,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// Its SHA-256 (`None` for a bucket: it is known only after the download).
    pub sha256: Option<String>,
    /// `would store it`, `would download and store it` (a bucket), `already stored in
    /// snapshot ID`, or why nothing would be stored.
    pub action: String,
    /// The older backups of the source the run would store first, oldest first (file names;
    /// see `run::backfill`).
    pub backfill: Vec<String>,
    /// Older backups over `source.backfill_limit` the run would leave (file names).
    pub backfill_over_limit: Vec<String>,
    /// The second repository (`copy_to`) the run would copy the new snapshots into.
    pub copy_to: Option<String>,
    /// The retention decisions over the snapshots stored now (`None`: no retention on this
    /// host).
    pub retention: Option<Vec<ForgetDecision>>,
    /// Further remarks (what a dry run cannot tell).
    pub notes: Vec<String>,
    /// Why the site could not be looked at.
    pub error: Option<String>,
}

/// The plans of the selected sites (all, or only `site`).
pub fn plan(config: &Config, site: Option<&str>) -> anyhow::Result<Vec<SitePlan>> {
    let mut out = Vec::new();
    for (name, s) in &config.sites {
        if site.is_some_and(|only| only != name) {
            continue;
        }
        let mut p = SitePlan {
            site: name.clone(),
            source: crate::source::describe(&s.source),
            ..SitePlan::default()
        };
        if let Err(e) = plan_site(config, name, s, &mut p) {
            p.error = Some(crate::redact::string(&format!("{e:#}")));
        }
        out.push(p);
    }
    Ok(out)
}

fn plan_site(config: &Config, name: &str, s: &SiteConfig, p: &mut SitePlan) -> anyhow::Result<()> {
    config.check_site_files(name)?;
    if s.source.api.is_some() {
        p.notes.push(
            "the run first asks the forum's admin API for a new backup; a dry run does not, \
             and shows the newest backup there now"
                .into(),
        );
    }
    let older = newest(s, p)?;
    let Some(r) = &s.repository else {
        p.action = match &p.file {
            Some(_) => "would store it (Tarsnap: unless this host's ledger has it)".into(),
            None => "nothing to store".into(),
        };
        return Ok(());
    };
    let repo =
        crate::run::open_repository(r, Some(config.cache_dir()), config.scratch_dir.clone())?
            .with_state_dir(config.state_dir());
    if !older.is_empty() {
        backfill(name, s, &repo, &older, p)?;
    }
    if let Some(c) = &s.copy_to {
        let to = crate::redact::string(&c.location);
        p.notes.push(format!(
            "after storing, the run copies the site's new snapshots to {to} and applies \
             retention there too"
        ));
        p.copy_to = Some(to);
    }
    if p.file.is_some() {
        p.action = match &p.sha256 {
            Some(sha) => match repo.find_by_sha256(sha)? {
                Some(snap) => format!("already stored in snapshot {}", snap.short_id),
                None => "would store it".into(),
            },
            None => {
                let name = p.file.as_deref().unwrap_or_default();
                match repo.snapshots()?.iter().find(|i| i.meta.file_name == name) {
                    Some(snap) => format!("already stored in snapshot {}", snap.short_id),
                    None => "would download and store it".into(),
                }
            }
        };
    } else {
        p.action = "nothing to store: the source holds no complete backup".into();
    }
    match &s.retention {
        Some(r) if r.forget => {
            let report = repo.forget(&r.for_site(name), true)?;
            p.retention = Some(report.decisions);
            if p.action.starts_with("would") {
                p.notes.push(
                    "retention is shown over the snapshots stored now; the run applies it \
                     after storing the new backup, which then counts as the newest"
                        .into(),
                );
            }
            if r.prune {
                p.notes
                    .push("after forgetting, the run prunes data no snapshot uses".into());
            }
        }
        Some(_) => p
            .notes
            .push("retention: not on this host (retention.forget = false)".into()),
        None => {}
    }
    Ok(())
}

/// Fills in the newest complete backup of the site's source; returns the older complete ones
/// (for a folder; a bucket's are not listed by a dry run).
fn newest(s: &SiteConfig, p: &mut SitePlan) -> anyhow::Result<Vec<Older>> {
    #[cfg(feature = "s3")]
    if let Some(cfg) = &s.source.s3 {
        let bucket = crate::source::s3::S3Source::from_config(cfg, Duration::ZERO)?;
        if let Some(o) = bucket.newest_complete()?.newest {
            p.file = Some(o.name.file_name.clone());
            p.size = Some(o.size);
        }
        p.notes.push(
            "older backups in the bucket are not listed by a dry run; the run stores those \
             not stored yet (source.backfill_limit)"
                .into(),
        );
        return Ok(Vec::new());
    }
    if s.source.s3.is_some() {
        anyhow::bail!("this dvault was built without S3 support");
    }
    let folder =
        crate::source::folder::FolderSource::new(s.source.folder_or_default(), Duration::ZERO);
    let selection = folder.newest_complete()?;
    if let Some(e) = selection.newest {
        let (_, sha) = crate::snapshot::sha256_file(&e.path)?;
        p.file = Some(e.name.file_name.clone());
        p.size = Some(e.size);
        p.sha256 = Some(sha);
    }
    Ok(selection.older.into_iter().map(Older::from).collect())
}

/// Fills in the older backups the run would store before the newest (`run::backfill`'s
/// rule: newer than the site's newest stored backup, within `source.backfill_limit`).
fn backfill(
    name: &str,
    s: &SiteConfig,
    repo: &crate::repo::Repo,
    older: &[Older],
    p: &mut SitePlan,
) -> anyhow::Result<()> {
    let folder = s.source.folder_or_default().display().to_string();
    let newest_stored = repo
        .snapshots()?
        .into_iter()
        .filter(|i| match &i.meta.site {
            Some(site) => site == name,
            None => i.meta.source.starts_with(&folder),
        })
        .filter_map(|i| i.meta.discourse.taken)
        .max();
    let (todo, over) =
        crate::run::pending_backfill(older, newest_stored.as_deref(), s.source.backfill_limit);
    p.backfill = todo.iter().map(|o| o.name.file_name.clone()).collect();
    p.backfill_over_limit = over.iter().map(|o| o.name.file_name.clone()).collect();
    Ok(())
}
