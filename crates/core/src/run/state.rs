//! What `dvault run` remembers between runs, per site (`<state_dir>/sites/<name>.json`), and
//! the Prometheus textfile made from it. Written atomically ([`crate::atomic_file`]): a crash
//! never leaves half a state file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::lock::RepoLock;
use crate::monitor::{self, SiteMetrics};

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
    /// When the copy into the second repository (`copy_to`) last succeeded.
    #[serde(default)]
    pub last_copy_success_time: Option<f64>,
    /// Snapshots in the second repository after that copy.
    #[serde(default)]
    pub copy_snapshots: Option<u64>,
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

    /// Writes it atomically ([`crate::atomic_file`]), creating the `sites` folder.
    pub fn save(&self, state_dir: &Path, site: &str) -> anyhow::Result<()> {
        let path = Self::path(state_dir, site);
        let dir = path.parent().unwrap_or(state_dir);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        crate::atomic_file::write(&path, &serde_json::to_vec_pretty(self)?)?;
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
            last_copy_success_time: self.last_copy_success_time,
            copy_snapshots: self.copy_snapshots,
        }
    }
}

/// Saves a site's state and rewrites the metrics textfile (when configured); the first error
/// names the file that could not be written.
pub(super) fn record(
    config: &Config,
    state_dir: &Path,
    name: &str,
    state: &SiteState,
) -> anyhow::Result<()> {
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

/// Snapshot of the state of all sites, for `dvault run --json` consumers and tests.
pub fn load_states(config: &Config) -> anyhow::Result<BTreeMap<String, SiteState>> {
    let dir = config.state_dir();
    config
        .sites
        .keys()
        .map(|n| Ok((n.clone(), SiteState::load(&dir, n)?)))
        .collect()
}

/// Now, in Unix seconds (the unit of the state file's times).
pub(super) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
