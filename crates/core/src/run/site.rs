//! One site's pass of `dvault run`: ping start, the steps (lock, pick, store, retention, copy
//! to the second repository, check, drill), then record the state and ping the outcome.
//!
//! The steps share one [`SiteRun`] (what the site is and what the run was given) instead of
//! long argument lists; each step is its own function a reader can find by name.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context as _};

use super::state::{now_secs, record, SiteState};
use super::{
    backfill, error_text, is_due, second_copy, stored_line, DrillHook, LogEvent, Outcome,
    SiteReport, Store, StoreOpener, Stored,
};
use crate::config::{CheckConfig, Config, DrillConfig, SiteConfig};
use crate::lock::RepoLock;
use crate::monitor::{LogTail, PingUrls, Pinger};
use crate::source::{self, Picked};

/// What one site's pass works with.
pub(super) struct SiteRun<'a> {
    pub config: &'a Config,
    pub state_dir: &'a Path,
    pub name: &'a str,
    pub site: &'a SiteConfig,
    pub opener: &'a dyn StoreOpener,
    pub pinger: &'a Pinger,
    pub drill: Option<&'a dyn DrillHook>,
}

/// Collects a site's log lines for the ping body while passing them to the run's sink.
pub(super) struct SiteLog<'a> {
    site: String,
    tail: LogTail,
    sink: &'a mut dyn FnMut(&LogEvent<'_>),
}

impl SiteLog<'_> {
    pub(super) fn say(&mut self, level: &str, msg: &str) {
        // Everything a site logs goes to the terminal or journal, `--json` and the ping body:
        // no URL password in any of them.
        let msg = &*crate::redact::text(msg);
        self.tail.push(format!("{level}: {msg}"));
        (self.sink)(&LogEvent {
            level,
            site: Some(&self.site),
            message: msg,
        });
    }
}

impl SiteRun<'_> {
    /// Runs the site once; never fails: a failure is the report's outcome.
    pub(super) fn run(&self, sink: &mut dyn FnMut(&LogEvent<'_>)) -> SiteReport {
        let started = Instant::now();
        let name = self.name;
        let mut log = SiteLog {
            site: name.to_string(),
            tail: LogTail::default(),
            sink,
        };
        let pings = PingUrls::from_config(&self.site.monitoring);
        if let Some(url) = &pings.start {
            if let Err(e) = self.pinger.ping(url, "") {
                log.say("warn", &e);
            }
        }
        let mut report = SiteReport::new(name);
        // A state file that cannot be read (root's, after a run by hand as root) fails the site,
        // naming the file: starting from nothing would let the metrics claim a fresh success. Its
        // folder is the service user's, so recording this failure replaces it. A corrupt one is
        // only warned about.
        let mut unreadable = None;
        let mut state = match SiteState::load(self.state_dir, name) {
            Ok(s) => s,
            Err(e) if e.downcast_ref::<std::io::Error>().is_some() => {
                unreadable = Some(e);
                SiteState::default()
            }
            Err(e) => {
                log.say("warn", &format!("{e:#}; starting with empty state"));
                SiteState::default()
            }
        };
        let was_failing = state.last_run_time.is_some() && !state.last_run_success;
        let result = match unreadable {
            Some(e) => Err(e),
            None => self.steps(&mut log, &mut report, &mut state),
        };
        let now = now_secs();
        report.seconds = started.elapsed().as_secs_f64();
        state.last_run_time = Some(now);
        state.last_duration_seconds = Some(report.seconds);
        state.last_run_success = result.is_ok();
        if result.is_ok() {
            state.last_success_time = Some(now);
        }
        // What the run records (state file, metrics textfile) is written before the ping: a
        // write that fails fails the site (exit code, fail ping), so no success ping ever
        // announces a run whose figures were lost (a root-owned node_exporter folder, a full
        // disk).
        let result = match (result, record(self.config, self.state_dir, name, &state)) {
            (result, Ok(())) => result,
            (Ok(()), Err(w)) => Err(w),
            (Err(e), Err(w)) => {
                log.say("error", &format!("{w:#}"));
                Err(e)
            }
        };
        match result {
            Ok(()) => {
                let took = crate::figures::duration(Duration::from_secs_f64(report.seconds));
                log.say("info", &format!("done in {took}"));
            }
            Err(e) => {
                report.outcome = if crate::lock::is_held(&e) {
                    Outcome::Locked
                } else {
                    Outcome::Failed
                };
                let text = if crate::interrupt::stopping() {
                    format!("stopped by a signal ({})", error_text(&e))
                } else {
                    error_text(&e)
                };
                let text = crate::redact::string(&text);
                log.say("error", &text);
                report.error = Some(text);
            }
        }
        let ok = report.outcome != Outcome::Failed && report.outcome != Outcome::Locked;
        let url = if ok { &pings.success } else { &pings.fail };
        if let Some(url) = url {
            let body = log.tail.text();
            if let Err(e) = self.pinger.ping(url, &body) {
                log.say("warn", &e);
            }
        }
        let html = self.config.monitoring.report_html.as_ref();
        crate::hooks::after_site(
            self.site.hooks.as_ref(),
            &report,
            was_failing,
            html,
            &mut |l, m| log.say(l, m),
        );
        report
    }

    /// The steps, in order; the first error ends the site's pass.
    fn steps(
        &self,
        log: &mut SiteLog<'_>,
        report: &mut SiteReport,
        state: &mut SiteState,
    ) -> anyhow::Result<()> {
        let (config, site) = (self.config, self.site);
        // The site's own files (password file, source folder, ...) are checked here rather
        // than when the config is loaded: a problem with them fails this site only.
        config.check_site_files(self.name)?;
        // The lock file records the location: with any password hidden. It is keyed by the
        // location in one spelling (see `lock::location_key`, which also drops any login).
        let location = &crate::redact::string(&site.store_id());
        let lock = RepoLock::acquire(
            self.state_dir,
            &crate::lock::location_key(&site.store_id()),
            config.lock_wait.unwrap_or_default(),
        )?;
        if let Some(stale) = &lock.stale {
            log.say(
                "warn",
                &format!("cleared a stale lock left by a run that died ({stale})"),
            );
        }
        let store = self
            .opener
            .open(self.name, site)
            .with_context(|| format!("repository {location}"))?;
        let picked = self.pick(log, report, state)?;
        // The older backups not stored yet first, oldest first (see `backfill`).
        backfill::store_older(
            site,
            config.scratch_dir.as_deref(),
            &*store,
            &picked,
            log,
            &mut report.backfilled,
            &mut report.warnings,
        )?;
        store_newest(&*store, picked, log, report, state)?;
        self.retention(&*store, log, report)?;
        if let Some(second) = &site.copy_to {
            second_copy::copy(self, &*store, second, log, report, state)?;
        }
        let last = state.last_check_success_time;
        if let Some(c) = due(site.check.as_ref(), |c| c.every, last, &mut report.check) {
            self.check(c, &*store, log, report, state)?;
        }
        let last = state.last_drill_success_time;
        if let Some(d) = due(site.drill.as_ref(), |d| d.every, last, &mut report.drill) {
            self.drill(d, &*store, log, report, state)?;
        }
        let count = store.snapshot_count()?;
        state.snapshots = Some(count);
        report.snapshots = Some(count);
        drop(lock);
        Ok(())
    }

    /// The newest complete backup of the source (fetched, for a bucket or SSH), its warnings
    /// noted; an error when there is none or it is older than `source.max_age`.
    fn pick(
        &self,
        log: &mut SiteLog<'_>,
        report: &mut SiteReport,
        state: &mut SiteState,
    ) -> anyhow::Result<Picked> {
        let site = self.site;
        let picked = {
            let mut note = |m: &str| log.say("info", m);
            source::fetch_newest_in(&site.source, self.config.scratch_dir.as_deref(), &mut note)
        };
        let picked = match picked {
            Ok(p) => p,
            Err(e) => {
                if let source::SourceError::Unusable { files, .. } = &e {
                    state.unusable_files = Some(*files as u64);
                }
                return Err(e.into());
            }
        };
        state.unusable_files = Some(picked.as_ref().map_or(0, |p| p.unusable.len() as u64));
        let Some(picked) = picked else {
            anyhow::bail!(
                "no complete Discourse backup found in {} (is Discourse making backups?)",
                source::describe(&site.source)
            );
        };
        for p in &picked.passed_over {
            log.say("info", &format!("passed over {p}"));
        }
        for u in &picked.unusable {
            let w = u.to_string();
            log.say("warn", &w);
            report.warnings.push(w);
        }
        report.file = Some(picked.name.file_name.clone());
        if let Some(max_age) = site.source.max_age {
            let age = picked
                .modified
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            if age > max_age {
                anyhow::bail!(
                    "the newest backup {} is {} old, more than source.max_age {}: is Discourse \
                     still making backups?",
                    picked.origin,
                    crate::figures::duration(age),
                    crate::figures::duration(max_age)
                );
            }
        }
        Ok(picked)
    }

    /// Retention: the store's own (Tarsnap), then `[retention]` where this host may forget.
    fn retention(
        &self,
        store: &dyn Store,
        log: &mut SiteLog<'_>,
        report: &mut SiteReport,
    ) -> anyhow::Result<()> {
        if let Some(summary) = store.own_retention().context("retention")? {
            log.say("info", &format!("retention: {summary}"));
            report.retention = Some(summary);
        }
        if let Some(r) = &self.site.retention {
            if r.forget {
                let summary = store.forget(r).context("retention")?;
                log.say("info", &format!("retention: {summary}"));
                report.retention = Some(summary);
            } else {
                report.retention = Some("not on this host (retention.forget = false)".into());
            }
        }
        Ok(())
    }

    /// The repository check (`[check]`, due now; see [`due`]).
    fn check(
        &self,
        c: &CheckConfig,
        store: &dyn Store,
        log: &mut SiteLog<'_>,
        report: &mut SiteReport,
        state: &mut SiteState,
    ) -> anyhow::Result<()> {
        log.say("info", "checking the repository");
        let summary = store
            .check(c.read_data_subset)
            .context("repository check")?;
        log.say("info", &format!("check: {summary}"));
        state.last_check_success_time = Some(now_secs());
        report.check = Some(summary);
        Ok(())
    }

    /// The restore drill (`[drill]`, due now; see [`due`]).
    fn drill(
        &self,
        d: &DrillConfig,
        store: &dyn Store,
        log: &mut SiteLog<'_>,
        report: &mut SiteReport,
        state: &mut SiteState,
    ) -> anyhow::Result<()> {
        let Some(hook) = self.drill else {
            log.say("warn", "a drill is due but this build has no drill step");
            report.drill = Some("due, but not available in this build".into());
            return Ok(());
        };
        // The snapshot holding the backup this run just stored or found stored: the site's own
        // newest, whatever else the repository holds.
        let name = self.name;
        let snapshot = report
            .snapshot
            .clone()
            .ok_or_else(|| anyhow!("restore drill: no snapshot of site {name} to drill"))?;
        log.say(
            "info",
            &format!("running a restore drill of snapshot {snapshot}"),
        );
        let mut say = |m: &str| log.say("info", m);
        let done = hook
            .drill(name, self.site, d, &snapshot, store, &mut say)
            .with_context(|| format!("restore drill of snapshot {snapshot}"))?;
        log.say("info", &format!("drill: {}", done.summary));
        state.last_drill_success_time = Some(now_secs());
        state.last_drill_restore_seconds = Some(done.restore_secs);
        report.drill = Some(done.summary);
        Ok(())
    }
}

/// The head of a periodic step (the check, the drill): its config when it is configured and due
/// since its last success; `None` otherwise, with "not due" as the report's line when it is
/// configured.
fn due<'a, T>(
    step: Option<&'a T>,
    every: impl Fn(&T) -> Duration,
    last_success: Option<f64>,
    line: &mut Option<String>,
) -> Option<&'a T> {
    let step = step?;
    if is_due(last_success, every(step), now_secs()) {
        return Some(step);
    }
    *line = Some("not due".into());
    None
}

/// Stores the newest backup unless a snapshot with its SHA-256 exists; then sums the run's
/// figures over every backup it stored, the older ones included.
fn store_newest(
    store: &dyn Store,
    picked: Picked,
    log: &mut SiteLog<'_>,
    report: &mut SiteReport,
    state: &mut SiteState,
) -> anyhow::Result<()> {
    // A copy over SSH was hashed from its first byte while it was written.
    let sha = match &picked.transfer {
        Some(t) => {
            state.last_transfer_bytes = Some(t.bytes_transferred);
            state.last_transfer_seconds = Some(t.seconds);
            report.transfer = Some(t.clone());
            t.sha256.clone()
        }
        None => crate::snapshot::sha256_file(&picked.path)?.1,
    };
    report.sha256 = Some(sha.clone());
    match store.find_sha256(&sha)? {
        Some(snap) => {
            let file = &picked.name.file_name;
            log.say(
                "info",
                &format!("{file} is already stored in snapshot {snap}"),
            );
            report.outcome = Outcome::AlreadyStored;
            report.snapshot = Some(snap);
        }
        None => {
            let size = crate::figures::bytes(picked.size);
            log.say("info", &format!("storing {} ({size})", picked.origin));
            let stored = store
                .store(&picked, &sha)
                .with_context(|| format!("storing {}", picked.origin))?;
            log.say("info", &stored_line(&stored));
            report.outcome = Outcome::Stored;
            report.snapshot = Some(stored.snapshot.clone());
            report.stored = Some(stored);
        }
    }
    drop(picked);
    let all: Vec<&Stored> = report
        .backfilled
        .iter()
        .filter_map(|b| b.stored.as_ref())
        .chain(report.stored.as_ref())
        .collect();
    if !all.is_empty() {
        state.last_bytes_read = Some(all.iter().map(|s| s.bytes_read).sum());
        state.last_bytes_added = Some(all.iter().map(|s| s.bytes_added).sum());
        report.outcome = Outcome::Stored;
    }
    Ok(())
}
