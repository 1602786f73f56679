//! The `[sites.NAME.tarsnap]` section of the config: which keys and client a Tarsnap site
//! uses, and its retention (see `store/tarsnap/` for what is done with it).

use std::path::PathBuf;

use serde::Deserialize;

/// The `[sites.NAME.tarsnap]` section of the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TarsnapConfig {
    /// Key used to write archives; a write-only key (`tarsnap-keymgmt -w`) is enough.
    pub keyfile: PathBuf,
    /// Key with read and delete rights, for restore, listing and retention. Absent on a backup
    /// host that may only write: then those run elsewhere.
    #[serde(default)]
    pub admin_keyfile: Option<PathBuf>,
    /// Tarsnap's cache directory (`--cachedir`); tarsnap's own config decides when absent.
    #[serde(default)]
    pub cachedir: Option<PathBuf>,
    /// The client to run (default `tarsnap` on `PATH`).
    #[serde(default)]
    pub binary: Option<PathBuf>,
    /// Start of every archive name dvault makes (default `dvault-`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Retention: keep the newest N archives of the site.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Retention: keep the newest archive of each of the last N days that have one.
    #[serde(default)]
    pub keep_daily: Option<u32>,
}

fn default_prefix() -> String {
    "dvault-".to_string()
}
