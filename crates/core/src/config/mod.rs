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
//!
//! Modules: `site` (the typed values of a site's tables), `pricing` (`[pricing]`), `values`
//! (the parsers of durations and percentages, run once at load), `validate` (what the types
//! alone cannot check, and the files a site names), the defaults in [`crate::defaults`]; the annotated example is
//! `contrib/dvault.toml` (`dvault config generate` prints it).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod pricing;
mod site;
mod tarsnap;
mod validate;
mod values;

pub use crate::defaults::{
    default_cache_dir, default_state_dir, CONFIG_ENV, DEFAULT_BACKUP_FOLDER, DEFAULT_STATE_DIR,
};
pub use pricing::Pricing;
pub use site::*;
pub use tarsnap::TarsnapConfig;
pub(crate) use values::de_duration;
use values::de_duration_opt;
pub use values::{parse_duration, parse_subset};

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
    pub pricing: Option<Pricing>,
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

impl Config {
    /// The config file from `--config`, else `$DVAULT_CONFIG`, else `/etc/dvault/dvault.toml`.
    pub fn locate(arg: Option<&Path>) -> PathBuf {
        if let Some(p) = arg {
            return p.to_path_buf();
        }
        match std::env::var_os(CONFIG_ENV) {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => PathBuf::from(crate::defaults::CONFIG_FILE),
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
