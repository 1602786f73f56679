//! Working out what `dvault setup` would do: the Discourse sites found on the host, and for
//! each thing setup makes (folders, ACLs, password files, the config, repositories) a step that
//! says whether its result is already there. Nothing here changes the host.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::{
    config_text, containers, owner, Action, ConfigChoice, Options, Plan, SiteChoice, Step,
};
use crate::repo::Location;

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
