//! The typed values of a site's tables (`[sites.NAME]` and below) and of their keys, as the
//! file is read: durations and percentages are parsed here, once, by [`super::values`]; the
//! `[retention]` table straight into [`crate::retention::Retention`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{de_duration, de_duration_opt, de_subset};
use super::DEFAULT_BACKUP_FOLDER;
use crate::retention::Retention;

/// One Discourse site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Where its backups come from.
    #[serde(default)]
    pub source: SourceConfig,
    /// Where they are stored: a restic-format repository ...
    #[serde(default)]
    pub repository: Option<RepositoryConfig>,
    /// A second restic-format repository (`[sites.NAME.copy_to]`, the same keys as
    /// `[repository]`): after each run stores into `repository`, the new snapshots are copied
    /// here and retention is applied here too (the off-site copy of the 3-2-1 rule).
    #[serde(default)]
    pub copy_to: Option<RepositoryConfig>,
    /// ... or Tarsnap, fed the peeled backup as one tar stream (exactly one of the two).
    #[serde(default)]
    pub tarsnap: Option<super::TarsnapConfig>,
    /// Which snapshots to keep, restic-style, and whether this host may delete; absent: keep
    /// everything.
    #[serde(default)]
    pub retention: Option<Retention>,
    /// When to verify the repository; absent: never from `dvault run`.
    #[serde(default)]
    pub check: Option<CheckConfig>,
    /// When to prove a restore into PostgreSQL; absent: never from `dvault run`.
    #[serde(default)]
    pub drill: Option<DrillConfig>,
    /// Ping URLs for this site.
    #[serde(default)]
    pub monitoring: SiteMonitoring,
    /// Commands and webhooks on failure and recovery (docs/report.md).
    #[serde(default)]
    pub hooks: Option<crate::hooks::HookConfig>,
}

impl SiteConfig {
    /// What the site is stored in, for locks and messages: the repository location, or
    /// `tarsnap:KEYFILE`.
    pub fn store_id(&self) -> String {
        match (&self.repository, &self.tarsnap) {
            (Some(r), _) => r.location.clone(),
            (None, Some(t)) => format!("tarsnap:{}", t.keyfile.display()),
            (None, None) => String::new(),
        }
    }
}

/// Where a site's backups come from: a local folder (default) or the S3 backup bucket, and
/// optionally the admin API to make a fresh backup first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Local backups folder (default: the standard install's). Mutually exclusive with `s3`.
    #[serde(default)]
    pub folder: Option<PathBuf>,
    /// Discourse's S3 backup bucket. Mutually exclusive with `folder`.
    #[serde(default)]
    pub s3: Option<S3SourceConfig>,
    /// The backups folder on another host, over SFTP (the pull topology). Mutually exclusive
    /// with `folder` and `s3`.
    #[serde(default)]
    pub ssh: Option<crate::source::ssh::SshSourceConfig>,
    /// How long a file's size and mtime must stay unchanged before it counts as complete.
    #[serde(default = "default_settle", deserialize_with = "de_duration")]
    pub settle: Duration,
    /// Fail the run when the newest complete backup is older than this (Discourse stopped
    /// making backups); absent: no limit.
    #[serde(default, deserialize_with = "de_duration_opt")]
    pub max_age: Option<Duration>,
    /// Trigger a backup through the admin API before picking up the newest file.
    #[serde(default)]
    pub api: Option<ApiConfig>,
    /// The most backups one run stores: the newest complete backups not stored yet, oldest
    /// first (a first run on a folder of many backups stores only the newest this many).
    #[serde(default = "default_backfill_limit")]
    pub backfill_limit: u32,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            folder: None,
            s3: None,
            ssh: None,
            settle: default_settle(),
            max_age: None,
            api: None,
            backfill_limit: default_backfill_limit(),
        }
    }
}

impl SourceConfig {
    /// The folder to read from when no bucket is configured.
    pub fn folder_or_default(&self) -> PathBuf {
        self.folder
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BACKUP_FOLDER))
    }
}

/// Discourse keeps `maximum_backups` (5 by default) files; twice that covers a folder kept a
/// little longer without storing dozens of old files on a first run.
fn default_backfill_limit() -> u32 {
    10
}

fn default_settle() -> Duration {
    Duration::from_secs(5)
}

/// Discourse's S3 backup bucket (`backup_location = s3`): objects under `<prefix>`, normally the
/// database name followed by `/` (`default/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3SourceConfig {
    /// Bucket name (`s3_backup_bucket` in Discourse's settings, without the folder part).
    pub bucket: String,
    /// Key prefix; default `default/`.
    #[serde(default = "default_s3_prefix")]
    pub prefix: String,
    /// Endpoint URL for S3-compatible stores; absent: AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region (`s3_region`).
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// File with two lines, access key id and secret; absent: `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` from the environment.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

fn default_s3_prefix() -> String {
    "default/".into()
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

/// The Discourse admin API, used to trigger a fresh backup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The forum's base URL, e.g. `https://forum.example.com`.
    pub url: String,
    /// File holding the admin API key; absent: `DVAULT_DISCOURSE_API_KEY`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// API username (an admin, or `system`); absent: `DVAULT_DISCOURSE_API_USERNAME`, else
    /// `system`.
    #[serde(default)]
    pub username: Option<String>,
    /// Include uploads in the backup (Discourse's `with_uploads`).
    #[serde(default = "default_true")]
    pub with_uploads: bool,
    /// Give up waiting after this long: for an operation already running on the forum (its own
    /// backup, a restore) to end, and again for the backup dvault asked for.
    #[serde(default = "default_api_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// How often to ask whether the backup is still running.
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
}

fn default_true() -> bool {
    true
}

fn default_api_timeout() -> Duration {
    Duration::from_secs(4 * 3600)
}

fn default_poll() -> Duration {
    Duration::from_secs(10)
}

/// The repository a site is stored in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A local path, `rest:http://host:8000/path`, or `s3:http://host/bucket/path`.
    pub location: String,
    /// File whose first line is the repository password.
    pub password_file: PathBuf,
    /// For an `s3:` location: file with two lines, access key id and secret; absent:
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from the environment.
    #[serde(default)]
    pub s3_credentials_file: Option<PathBuf>,
    /// For a `rest:` location: file whose first line is the REST server's password (the user
    /// name goes in the URL, `rest:https://USER@host/`); absent: the URL's password, else
    /// `DVAULT_REST_PASSWORD` / `RESTIC_REST_PASSWORD`.
    #[serde(default)]
    pub rest_password_file: Option<PathBuf>,
}

/// When to verify the repository.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Minimum time between checks, e.g. `7d`.
    #[serde(deserialize_with = "de_duration")]
    pub every: Duration,
    /// Also read back and decrypt this percentage of the pack data, e.g. `10%`; absent:
    /// structure only.
    #[serde(default, deserialize_with = "de_subset")]
    pub read_data_subset: Option<f64>,
}

/// When to run a restore drill (consumed by the drill step of `dvault run`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillConfig {
    /// Minimum time between drills, e.g. `7d`.
    #[serde(deserialize_with = "de_duration")]
    pub every: Duration,
    /// A PostgreSQL server URL to load into (a new database, dropped afterwards; passwords via
    /// `PGPASSFILE`, never in the URL); absent: a throwaway cluster.
    #[serde(default)]
    pub postgres_url: Option<String>,
    /// After a drill that passed, put the drilled backup into a staging Discourse's backups
    /// folder (or `s3:` backup bucket) under its own name and time, ready for Discourse's own
    /// restore there (the full end-to-end drill, docs/operations.md).
    #[serde(default)]
    pub put_back: Option<String>,
    /// After the put-back, have the staging forum restore it through its admin API and follow
    /// it to its end (`discourse::restore_api`); needs `put_back`.
    #[serde(default)]
    pub put_back_restore: Option<RestoreApiConfig>,
}

/// The staging forum's admin API for the drill's restore (`[sites.NAME.drill.put_back_restore]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreApiConfig {
    /// The staging forum's base URL, e.g. `https://staging.example.com`.
    pub url: String,
    /// File holding an admin API key; absent: `DVAULT_DISCOURSE_API_KEY`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// API username; absent: `DVAULT_DISCOURSE_API_USERNAME`, else `system`.
    #[serde(default)]
    pub username: Option<String>,
    /// Give up waiting for the restore after this long.
    #[serde(default = "default_api_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// How often to ask how the restore is going.
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
}

impl RestoreApiConfig {
    /// As the admin-API settings the API client takes.
    pub fn api(&self) -> ApiConfig {
        ApiConfig {
            url: self.url.clone(),
            key_file: self.key_file.clone(),
            username: self.username.clone(),
            with_uploads: false,
            timeout: self.timeout,
            poll_interval: self.poll_interval,
        }
    }
}

/// healthchecks.io-style ping URLs for one site.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteMonitoring {
    /// Base ping URL: `<url>/start` at start, `<url>` on success, `<url>/fail` on failure.
    #[serde(default)]
    pub ping_url: Option<String>,
    /// Overrides `<ping_url>/start`.
    #[serde(default)]
    pub ping_start: Option<String>,
    /// Overrides `<ping_url>`.
    #[serde(default)]
    pub ping_success: Option<String>,
    /// Overrides `<ping_url>/fail`.
    #[serde(default)]
    pub ping_fail: Option<String>,
}
