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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context as _};
use serde::{Deserialize, Serialize};

use crate::config::{Config, DrillConfig, RetentionConfig, SiteConfig};
use crate::lock::RepoLock;
use crate::monitor::{self, LogTail, PingUrls, Pinger, SiteMetrics};
use crate::repo::tarsnap_ledger::{Ledger, LedgerEntry};
use crate::source::{self, Picked};

mod backfill;
mod stores;
pub use backfill::Backfilled;
pub use stores::{open_repository, RepoOpener};

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

/// What the run loop needs from a repository. Implemented for the restic-format repository;
/// a trait so that the loop does not depend on how the repository is opened.
pub trait Store {
    /// The short id of a snapshot of a file with this SHA-256, if one exists.
    fn find_sha256(&self, sha256: &str) -> anyhow::Result<Option<String>>;
    /// Stores the picked file (whose SHA-256 is `sha256`) as a new snapshot.
    fn store(&self, picked: &Picked, sha256: &str) -> anyhow::Result<Stored>;
    /// Number of dvault snapshots in the repository.
    fn snapshot_count(&self) -> anyhow::Result<u64>;
    /// Applies the retention rule (forget, and prune if asked); returns a one-line summary.
    fn forget(&self, retention: &RetentionConfig) -> anyhow::Result<String>;
    /// Checks the repository, reading back this percentage of pack data; errors fail the check.
    fn check(&self, read_data_percent: Option<f64>) -> anyhow::Result<String>;
    /// The time (`YYYY-MM-DD-HHMMSS`, from the name) of the newest backup stored for this
    /// site; snapshots stored without a site count when their source starts with
    /// `source_prefix` (the folder or bucket prefix). `None`: nothing stored yet.
    fn newest_stored(&self, _source_prefix: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
    /// Applies retention rules that belong to the store itself rather than to `[retention]`
    /// (Tarsnap's `keep_last` / `keep_daily`); `None` when it has none.
    fn own_retention(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
}

/// Opens a site's repository (with its lock already held by the caller).
pub trait StoreOpener {
    /// Opens the repository of `site`.
    fn open(&self, name: &str, site: &SiteConfig) -> anyhow::Result<Box<dyn Store>>;
}

/// The restore-drill step of `dvault run`, run when `[sites.X.drill]` is due. The drill module
/// plugs in here; the run loop holds the repository lock while it runs.
pub trait DrillHook {
    /// Proves that `snapshot` (a snapshot id, or a Tarsnap archive name) of the site restores;
    /// `Ok` carries a one-line summary. The run loop names the snapshot, because "the newest
    /// snapshot of the repository" may belong to another site sharing the repository, or tie in
    /// time with another backup of the same moment.
    fn drill(
        &self,
        name: &str,
        site: &SiteConfig,
        drill: &DrillConfig,
        snapshot: &str,
        log: &mut dyn FnMut(&str),
    ) -> anyhow::Result<DrillDone>;
}

/// What a drill that passed says: its one-line summary and how long the restore took.
#[derive(Debug, Clone)]
pub struct DrillDone {
    /// The one-line summary.
    pub summary: String,
    /// The restore's time in seconds (`dvault_last_drill_restore_seconds`).
    pub restore_secs: f64,
}

/// Figures of one stored backup (their meaning is the same everywhere: docs/figures.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stored {
    /// Short id of the new snapshot.
    pub snapshot: String,
    /// Size of the original backup file read, in bytes.
    pub bytes_read: u64,
    /// Bytes the repository grew by: new data, compressed and encrypted, in new pack files.
    pub bytes_added: u64,
}

/// `stored as snapshot X: read 1.2 GiB, added 30.5 MiB`, the one wording of a stored backup.
fn stored_line(s: &Stored) -> String {
    format!(
        "stored as snapshot {}: read {}, added {}",
        s.snapshot,
        crate::figures::bytes(s.bytes_read),
        crate::figures::bytes(s.bytes_added)
    )
}

/// How one site's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new backup was stored.
    Stored,
    /// The newest backup was stored before; nothing new.
    AlreadyStored,
    /// Something failed (see `error`).
    Failed,
    /// Another run held the repository lock.
    Locked,
}

/// The report of one site.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    /// Site name.
    pub site: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The backup file considered.
    pub file: Option<String>,
    /// Its SHA-256.
    pub sha256: Option<String>,
    /// The snapshot holding it (new or existing).
    pub snapshot: Option<String>,
    /// Figures when a backup was stored.
    pub stored: Option<Stored>,
    /// Older backups of the source stored by this run before the newest, oldest first.
    pub backfilled: Vec<Backfilled>,
    /// Snapshots in the repository after the run.
    pub snapshots: Option<u64>,
    /// What retention did.
    pub retention: Option<String>,
    /// What the check did.
    pub check: Option<String>,
    /// What the drill did.
    pub drill: Option<String>,
    /// The error, when failed or locked.
    pub error: Option<String>,
    /// Warnings: files named like backups that cannot be used.
    pub warnings: Vec<String>,
    /// The copy over SSH, when the source is `ssh`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<crate::source::ssh::Transfer>,
    /// Seconds the site took.
    pub seconds: f64,
}

/// The report of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// One entry per selected site.
    pub sites: Vec<SiteReport>,
    /// The exit code the command should return.
    pub exit_code: i32,
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

/// One line of the run's log.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LogEvent<'a> {
    /// `info`, `warn` or `error`.
    pub level: &'a str,
    /// The site it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<&'a str>,
    /// The text.
    pub message: &'a str,
}

impl LogEvent<'_> {
    /// `2025-01-01T03:00:00.123Z info [site] message`, or with `json` one JSON object with
    /// `time`, `level`, `site` and `message`.
    pub fn render(&self, json: bool) -> String {
        let time = jiff::Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        if json {
            let mut v = serde_json::to_value(self).unwrap_or_default();
            v["time"] = serde_json::Value::String(time.to_string());
            v.to_string()
        } else {
            match self.site {
                Some(site) => format!("{time} {} [{site}] {}", self.level, self.message),
                None => format!("{time} {} {}", self.level, self.message),
            }
        }
    }
}

/// What is remembered between runs, per site (`<state_dir>/sites/<name>.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteState {
    /// When the last run ended (Unix seconds).
    pub last_run_time: Option<f64>,
    /// Whether it succeeded.
    pub last_run_success: bool,
    /// When a run last succeeded.
    pub last_success_time: Option<f64>,
    /// How long the last run took.
    pub last_duration_seconds: Option<f64>,
    /// Bytes of original backup files read by the last run that stored any.
    pub last_bytes_read: Option<u64>,
    /// Bytes the repository grew by in that run (compressed, encrypted).
    pub last_bytes_added: Option<u64>,
    /// Snapshots after the last successful run.
    pub snapshots: Option<u64>,
    /// When a check last succeeded.
    pub last_check_success_time: Option<f64>,
    /// When a drill last succeeded.
    pub last_drill_success_time: Option<f64>,
    /// Files named like backups that the last run could not use.
    #[serde(default)]
    pub unusable_files: Option<u64>,
    /// How long the last successful drill's restore took.
    #[serde(default)]
    pub last_drill_restore_seconds: Option<f64>,
    /// Bytes the last copy over SSH moved, and its seconds.
    #[serde(default)]
    pub last_transfer_bytes: Option<u64>,
    /// See `last_transfer_bytes`.
    #[serde(default)]
    pub last_transfer_seconds: Option<f64>,
}

impl SiteState {
    fn path(state_dir: &Path, site: &str) -> PathBuf {
        state_dir.join("sites").join(format!("{site}.json"))
    }

    /// Reads a site's state; missing means never run. A corrupt file is an error naming it.
    pub fn load(state_dir: &Path, site: &str) -> anyhow::Result<Self> {
        let path = Self::path(state_dir, site);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: corrupt state file (delete it to start over)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("state file {}: cannot read", path.display())),
        }
    }

    /// Writes it atomically (temporary file, fsync, rename).
    pub fn save(&self, state_dir: &Path, site: &str) -> anyhow::Result<()> {
        let path = Self::path(state_dir, site);
        let dir = path.parent().unwrap_or(state_dir);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
        serde_json::to_writer_pretty(&mut tmp, self)
            .map_err(std::io::Error::from)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("{}: cannot write", tmp.path().display()))?;
        tmp.persist(&path)
            .map_err(|e| anyhow!("{}: {}", path.display(), e.error))?;
        Ok(())
    }

    fn metrics(&self, site: &str) -> SiteMetrics {
        SiteMetrics {
            site: site.to_string(),
            last_run_success: self.last_run_success,
            last_run_time: self.last_run_time,
            last_success_time: self.last_success_time,
            duration_seconds: self.last_duration_seconds,
            bytes_read: self.last_bytes_read,
            bytes_added: self.last_bytes_added,
            snapshots: self.snapshots,
            dedup_ratio: match (self.last_bytes_read, self.last_bytes_added) {
                (Some(r), Some(a)) if a > 0 => Some(r as f64 / a as f64),
                _ => None,
            },
            last_check_success_time: self.last_check_success_time,
            last_drill_success_time: self.last_drill_success_time,
            unusable_files: self.unusable_files,
            last_drill_restore_seconds: self.last_drill_restore_seconds,
            transfer_bytes: self.last_transfer_bytes,
            transfer_seconds: self.last_transfer_seconds,
        }
    }
}

/// Whether something last done at `last` (Unix seconds) is due again after `every`.
pub fn is_due(last: Option<f64>, every: Duration, now: f64) -> bool {
    match last {
        None => true,
        Some(t) => now - t >= every.as_secs_f64(),
    }
}

/// Runs every selected site once. Never returns early for one site's failure.
pub fn run(
    config: &Config,
    opener: &dyn StoreOpener,
    opts: RunOptions<'_>,
) -> anyhow::Result<RunReport> {
    let selected: Vec<(&String, &SiteConfig)> = match &opts.site {
        Some(name) => {
            let site = config.sites.get_key_value(name).ok_or_else(|| {
                anyhow!(
                    "no site {name:?} in {} (sites: {})",
                    config.path.display(),
                    config.sites.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            vec![site]
        }
        None => config.sites.iter().collect(),
    };
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
        let report = run_site(
            config,
            &state_dir,
            name,
            site,
            opener,
            &pinger,
            opts.drill,
            &mut *opts.log,
        );
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

/// Saves a site's state and rewrites the metrics textfile (when configured); the first error
/// names the file that could not be written.
fn record(config: &Config, state_dir: &Path, name: &str, state: &SiteState) -> anyhow::Result<()> {
    state.save(state_dir, name)?;
    if let Some(path) = &config.monitoring.prometheus_textfile {
        write_metrics(config, state_dir, path)
            .with_context(|| format!("metrics textfile {}", path.display()))?;
    }
    Ok(())
}

/// Rewrites the textfile from every configured site's state, under a lock so that two runs of
/// different sites do not overwrite each other's view.
fn write_metrics(config: &Config, state_dir: &Path, path: &Path) -> anyhow::Result<()> {
    let _guard = RepoLock::acquire(state_dir, "metrics-textfile", Duration::from_secs(30))?;
    let mut all = Vec::new();
    for name in config.sites.keys() {
        let st = SiteState::load(state_dir, name)?;
        if st.last_run_time.is_some() {
            all.push(st.metrics(name));
        }
    }
    monitor::write_textfile(path, &all)?;
    Ok(())
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Collects a site's log lines for the ping body while passing them to the run's sink.
struct SiteLog<'a> {
    site: String,
    tail: LogTail,
    sink: &'a mut dyn FnMut(&LogEvent<'_>),
}

impl SiteLog<'_> {
    fn say(&mut self, level: &str, msg: &str) {
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

#[allow(clippy::too_many_arguments)]
fn run_site(
    config: &Config,
    state_dir: &Path,
    name: &str,
    site: &SiteConfig,
    opener: &dyn StoreOpener,
    pinger: &Pinger,
    drill: Option<&dyn DrillHook>,
    sink: &mut dyn FnMut(&LogEvent<'_>),
) -> SiteReport {
    let started = Instant::now();
    let mut log = SiteLog {
        site: name.to_string(),
        tail: LogTail::default(),
        sink,
    };
    let pings = PingUrls::from_config(&site.monitoring);
    if let Some(url) = &pings.start {
        if let Err(e) = pinger.ping(url, "") {
            log.say("warn", &e);
        }
    }
    let mut report = SiteReport {
        site: name.to_string(),
        outcome: Outcome::Failed,
        file: None,
        sha256: None,
        snapshot: None,
        stored: None,
        backfilled: Vec::new(),
        snapshots: None,
        retention: None,
        check: None,
        drill: None,
        error: None,
        warnings: Vec::new(),
        transfer: None,
        seconds: 0.0,
    };
    // A state file that cannot be read (root's, after a run by hand as root) fails the site,
    // naming the file: starting from nothing would let the metrics claim a fresh success. Its
    // folder is the service user's, so recording this failure replaces it. A corrupt one is
    // only warned about.
    let mut unreadable = None;
    let mut state = match SiteState::load(state_dir, name) {
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
        None => site_steps(
            config,
            state_dir,
            name,
            site,
            opener,
            drill,
            &mut log,
            &mut report,
            &mut state,
        ),
    };
    let now = now_secs();
    report.seconds = started.elapsed().as_secs_f64();
    state.last_run_time = Some(now);
    state.last_duration_seconds = Some(report.seconds);
    state.last_run_success = result.is_ok();
    if result.is_ok() {
        state.last_success_time = Some(now);
    }
    // What the run records (state file, metrics textfile) is written before the ping: a write
    // that fails fails the site (exit code, fail ping), so no success ping ever announces a run
    // whose figures were lost (a root-owned node_exporter folder, a full disk).
    let result = match (result, record(config, state_dir, name, &state)) {
        (result, Ok(())) => result,
        (Ok(()), Err(w)) => Err(w),
        (Err(e), Err(w)) => {
            log.say("error", &format!("{w:#}"));
            Err(e)
        }
    };
    match result {
        Ok(()) => {
            log.say(
                "info",
                &format!(
                    "done in {}",
                    crate::figures::duration(Duration::from_secs_f64(report.seconds))
                ),
            );
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
        if let Err(e) = pinger.ping(url, &body) {
            log.say("warn", &e);
        }
    }
    let html = config.monitoring.report_html.as_ref();
    crate::hooks::after_site(
        site.hooks.as_ref(),
        &report,
        was_failing,
        html,
        &mut |l, m| log.say(l, m),
    );
    report
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

#[allow(clippy::too_many_arguments)]
fn site_steps(
    config: &Config,
    state_dir: &Path,
    name: &str,
    site: &SiteConfig,
    opener: &dyn StoreOpener,
    drill: Option<&dyn DrillHook>,
    log: &mut SiteLog<'_>,
    report: &mut SiteReport,
    state: &mut SiteState,
) -> anyhow::Result<()> {
    // The site's own files (password file, source folder, ...) are checked here rather than
    // when the config is loaded: a problem with them fails this site only.
    config.check_site_files(name)?;
    // The lock file records the location: with any password hidden. It is keyed by the
    // location in one spelling (see `lock::location_key`, which also drops any login).
    let location = &crate::redact::string(&site.store_id());
    let lock = RepoLock::acquire(
        state_dir,
        &crate::lock::location_key(&site.store_id()),
        config.lock_wait.unwrap_or_default(),
    )?;
    if let Some(stale) = &lock.stale {
        log.say(
            "warn",
            &format!("cleared a stale lock left by a run that died ({stale})"),
        );
    }
    let store = opener
        .open(name, site)
        .with_context(|| format!("repository {location}"))?;

    let picked = {
        let mut note = |m: &str| log.say("info", m);
        source::fetch_newest_in(&site.source, config.scratch_dir.as_deref(), &mut note)
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
                "the newest backup {} is {} old, more than source.max_age {}: is Discourse still \
                 making backups?",
                picked.origin,
                crate::figures::duration(age),
                crate::figures::duration(max_age)
            );
        }
    }
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
            log.say(
                "info",
                &format!(
                    "{} is already stored in snapshot {snap}",
                    picked.name.file_name
                ),
            );
            report.outcome = Outcome::AlreadyStored;
            report.snapshot = Some(snap);
        }
        None => {
            log.say(
                "info",
                &format!(
                    "storing {} ({})",
                    picked.origin,
                    crate::figures::bytes(picked.size)
                ),
            );
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
    // The run's figures: every backup it stored, the older ones included.
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

    if let Some(summary) = store.own_retention().context("retention")? {
        log.say("info", &format!("retention: {summary}"));
        report.retention = Some(summary);
    }
    if let Some(r) = &site.retention {
        if r.forget {
            let summary = store.forget(r).context("retention")?;
            log.say("info", &format!("retention: {summary}"));
            report.retention = Some(summary);
        } else {
            report.retention = Some("not on this host (retention.forget = false)".into());
        }
    }

    let now = now_secs();
    if let Some(c) = &site.check {
        if is_due(state.last_check_success_time, c.every, now) {
            let subset = c
                .read_data_subset
                .as_deref()
                .map(crate::config::parse_subset)
                .transpose()
                .map_err(|e| anyhow!(e))?;
            log.say("info", "checking the repository");
            let summary = store.check(subset).context("repository check")?;
            log.say("info", &format!("check: {summary}"));
            state.last_check_success_time = Some(now_secs());
            report.check = Some(summary);
        } else {
            report.check = Some("not due".into());
        }
    }

    if let Some(d) = &site.drill {
        if is_due(state.last_drill_success_time, d.every, now) {
            match drill {
                Some(hook) => {
                    // The snapshot holding the backup this run just stored or found stored: the
                    // site's own newest, whatever else the repository holds.
                    let snapshot = report.snapshot.clone().ok_or_else(|| {
                        anyhow!("restore drill: no snapshot of site {name} to drill")
                    })?;
                    log.say(
                        "info",
                        &format!("running a restore drill of snapshot {snapshot}"),
                    );
                    let mut say = |m: &str| log.say("info", m);
                    let done = hook
                        .drill(name, site, d, &snapshot, &mut say)
                        .with_context(|| format!("restore drill of snapshot {snapshot}"))?;
                    let summary = done.summary;
                    log.say("info", &format!("drill: {summary}"));
                    state.last_drill_success_time = Some(now_secs());
                    state.last_drill_restore_seconds = Some(done.restore_secs);
                    report.drill = Some(summary);
                }
                None => {
                    log.say("warn", "a drill is due but this build has no drill step");
                    report.drill = Some("due, but not available in this build".into());
                }
            }
        } else {
            report.drill = Some("not due".into());
        }
    }

    let count = store.snapshot_count()?;
    state.snapshots = Some(count);
    report.snapshots = Some(count);
    drop(lock);
    Ok(())
}

/// Snapshot of the state of all sites, for `dvault run --json` consumers and tests.
pub fn load_states(config: &Config) -> anyhow::Result<BTreeMap<String, SiteState>> {
    let dir = config.state_dir();
    config
        .sites
        .keys()
        .map(|n| Ok((n.clone(), SiteState::load(&dir, n)?)))
        .collect()
}
