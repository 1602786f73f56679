//! Which repository and which snapshots make up each site of a report: the sites of a config
//! file (each with its own repository and run state), or the site titles found in one
//! repository's snapshots.

use anyhow::Context as _;

use super::{gather, Report, SiteReport};
use crate::config::{Config, Pricing};
use crate::repo::Repo;
use crate::run::SiteState;

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// The report of the sites of `config` (only `site` when given): each site's repository, all
/// of its dvault snapshots, and this host's run state. Tarsnap sites are left out (the figures
/// come from a restic-format repository).
pub fn for_config(config: &Config, site: Option<&str>) -> anyhow::Result<Report> {
    let state_dir = config.state_dir();
    let mut sites = Vec::new();
    for (name, s) in crate::run::select_sites(config, site)? {
        let Some(r) = &s.repository else { continue };
        let repo =
            crate::run::open_repository(r, Some(config.cache_dir()), None).with_context(|| {
                format!(
                    "site {name}: repository {}",
                    crate::redact::string(&r.location)
                )
            })?;
        let st = SiteState::load(&state_dir, name).ok();
        let found = gather(
            &repo,
            &|_| Some(name.clone()),
            &|_| st.clone(),
            config.pricing.as_ref(),
        )
        .with_context(|| format!("site {name}"))?;
        sites.extend(found);
    }
    Ok(Report {
        generated: now(),
        sites,
    })
}

/// The report of one repository, a site per site title in its snapshots' names (only `site`
/// when given).
pub fn for_repo(
    repo: &Repo,
    site: Option<&str>,
    pricing: Option<&Pricing>,
) -> anyhow::Result<Report> {
    let title = |s: &crate::repo::restic::figures::SnapshotFigures| {
        let t = s
            .info
            .meta
            .discourse
            .site
            .clone()
            .unwrap_or_else(|| "-".to_string());
        site.is_none_or(|w| w == t).then_some(t)
    };
    let sites: Vec<SiteReport> = gather(repo, &title, &|_| None, pricing)?;
    if let (Some(w), true) = (site, sites.is_empty()) {
        anyhow::bail!("no snapshots of site {w:?} in {}", repo.location());
    }
    Ok(Report {
        generated: now(),
        sites,
    })
}

/// Rewrites the HTML report of every site of `config` (after `dvault run`).
pub fn write_html(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    let report = for_config(config, None)?;
    super::html::write(path, &report)
}
