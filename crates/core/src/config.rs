//! The configuration file of `dvault run`: which Discourse sites to back up, from where, into
//! which repository, with which retention, check and drill schedule and monitoring.
//!
//! TOML, strict: an unknown key or a bad value is an error that names the file and the dotted key
//! (`/etc/dvault/dvault.toml: sites.forum1.source.settle: invalid duration ...`), because a typo
//! that is silently ignored is a backup that silently does not happen. `contrib/dvault.toml` is
//! the complete, commented example.
//!
//! Two kinds of error, kept apart on purpose: the file's syntax and shape ([`Config::load`]) stop
//! the whole run, while a file one site names being missing or unreadable
//! ([`Config::check_site_files`]) is that site's failure, so the other sites are still backed up.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

mod tarsnap;
pub use tarsnap::TarsnapConfig;

/// The standard install's local backups folder (inside the host's view of the container volume).
pub const DEFAULT_BACKUP_FOLDER: &str = "/var/discourse/shared/standalone/backups/default";
/// Where `dvault run` keeps its small state (last check, last drill, locks) unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/dvault";
/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "DVAULT_CONFIG";
/// Environment variable holding the Discourse admin API key when no `key_file` is configured.
pub const API_KEY_ENV: &str = "DVAULT_DISCOURSE_API_KEY";
/// Environment variable holding the Discourse API username when none is configured.
pub const API_USERNAME_ENV: &str = "DVAULT_DISCOURSE_API_USERNAME";

/// A config error: the file, the dotted key it concerns (empty for the whole file) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file (or `<string>` when parsed from memory).
    pub file: PathBuf,
    /// Dotted path of the offending key, e.g. `sites.forum1.retention.keep_daily`.
    pub key: String,
    /// What is wrong and, where it helps, what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for run state and locks (default: [`default_state_dir`], the same as the
    /// single commands').
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Repository metadata cache (default `$CACHE_DIRECTORY` set by systemd, else
    /// `<state_dir>/cache`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Where a backup is expanded before it is stored: needs room for the plain contents of the
    /// largest backup (default `$TMPDIR`).
    #[serde(default)]
    pub scratch_dir: Option<PathBuf>,
    /// How long a run waits for another run's repository lock before giving up (default 0:
    /// give up at once, so a timer never piles up runs).
    #[serde(default, deserialize_with = "de_duration_opt")]
    pub lock_wait: Option<Duration>,
    /// A secret file (this config, a password, key or credentials file) that its group or
    /// other users can read is an error instead of a warning (as `dvault --strict`).
    #[serde(default)]
    pub strict_permissions: bool,
    /// Settings shared by all sites.
    #[serde(default)]
    pub monitoring: GlobalMonitoring,
    /// Prices of the storage, for the costs `dvault report` shows (docs/report.md).
    #[serde(default)]
    pub pricing: Option<crate::report::cost::Pricing>,
    /// The sites, by name. The name appears in logs, metrics labels and snapshot tags.
    pub sites: BTreeMap<String, SiteConfig>,
    /// The file this was read from (not a key in the file).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Monitoring settings for the whole run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalMonitoring {
    /// Prometheus textfile (node_exporter's textfile collector), rewritten atomically after each
    /// run with one series per site.
    #[serde(default)]
    pub prometheus_textfile: Option<PathBuf>,
    /// The HTML report (`dvault report --html`), rewritten after each run (docs/report.md).
    #[serde(default)]
    pub report_html: Option<PathBuf>,
}

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
    /// ... or Tarsnap, fed the peeled backup as one tar stream (exactly one of the two).
    #[serde(default)]
    pub tarsnap: Option<TarsnapConfig>,
    /// Which snapshots to keep; absent: keep everything.
    #[serde(default)]
    pub retention: Option<RetentionConfig>,
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

/// Which snapshots to keep, restic-style, and whether this host may delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Keep the N newest snapshots.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N days.
    #[serde(default)]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N weeks.
    #[serde(default)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months.
    #[serde(default)]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years.
    #[serde(default)]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot younger than this, restic's syntax: `30d`, `2w`, `1y6m`.
    #[serde(default)]
    pub keep_within: Option<String>,
    /// Whether this host forgets snapshots (false on a host with append-only credentials; then
    /// retention runs on the repository's host).
    #[serde(default)]
    pub forget: bool,
    /// Whether this host also prunes (removes unreferenced data) after forgetting.
    #[serde(default)]
    pub prune: bool,
}

/// When to verify the repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// Minimum time between checks, e.g. `7d`.
    #[serde(deserialize_with = "de_duration")]
    pub every: Duration,
    /// Also read back and decrypt this percentage of the pack data, e.g. `10%`; absent:
    /// structure only.
    #[serde(default)]
    pub read_data_subset: Option<String>,
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

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn de_duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

/// Parses `30s`, `10m`, `2h`, `7d`, `1h 30m` (humantime's syntax).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?}: {e} (expected e.g. \"30s\", \"10m\", \"2h\", \"7d\")")
    })
}

impl Config {
    /// The config file from `--config`, else `$DVAULT_CONFIG`, else `/etc/dvault/dvault.toml`.
    pub fn locate(arg: Option<&Path>) -> PathBuf {
        if let Some(p) = arg {
            return p.to_path_buf();
        }
        match std::env::var_os(CONFIG_ENV) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => PathBuf::from("/etc/dvault/dvault.toml"),
        }
    }

    /// Reads, parses and validates a config file. The files it names (password files, source
    /// folders, ...) are not checked here: they belong to one site's environment, and `dvault
    /// run` checks them per site ([`Config::check_site_files`]) so that one site's missing
    /// folder fails that site, not every site.
    ///
    /// `strict_permissions = true` turns strict mode on for the whole process
    /// ([`crate::secret_file::set_strict`]); the config file itself is then checked as a secret
    /// file: every site names its repository password file or Tarsnap key, and URLs in it may
    /// carry credentials.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: path.to_path_buf(),
            key: String::new(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read config file: {e}")))?;
        let config = Config::parse(&text, path)?;
        if config.strict_permissions {
            crate::secret_file::set_strict(true);
        }
        crate::secret_file::check(path, "config file").map_err(|e| err(e.to_string()))?;
        Ok(config)
    }

    /// Parses and validates config text; `origin` is only used in error messages. Does not touch
    /// the files the config names (see [`Config::check_files`]).
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let err = |key: String, message: String| ConfigError {
            file: origin.to_path_buf(),
            key,
            message,
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| err(String::new(), describe_toml_error(&e, text)))?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            err(key, describe_toml_error(e.inner(), text))
        })?;
        config.path = origin.to_path_buf();
        config.validate()?;
        Ok(config)
    }

    fn error(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Checks values that the types alone cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(Err(e)) = self.pricing.as_ref().map(|p| p.validate()) {
            return Err(self.error("pricing", e));
        }
        if self.sites.is_empty() {
            return Err(self.error("sites", "no site configured (add a [sites.NAME] table)"));
        }
        for (name, site) in &self.sites {
            let key = |k: &str| format!("sites.{name}.{k}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                return Err(self.error(
                    format!("sites.{name:?}"),
                    "site names may only contain letters, digits, '-', '_' and '.'",
                ));
            }
            let src = &site.source;
            if src.folder.is_some() && src.s3.is_some() {
                return Err(self.error(key("source"), "give either `folder` or `s3`, not both"));
            }
            if let Some(ssh) = &src.ssh {
                if src.folder.is_some() || src.s3.is_some() {
                    return Err(self.error(
                        key("source.ssh"),
                        "give only one of `folder`, `s3` and `ssh` (the remote folder is the \
                         path in source.ssh.location)",
                    ));
                }
                if let Err((k, m)) = ssh.validate() {
                    return Err(self.error(key(&format!("source.ssh.{k}")), m));
                }
            }
            if let Some(folder) = &src.folder {
                if !folder.is_absolute() {
                    return Err(self.error(
                        key("source.folder"),
                        format!("{}: must be an absolute path", folder.display()),
                    ));
                }
            }
            if src.backfill_limit == 0 {
                return Err(self.error(
                    key("source.backfill_limit"),
                    "must be at least 1 (the newest backup)",
                ));
            }
            if let Some(s3) = &src.s3 {
                if s3.bucket.trim().is_empty() {
                    return Err(self.error(key("source.s3.bucket"), "must not be empty"));
                }
            }
            if let Some(api) = &src.api {
                if !(api.url.starts_with("http://") || api.url.starts_with("https://")) {
                    return Err(self.error(
                        key("source.api.url"),
                        format!("{:?}: expected an http:// or https:// URL", api.url),
                    ));
                }
                if api.poll_interval.is_zero() {
                    return Err(self.error(key("source.api.poll_interval"), "must be > 0"));
                }
                if api.timeout < api.poll_interval {
                    return Err(
                        self.error(key("source.api.timeout"), "must be at least poll_interval")
                    );
                }
            }
            match (&site.repository, &site.tarsnap) {
                (Some(r), None) => {
                    if r.location.trim().is_empty() {
                        return Err(self.error(key("repository.location"), "must not be empty"));
                    }
                }
                (None, Some(t)) => {
                    if site.retention.is_some() {
                        return Err(self.error(
                            key("retention"),
                            "a Tarsnap site keeps archives by tarsnap.keep_last / \
                             tarsnap.keep_daily (with tarsnap.admin_keyfile)",
                        ));
                    }
                    if site.check.is_some() {
                        return Err(self.error(
                            key("check"),
                            "Tarsnap checks its archives itself (`tarsnap --fsck` with the \
                             admin key); leave [check] out for a Tarsnap site",
                        ));
                    }
                    if site.drill.is_some() && t.admin_keyfile.is_none() {
                        return Err(self.error(
                            key("drill"),
                            "a drill reads the archive back: it needs tarsnap.admin_keyfile (a \
                             key with read rights)",
                        ));
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(self.error(
                        key("tarsnap"),
                        "give either [repository] or [tarsnap] for a site, not both",
                    ))
                }
                (None, None) => {
                    return Err(self.error(
                        key("repository"),
                        "missing: give [repository] (location, password_file) or [tarsnap]",
                    ))
                }
            }
            if let Some(r) = &site.repository {
                if r.s3_credentials_file.is_some() && !r.location.starts_with("s3:") {
                    return Err(self.error(
                        key("repository.s3_credentials_file"),
                        "only used with an s3: location",
                    ));
                }
                if r.rest_password_file.is_some() && !r.location.starts_with("rest:") {
                    return Err(self.error(
                        key("repository.rest_password_file"),
                        "only used with a rest: location",
                    ));
                }
            }
            if let Some(r) = &site.retention {
                let keeps_something = r.keep_last.unwrap_or(0) > 0
                    || r.keep_daily.unwrap_or(0) > 0
                    || r.keep_weekly.unwrap_or(0) > 0
                    || r.keep_monthly.unwrap_or(0) > 0
                    || r.keep_yearly.unwrap_or(0) > 0
                    || r.keep_within.is_some();
                if r.forget && !keeps_something {
                    // Forgetting with no keep rule would delete every snapshot.
                    return Err(self.error(
                        key("retention"),
                        "forget = true needs at least one keep_* rule greater than 0",
                    ));
                }
                if let Some(w) = &r.keep_within {
                    if !is_restic_duration(w) {
                        return Err(self.error(
                            key("retention.keep_within"),
                            format!("{w:?}: expected a duration such as \"30d\", \"2w\" or \"1y6m\" (units y, m, w, d, h)"),
                        ));
                    }
                }
                if r.prune && !r.forget {
                    return Err(
                        self.error(key("retention.prune"), "prune = true needs forget = true")
                    );
                }
            }
            if let Some(c) = &site.check {
                if c.every.is_zero() {
                    return Err(self.error(key("check.every"), "must be > 0"));
                }
                if let Some(s) = &c.read_data_subset {
                    parse_subset(s).map_err(|m| self.error(key("check.read_data_subset"), m))?;
                }
            }
            if let Some(d) = &site.drill {
                if d.every.is_zero() {
                    return Err(self.error(key("drill.every"), "must be > 0"));
                }
                if let Some(t) = &d.put_back {
                    if site.repository.is_none() {
                        return Err(self.error(
                            key("drill.put_back"),
                            "needs a repository site (a Tarsnap site's archive is restored by \
                             `tarsnap -x`)",
                        ));
                    }
                    crate::putback::Target::parse(t)
                        .map_err(|e| self.error(key("drill.put_back"), e.to_string()))?;
                }
                if let Some(r) = &d.put_back_restore {
                    if d.put_back.is_none() {
                        return Err(self.error(
                            key("drill.put_back_restore"),
                            "needs drill.put_back (the staging forum's backups folder or bucket)",
                        ));
                    }
                    if !(r.url.starts_with("https://") || r.url.starts_with("http://")) {
                        return Err(self.error(
                            key("drill.put_back_restore.url"),
                            "expected the staging forum's http(s):// URL",
                        ));
                    }
                }
                if let Some(url) = &d.postgres_url {
                    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                        return Err(self.error(
                            key("drill.postgres_url"),
                            "expected a postgres:// or postgresql:// URL",
                        ));
                    }
                }
            }
            let m = &site.monitoring;
            for (k, v) in [
                ("ping_url", &m.ping_url),
                ("ping_start", &m.ping_start),
                ("ping_success", &m.ping_success),
                ("ping_fail", &m.ping_fail),
            ] {
                if let Some(url) = v {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(self.error(
                            key(&format!("monitoring.{k}")),
                            format!("{url:?}: expected an http:// or https:// URL"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the files of every site ([`Config::check_site_files`]); the first problem is the
    /// error.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        self.sites
            .keys()
            .try_for_each(|name| self.check_site_files(name))
    }

    /// Checks that the files site `name` names exist and are readable (password file, key and
    /// credentials files, the local source folder), naming the key and the path when one is
    /// not. An unknown site name is an error naming the `sites` key.
    pub fn check_site_files(&self, name: &str) -> Result<(), ConfigError> {
        let site = self
            .sites
            .get(name)
            .ok_or_else(|| self.error(format!("sites.{name}"), "no such site"))?;
        let key = |k: &str| format!("sites.{name}.{k}");
        // Each of these holds a secret: also refused or warned about when others can read it.
        let readable = |k: &str, p: &Path| -> Result<(), ConfigError> {
            std::fs::File::open(p)
                .map(drop)
                .and_then(|()| crate::secret_file::check(p, &key(k)))
                .map_err(|e| self.error(key(k), format!("{}: {e}", p.display())))
        };
        if let Some(r) = &site.repository {
            readable("repository.password_file", &r.password_file)?;
            if let Some(f) = &r.s3_credentials_file {
                readable("repository.s3_credentials_file", f)?;
            }
            if let Some(f) = &r.rest_password_file {
                readable("repository.rest_password_file", f)?;
            }
        }
        if let Some(t) = &site.tarsnap {
            readable("tarsnap.keyfile", &t.keyfile)?;
            if let Some(k) = &t.admin_keyfile {
                readable("tarsnap.admin_keyfile", k)?;
            }
        }
        if let Some(api) = &site.source.api {
            if let Some(f) = &api.key_file {
                readable("source.api.key_file", f)?;
            }
        }
        if let Some(s3) = &site.source.s3 {
            if let Some(f) = &s3.credentials_file {
                readable("source.s3.credentials_file", f)?;
            }
        }
        if let Some(ssh) = &site.source.ssh {
            if let Some(f) = &ssh.identity_file {
                readable("source.ssh.identity_file", f)?;
            }
        }
        if site.source.s3.is_none() && site.source.ssh.is_none() {
            let folder = site.source.folder_or_default();
            match std::fs::metadata(&folder) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.error(
                        key("source.folder"),
                        format!("{}: not a directory", folder.display()),
                    ))
                }
                Err(e) => {
                    return Err(
                        self.error(key("source.folder"), format!("{}: {e}", folder.display()))
                    )
                }
            }
        }
        Ok(())
    }

    /// The cache directory: the config's `cache_dir`, else [`default_cache_dir`] of the
    /// state directory.
    pub fn cache_dir(&self) -> PathBuf {
        match &self.cache_dir {
            Some(d) => d.clone(),
            None => default_cache_dir(&self.state_dir()),
        }
    }

    /// The state directory: the config's `state_dir`, else [`default_state_dir`].
    pub fn state_dir(&self) -> PathBuf {
        match &self.state_dir {
            Some(d) => d.clone(),
            None => default_state_dir(),
        }
    }
}

/// The one default state folder of the single commands and `dvault run`, so that an admin's
/// `dvault forget --prune` by hand and the timer's run share this host's locks and ledgers:
/// `$STATE_DIRECTORY` (systemd's `StateDirectory=`, the first of several), else
/// `/var/lib/dvault` when this user can write there (root, or the service user that owns it)
/// or root can create it, else `$XDG_STATE_HOME/dvault` (`~/.local/state/dvault`) for a user
/// without a system folder, else `/var/lib/dvault`.
pub fn default_state_dir() -> PathBuf {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(v) = nonempty("STATE_DIRECTORY") {
        let s = v.to_string_lossy();
        return PathBuf::from(s.split(':').next().unwrap_or(DEFAULT_STATE_DIR));
    }
    let system = Path::new(DEFAULT_STATE_DIR);
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root || writable(system) {
        return system.to_path_buf();
    }
    nonempty("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .map_or_else(|| system.to_path_buf(), |d| d.join("dvault"))
}

/// The one default metadata cache of the single commands and `dvault run` (under dvault's
/// own name, never rustic's `~/.cache/rustic`): `$CACHE_DIRECTORY` (systemd's
/// `CacheDirectory=`, the first of several), else `<state_dir>/cache`.
pub fn default_cache_dir(state_dir: &Path) -> PathBuf {
    match std::env::var_os("CACHE_DIRECTORY") {
        Some(v) if !v.is_empty() => {
            let s = v.to_string_lossy();
            PathBuf::from(s.split(':').next().unwrap_or_default())
        }
        _ => state_dir.join("cache"),
    }
}

/// Whether this process may create files in the folder `dir`.
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
    dir.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0
}

/// restic's `--keep-within` syntax: one or more `<number><unit>` with units y, m, w, d, h.
fn is_restic_duration(s: &str) -> bool {
    let mut digits = false;
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits = true;
        } else if matches!(c, 'y' | 'm' | 'w' | 'd' | 'h') && digits {
            digits = false;
            any = true;
        } else {
            return false;
        }
    }
    any && !digits
}

/// Parses a `read_data_subset` value, a percentage of the pack files such as `10%` (`100%`
/// reads everything). restic's `n/m` and size forms are not offered: the repository layer reads
/// a random percentage.
pub fn parse_subset(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let p = t
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("{t:?}: expected a percentage such as \"10%\""))?;
    if !(p > 0.0 && p <= 100.0) {
        return Err(format!("{t:?}: percentage must be in (0, 100]"));
    }
    Ok(p)
}

/// Turns a toml/serde error into one line, with the line and column where the toml crate knows
/// them (its multi-line snippet format is too loud for a log line).
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{msg} (line {line}, column {col})")
        }
        None => msg,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}
