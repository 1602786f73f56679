//! Where a repository command's repository, password, cache, state and locks come from: its
//! flags, else the config file `dvault run` reads, else dvault's one set of defaults.
//!
//! The config file is `--config`, else `$DVAULT_CONFIG`, else `/etc/dvault/dvault.toml` when
//! that exists. `--site NAME` picks a site of it; without `--site` a config with one site (or
//! one site whose repository is the `--repo` given) is used. A site gives the repository
//! location, password file, S3 credentials and REST password files; the config gives the state,
//! cache and scratch folders and the lock wait. A flag (or its environment variable) always wins
//! over the config. Without a config the folders are `defaults::default_state_dir` and
//! `defaults::default_cache_dir`, the very defaults `dvault run` uses, so that a backup or forget
//! by hand and the timer's run share this host's locks and snapshot ledger (a hand-made
//! snapshot that `run`'s retention removes is then also removed from the ledger `check` reads).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Result};
use clap::Args;
use dvault_core::config::{self, Config, SiteConfig};
use dvault_core::defaults;
use dvault_core::repo::{self, Location, Password, RepoConfig};

/// Where the repository is and how to open it (flattened into every repository command).
#[derive(Debug, Clone, Args)]
pub struct RepoArgs {
    /// The config file to take the repository, password and folders from (default:
    /// $DVAULT_CONFIG, else /etc/dvault/dvault.toml when it exists).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The site of the config file whose repository to use (needed when it has several).
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Repository: a folder, rest:http://host:port/path or s3:http://host:port/bucket[/prefix]
    /// (default: the site's, from the config file).
    #[arg(long = "repo", short = 'r', env = "DVAULT_REPOSITORY")]
    pub repo: Option<String>,
    /// File whose first line is the repository password (else DVAULT_PASSWORD_FILE,
    /// DVAULT_PASSWORD, or the site's password_file).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Folder for the local metadata cache (default: the config's cache_dir, else
    /// $CACHE_DIRECTORY, else <state dir>/cache, as for `dvault run`).
    #[arg(long, env = "DVAULT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Folder for this host's state: the ledger of the snapshots it wrote to each repository,
    /// which lets `check` notice a deleted snapshot, and this host's locks (default: the
    /// config's state_dir, else as for `dvault run`: $STATE_DIRECTORY, else /var/lib/dvault
    /// for root or a user who can write there, else $XDG_STATE_HOME/dvault or
    /// ~/.local/state/dvault).
    #[arg(long, env = "DVAULT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// How long to wait when another process (dvault or restic, on any host) holds a
    /// conflicting lock of the repository, e.g. 10m (default: the config's lock_wait, else
    /// fail at once with exit code 11).
    #[arg(long, env = "DVAULT_RETRY_LOCK", value_parser = parse_wait)]
    pub retry_lock: Option<std::time::Duration>,
    /// Folder where a backup expands its file (set by the commands that take --scratch-dir).
    #[arg(skip)]
    pub scratch_dir: Option<PathBuf>,
    /// The resolved settings, worked out once (the config file is read once).
    #[arg(skip)]
    resolved: OnceLock<std::result::Result<Resolved, String>>,
}

/// `--scratch-dir`, for the commands that expand or rebuild a backup.
#[derive(Debug, Clone, Args)]
pub struct ScratchArg {
    /// Folder where a backup expands its file before storing it, or a restore rebuilds it
    /// (default: the config's scratch_dir, else $TMPDIR).
    #[arg(long, env = "DVAULT_SCRATCH_DIR")]
    pub scratch_dir: Option<PathBuf>,
}

/// What the flags, the config and the defaults settle on.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// How to open the repository.
    pub repo: RepoConfig,
    /// The location as given (for the lock key and messages).
    pub location: String,
    /// The config site used, if any.
    pub site: Option<String>,
    /// The site's password file, used when no flag or environment variable gives one.
    site_password_file: Option<PathBuf>,
}

fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    config::parse_duration(s)
}

impl RepoArgs {
    /// Takes the scratch folder of a command's `--scratch-dir`.
    pub fn with_scratch(mut self, scratch: &ScratchArg) -> Self {
        self.scratch_dir.clone_from(&scratch.scratch_dir);
        self.resolved = OnceLock::new();
        self
    }

    /// The settings (read once).
    pub fn resolved(&self) -> Result<&Resolved> {
        match self
            .resolved
            .get_or_init(|| self.resolve().map_err(|e| format!("{e:#}")))
        {
            Ok(r) => Ok(r),
            Err(e) => bail!("{e}"),
        }
    }

    /// How to open the repository (location, cache, scratch, state, lock wait).
    pub fn config(&self) -> Result<RepoConfig> {
        Ok(self.resolved()?.repo.clone())
    }

    /// The config site these settings came from, if any.
    pub fn site(&self) -> Result<Option<&str>> {
        Ok(self.resolved()?.site.as_deref())
    }

    /// The scratch folder: `--scratch-dir`, else the config's.
    pub fn scratch(&self) -> Result<Option<PathBuf>> {
        Ok(self.resolved()?.repo.scratch_dir.clone())
    }

    /// The repository password: `--password-file`, else `DVAULT_PASSWORD_FILE` or
    /// `DVAULT_PASSWORD`, else the site's `password_file`.
    pub fn password(&self) -> Result<Password> {
        let r = self.resolved()?;
        let env_given = [
            repo::password::ENV_PASSWORD_FILE,
            repo::password::ENV_PASSWORD,
        ]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
        match (&self.password_file, &r.site_password_file) {
            (None, Some(f)) if !env_given => Ok(repo::password::read_file(f)?),
            (f, _) => repo::password::resolve(f.as_deref()).map_err(|e| match e {
                repo::RepoError::NoPassword => anyhow::anyhow!(
                    "{e}: give --password-file, {} or {}",
                    repo::password::ENV_PASSWORD_FILE,
                    repo::password::ENV_PASSWORD
                ),
                e => e.into(),
            }),
        }
    }

    /// The password file to use for a new repository (flag, else the site's), if any.
    pub fn password_file_for_init(&self) -> Result<Option<PathBuf>> {
        Ok(self
            .password_file
            .clone()
            .or_else(|| self.resolved().ok()?.site_password_file.clone()))
    }

    fn resolve(&self) -> Result<Resolved> {
        let config = load_config(self.config.as_deref(), self.repo.is_some())?;
        let site = match &config {
            Some(c) => pick_site(c, self.site.as_deref(), self.repo.as_deref())?,
            None => {
                if let Some(s) = &self.site {
                    bail!(
                        "--site {s}: no config file ({} does not exist; give --config or \
                         DVAULT_CONFIG)",
                        Config::locate(None).display()
                    );
                }
                None
            }
        };
        let site_repo = site.and_then(|(_, s)| s.repository.as_ref());
        if let (Some((name, s)), None) = (site, site_repo) {
            if s.tarsnap.is_some() && self.repo.is_none() {
                bail!(
                    "site {name} is stored in Tarsnap; this command reads restic-format \
                     repositories (use tarsnap itself, or --repo)"
                );
            }
        }
        let location = match (&self.repo, site_repo) {
            (Some(r), _) => r.clone(),
            (None, Some(r)) => r.location.clone(),
            (None, None) => bail!(
                "no repository given: use --repo or DVAULT_REPOSITORY, or a config file with a \
                 site (--config, DVAULT_CONFIG, {})",
                Config::locate(None).display()
            ),
        };
        let state_dir = self
            .state_dir
            .clone()
            .or_else(|| config.as_ref().map(Config::state_dir))
            .unwrap_or_else(defaults::default_state_dir);
        let cache_dir = self
            .cache_dir
            .clone()
            .or_else(|| config.as_ref().map(Config::cache_dir))
            .unwrap_or_else(|| defaults::default_cache_dir(&state_dir));
        let config_scratch = config.as_ref().and_then(|c| c.scratch_dir.clone());
        if location.is_empty() {
            bail!("the repository location is empty: give --repo or DVAULT_REPOSITORY");
        }
        let mut cfg = RepoConfig::new(Location::parse(&location)?);
        cfg.cache_dir = Some(cache_dir);
        cfg.scratch_dir = self.scratch_dir.clone().or(config_scratch);
        cfg.state_dir = Some(state_dir);
        cfg.lock_wait = self
            .retry_lock
            .or_else(|| config.as_ref().and_then(|c| c.lock_wait))
            .unwrap_or_default();
        // The site's credential files belong to its own repository only.
        let same_repo = site_repo.is_some_and(|r| {
            self.repo.as_deref().is_none_or(|given| {
                dvault_core::lock::location_key(given)
                    == dvault_core::lock::location_key(&r.location)
            })
        });
        if let Some(r) = site_repo.filter(|_| same_repo) {
            cfg.s3_credentials_file.clone_from(&r.s3_credentials_file);
            cfg.rest_password_file.clone_from(&r.rest_password_file);
        }
        Ok(Resolved {
            repo: cfg,
            location,
            site: site.map(|(n, _)| n.to_string()),
            site_password_file: site_repo
                .filter(|_| same_repo)
                .map(|r| r.password_file.clone()),
        })
    }
}

/// Reads the config file when there is one. A file named by `--config` or `DVAULT_CONFIG` must
/// exist; the default path is used only when it exists. When the default file cannot be read
/// (a user who is not allowed to) and `--repo` is given, the command goes on without it.
fn load_config(arg: Option<&Path>, repo_given: bool) -> Result<Option<Config>> {
    let explicit =
        arg.is_some() || std::env::var_os(defaults::CONFIG_ENV).is_some_and(|v| !v.is_empty());
    let path = Config::locate(arg);
    if !explicit && !path.exists() {
        return Ok(None);
    }
    match Config::load(&path) {
        Ok(c) => Ok(Some(c)),
        Err(e) if !explicit && repo_given => {
            tracing::warn!("{e}; going on with --repo and the default folders");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The site to use: `--site`, else the only site, else the one site whose repository is the
/// `--repo` given; `None` when `--repo` names a repository of no site (or of several).
fn pick_site<'c>(
    config: &'c Config,
    site: Option<&str>,
    repo: Option<&str>,
) -> Result<Option<(&'c str, &'c SiteConfig)>> {
    if let Some(name) = site {
        return match config.sites.get_key_value(name) {
            Some((n, s)) => Ok(Some((n.as_str(), s))),
            None => bail!(
                "--site {name}: no such site in {} (sites: {})",
                config.path.display(),
                site_names(config)
            ),
        };
    }
    if let Some(given) = repo {
        let key = dvault_core::lock::location_key(given);
        let mut matching = config.sites.iter().filter(|(_, s)| {
            s.repository
                .as_ref()
                .is_some_and(|r| dvault_core::lock::location_key(&r.location) == key)
        });
        return Ok(match (matching.next(), matching.next()) {
            (Some((n, s)), None) => Some((n.as_str(), s)),
            _ => None,
        });
    }
    let mut all = config.sites.iter();
    match (all.next(), all.next()) {
        (Some((n, s)), None) => Ok(Some((n.as_str(), s))),
        _ => bail!(
            "{} has several sites ({}): choose one with --site NAME",
            config.path.display(),
            site_names(config)
        ),
    }
}

fn site_names(config: &Config) -> String {
    config.sites.keys().cloned().collect::<Vec<_>>().join(", ")
}
