//! `dvault restore SNAP --to-discourse FOLDER --api URL`: a real backup, stored and put back
//! bit-exact into a backups folder, then restored by a forum on 127.0.0.1 that answers as
//! Discourse's backup routes do. The routes and replies, from Discourse's source:
//! - `GET /admin/backups/status.json` (`config/routes.rb`, `Admin::BackupsController#status`):
//!   `BackupRestore.operations_status` = `{"is_operation_running","can_rollback",
//!   "allow_restore"}` (`lib/backup_restore.rb`); a read-only forum adds the header
//!   `Discourse-Readonly: true` (`lib/read_only_mixin.rb`).
//! - `POST /admin/backups/:id/restore` (`app/controllers/admin/backups_controller.rb#restore`):
//!   `params.fetch(:client_id)` (400 without it), the restore spawned in its own process
//!   (`BackupRestore.restore!` -> `spawn_process!`), answer `{"success":"OK"}`; an operation
//!   already running is HTTP 200 `{"failed":"FAILED","message":...}` (`render_error`).
//! - The spawned `Restorer` (`lib/backup_restore/restorer.rb`) does nothing at all when
//!   `allow_restore` is off (its constructor raises `RestoreDisabledError`); otherwise it logs
//!   `[STARTED]`, marks the operation running, validates the migration in the name
//!   (`lib/backup_restore/meta_data_handler.rb`: "You're trying to restore a more recent
//!   version of the schema. You should migrate first!"), restores, and in `ensure` cleans up
//!   (marking the operation finished) *before* it logs `Finished!` and `[SUCCESS]`/`[FAILED]`.
//! - Log lines go to MessageBus channel `/admin/backups/logs` as `{timestamp, operation,
//!   message}` for the starting user and `client_id` (`lib/backup_restore/logger.rb`), read with
//!   `POST /message-bus/<client_id>/poll?dlp=t` and form field `<channel>=<last id>`; -1 answers
//!   only the channel's current id as a `/__status` message (discourse/message_bus,
//!   `lib/message_bus/rack/middleware.rb`, `client.rb`).
//! - A bad key: HTTP 403 `{"error_type":"invalid_access"}`.

use crate::repo_support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use repo_support::{make_backups, sha256, Env};

const KEY: &str = "d1e2f3-staging-admin-key";
const CHANNEL: &str = "/admin/backups/logs";

/// One request the forum saw: method, path, Api-Key, body.
type Seen = (String, String, String, String);

struct Restore {
    client_id: String,
    /// Status polls still answered "running".
    ticks: u32,
    /// Discourse's reason for failing, if it fails.
    exception: Option<String>,
    /// Lines published after the operation was marked finished.
    ending: Vec<String>,
}

struct Forum {
    backups: PathBuf,
    /// The site's schema version.
    schema: u64,
    allow_restore: bool,
    readonly: bool,
    running: bool,
    /// Status polls a backup already running before dvault came still takes.
    other_polls: u32,
    /// Another operation starts between dvault's status request and its POST.
    busy_on_post: bool,
    /// The restored database does not hold the key: refused once the restore runs.
    key_lost: bool,
    restore: Option<Restore>,
    /// MessageBus backlog of the channel: id, client id ("" = any client), line.
    bus: Vec<(i64, String, String)>,
    /// SHA-256 of each file the forum restored.
    restored: Vec<(String, String)>,
    seen: Vec<Seen>,
}

impl Forum {
    fn new(backups: &Path, schema: u64) -> Self {
        Forum {
            backups: backups.to_path_buf(),
            schema,
            allow_restore: true,
            readonly: false,
            running: false,
            other_polls: 0,
            busy_on_post: false,
            key_lost: false,
            restore: None,
            // An older restore's log, published (as older Discourse did) to every client of its
            // user: dvault must not take its verdict for the new restore's.
            bus: vec![
                (40, String::new(), "Finished!".into()),
                (41, String::new(), "[FAILED]".into()),
            ],
            restored: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn publish(&mut self, client: &str, line: &str) {
        let id = self.bus.last().map_or(1, |m| m.0 + 1);
        self.bus.push((id, client.into(), line.into()));
    }

    /// `Restorer#run` up to its first wait, for backup `name`.
    fn start_restore(&mut self, name: &str, client_id: &str) {
        if !self.allow_restore {
            // RestoreDisabledError in the constructor: the process ends, nothing is logged.
            return;
        }
        self.publish(client_id, "[STARTED]");
        self.publish(client_id, "'system' has started the restore!");
        self.publish(client_id, "Marking restore as running...");
        self.running = true;
        let path = self.backups.join(name);
        let mut exception: Option<String> = None;
        if !path.is_file() {
            exception = Some("EXCEPTION: Failed to copy archive to tmp directory.".into());
        } else {
            self.publish(client_id, "Validating metadata...");
            let version: u64 = name
                .split("-v")
                .nth(1)
                .and_then(|v| v.get(..14))
                .and_then(|v| v.parse().ok())
                .expect("a name with -v<14 digits>");
            self.publish(client_id, &format!("  Current version: {}", self.schema));
            self.publish(client_id, &format!("  Restored version: {version}"));
            if version > self.schema {
                exception = Some(
                    "EXCEPTION: You're trying to restore a more recent version of the schema. \
                     You should migrate first!"
                        .into(),
                );
            } else {
                self.publish(client_id, "Restoring the database...");
                self.restored.push((name.into(), sha256(&path)));
            }
        }
        if let Some(e) = &exception {
            self.publish(client_id, e);
        }
        let verdict = if exception.is_some() {
            "[FAILED]"
        } else {
            "[SUCCESS]"
        };
        self.restore = Some(Restore {
            client_id: client_id.into(),
            ticks: 2,
            exception,
            ending: vec!["Finished!".into(), verdict.into()],
        });
    }

    /// One status poll: the restore runs a few polls, is marked finished, and only a poll
    /// later logs its verdict (as `Restorer#run`'s `ensure` does).
    fn tick(&mut self) {
        if self.other_polls > 0 {
            self.other_polls -= 1;
            self.running = self.other_polls > 0;
            return;
        }
        let Some(r) = self.restore.as_mut() else {
            return;
        };
        if r.ticks > 0 {
            r.ticks -= 1;
            if r.ticks == 0 {
                self.running = false;
                let c = r.client_id.clone();
                let failed = r.exception.is_some();
                if failed {
                    self.publish(&c, "Trying to rollback...");
                }
                self.publish(&c, "Cleaning stuff up...");
                self.publish(&c, "Marking restore as finished...");
            }
            return;
        }
        let r = self.restore.take().unwrap();
        for line in &r.ending {
            self.publish(&r.client_id, line);
        }
    }
}

struct Server {
    url: String,
    forum: Arc<Mutex<Forum>>,
}

fn serve(forum: Forum) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let forum = Arc::new(Mutex::new(forum));
    let f = forum.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            handle(stream, &f);
        }
    });
    Server { url, forum }
}

fn handle(stream: TcpStream, forum: &Arc<Mutex<Forum>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (mut key, mut len) = (String::new(), 0usize);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "api-key" => key = value.trim().to_string(),
            "content-length" => len = value.trim().parse().unwrap(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8(body).unwrap();
    let (status, extra, json) = route(forum, &method, &path, &key, &body);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        _ => "Not Found",
    };
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
}

fn route(
    forum: &Arc<Mutex<Forum>>,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, String, String) {
    let mut f = forum.lock().unwrap();
    f.seen
        .push((method.into(), path.into(), key.into(), body.into()));
    if key != KEY || (f.key_lost && f.restored.len() == 1 && f.running) {
        return (
            403,
            String::new(),
            r#"{"errors":["You are not permitted to view the requested resource. The API username or key is invalid."],"error_type":"invalid_access"}"#.into(),
        );
    }
    let readonly = if f.readonly {
        "Discourse-Readonly: true\r\n".to_string()
    } else {
        String::new()
    };
    if method == "GET" && path == "/admin/backups/status.json" {
        f.tick();
        return (
            200,
            readonly,
            format!(
                r#"{{"is_operation_running":{},"can_rollback":false,"allow_restore":{}}}"#,
                f.running, f.allow_restore
            ),
        );
    }
    if let (Some(name), "POST") = (
        path.strip_prefix("/admin/backups/")
            .and_then(|p| p.strip_suffix("/restore")),
        method,
    ) {
        let Some(client_id) = body.strip_prefix("client_id=").filter(|c| !c.is_empty()) else {
            return (
                400,
                String::new(),
                r#"{"errors":["param is missing or the value is empty: client_id"]}"#.into(),
            );
        };
        if f.busy_on_post {
            f.running = true;
        }
        if f.running {
            return (
                200,
                String::new(),
                r#"{"failed":"FAILED","message":"Es läuft bereits ein Vorgang."}"#.into(),
            );
        }
        let client_id = client_id.to_string();
        f.start_restore(name, &client_id);
        return (200, readonly, r#"{"success":"OK"}"#.into());
    }
    if let (Some(rest), "POST") = (path.strip_prefix("/message-bus/"), method) {
        let (client_id, query) = rest
            .split_once("/poll?")
            .expect("/message-bus/<id>/poll?..");
        assert_eq!(query, "dlp=t", "polls without long polling");
        let (channel, last) = body.split_once('=').unwrap();
        assert_eq!(channel, "%2Fadmin%2Fbackups%2Flogs", "{body}");
        let last: i64 = last.parse().unwrap();
        let messages: Vec<serde_json::Value> = if last == -1 {
            let id = f.bus.last().map_or(0, |m| m.0);
            vec![serde_json::json!({
                "global_id": -1, "message_id": -1, "channel": "/__status",
                "data": { CHANNEL: id },
            })]
        } else {
            f.bus
                .iter()
                .filter(|(id, c, _)| *id > last && (c.is_empty() || c == client_id))
                .map(|(id, _, line)| {
                    serde_json::json!({
                        "global_id": id + 1000, "message_id": id, "channel": CHANNEL,
                        "data": {"timestamp": "2026-12-03 12:00:00", "operation": "restore", "message": line},
                    })
                })
                .collect()
        };
        return (
            200,
            String::new(),
            serde_json::to_string(&messages).unwrap(),
        );
    }
    (
        404,
        String::new(),
        r#"{"errors":["The requested URL or resource could not be found."],"error_type":"not_found"}"#.into(),
    )
}

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
