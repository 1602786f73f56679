//! A forum on 127.0.0.1 that answers as Discourse's backup routes do, for the put-back tests.
//! The routes and replies, from Discourse's source:
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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::repo_support::sha256;

pub(super) const KEY: &str = "d1e2f3-staging-admin-key";
const CHANNEL: &str = "/admin/backups/logs";

/// One request the forum saw: method, path, Api-Key, body.
type Seen = (String, String, String, String);

pub(super) struct Restore {
    client_id: String,
    /// Status polls still answered "running".
    ticks: u32,
    /// Discourse's reason for failing, if it fails.
    exception: Option<String>,
    /// Lines published after the operation was marked finished.
    ending: Vec<String>,
}

pub(super) struct Forum {
    pub(super) backups: PathBuf,
    /// The site's schema version.
    pub(super) schema: u64,
    pub(super) allow_restore: bool,
    pub(super) readonly: bool,
    pub(super) running: bool,
    /// Status polls a backup already running before dvault came still takes.
    pub(super) other_polls: u32,
    /// Another operation starts between dvault's status request and its POST.
    pub(super) busy_on_post: bool,
    /// The restored database does not hold the key: refused once the restore runs.
    pub(super) key_lost: bool,
    pub(super) restore: Option<Restore>,
    /// MessageBus backlog of the channel: id, client id ("" = any client), line.
    pub(super) bus: Vec<(i64, String, String)>,
    /// SHA-256 of each file the forum restored.
    pub(super) restored: Vec<(String, String)>,
    pub(super) seen: Vec<Seen>,
}

impl Forum {
    pub(super) fn new(backups: &Path, schema: u64) -> Self {
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

pub(super) struct Server {
    pub(super) url: String,
    pub(super) forum: Arc<Mutex<Forum>>,
}

pub(super) fn serve(forum: Forum) -> Server {
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
