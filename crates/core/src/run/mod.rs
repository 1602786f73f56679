//! `dvault run`: one pass over the configured sites, meant for a timer.
//!
//! For each site: take the repository lock, ping start, find the newest complete backup (after
//! asking the forum for a fresh one when the admin API is configured), skip it when a snapshot
//! with its SHA-256 exists, else store it; then retention where this host may delete, a check
//! and a restore drill when they are due; finally ping success or failure and record the figures
//! for the Prometheus textfile.
//!
//! What is stored is decided by the repository alone (the SHA-256 in its snapshots), never by
//! this module's state file: a failed run therefore never makes the next run skip anything. The
//! state file only remembers when the last check and drill succeeded and the last figures.

//!
//! Modules: `site` (one site's pass, step by step), `backfill` (the older backups of the
//! source), `second_copy` (the second repository), `state` (what is remembered between runs,
//! the metrics textfile), `report` (what a run says); the stores behind [`Store`] are
//! `crate::store`'s. How a log line looks is the CLI's business.

use std::time::Duration;

use anyhow::{anyhow, Context as _};

use crate::config::{Config, SiteConfig};
use crate::monitor::Pinger;

mod backfill;
mod report;
mod second_copy;
mod site;
mod state;
pub use backfill::{pending as pending_backfill, Backfilled};
use report::stored_line;
pub use report::{LogEvent, Outcome, RunReport, SecondCopy, SiteReport};
pub use state::{load_states, SiteState};
// The stores and the drill step live in their own modules; these paths stay for callers.
pub use crate::drill::{DrillDone, DrillHook};
pub use crate::store::{open_repository, RepoOpener, Store, StoreOpener, Stored};

/// Exit codes of `dvault run` (documented in docs/operations.md).
pub mod exit {
    /// Every selected site succeeded.
    pub const OK: i32 = 0;
    /// Every selected site failed, or the run could not start.
    pub const ERROR: i32 = 1;
    /// Bad arguments or a bad config file.
    pub const USAGE: i32 = 2;
    /// Some sites failed, others succeeded.
    pub const PARTIAL: i32 = 3;
    /// The only failures were repositories locked by another run (restic uses 11 for this too).
    pub const LOCKED: i32 = 11;
}

/// Choices of one run beyond the config.
pub struct RunOptions<'a> {
    /// Only this site.
    pub site: Option<String>,
    /// The drill step; `None`: drills are skipped (and reported so) even when due.
    pub drill: Option<&'a dyn DrillHook>,
    /// Log sink: every line the run says (also kept for the failure ping).
    pub log: &'a mut dyn FnMut(&LogEvent<'_>),
}

/// Whether something last done at `last` (Unix seconds) is due again after `every`.
pub fn is_due(last: Option<f64>, every: Duration, now: f64) -> bool {
    match last {
        None => true,
        Some(t) => now - t >= every.as_secs_f64(),
    }
}

/// The sites a command covers: only `site` when given (an error naming the config file and its
/// sites when it has no such site), else every site, in the config's order.
pub fn select_sites<'c>(
    config: &'c Config,
    site: Option<&str>,
) -> anyhow::Result<Vec<(&'c String, &'c SiteConfig)>> {
    match site {
        Some(name) => {
            let site = config.sites.get_key_value(name).ok_or_else(|| {
                anyhow!(
                    "no site {name:?} in {} (sites: {})",
                    config.path.display(),
                    config.sites.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            Ok(vec![site])
        }
        None => Ok(config.sites.iter().collect()),
    }
}

/// Runs every selected site once. Never returns early for one site's failure.
pub fn run(
    config: &Config,
    opener: &dyn StoreOpener,
    opts: RunOptions<'_>,
) -> anyhow::Result<RunReport> {
    let selected = select_sites(config, opts.site.as_deref())?;
    let state_dir = config.state_dir();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("state_dir {}: cannot create", state_dir.display()))?;
    let pinger = Pinger::new();
    let mut reports = Vec::new();
    for (name, site) in selected {
        if crate::interrupt::stopping() {
            (opts.log)(&LogEvent {
                level: "error",
                site: Some(name),
                message: "not run: dvault was stopped by a signal",
            });
            continue;
        }
        let report = site::SiteRun {
            config,
            state_dir: &state_dir,
            name,
            site,
            opener,
            pinger: &pinger,
            drill: opts.drill,
        }
        .run(&mut *opts.log);
        reports.push(report);
    }
    if let Some(path) = &config.monitoring.report_html {
        if let Err(e) = crate::report::sites::write_html(config, path) {
            (opts.log)(&LogEvent {
                level: "error",
                site: None,
                message: &format!("HTML report {}: {e:#}", path.display()),
            });
        }
    }
    let failed = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    let locked = reports
        .iter()
        .filter(|r| r.outcome == Outcome::Locked)
        .count();
    let exit_code = if failed == 0 && locked == 0 {
        exit::OK
    } else if failed == 0 {
        exit::LOCKED
    } else if failed + locked == reports.len() {
        exit::ERROR
    } else {
        exit::PARTIAL
    };
    Ok(RunReport {
        sites: reports,
        exit_code,
    })
}

/// The error and its causes joined by ": ", each cause once: many errors already end with
/// their cause's text (thiserror messages that include `{source}`), which `{:#}` would repeat
/// in the log, the report and the failure ping.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
