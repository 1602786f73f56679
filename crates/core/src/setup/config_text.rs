//! The commented `dvault.toml` that `dvault setup` writes: the same keys and comments as the
//! annotated example (contrib/dvault.toml), filled in with the sites found on the host. The
//! text is parsed with [`crate::config::Config::parse`] before it is written, so setup never
//! leaves a config that `dvault run` would refuse.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::containers::DiscourseSite;

/// One site as it goes into the config.
#[derive(Debug, Clone)]
pub struct SiteChoice {
    /// What was found in the container file.
    pub site: DiscourseSite,
    /// Repository location (a local path, `rest:...` or `s3:...`).
    pub location: String,
    /// Repository password file.
    pub password_file: PathBuf,
    /// For a `rest:` location with a login: the file holding its password.
    pub rest_password_file: Option<PathBuf>,
    /// For an `s3:` location: the two-line credentials file.
    pub s3_credentials_file: Option<PathBuf>,
    /// healthchecks.io-style ping URL.
    pub ping_url: Option<String>,
}

/// Settings for the whole file.
#[derive(Debug, Clone)]
pub struct ConfigChoice {
    /// Where state and locks live.
    pub state_dir: PathBuf,
    /// node_exporter's textfile, when the host runs one.
    pub prometheus_textfile: Option<PathBuf>,
    /// Whether restore drills are configured (they need PostgreSQL's server binaries).
    pub drill: bool,
    /// The sites.
    pub sites: Vec<SiteChoice>,
}

/// A TOML basic string. JSON's string escapes are a subset of TOML's.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A TOML key: bare when it may be, quoted otherwise.
fn key(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        s.to_string()
    } else {
        quote(s)
    }
}

/// The whole file.
pub fn render(c: &ConfigChoice, written_by: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# dvault configuration, written by {written_by}.\n\
         # Every key is explained in /usr/share/doc/dvault/examples/dvault.toml; `dvault run` reads\n\
         # this file (systemd: dvault.service, started daily by dvault.timer).\n\
         # Unknown keys and bad values are errors naming the key. Secrets live in the files named\n\
         # here (mode 0600, owned by the dvault user), never in this file.\n"
    );
    let _ = writeln!(
        t,
        "# Run state (last check, last drill, figures) and locks."
    );
    let _ = writeln!(t, "state_dir = {}", quote(&c.state_dir.to_string_lossy()));
    let _ = writeln!(
        t,
        "# Wait this long for a repository another run holds, then give up (exit code 11).\n\
         lock_wait = \"10m\"\n"
    );
    let _ = writeln!(t, "[monitoring]");
    match &c.prometheus_textfile {
        Some(p) => {
            let _ = writeln!(
                t,
                "# node_exporter's textfile collector reads this (one series per site).\n\
                 prometheus_textfile = {}",
                quote(&p.to_string_lossy())
            );
        }
        None => {
            let _ = writeln!(
                t,
                "# For node_exporter's textfile collector (the folder must be writable by the\n\
                 # dvault user, see docs/operations.md):\n\
                 # prometheus_textfile = \"/var/lib/prometheus/node-exporter/dvault.prom\""
            );
        }
    }
    for s in &c.sites {
        site(&mut t, s, c.drill);
    }
    t
}

fn site(t: &mut String, s: &SiteChoice, drill: bool) {
    let k = format!("sites.{}", key(&s.site.name));
    let local = !(s.location.starts_with("rest:") || s.location.starts_with("s3:"));
    let _ = writeln!(
        t,
        "\n# ---------------------------------------------------------------------------------\n\
         # {} (container {}).\n[{k}]\n",
        s.site.hostname,
        s.site.container_file.display()
    );
    let _ = writeln!(
        t,
        "[{k}.source]\n\
         # Discourse's own daily backups, only ever read.\n\
         folder = {}\n\
         # A file counts as complete once its size and time stay unchanged this long.\n\
         settle = \"5s\"\n\
         # Fail (and ping /fail) when the newest backup is older: Discourse stopped making them.\n\
         max_age = \"36h\"\n",
        quote(&s.site.backups.to_string_lossy())
    );
    let _ = writeln!(
        t,
        "[{k}.repository]\n\
         location = {}\n\
         # First line: the repository password. Keep a copy off this host: without it the\n\
         # backups cannot be read.\n\
         password_file = {}",
        quote(&s.location),
        quote(&s.password_file.to_string_lossy())
    );
    if let Some(f) = &s.rest_password_file {
        let _ = writeln!(t, "rest_password_file = {}", quote(&f.to_string_lossy()));
    }
    if let Some(f) = &s.s3_credentials_file {
        let _ = writeln!(t, "s3_credentials_file = {}", quote(&f.to_string_lossy()));
    }
    let _ = writeln!(
        t,
        "\n[{k}.retention]\n\
         keep_daily = 7\n\
         keep_weekly = 5\n\
         keep_monthly = 12\n\
         keep_within = \"2d\""
    );
    if local {
        let _ = writeln!(
            t,
            "# This host holds the repository and may delete from it.\n\
             forget = true\n\
             prune = true\n"
        );
    } else {
        let _ = writeln!(
            t,
            "# A remote repository: retention runs where the full credentials are (an\n\
             # append-only server cannot delete). Set both to true if this host may delete.\n\
             forget = false\n\
             prune = false\n"
        );
    }
    let _ = writeln!(
        t,
        "[{k}.check]\n\
         # Verify the repository's structure weekly, reading back a tenth of the data.\n\
         every = \"7d\"\n\
         read_data_subset = \"10%\"\n"
    );
    if drill {
        let _ = writeln!(
            t,
            "[{k}.drill]\n\
             # Prove weekly that the newest backup restores into PostgreSQL (a throwaway\n\
             # cluster started for the drill).\n\
             every = \"7d\"\n"
        );
    } else {
        let _ = writeln!(
            t,
            "# Restore drills need PostgreSQL's server binaries on this host (apt install\n\
             # postgresql), which setup did not find. Then uncomment:\n\
             # [{k}.drill]\n\
             # every = \"7d\"\n"
        );
    }
    let _ = writeln!(t, "[{k}.monitoring]");
    match &s.ping_url {
        Some(u) => {
            let _ = writeln!(
                t,
                "# <url>/start, <url> on success, <url>/fail with the log.\nping_url = {}",
                quote(u)
            );
        }
        None => {
            let _ = writeln!(
                t,
                "# A healthchecks.io-style check: <url>/start, <url> on success, <url>/fail.\n\
                 # ping_url = \"https://hc-ping.com/...\""
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn choice(name: &str, location: &str) -> ConfigChoice {
        ConfigChoice {
            state_dir: "/var/lib/dvault".into(),
            prometheus_textfile: None,
            drill: true,
            sites: vec![SiteChoice {
                site: DiscourseSite {
                    name: name.into(),
                    hostname: "forum.example.org".into(),
                    backups: "/var/discourse/shared/standalone/backups/default".into(),
                    container_file: "/var/discourse/containers/app.yml".into(),
                },
                location: location.into(),
                password_file: "/etc/dvault/app.password".into(),
                rest_password_file: None,
                s3_credentials_file: None,
                ping_url: Some("https://hc-ping.com/x".into()),
            }],
        }
    }

    #[test]
    fn a_remote_repository_gets_no_retention_on_this_host_and_the_text_parses() {
        let text = render(&choice("app", "rest:http://backup:8000/app/"), "a test");
        let c = crate::config::Config::parse(&text, Path::new("t.toml")).unwrap();
        let r = c.sites["app"].retention.as_ref().unwrap();
        assert!(!r.forget && !r.prune, "{text}");
        assert!(c.sites["app"].drill.is_some());
        assert_eq!(
            c.sites["app"].monitoring.ping_url.as_deref(),
            Some("https://hc-ping.com/x")
        );
    }

    #[test]
    fn a_site_name_that_is_no_bare_key_is_quoted() {
        let text = render(&choice("app.v2", "/srv/dvault/x"), "a test");
        let c = crate::config::Config::parse(&text, Path::new("t.toml")).unwrap();
        assert!(c.sites.contains_key("app.v2"), "{text}");
        assert!(c.sites["app.v2"].retention.as_ref().unwrap().forget);
    }
}
