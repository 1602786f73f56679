//! `dvault setup`: what it takes to back up the forums of a standard Discourse Docker host,
//! worked out as a list of steps ([`plan`]) and then carried out ([`apply`]).
//!
//! Every step looks at the host first and is "already done" when its result is there (a file
//! that exists is never overwritten, a repository that exists is never created again), so
//! running setup twice changes nothing and `--dry-run` shows exactly what a real run would do.
//! All paths are the host's paths; `root` (normally `/`) is put in front of each one when it is
//! touched, so a test or an image build can prepare a whole root file system in a folder.
//! Starting services is the command line's business (crates/dvault/src/setup_cmd.rs).

pub mod config_text;
pub mod containers;
pub mod owner;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};

use crate::repo::{self, InitOptions, Location, Repo, RepoConfig, RepoError};
pub use config_text::{ConfigChoice, SiteChoice};
pub use containers::DiscourseSite;

/// The service user the package creates (packaging/dvault.sysusers).
pub const SERVICE_USER: &str = "dvault";

/// What the admin chose (flags or answers); paths are host paths.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefix of every path touched (`/` on the host itself).
    pub root: PathBuf,
    /// The config file to write.
    pub config_path: PathBuf,
    /// Repository location, `{site}` replaced by the site name (default `/srv/dvault/{site}`).
    pub repository: String,
    /// Password file, `{site}` replaced (default `/etc/dvault/{site}.password`); created with a
    /// random password when missing.
    pub password_file: String,
    /// For `rest:` locations with a login.
    pub rest_password_file: Option<PathBuf>,
    /// For `s3:` locations.
    pub s3_credentials_file: Option<PathBuf>,
    /// Ping URL, `{site}` replaced.
    pub ping_url: Option<String>,
    /// Only these sites (empty: every site found).
    pub sites: Vec<String>,
    /// Configure restore drills (they need PostgreSQL's server binaries).
    pub drill: bool,
    /// The state folder.
    pub state_dir: PathBuf,
}

impl Options {
    /// `path` (a host path) inside the root.
    pub fn at_root(&self, path: &Path) -> PathBuf {
        match path.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.root.join(path),
        }
    }
}

/// One thing setup does.
#[derive(Debug, Clone)]
pub enum Action {
    /// A folder with this mode, owned by the service user.
    CreateDir {
        /// Host path.
        path: PathBuf,
        /// Mode bits.
        mode: u32,
    },
    /// A new random repository password (mode 0600, owned by the service user).
    WritePassword {
        /// Host path.
        path: PathBuf,
        /// The site it is for.
        site: String,
    },
    /// The config file (mode 0600, owned by the service user).
    WriteConfig {
        /// Host path.
        path: PathBuf,
        /// Its text.
        text: String,
    },
    /// An ACL entry giving the service user access to a folder of another program (the
    /// Discourse backups folder: read; node_exporter's textfile folder: write), with `setfacl`.
    Grant {
        /// Host path.
        path: PathBuf,
        /// `r` (read and traverse, also for files created later) or `w` (write), `x` (only
        /// traverse, for the folders above).
        access: char,
    },
    /// A new repository.
    InitRepository {
        /// The site.
        site: String,
        /// Its location as written in the config.
        location: String,
        /// Its password file (host path).
        password_file: PathBuf,
    },
}

/// A step and whether its result is already there.
#[derive(Debug, Clone)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// `Some(reason)`: nothing to do (e.g. "exists").
    pub done: Option<String>,
}

impl Step {
    /// One line for the admin: what the step does (or would do).
    pub fn describe(&self) -> String {
        match &self.action {
            Action::CreateDir { path, mode } => {
                format!("create folder {} (mode {mode:04o})", path.display())
            }
            Action::WritePassword { path, site } => format!(
                "write a new random repository password for {site} to {} (mode 0600)",
                path.display()
            ),
            Action::WriteConfig { path, .. } => format!("write {} (mode 0600)", path.display()),
            Action::Grant { path, access } => format!(
                "let the dvault user {} {} (ACL)",
                match access {
                    'r' => "read the backups in",
                    'w' => "write its metrics into",
                    _ => "pass through",
                },
                path.display()
            ),
            Action::InitRepository { site, location, .. } => format!(
                "create the repository of {site} at {}",
                crate::redact::string(location)
            ),
        }
    }
}

/// The whole plan: the sites found and the steps.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The sites that will be configured.
    pub sites: Vec<SiteChoice>,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Things the admin should know (a site missing from an existing config, ...).
    pub notes: Vec<String>,
}

/// Finds the sites under `opts.root` and works out the steps. `owner` is the service user
/// setup gives its files to (`None` when it cannot: not root); only then are ACLs planned.
pub fn plan(opts: &Options, owner: Option<owner::Owner>) -> anyhow::Result<Plan> {
    let mut found = containers::discover(&opts.root)?;
    if found.is_empty() {
        anyhow::bail!(
            "no Discourse site found: {} holds no container file with DISCOURSE_HOSTNAME \
             (setup knows the standard Discourse Docker install; on other hosts write \
             /etc/dvault/dvault.toml from /usr/share/doc/dvault/examples/dvault.toml)",
            Path::new("/").join(containers::CONTAINERS_DIR).display()
        );
    }
    if !opts.sites.is_empty() {
        for s in &opts.sites {
            if !found.iter().any(|f| &f.name == s) {
                anyhow::bail!(
                    "no site {s:?} in {} (found: {})",
                    Path::new("/").join(containers::CONTAINERS_DIR).display(),
                    found
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        found.retain(|f| opts.sites.contains(&f.name));
    }
    for f in &found {
        let ok = f
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !ok {
            anyhow::bail!(
                "{}: the container's name {:?} cannot be a dvault site name (letters, digits, \
                 '-', '_' and '.'); leave it out with --site NAME for the others",
                f.container_file.display(),
                f.name
            );
        }
    }
    let fill = |t: &str, site: &str| t.replace("{site}", site);
    let sites: Vec<SiteChoice> = found
        .into_iter()
        .map(|site| SiteChoice {
            location: fill(&opts.repository, &site.name),
            password_file: PathBuf::from(fill(&opts.password_file, &site.name)),
            rest_password_file: opts.rest_password_file.clone(),
            s3_credentials_file: opts.s3_credentials_file.clone(),
            ping_url: opts.ping_url.as_deref().map(|u| fill(u, &site.name)),
            site,
        })
        .collect();
    if sites.len() > 1 && !opts.repository.contains("{site}") {
        anyhow::bail!(
            "{} sites share the repository location {}: put {{site}} in it so each gets its own",
            sites.len(),
            opts.repository
        );
    }

    let mut steps = Vec::new();
    let mut dirs: Vec<(PathBuf, u32)> =
        vec![(config_dir(opts), 0o700), (opts.state_dir.clone(), 0o700)];
    for s in &sites {
        if let Ok(Location::Local(p)) = Location::parse(&s.location) {
            if let Some(parent) = p.parent() {
                dirs.push((parent.to_path_buf(), 0o700));
            }
        }
        if let Some(parent) = s.password_file.parent() {
            dirs.push((parent.to_path_buf(), 0o700));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (path, mode) in dirs {
        if path.as_os_str().is_empty() || !seen.insert(path.clone()) {
            continue;
        }
        let done = opts.at_root(&path).is_dir().then(|| "exists".to_string());
        steps.push(Step {
            action: Action::CreateDir { path, mode },
            done,
        });
    }
    if let Some(o) = owner {
        grants(opts, &sites, o, &mut steps);
    }
    for s in &sites {
        let done = exists(opts, &s.password_file);
        steps.push(Step {
            action: Action::WritePassword {
                path: s.password_file.clone(),
                site: s.site.name.clone(),
            },
            done,
        });
    }
    let mut notes = Vec::new();
    let choice = ConfigChoice {
        state_dir: opts.state_dir.clone(),
        prometheus_textfile: node_exporter_textfile(opts),
        drill: opts.drill,
        sites: sites.clone(),
    };
    let text = config_text::render(&choice, "dvault setup");
    crate::config::Config::parse(&text, &opts.config_path)
        .map_err(|e| anyhow!("setup made a config that does not parse (a bug): {e}"))?;
    let done = exists(opts, &opts.config_path);
    if done.is_some() {
        existing_config_notes(opts, &sites, &mut notes);
    }
    steps.push(Step {
        action: Action::WriteConfig {
            path: opts.config_path.clone(),
            text,
        },
        done,
    });
    for s in &sites {
        let done = match Location::parse(&s.location) {
            Ok(Location::Local(p)) => opts
                .at_root(&p)
                .join("config")
                .is_file()
                .then(|| "exists".to_string()),
            // A remote repository is only known to exist by asking it: apply does, and takes
            // "already exists" as done.
            _ => None,
        };
        steps.push(Step {
            action: Action::InitRepository {
                site: s.site.name.clone(),
                location: s.location.clone(),
                password_file: s.password_file.clone(),
            },
            done,
        });
    }
    Ok(Plan {
        sites,
        steps,
        notes,
    })
}

/// The Discourse container writes its backups as its own user, mode 0644 under folders only
/// root and that user may enter: dvault needs to pass through the folders above (x) and read
/// the backups folder, now and for files made later (a default ACL). Debian's
/// prometheus-node-exporter textfile folder is root's alone: dvault needs to write there.
fn grants(opts: &Options, sites: &[SiteChoice], o: owner::Owner, steps: &mut Vec<Step>) {
    let mut seen = std::collections::BTreeSet::new();
    let mut add = |path: &Path, access: char, steps: &mut Vec<Step>| {
        if !seen.insert(path.to_path_buf()) || !opts.at_root(path).is_dir() {
            return;
        }
        // A folder everyone may pass through needs no entry (/var, usually /var/discourse).
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(opts.at_root(path)).map_or(0, |m| m.permissions().mode());
        if access == 'x' && mode & 0o001 != 0 {
            return;
        }
        let done = owner::has_acl(&opts.at_root(path), o, access).then(|| "granted".to_string());
        steps.push(Step {
            action: Action::Grant {
                path: path.to_path_buf(),
                access,
            },
            done,
        });
    };
    for s in sites {
        // /var/discourse/shared/standalone/backups/default: read backups/ (and default/ below
        // it, recursively); pass through the folders above it.
        let backups = s.site.backups.parent().unwrap_or(&s.site.backups);
        for a in backups.ancestors().skip(1) {
            if a.parent().is_none() {
                break;
            }
            add(a, 'x', steps);
        }
        add(backups, 'r', steps);
    }
    if let Some(f) = node_exporter_textfile(opts) {
        if let Some(dir) = f.parent() {
            add(dir, 'w', steps);
        }
    }
    steps.sort_by_key(|s| match &s.action {
        Action::Grant { path, .. } => path.components().count(),
        _ => 0,
    });
}

fn config_dir(opts: &Options) -> PathBuf {
    opts.config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(crate::defaults::CONFIG_DIR))
}

fn exists(opts: &Options, path: &Path) -> Option<String> {
    opts.at_root(path)
        .exists()
        .then(|| "exists, left as it is".to_string())
}

/// Debian's prometheus-node-exporter reads `/var/lib/prometheus/node-exporter/*.prom`: when the
/// folder is there, dvault writes its figures into it (the package's tmpfiles entry lets the
/// dvault user write there).
fn node_exporter_textfile(opts: &Options) -> Option<PathBuf> {
    let dir = Path::new("/var/lib/prometheus/node-exporter");
    opts.at_root(dir).is_dir().then(|| dir.join("dvault.prom"))
}

/// An existing config is kept as it is; say which found sites it does not name.
fn existing_config_notes(opts: &Options, sites: &[SiteChoice], notes: &mut Vec<String>) {
    let path = opts.at_root(&opts.config_path);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    match crate::config::Config::parse(&text, &opts.config_path) {
        Ok(c) => {
            for s in sites {
                if !c.sites.contains_key(&s.site.name) {
                    notes.push(format!(
                        "{} does not name site {} ({}): add it by hand, or move the file \
                         away and run setup again",
                        opts.config_path.display(),
                        s.site.name,
                        s.site.hostname
                    ));
                }
            }
        }
        Err(e) => notes.push(format!("the existing config does not parse: {e}")),
    }
}

/// What [`apply`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Password files created now (host paths): the admin must copy them somewhere safe.
    pub new_passwords: Vec<PathBuf>,
    /// Repositories created now (site names).
    pub new_repositories: Vec<String>,
}

/// Carries out the steps that are not done yet, in order; stops at the first failure (the
/// error names the step). Files and folders it creates are given to `owner` when set (setup
/// runs as root; the service runs as the dvault user).
pub fn apply(
    opts: &Options,
    plan: &Plan,
    owner: Option<owner::Owner>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Applied> {
    let mut applied = Applied::default();
    for step in &plan.steps {
        if let Some(reason) = &step.done {
            say(&format!("ok    {}: {reason}", step.describe()));
            continue;
        }
        say(&format!("do    {}", step.describe()));
        run_step(opts, step, owner, &mut applied)
            .with_context(|| format!("setup step failed: {}", step.describe()))?;
    }
    Ok(applied)
}

fn run_step(
    opts: &Options,
    step: &Step,
    owner: Option<owner::Owner>,
    applied: &mut Applied,
) -> anyhow::Result<()> {
    match &step.action {
        Action::CreateDir { path, mode } => {
            let p = opts.at_root(path);
            // Missing folders above it (/srv, /var/lib in a bare root) get the usual 0755, not
            // what dvault's umask 077 would give them.
            let missing: Vec<PathBuf> = p
                .ancestors()
                .skip(1)
                .take_while(|a| !a.exists())
                .map(Path::to_path_buf)
                .collect();
            for (dir, m) in missing
                .iter()
                .rev()
                .map(|d| (d, 0o755))
                .chain(std::iter::once((&p, *mode)))
            {
                std::fs::create_dir(dir)
                    .with_context(|| format!("{}: cannot create", dir.display()))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m))
                    .with_context(|| format!("{}: cannot set mode {m:04o}", dir.display()))?;
            }
            owner::give(owner, &p)?;
        }
        Action::WritePassword { path, .. } => {
            let p = opts.at_root(path);
            repo::password::generate_into(&p)?;
            owner::give(owner, &p)?;
            applied.new_passwords.push(path.clone());
        }
        Action::WriteConfig { path, text } => {
            let p = opts.at_root(path);
            repo::password::create_secret_file(&p, text.as_bytes())
                .with_context(|| format!("{}: cannot write", p.display()))?;
            owner::give(owner, &p)?;
        }
        Action::Grant { path, access } => {
            if let Some(o) = owner {
                owner::grant(&opts.at_root(path), o, *access)?;
            }
        }
        Action::InitRepository {
            site,
            location,
            password_file,
        } => {
            let loc = match Location::parse(location)? {
                Location::Local(p) => Location::Local(opts.at_root(&p)),
                other => other,
            };
            let local = match &loc {
                Location::Local(p) => Some(p.clone()),
                _ => None,
            };
            let mut cfg = RepoConfig::new(loc);
            cfg.rest_password_file = opts.rest_password_file.as_ref().map(|f| opts.at_root(f));
            cfg.s3_credentials_file = opts.s3_credentials_file.as_ref().map(|f| opts.at_root(f));
            let pw = repo::password::read_file(&opts.at_root(password_file))?;
            match Repo::init(&cfg, &pw, &InitOptions::default(), None) {
                Ok(_) => applied.new_repositories.push(site.clone()),
                // A remote repository made earlier (by a setup run before this one).
                Err(RepoError::AlreadyExists(_)) if local.is_none() => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(p) = local {
                owner::give_tree(owner, &p)?;
            }
        }
    }
    Ok(())
}
