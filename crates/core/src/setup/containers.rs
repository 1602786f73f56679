//! The Discourse sites of a standard Docker host, read from its container definitions
//! (`/var/discourse/containers/*.yml`).
//!
//! Facts from discourse/discourse_docker, `samples/standalone.yml` (the template that
//! `./discourse-setup` copies to `containers/app.yml`):
//! - the forum's name is `env.DISCOURSE_HOSTNAME`;
//! - its data lives in the volume whose `guest` is `/shared`; the standard `host` is
//!   `/var/discourse/shared/standalone`;
//! - Discourse writes local backups to `/shared/backups/default` inside the container (the
//!   `default` database), so on the host they are `<host>/backups/default`.
//!
//! A container without `DISCOURSE_HOSTNAME` (the `data` container of a two-container install,
//! `samples/data.yml`) runs no forum and is no site. The files also hold secrets (SMTP
//! password): only the three facts above are ever taken from them, and nothing is printed.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// Where Discourse's launcher keeps the container definitions on a standard install.
pub const CONTAINERS_DIR: &str = "var/discourse/containers";

/// One forum found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscourseSite {
    /// The container's name (its file name without `.yml`), used as the site name.
    pub name: String,
    /// `DISCOURSE_HOSTNAME`.
    pub hostname: String,
    /// The backups folder as seen from the host (without any `--root` prefix).
    pub backups: PathBuf,
    /// The container file it came from (as seen from the host).
    pub container_file: PathBuf,
}

/// What went wrong reading one container file: the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct ContainerError {
    /// The file, as seen from the host.
    pub file: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

/// Reads every `*.yml` in `<root>/var/discourse/containers`, sorted by name. Containers that
/// run no forum are left out; a file that cannot be read or parsed is an error naming it. A
/// host without the folder has no sites (an empty list), which the caller reports.
pub fn discover(root: &Path) -> Result<Vec<DiscourseSite>, ContainerError> {
    let dir = root.join(CONTAINERS_DIR);
    let host_dir = Path::new("/").join(CONTAINERS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ContainerError {
                file: host_dir,
                problem: format!("cannot list the folder: {e}"),
            })
        }
    };
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml") && !n.starts_with('.'))
        .collect();
    files.sort();
    let mut sites = Vec::new();
    for file in files {
        let shown = host_dir.join(&file);
        let err = |problem: String| ContainerError {
            file: shown.clone(),
            problem,
        };
        let text = std::fs::read_to_string(dir.join(&file))
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let name = file.trim_end_matches(".yml").to_string();
        if let Some(site) = parse(&name, &text, &shown).map_err(err)? {
            sites.push(site);
        }
    }
    Ok(sites)
}

/// Reads one container definition; `None` when it runs no forum.
pub fn parse(name: &str, text: &str, file: &Path) -> Result<Option<DiscourseSite>, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Some(doc) = docs.first() else {
        return Ok(None);
    };
    let hostname = match &doc["env"]["DISCOURSE_HOSTNAME"] {
        Yaml::String(s) => s.trim().to_string(),
        Yaml::BadValue | Yaml::Null => return Ok(None),
        _ => return Err("env.DISCOURSE_HOSTNAME is not a string".into()),
    };
    if hostname.is_empty() {
        return Err("env.DISCOURSE_HOSTNAME is empty".into());
    }
    let shared = doc["volumes"]
        .as_vec()
        .into_iter()
        .flatten()
        .map(|v| &v["volume"])
        .find(|v| v["guest"].as_str().map(|g| g.trim_end_matches('/')) == Some("/shared"))
        .and_then(|v| v["host"].as_str())
        .ok_or("no volume with guest /shared (where Discourse keeps its data and backups)")?;
    let shared = Path::new(shared.trim_end_matches('/'));
    if !shared.is_absolute() {
        return Err(format!(
            "the /shared volume's host path {} is not absolute",
            shared.display()
        ));
    }
    Ok(Some(DiscourseSite {
        name: name.to_string(),
        hostname,
        backups: shared.join("backups").join("default"),
        container_file: file.to_path_buf(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDALONE: &str = "\
templates:
  - \"templates/postgres.template.yml\"
expose:
  - \"80:80\"
env:
  LANG: en_US.UTF-8
  DISCOURSE_HOSTNAME: 'forum.example.org'
  DISCOURSE_SMTP_PASSWORD: pa$$word
volumes:
  - volume:
      host: /var/discourse/shared/standalone
      guest: /shared
  - volume:
      host: /var/discourse/shared/standalone/log/var-log
      guest: /var/log
";

    #[test]
    fn the_standard_container_gives_its_hostname_and_backups_folder() {
        let site = parse("app", STANDALONE, Path::new("/x/app.yml"))
            .unwrap()
            .unwrap();
        assert_eq!(site.hostname, "forum.example.org");
        assert_eq!(
            site.backups,
            Path::new("/var/discourse/shared/standalone/backups/default")
        );
    }

    #[test]
    fn a_data_only_container_is_no_site() {
        let data =
            "volumes:\n  - volume:\n      host: /var/discourse/shared/data\n      guest: /shared\n";
        assert_eq!(parse("data", data, Path::new("d.yml")).unwrap(), None);
    }

    #[test]
    fn a_forum_without_a_shared_volume_is_an_error_saying_so() {
        let text = "env:\n  DISCOURSE_HOSTNAME: f.example.org\n";
        let e = parse("app", text, Path::new("a.yml")).unwrap_err();
        assert!(e.contains("guest /shared"), "{e}");
    }
}
