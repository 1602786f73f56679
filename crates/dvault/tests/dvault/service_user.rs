//! Running dvault as the wrong user (issue 20): a real unprivileged service user (created with
//! `useradd` when missing), a real repository and state folder made by `dvault init` and `dvault
//! run` as that user (through `runuser`), then root or the service user meeting the other's
//! files. Root over the service user's folders is refused naming the user, the folder and the
//! command to run instead, and leaves no root-owned file; a root-owned state file fails the
//! service user's run naming the file (no success ping, metrics say failed); a root-owned
//! metrics folder is named. Needs root (only root can be the wrong user here); otherwise each
//! test says it is skipped.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The service user of these tests (the Debian package's is `dvault`).
const USER: &str = "dvault-svc-test";
const SITE_FILE: &str = "forum-2024-05-01-033000-v20240420000000.sql.gz";

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn skip(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped {test}: needs root (it runs dvault as root and as a second user)");
    true
}

/// The service user's uid and gid, creating the user when missing.
fn ensure_user() -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let o = Command::new("id").arg(flag).arg(USER).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        // Another test may create it at the same moment: "already exists" (9) is fine.
        let s = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(USER)
            .status()
            .expect("useradd");
        assert!(s.success() || s.code() == Some(9), "useradd {USER}: {s}");
    }
    (id("-u").expect("uid"), id("-g").expect("gid"))
}

/// dvault as root.
fn as_root(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dvault"))
        .args(args)
        .env_remove("DVAULT_ALLOW_ROOT")
        .output()
        .unwrap()
}

/// dvault as the service user, as a timer (or `runuser -u dvault --`) starts it.
fn as_user(args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", USER, "--"])
        .arg(env!("CARGO_BIN_EXE_dvault"))
        .args(args)
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

fn gzip_backup(folder: &Path, name: &str, rows: u32) {
    let plain = folder.join(name.trim_end_matches(".gz"));
    let mut sql = String::from("COPY public.users (id, name) FROM stdin;\n");
    for i in 0..rows {
        sql.push_str(&format!("{i}\tuser{i}\n"));
    }
    sql.push_str("\\.\n");
    std::fs::write(&plain, sql).unwrap();
    assert!(Command::new("gzip")
        .arg("-n")
        .arg(&plain)
        .status()
        .unwrap()
        .success());
}

/// A host as the service user keeps it: backups and metrics folders, password file, config,
/// and a repository and state folder made by `dvault init` and a first `dvault run` as that
/// user. `extra_config` is added to the config, with `{d}` standing for the host's folder.
struct Host {
    dir: tempfile::TempDir,
    config: PathBuf,
    owner: (u32, u32),
}

impl Host {
    fn new(extra_config: &str) -> Host {
        let owner = ensure_user();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("backups")).unwrap();
        std::fs::create_dir(d.join("metrics")).unwrap();
        gzip_backup(&d.join("backups"), SITE_FILE, 3000);
        std::fs::write(d.join("password"), "correct horse\n").unwrap();
        let config = d.join("dvault.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n{}\
                 [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"0s\"\n\
                 [sites.forum.repository]\nlocation = \"{d}/repo\"\n\
                 password_file = \"{d}/password\"\n",
                extra_config.replace("{d}", &d.display().to_string()),
                d = d.display()
            ),
        )
        .unwrap();
        chown_tree(d, owner);
        let host = Host { dir, config, owner };
        let o = as_user(&["init", "--config", host.config_str()]);
        assert!(o.status.success(), "init as {USER}: {}", text(&o));
        let o = as_user(&["run", "--config", host.config_str()]);
        assert!(o.status.success(), "first run as {USER}: {}", text(&o));
        host
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn config_str(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// A new backup (other content) in the backups folder, the service user's.
    fn new_backup(&self, name: &str) -> PathBuf {
        gzip_backup(&self.path("backups"), name, 4000);
        chown_tree(&self.path("backups"), self.owner);
        self.path("backups").join(name)
    }
}

fn chown_tree(p: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    if std::fs::symlink_metadata(p).unwrap().is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), (uid, gid));
        }
    }
}

/// Every path below `dir` (and `dir` itself) whose owner or group is root.
fn root_owned(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.uid() == 0 || m.gid() == 0 {
            out.push(p.clone());
        }
        if m.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

/// Ping URLs of the site, and the metrics textfile in `{d}/metrics`.
fn monitoring(pings: &str) -> String {
    format!(
        "[monitoring]\nprometheus_textfile = \"{{d}}/metrics/dvault.prom\"\n\
         [sites.forum.monitoring]\nping_success = \"{pings}/ok\"\nping_fail = \"{pings}/fail\"\n"
    )
}

#[test]
fn commands_as_root_over_the_service_users_folders_are_refused_and_leave_no_root_owned_file() {
    if skip("commands_as_root_over_the_service_users_folders_are_refused") {
        return;
    }
    let host = Host::new("");
    let file = host.new_backup("forum-2024-05-02-033000-v20240420000000.sql.gz");
    let file = file.to_str().unwrap();
    let cfg = host.config_str();
    let new_repo = host.path("second-repo");
    let password = host.path("password");
    let uid = host.owner.0;
    let commands: Vec<Vec<&str>> = vec![
        vec!["backup", "--config", cfg, file],
        vec!["run", "--config", cfg],
        vec!["snapshots", "--config", cfg],
        vec!["check", "--config", cfg],
        vec!["forget", "--config", cfg, "--keep-last", "1"],
        vec!["key", "list", "--config", cfg],
        // A repository that does not exist yet, in the service user's folder, with state and
        // cache folders of root's: its nearest existing folder decides.
        vec![
            "init",
            "--repo",
            new_repo.to_str().unwrap(),
            "--password-file",
            password.to_str().unwrap(),
            "--state-dir",
            "/nonexistent-dvault-root-state",
            "--cache-dir",
            "/nonexistent-dvault-root-cache",
        ],
    ];
    for args in &commands {
        let o = as_root(args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}");
        let folder = if args[0] == "init" {
            host.dir.path().to_path_buf()
        } else {
            host.path("state")
        };
        let want = format!(
            "refusing to run as root: {} belongs to uid {uid} ({USER})",
            folder.display()
        );
        assert!(out.contains(&want), "{args:?}: {out}");
        let instead = format!("sudo -u {USER} dvault {}", args.join(" "));
        assert!(out.contains(&instead), "{args:?}: {out}");
        assert!(
            out.contains(&format!("runuser -u {USER} -- dvault")),
            "{out}"
        );
    }
    assert!(!new_repo.exists());
    assert!(!Path::new("/nonexistent-dvault-root-state").exists());
    for dir in ["repo", "state", "cache"] {
        assert_eq!(root_owned(&host.path(dir)), Vec::<PathBuf>::new(), "{dir}");
    }
    // The refused backup is the service user's to make, and works as that user.
    let o = as_user(&["backup", "--config", cfg, file]);
    assert!(o.status.success(), "{}", text(&o));
    // A command that writes into none of those folders is not refused.
    let o = as_root(&["inspect", file]);
    assert!(o.status.success(), "{}", text(&o));
    // The expert's override, by flag and by environment variable.
    let o = as_root(&["snapshots", "--config", cfg, "--allow-root"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_dvault"))
        .args(["snapshots", "--config", cfg])
        .env("DVAULT_ALLOW_ROOT", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_root_owned_state_file_fails_the_service_users_run_naming_it_without_a_success_ping() {
    if skip("a_root_owned_state_file_fails_the_service_users_run") {
        return;
    }
    let pings = dvault_testkit::ping_server();
    let host = Host::new(&monitoring(&pings.url));
    let prom = host.path("metrics/dvault.prom");
    let success = |prom: &str| {
        prom.lines()
            .find(|l| l.starts_with("dvault_last_run_success{"))
            .map(|l| l.ends_with(" 1"))
    };
    assert_eq!(
        success(&std::fs::read_to_string(&prom).unwrap()),
        Some(true)
    );
    // What a run by hand as root (with --allow-root) leaves: the state file root's, 0600.
    let state_file = host.path("state/sites/forum.json");
    std::os::unix::fs::chown(&state_file, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(
        &state_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    pings.got.lock().unwrap().clear();
    host.new_backup("forum-2024-05-02-033000-v20240420000000.sql.gz");
    let o = as_user(&["run", "--config", host.config_str()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "state file {}: cannot read: Permission denied",
            state_file.display()
        )),
        "{out}"
    );
    let got = pings.got.lock().unwrap().clone();
    assert!(got.iter().any(|(p, _)| p == "/fail"), "pings: {got:?}");
    assert!(!got.iter().any(|(p, _)| p == "/ok"), "pings: {got:?}");
    let text = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(success(&text), Some(false), "{text}");
}

#[test]
fn permission_denied_on_the_metrics_folder_names_the_folder() {
    if skip("permission_denied_on_the_metrics_folder_names_the_folder") {
        return;
    }
    let pings = dvault_testkit::ping_server();
    let host = Host::new(&monitoring(&pings.url));
    // As Debian's prometheus-node-exporter ships it: root's, writable by root only.
    let metrics = host.path("metrics");
    std::os::unix::fs::chown(&metrics, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(
        &metrics,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    pings.got.lock().unwrap().clear();
    host.new_backup("forum-2024-05-02-033000-v20240420000000.sql.gz");
    let o = as_user(&["run", "--config", host.config_str()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "cannot create a file in the folder {}: Permission denied",
            metrics.display()
        )),
        "{out}"
    );
    let got = pings.got.lock().unwrap().clone();
    assert!(!got.iter().any(|(p, _)| p == "/ok"), "pings: {got:?}");
}

#[test]
fn a_root_owned_repository_file_is_named_in_the_service_users_error() {
    if skip("a_root_owned_repository_file_is_named_in_the_service_users_error") {
        return;
    }
    let host = Host::new("");
    // rustic's local backend reports only "Failed to read the contents of the file".
    let config = host.path("repo/config");
    std::os::unix::fs::chown(&config, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = as_user(&["snapshots", "--config", host.config_str()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("{}: ", config.display())), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}
