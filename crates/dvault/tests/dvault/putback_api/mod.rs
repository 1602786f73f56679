//! `dvault restore SNAP --to-discourse FOLDER --api URL`: a real backup, stored and put back
//! bit-exact into a backups folder, then restored by a forum on 127.0.0.1 that answers as
//! Discourse's backup routes do (`forum.rs`, where each route is cited from Discourse's source).

use crate::repo_support;

use std::fs;
use std::path::{Path, PathBuf};

use repo_support::{make_backups, sha256, Env};

mod forum;

use forum::{serve, Forum, KEY};

/// A repository holding one real format-A backup, an empty backups folder and a key file.
struct Setup {
    env: Env,
    repo: String,
    original: PathBuf,
    name: String,
    backups: PathBuf,
    key_file: PathBuf,
}

fn setup() -> Setup {
    let env = Env::new();
    let repo = env.path().join("repo").to_str().unwrap().to_string();
    env.ok(&repo, &["init"]);
    let original = make_backups(env.path(), 1, 20_000).remove(0);
    env.backup(&repo, &original);
    let name = original.file_name().unwrap().to_str().unwrap().to_string();
    let backups = env.path().join("staging-backups");
    fs::create_dir(&backups).unwrap();
    let key_file = env.path().join("api-key");
    fs::write(&key_file, format!("{KEY}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    Setup {
        env,
        repo,
        original,
        name,
        backups,
        key_file,
    }
}

impl Setup {
    fn args<'a>(&'a self, url: &'a str, key_file: &'a Path) -> Vec<&'a str> {
        vec![
            "restore",
            "latest",
            "--to-discourse",
            self.backups.to_str().unwrap(),
            "--api",
            url,
            "--api-key-file",
            key_file.to_str().unwrap(),
            "--api-poll-interval",
            "50ms",
        ]
    }
}

#[test]
fn the_forum_restores_the_put_back_file_and_dvault_reports_success() {
    let s = setup();
    // The backups in make_backups carry migration 20240229123456.
    let server = serve(Forum {
        readonly: true,
        ..Forum::new(&s.backups, 20_260_101_000_000)
    });
    let out = s.env.ok(
        &s.repo,
        &[&s.args(&server.url, &s.key_file)[..], &["--json"]].concat(),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["restore"];
    assert_eq!(r["outcome"], "succeeded", "{v}");
    assert_eq!(r["name"], s.name.as_str());
    assert!(
        r["log_tail"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "[SUCCESS]"),
        "{v}"
    );
    assert!(
        r["notes"][0].as_str().unwrap().contains("read-only mode"),
        "{v}"
    );
    // The forum restored the very bytes of the original backup, from the folder.
    let f = server.forum.lock().unwrap();
    assert_eq!(f.restored, [(s.name.clone(), sha256(&s.original))]);
    // Status checked before the POST; the POST carries one client id, and the log was read
    // for that same id; every request with the key from the file.
    let post = f
        .seen
        .iter()
        .position(|r| r.0 == "POST" && r.1.ends_with("/restore"))
        .unwrap();
    assert!(f.seen[..post]
        .iter()
        .any(|r| r.1 == "/admin/backups/status.json"));
    assert_eq!(f.seen[post].1, format!("/admin/backups/{}/restore", s.name));
    let client_id = f.seen[post].3.strip_prefix("client_id=").unwrap();
    assert_eq!(client_id.len(), 32, "{client_id}");
    assert!(f
        .seen
        .iter()
        .any(|r| r.1 == format!("/message-bus/{client_id}/poll?dlp=t")));
    assert!(f.seen.iter().all(|r| r.2 == KEY));
    assert_eq!(
        f.seen.iter().filter(|r| r.1.ends_with("/restore")).count(),
        1,
        "the POST is sent once"
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains(KEY), "the key stays out of the log: {text}");
}

#[test]
fn a_restore_discourse_refuses_is_a_failure_with_discourses_reason() {
    let s = setup();
    // The forum's schema is older than the backup's migration.
    let server = serve(Forum::new(&s.backups, 20_230_101_000_000));
    // A password in the URL stays out of every message.
    let url = server.url.replace("http://", "http://admin:hunter2@");
    let out = s
        .env
        .dvault(&s.repo)
        .args(s.args(&url, &s.key_file))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("[FAILED]")
            && stderr.contains("You're trying to restore a more recent version of the schema"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Trying to rollback..."),
        "the log tail is shown: {stdout}"
    );
    assert!(
        !format!("{stdout}{stderr}").contains("hunter2"),
        "{stdout}{stderr}"
    );
    // The file was put back all the same (bit-exact), ready for a restore once the forum is
    // updated.
    assert_eq!(sha256(&s.backups.join(&s.name)), sha256(&s.original));
}

#[test]
fn a_forum_that_does_not_allow_restores_is_refused_with_discourses_fix_before_writing() {
    let s = setup();
    let server = serve(Forum {
        allow_restore: false,
        ..Forum::new(&s.backups, 20_260_101_000_000)
    });
    let err = s.env.fails(&s.repo, &s.args(&server.url, &s.key_file));
    assert!(
        err.contains("allow_restore is false") && err.contains("discourse enable_restore"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&s.backups).unwrap().count(),
        0,
        "nothing written"
    );
    let f = server.forum.lock().unwrap();
    assert!(!f.seen.iter().any(|r| r.0 == "POST"), "no restore started");
}

#[test]
fn a_bad_key_is_a_403_naming_the_url_and_nothing_is_written() {
    let s = setup();
    let server = serve(Forum::new(&s.backups, 20_260_101_000_000));
    let wrong = s.env.path().join("wrong-key");
    fs::write(&wrong, "not-the-key\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrong, fs::Permissions::from_mode(0o600)).unwrap();
    let err = s.env.fails(&s.repo, &s.args(&server.url, &wrong));
    assert!(
        err.contains(&format!(
            "GET {}/admin/backups/status.json: HTTP 403",
            server.url
        )),
        "{err}"
    );
    assert!(err.contains("API key"), "{err}");
    assert!(!err.contains("not-the-key"), "{err}");
    assert_eq!(
        fs::read_dir(&s.backups).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn the_key_comes_from_the_environment_when_no_file_is_given() {
    let s = setup();
    let server = serve(Forum::new(&s.backups, 20_260_101_000_000));
    let out = s
        .env
        .dvault(&s.repo)
        .args([
            "restore",
            "latest",
            "--to-discourse",
            s.backups.to_str().unwrap(),
            "--api",
            &server.url,
            "--api-poll-interval",
            "50ms",
        ])
        .env("DVAULT_DISCOURSE_API_KEY", KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("restored it ([SUCCESS])"), "{stdout}");
    // Without a key anywhere: a clear error before anything is written.
    fs::remove_file(s.backups.join(&s.name)).unwrap();
    let err = s.env.fails(
        &s.repo,
        &[
            "restore",
            "latest",
            "--to-discourse",
            s.backups.to_str().unwrap(),
            "--api",
            &server.url,
        ],
    );
    assert!(
        err.contains("no Discourse API key") && err.contains("--api-key-file"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&s.backups).unwrap().count(), 0);
}

/// `dvault run` with `[sites.NAME.drill] put_back` and `[...drill.put_back_restore]`: after the
/// drill passes, the backup lands in the staging forum's folder and the staging forum restores
/// it through its API; a restore the staging forum fails fails the run's drill.
#[test]
fn run_drill_puts_back_and_the_staging_forum_restores_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let opts = dvault_sim::Options {
        formats: vec![dvault_sim::Format::A],
        ..dvault_sim::Options::small(31)
    };
    let files = dvault_sim::generate(&opts, &d.join("backups")).unwrap();
    let original = files[0].path.clone();
    let name = original.file_name().unwrap().to_str().unwrap().to_string();
    fs::write(d.join("password"), "drill password\n").unwrap();
    fs::write(d.join("api-key"), format!("{KEY}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in ["password", "api-key"] {
        fs::set_permissions(d.join(f), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let staging = d.join("staging");
    fs::create_dir(&staging).unwrap();
    let dvault = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_dvault"));
        for (k, _) in std::env::vars() {
            if k.starts_with("DVAULT_") {
                c.env_remove(k);
            }
        }
        c.env("DVAULT_REPOSITORY", d.join("repo"))
            .env("DVAULT_PASSWORD_FILE", d.join("password"))
            .env(
                "PATH",
                format!(
                    "/usr/lib/postgresql/15/bin:{}",
                    std::env::var("PATH").unwrap()
                ),
            );
        c
    };
    assert!(dvault().arg("init").output().unwrap().status.success());
    let config = |url: &str| {
        let path = d.join("dvault.toml");
        fs::write(
            &path,
            format!(
                "state_dir = \"{d}/state\"\ncache_dir = \"{d}/cache\"\n\
                 [sites.forum.source]\nfolder = \"{d}/backups\"\nsettle = \"0s\"\n\
                 [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/password\"\n\
                 [sites.forum.drill]\nevery = \"1s\"\nput_back = \"{d}/staging\"\n\
                 [sites.forum.drill.put_back_restore]\nurl = \"{url}\"\nkey_file = \"{d}/api-key\"\n\
                 poll_interval = \"50ms\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        path
    };

    // Staging's schema is newer than the backup's: it restores it.
    let server = serve(Forum::new(&staging, 99_990_101_000_000));
    let out = dvault()
        .args(["run", "--config"])
        .arg(config(&server.url))
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(log.contains("restored it ([SUCCESS])"), "{log}");
    assert_eq!(sha256(&staging.join(&name)), sha256(&original));
    assert_eq!(
        server.forum.lock().unwrap().restored,
        [(name.clone(), sha256(&original))]
    );

    // A staging forum whose schema is older fails the restore: the run's drill fails, saying
    // why. The file is there from the first run and is restored again.
    // The drill is due again only once `every` (1s) has passed since the first run's drill.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let server = serve(Forum::new(&staging, 20_000_101_000_000));
    let out = dvault()
        .args(["run", "--config"])
        .arg(config(&server.url))
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("is there already, left as it is")
            && log.contains("[FAILED]")
            && log.contains("more recent version of the schema"),
        "{log}"
    );
}

/// A backup already running on the forum is waited for (status.json), then the restore runs;
/// an operation that starts between the status request and the POST gets Discourse's HTTP 200
/// `failed` answer, which is an error quoting the forum's message.
#[test]
fn a_running_operation_is_waited_for_and_a_failed_answer_is_an_error() {
    let s = setup();
    let server = serve(Forum {
        running: true,
        other_polls: 4,
        ..Forum::new(&s.backups, 20_260_101_000_000)
    });
    let out = s.env.ok(&s.repo, &s.args(&server.url, &s.key_file));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("restored it ([SUCCESS])"), "{text}");
    assert!(text.contains("waiting for it to end"), "{text}");
    {
        let f = server.forum.lock().unwrap();
        let post = f
            .seen
            .iter()
            .position(|r| r.0 == "POST" && r.1.ends_with("/restore"));
        let polls_before = f.seen[..post.unwrap()]
            .iter()
            .filter(|r| r.1 == "/admin/backups/status.json")
            .count();
        // The backup ended on the 4th status poll; the POST came only after it.
        assert!(
            polls_before >= 4,
            "the POST waited for the backup: {polls_before} polls"
        );
    }

    let s = setup();
    let server = serve(Forum {
        busy_on_post: true,
        ..Forum::new(&s.backups, 20_260_101_000_000)
    });
    let err = s.env.fails(&s.repo, &s.args(&server.url, &s.key_file));
    assert!(
        err.contains("Discourse did not start the restore: Es läuft bereits ein Vorgang."),
        "{err}"
    );
    assert!(server.forum.lock().unwrap().restored.is_empty());
}

/// The restore replaces the forum's database, API keys included: when the restored database
/// does not hold the key, the forum refuses it mid-restore, and the outcome is reported as
/// unknown with the reason (exit 1), never guessed.
#[test]
fn a_key_the_restored_database_lacks_gives_an_unknown_outcome_saying_why() {
    let s = setup();
    let server = serve(Forum {
        key_lost: true,
        ..Forum::new(&s.backups, 20_260_101_000_000)
    });
    let err = s.env.fails(&s.repo, &s.args(&server.url, &s.key_file));
    assert!(
        err.contains("unknown outcome") && err.contains("does not hold this key"),
        "{err}"
    );
}

/// `put_back_restore` without `put_back`, or with a URL that is not http(s), is a config error
/// (exit 2) naming the key.
#[test]
fn put_back_restore_config_errors_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (drill, key, why) in [
        (
            "[sites.forum.drill]\nevery = \"7d\"\n[sites.forum.drill.put_back_restore]\nurl = \"https://staging.example.com\"\n",
            "sites.forum.drill.put_back_restore",
            "needs drill.put_back",
        ),
        (
            "[sites.forum.drill]\nevery = \"7d\"\nput_back = \"/srv/staging\"\n[sites.forum.drill.put_back_restore]\nurl = \"staging.example.com\"\n",
            "sites.forum.drill.put_back_restore.url",
            "http(s)://",
        ),
    ] {
        let config = d.join("dvault.toml");
        fs::write(
            &config,
            format!(
                "[sites.forum.source]\nfolder = \"{d}\"\n\
                 [sites.forum.repository]\nlocation = \"{d}/repo\"\npassword_file = \"{d}/pw\"\n{drill}",
                d = d.display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dvault"))
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(key) && err.contains(why), "{err}");
    }
}
