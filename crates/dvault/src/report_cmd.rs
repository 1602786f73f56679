//! `dvault report` (what the operator has: figures, costs, plots) and `dvault audit` (the
//! audit trail kept in the repository). The work is in `dvault_core::report` and
//! `dvault_core::audit`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use dvault_core::config::Config;
use dvault_core::report::{self, html, sites, text};

use crate::repo_cmds::RepoArgs;

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// `--config` (whose sites to report on; with --repo only its [pricing] is used), `--site`
    /// (a site of the config file, or with --repo a site title in the backups' names), or a
    /// repository given by --repo.
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Also write the report as one self-contained HTML page with plots to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Only records from this time on: a date (2026-01-31), an RFC 3339 time, or an age such
    /// as 7d or 12h.
    #[arg(long)]
    pub since: Option<String>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `dvault report`.
pub fn report(a: &ReportArgs) -> Result<()> {
    let repo = &a.repo;
    let site = repo.site.as_deref();
    let r = match &repo.repo {
        Some(_) => {
            // A config is optional here: only its prices are used.
            let explicit = repo.config.is_some() || std::env::var_os("DVAULT_CONFIG").is_some();
            let path = Config::locate(repo.config.as_deref());
            let pricing = if explicit || path.exists() {
                Config::load(&path)?.pricing
            } else {
                None
            };
            sites::for_repo(&repo.open()?, site, pricing.as_ref())?
        }
        None => {
            let config = Config::load(&Config::locate(repo.config.as_deref()))?;
            sites::for_config(&config, site)?
        }
    };
    if let Some(path) = &a.html {
        html::write(path, &r)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", text::render(&r));
        if let Some(path) = &a.html {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// Runs `dvault audit`.
pub fn audit(a: &AuditArgs) -> Result<()> {
    let repo = &a.repo;
    let since = a.since.as_deref().map(parse_since).transpose()?;
    let mut records = repo.open()?.audit_records()?;
    if let Some(t) = since {
        records.retain(|r| r.unix_time() >= t);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    println!(
        "{:<8}  {:<16}  {:<8}  {:<6}  {:<16}  {:<20}  what",
        "id", "time", "op", "result", "host", "user"
    );
    for r in &records {
        let what = match (r.files.first(), r.snapshots.first()) {
            (Some(f), Some(s)) => format!("{} ({})", f, s.get(..8).unwrap_or(s)),
            (None, Some(s)) => s.get(..8).unwrap_or(s).to_string(),
            _ => String::new(),
        };
        let more = if r.snapshots.len() > 1 {
            format!(" and {} more", r.snapshots.len() - 1)
        } else {
            String::new()
        };
        println!(
            "{:<8}  {:<16}  {:<8}  {:<6}  {:<16}  {:<20}  {what}{more}{}",
            r.id.get(..8).unwrap_or(&r.id),
            report::text::when(&r.time),
            r.operation.as_str(),
            match r.outcome {
                dvault_core::audit::AuditOutcome::Ok => "ok",
                dvault_core::audit::AuditOutcome::Failed => "FAILED",
            },
            r.host,
            r.user,
            r.detail
                .as_deref()
                .map_or(String::new(), |d| format!(" - {d}"))
        );
    }
    println!("{} records", records.len());
    Ok(())
}

/// `--since`: a date, an RFC 3339 time, or an age (`7d`) before now; Unix seconds.
fn parse_since(s: &str) -> Result<f64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second() as f64);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        let t = d.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
        return Ok(t.as_second() as f64);
    }
    match dvault_core::config::parse_duration(s) {
        Ok(age) => Ok(jiff::Timestamp::now().as_second() as f64 - age.as_secs_f64()),
        Err(_) => anyhow::bail!(
            "--since {s:?}: expected a date (2026-01-31), an RFC 3339 time or an age such as 7d"
        ),
    }
}
