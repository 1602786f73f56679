//! `dvault setup --root DIR` on a fake standard Discourse Docker host: container files as
//! discourse_docker's samples write them (samples/standalone.yml, and the two-container
//! samples/data.yml plus web_only.yml), the real dvault binary, and a real repository that
//! dvault then opens with the password setup wrote. Running it twice changes nothing; a dry run
//! changes nothing and names every step.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STANDALONE: &str = r#"templates:
  - "templates/postgres.template.yml"
  - "templates/redis.template.yml"
  - "templates/web.template.yml"
expose:
  - "80:80"   # http
  - "443:443" # https
params:
  db_default_text_search_config: "pg_catalog.english"
env:
  LANG: en_US.UTF-8
  DISCOURSE_HOSTNAME: 'forum.example.org'
  DISCOURSE_DEVELOPER_EMAILS: 'me@example.com'
  DISCOURSE_SMTP_ADDRESS: smtp.example.com
  DISCOURSE_SMTP_PASSWORD: pa$$word
volumes:
  - volume:
      host: /var/discourse/shared/standalone
      guest: /shared
  - volume:
      host: /var/discourse/shared/standalone/log/var-log
      guest: /var/log
"#;

const DATA: &str = r#"templates:
  - "templates/postgres.template.yml"
env:
  LANG: en_US.UTF-8
volumes:
  - volume:
      host: /var/discourse/shared/data
      guest: /shared
"#;

const WEB_ONLY: &str = r#"templates:
  - "templates/web.template.yml"
env:
  DISCOURSE_HOSTNAME: community.example.org
  DISCOURSE_DB_HOST: data
volumes:
  - volume:
      host: /var/discourse/shared/web-only
      guest: /shared
"#;

/// The uid setup must give its files to (the fake root's dvault user).
const DVAULT_UID: u32 = 4242;

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A fake host root with the given container files and the dvault user in its /etc/passwd.
fn host(containers: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let c = root.path().join("var/discourse/containers");
    std::fs::create_dir_all(&c).unwrap();
    for (name, text) in containers {
        std::fs::write(c.join(name), text).unwrap();
    }
    std::fs::create_dir_all(
        root.path()
            .join("var/discourse/shared/standalone/backups/default"),
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/bash\n\
             dvault:x:{DVAULT_UID}:{DVAULT_UID}:dvault backups:/var/lib/dvault:/usr/sbin/nologin\n"
        ),
    )
    .unwrap();
    root
}

fn setup(root: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dvault"))
        .arg("setup")
        .arg("--root")
        .arg(root)
        .arg("--yes")
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every path below `root` with its mode, owner, size, mtime and content.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let content = if m.is_file() {
            std::fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        out.insert(
            p.strip_prefix(root).unwrap().to_path_buf(),
            format!(
                "{:o} {} {} {} {:?}",
                m.mode(),
                m.uid(),
                m.size(),
                m.mtime_nsec() + m.mtime() * 1_000_000_000,
                content
            ),
        );
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out
}

#[test]
fn setup_on_a_standard_host_writes_a_config_a_password_and_a_repository_that_opens() {
    let root = host(&[("app.yml", STANDALONE)]);
    let r = root.path();
    let o = setup(r, &["--no-drill"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("found site app: forum.example.org (backups in /var/discourse/shared/standalone/backups/default)"),
        "{out}"
    );
    assert!(!out.contains("pa$$word"), "{out}");
    // Told once, plainly, where to keep the password.
    assert_eq!(
        out.matches("IMPORTANT: /etc/dvault/app.password").count(),
        1,
        "{out}"
    );

    let config_path = r.join("etc/dvault/dvault.toml");
    let config = dvault_core::config::Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let site = &config.sites["app"];
    assert_eq!(
        site.source.folder.as_deref(),
        Some(Path::new(
            "/var/discourse/shared/standalone/backups/default"
        ))
    );
    let repo = site.repository.as_ref().unwrap();
    assert_eq!(repo.location, "/srv/dvault/app");
    assert_eq!(repo.password_file, Path::new("/etc/dvault/app.password"));
    let text = std::fs::read_to_string(&config_path).unwrap();
    assert!(!text.contains("pa$$word"), "{text}");
    assert!(text.contains("# forum.example.org (container"), "{text}");

    let pw_path = r.join("etc/dvault/app.password");
    let pw_meta = std::fs::metadata(&pw_path).unwrap();
    assert_eq!(pw_meta.permissions().mode() & 0o777, 0o600);
    let pw = std::fs::read_to_string(&pw_path).unwrap();
    assert_eq!(pw.trim().len(), 64, "a 256-bit random password in hex");

    // The repository opens with that password (and not with another).
    let repo_dir = r.join("srv/dvault/app");
    let cfg =
        dvault_core::repo::RepoConfig::new(dvault_core::repo::Location::Local(repo_dir.clone()));
    dvault_core::repo::Repo::open(&cfg, &dvault_core::repo::Password::new(pw.trim()), None)
        .expect("the repository setup made opens with its password");
    assert!(
        dvault_core::repo::Repo::open(&cfg, &dvault_core::repo::Password::new("wrong"), None)
            .is_err()
    );

    if is_root() {
        for p in [&config_path, &pw_path, &repo_dir, &repo_dir.join("config")] {
            assert_eq!(
                std::fs::metadata(p).unwrap().uid(),
                DVAULT_UID,
                "{} belongs to the service user",
                p.display()
            );
        }
    }
    if is_root() {
        // The Discourse backups folder is readable by the service user, also for later files.
        let backups = r.join("var/discourse/shared/standalone/backups");
        let acl = Command::new("getfacl")
            .args(["-n", "-p", "--omit-header"])
            .arg(&backups)
            .output()
            .unwrap();
        let acl = String::from_utf8_lossy(&acl.stdout);
        assert!(acl.contains(&format!("\nuser:{DVAULT_UID}:r-x")), "{acl}");
        assert!(
            acl.contains(&format!("default:user:{DVAULT_UID}:r-x")),
            "{acl}"
        );
    }
    assert!(
        out.contains("skip  first backup and timer: not started under --root"),
        "{out}"
    );
}

#[test]
fn running_setup_twice_changes_nothing() {
    let root = host(&[("app.yml", STANDALONE)]);
    let first = setup(root.path(), &[]);
    assert!(first.status.success(), "{}", text(&first));
    let before = tree(root.path());
    let second = setup(root.path(), &[]);
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert_eq!(before, tree(root.path()));
    assert!(!out.lines().any(|l| l.starts_with("do ")), "{out}");
    assert!(!out.contains("IMPORTANT"), "{out}");
    assert!(
        out.contains("ok    create the repository of app at /srv/dvault/app: exists"),
        "{out}"
    );
}

#[test]
fn a_dry_run_names_every_step_and_changes_nothing() {
    let root = host(&[("app.yml", STANDALONE)]);
    let before = tree(root.path());
    let o = setup(root.path(), &["--dry-run"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(before, tree(root.path()));
    for step in [
        "would create folder /etc/dvault (mode 0700)",
        "would create folder /var/lib/dvault (mode 0700)",
        "would create folder /srv/dvault (mode 0700)",
        "would write a new random repository password for app to /etc/dvault/app.password",
        "would write /etc/dvault/dvault.toml (mode 0600)",
        "would create the repository of app at /srv/dvault/app",
        "dry run: nothing was changed",
    ] {
        assert!(out.contains(step), "missing {step:?} in:\n{out}");
    }
    if is_root() {
        assert!(
            out.contains("would let the dvault user read the backups in /var/discourse/shared/standalone/backups (ACL)"),
            "{out}"
        );
    }
}

#[test]
fn a_two_container_install_gives_the_web_container_as_a_site_and_skips_the_data_container() {
    let root = host(&[("data.yml", DATA), ("web_only.yml", WEB_ONLY)]);
    let o = setup(root.path(), &["--dry-run"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("found site web_only: community.example.org (backups in /var/discourse/shared/web-only/backups/default)"),
        "{out}"
    );
    assert!(!out.contains("found site data"), "{out}");
}

#[test]
fn an_existing_config_is_kept_and_a_site_it_lacks_is_pointed_out() {
    let root = host(&[("app.yml", STANDALONE)]);
    let etc = root.path().join("etc/dvault");
    std::fs::create_dir_all(&etc).unwrap();
    let mine = "[sites.other.source]\nfolder = \"/x\"\n\
                [sites.other.repository]\nlocation = \"/srv/x\"\npassword_file = \"/etc/x\"\n";
    std::fs::write(etc.join("dvault.toml"), mine).unwrap();
    let o = setup(root.path(), &["--no-drill"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(
        std::fs::read_to_string(etc.join("dvault.toml")).unwrap(),
        mine
    );
    assert!(
        out.contains("does not name site app (forum.example.org)"),
        "{out}"
    );
}

#[test]
fn a_host_without_discourse_is_refused_naming_the_folder_it_looked_in() {
    let root = host(&[]);
    let o = setup(root.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(
        out.contains("no Discourse site found: /var/discourse/containers"),
        "{out}"
    );
}

#[test]
fn a_broken_container_file_is_an_error_naming_it() {
    let root = host(&[("app.yml", "env: [unclosed\n")]);
    let o = setup(root.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(
        out.contains("/var/discourse/containers/app.yml: not valid YAML"),
        "{out}"
    );
}

#[test]
fn two_sites_sharing_one_repository_location_are_refused() {
    let root = host(&[("app.yml", STANDALONE), ("web_only.yml", WEB_ONLY)]);
    let o = setup(root.path(), &["--repository", "/srv/backups"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("put {site} in it"), "{}", text(&o));
}

#[test]
fn as_root_without_the_service_user_setup_refuses_rather_than_leave_root_owned_files() {
    if !is_root() {
        return; // Only root gives files away; as another user setup's files are that user's.
    }
    let root = host(&[("app.yml", STANDALONE)]);
    std::fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\n",
    )
    .unwrap();
    let o = setup(root.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no user dvault in"), "{}", text(&o));
    assert!(!root.path().join("etc/dvault").exists());
}

#[test]
fn run_as_root_over_the_service_users_state_is_refused_naming_the_folder() {
    if !is_root() {
        return; // The danger is root's alone: only root can write into another user's folder.
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(DVAULT_UID), Some(DVAULT_UID)).unwrap();
    let config = dir.path().join("dvault.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[sites.app.source]\nfolder = \"/nonexistent\"\n\
             [sites.app.repository]\nlocation = \"/nonexistent/repo\"\npassword_file = \"/nonexistent/pw\"\n",
            state.display().to_string()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dvault"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "refusing to run as root: {} belongs to uid {DVAULT_UID}",
            state.display()
        )),
        "{out}"
    );
    // Nothing was written into the service user's folder.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
}
