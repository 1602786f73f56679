//! The admin-API source against a small HTTP server on 127.0.0.1 that answers the routes the
//! way Discourse's `app/controllers/admin/backups_controller.rb` does (read from Discourse's
//! source; the routes and replies reproduced here):
//! - `POST /admin/backups.json`: `create` takes the form field `with_uploads`
//!   (`params.fetch(:with_uploads) == "true"`), forks the backup (`BackupRestore.backup!` ->
//!   `start!`) and answers HTTP 200 `{"success":"OK"}` (`success_json`); when an operation is
//!   running it rescues `BackupRestore::OperationRunningError` and still answers HTTP 200, with
//!   `{"failed":"FAILED","message":I18n.t("backup.operation_already_running")}` in the site's
//!   locale (here German, to show the text decides nothing);
//! - `GET /admin/backups/status.json`: `render_json_dump(BackupRestore.operations_status)`, i.e.
//!   `{"is_operation_running":..,"can_rollback":..,"allow_restore":..}` (`lib/backup_restore.rb`);
//! - a bad key gets 403 with `error_type` `invalid_access`; the rate limiter answers 429 with a
//!   `Retry-After` header.
//!
//! The server writes the backup file into the folder when its "backup" ends, as Discourse's
//! forked backup process does, and then reports the operation as finished; a "restore" ends
//! without writing a file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dvault_core::config::{ApiConfig, SourceConfig};
use dvault_core::source::api::{ApiClient, RetryPolicy};
use dvault_core::source::fetch_newest;

const KEY: &str = "a1b2c3-test-key";

#[derive(Default)]
struct Forum {
    /// Polls of status.json still to answer "running" before the backup ends.
    running_polls: u32,
    /// Whether a backup or restore is running.
    running: bool,
    /// The file the running operation writes when it ends (`None`: a restore).
    running_writes: Option<String>,
    /// The forum's own backup starts between dvault's status request and its POST.
    starts_before_post: bool,
    /// HTTP status of the "already running" answer (Discourse: 200).
    busy_status: u16,
    /// Answer every POST with `failed` although nothing runs.
    refuse_always: bool,
    /// Status codes to answer (once each, in order) before serving a route normally.
    faults: Vec<(&'static str, u16)>,
    /// Every request: method, path, Api-Key, Api-Username, body.
    log: Vec<(String, String, String, String, String)>,
    /// Where the "backup" is written.
    folder: PathBuf,
    /// The file name the next backup gets.
    next_name: String,
    /// Polls a backup takes.
    backup_polls: u32,
    /// Never finish (for the timeout test).
    never_finish: bool,
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
    let (mut key, mut user, mut len) = (String::new(), String::new(), 0usize);
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
            "api-username" => user = value.trim().to_string(),
            "content-length" => len = value.trim().parse().unwrap(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8(body).unwrap();
    let (status, extra, json) = route(forum, &method, &path, &key, &user, &body);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        422 => "Unprocessable Entity",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
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
    user: &str,
    body: &str,
) -> (u16, String, String) {
    let mut f = forum.lock().unwrap();
    f.log.push((
        method.into(),
        path.into(),
        key.into(),
        user.into(),
        body.into(),
    ));
    if let Some(i) = f.faults.iter().position(|(p, _)| *p == path) {
        let (_, code) = f.faults.remove(i);
        return match code {
            429 => (
                429,
                "Retry-After: 1\r\n".into(),
                r#"{"errors":["You've performed this action too many times. Please wait 1 second before trying again."],"error_type":"rate_limit","extras":{"wait_seconds":1}}"#.into(),
            ),
            c => (c, String::new(), r#"{"errors":["internal error"]}"#.into()),
        };
    }
    if key != KEY || user != "system" {
        return (
            403,
            String::new(),
            r#"{"errors":["You are not permitted to view the requested resource. The API username or key is invalid."],"error_type":"invalid_access"}"#.into(),
        );
    }
    match (method, path) {
        ("POST", "/admin/backups.json") => {
            let Some(v) = body.strip_prefix("with_uploads=") else {
                return (400, String::new(), r#"{"errors":["param is missing or the value is empty: with_uploads"]}"#.into());
            };
            assert!(v == "true" || v == "false", "with_uploads={v}");
            if f.starts_before_post {
                f.starts_before_post = false;
                f.running = true;
                f.running_polls = 2;
                f.running_writes = Some(f.next_name.clone());
            }
            if f.running || f.refuse_always {
                let status = if f.busy_status == 0 { 200 } else { f.busy_status };
                return (
                    status,
                    String::new(),
                    r#"{"failed":"FAILED","message":"Ein Vorgang läuft gerade. Ein neuer Auftrag kann derzeit nicht gestartet werden."}"#.into(),
                );
            }
            f.running = true;
            f.running_polls = f.backup_polls;
            f.running_writes = Some(f.next_name.clone());
            (200, String::new(), r#"{"success":"OK"}"#.into())
        }
        ("GET", "/admin/backups/status.json") => {
            if f.running && !f.never_finish {
                if f.running_polls == 0 {
                    if let Some(name) = f.running_writes.take() {
                        std::fs::write(f.folder.join(name), b"fresh backup bytes").unwrap();
                    }
                    f.running = false;
                } else {
                    f.running_polls -= 1;
                }
            }
            (
                200,
                String::new(),
                format!(
                    r#"{{"is_operation_running":{},"can_rollback":false,"allow_restore":false}}"#,
                    f.running
                ),
            )
        }
        _ => (404, String::new(), r#"{"errors":["The requested URL or resource could not be found."],"error_type":"not_found"}"#.into()),
    }
}

fn site_source(url: &str, folder: &Path, key_file: &Path) -> SourceConfig {
    SourceConfig {
        folder: Some(folder.to_path_buf()),
        settle: Duration::from_millis(20),
        api: Some(ApiConfig {
            url: url.to_string(),
            key_file: Some(key_file.to_path_buf()),
            username: Some("system".into()),
            with_uploads: true,
            timeout: Duration::from_secs(20),
            poll_interval: Duration::from_millis(50),
        }),
        ..SourceConfig::default()
    }
}

const OLD: &str = "forum-2024-03-01-033012-v20240220010101.tar.gz";
const NEW: &str = "forum-2024-03-02-033012-v20240220010101.tar.gz";

fn setup(forum: Forum) -> (tempfile::TempDir, PathBuf, Server) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("backups");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join(OLD), b"old backup").unwrap();
    let key_file = dir.path().join("api-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let server = serve(Forum {
        folder: folder.clone(),
        next_name: NEW.into(),
        backup_polls: 3,
        ..forum
    });
    (dir, key_file, server)
}

#[test]
fn api_flow_triggers_waits_and_picks_up_the_new_file() {
    let (dir, key_file, server) = setup(Forum::default());
    let cfg = site_source(&server.url, &dir.path().join("backups"), &key_file);
    let mut notes = Vec::new();
    let picked = fetch_newest(&cfg, &mut |m: &str| notes.push(m.to_string()))
        .unwrap()
        .unwrap();
    assert_eq!(picked.name.file_name, NEW);
    assert_eq!(std::fs::read(&picked.path).unwrap(), b"fresh backup bytes");
    let f = server.forum.lock().unwrap();
    let posts: Vec<_> = f.log.iter().filter(|r| r.0 == "POST").collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].4, "with_uploads=true");
    assert_eq!(posts[0].2, KEY, "Api-Key header");
    assert_eq!(posts[0].3, "system", "Api-Username header");
    let polls = f
        .log
        .iter()
        .filter(|r| r.1 == "/admin/backups/status.json")
        .count();
    assert!(polls >= 4, "polled until the backup ended ({polls} polls)");
    assert!(notes.iter().any(|n| n.contains("finished")), "{notes:?}");
}

#[test]
fn a_429_and_a_500_are_retried_honouring_retry_after() {
    let (dir, key_file, server) = setup(Forum {
        faults: vec![
            ("/admin/backups.json", 429),
            ("/admin/backups/status.json", 500),
        ],
        ..Forum::default()
    });
    let cfg = site_source(&server.url, &dir.path().join("backups"), &key_file);
    let started = Instant::now();
    let picked = fetch_newest(&cfg, &mut |_: &str| {}).unwrap().unwrap();
    assert_eq!(picked.name.file_name, NEW);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let f = server.forum.lock().unwrap();
    let posts = f.log.iter().filter(|r| r.0 == "POST").count();
    assert_eq!(posts, 2, "the 429 was retried once");
    assert!(f.faults.is_empty());
}

#[test]
fn server_errors_that_persist_give_up_with_the_url_and_status() {
    let (_dir, _key, server) = setup(Forum {
        faults: vec![("/admin/backups.json", 502); 5],
        ..Forum::default()
    });
    let mut client = ApiClient::new(&server.url, KEY, "system");
    client.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    };
    let e = client.start_backup(true).unwrap_err().to_string();
    assert!(
        e.contains(&format!("POST {}/admin/backups.json", server.url)),
        "{e}"
    );
    assert!(e.contains("gave up after 3 attempts"), "{e}");
    assert!(e.contains("502"), "{e}");
}

#[test]
fn a_403_is_a_clear_error_without_retries() {
    let (dir, _key, server) = setup(Forum::default());
    let bad_key = dir.path().join("bad-key");
    std::fs::write(&bad_key, "wrong\n").unwrap();
    let cfg = site_source(&server.url, &dir.path().join("backups"), &bad_key);
    let e = fetch_newest(&cfg, &mut |_: &str| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP 403"), "{e}");
    assert!(e.contains("/admin/backups/status.json"), "{e}");
    assert!(e.contains("API key"), "{e}");
    assert!(e.contains("invalid_access"), "{e}");
    assert!(
        !e.contains("wrong"),
        "the key must not appear in errors: {e}"
    );
    assert_eq!(server.forum.lock().unwrap().log.len(), 1, "no retry on 403");
}

fn posts(server: &Server) -> usize {
    server
        .forum
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|r| r.0 == "POST")
        .count()
}

#[test]
fn the_forums_own_running_backup_is_waited_for_and_taken() {
    let (dir, key_file, server) = setup(Forum {
        running: true,
        running_polls: 2,
        running_writes: Some(NEW.into()),
        ..Forum::default()
    });
    let cfg = site_source(&server.url, &dir.path().join("backups"), &key_file);
    let mut notes = Vec::new();
    let picked = fetch_newest(&cfg, &mut |m: &str| notes.push(m.to_string()))
        .unwrap()
        .unwrap();
    assert_eq!(picked.name.file_name, NEW);
    assert!(notes[0].contains("already running"), "{notes:?}");
    assert_eq!(posts(&server), 0, "no backup was asked for: {notes:?}");
}

#[test]
fn a_running_restore_is_waited_for_then_a_backup_is_made() {
    let (dir, key_file, server) = setup(Forum {
        running: true,
        running_polls: 2,
        running_writes: None,
        ..Forum::default()
    });
    let cfg = site_source(&server.url, &dir.path().join("backups"), &key_file);
    let mut notes = Vec::new();
    let picked = fetch_newest(&cfg, &mut |m: &str| notes.push(m.to_string()))
        .unwrap()
        .unwrap();
    assert_eq!(picked.name.file_name, NEW);
    assert_eq!(posts(&server), 1, "{notes:?}");
    assert!(
        notes.iter().any(|n| n.contains("wrote no new backup")),
        "{notes:?}"
    );
}

#[test]
fn a_translated_refusal_is_decided_by_status_json_at_any_http_status() {
    for busy_status in [200, 422] {
        let (dir, key_file, server) = setup(Forum {
            starts_before_post: true,
            busy_status,
            ..Forum::default()
        });
        let cfg = site_source(&server.url, &dir.path().join("backups"), &key_file);
        let mut notes = Vec::new();
        let picked = fetch_newest(&cfg, &mut |m: &str| notes.push(m.to_string()))
            .unwrap()
            .unwrap();
        assert_eq!(picked.name.file_name, NEW, "HTTP {busy_status}");
        assert_eq!(posts(&server), 1, "HTTP {busy_status}: {notes:?}");
        assert!(
            notes.iter().any(|n| n.contains("status.json says")),
            "HTTP {busy_status}: {notes:?}"
        );
    }
}

#[test]
fn a_refusal_while_nothing_runs_is_an_error_with_the_forums_words() {
    let (dir, key_file, server) = setup(Forum {
        refuse_always: true,
        ..Forum::default()
    });
    let cfg = site_source(&server.url, &dir.path().join("backups"), &key_file);
    let e = fetch_newest(&cfg, &mut |_: &str| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused to start a backup"), "{e}");
    assert!(e.contains("Ein Vorgang"), "{e}");
    assert!(e.contains("/admin/backups.json"), "{e}");
    assert_eq!(posts(&server), 3, "three rounds");
}

#[test]
fn a_backup_that_never_finishes_times_out() {
    let (dir, key_file, server) = setup(Forum {
        never_finish: true,
        ..Forum::default()
    });
    let mut cfg = site_source(&server.url, &dir.path().join("backups"), &key_file);
    cfg.api.as_mut().unwrap().timeout = Duration::from_millis(600);
    let e = fetch_newest(&cfg, &mut |_: &str| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("still running after"), "{e}");
    assert!(e.contains("source.api.timeout"), "{e}");
}

#[test]
fn a_finished_backup_without_a_new_file_is_an_error_naming_the_folder() {
    let (dir, key_file, server) = setup(Forum::default());
    // The forum writes into another folder than the one configured.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    server.forum.lock().unwrap().folder = elsewhere;
    let folder = dir.path().join("backups");
    let cfg = site_source(&server.url, &folder, &key_file);
    let e = fetch_newest(&cfg, &mut |_: &str| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains(&folder.display().to_string()), "{e}");
    assert!(e.contains("no new complete backup"), "{e}");
    assert!(e.contains(OLD), "{e}");
}
