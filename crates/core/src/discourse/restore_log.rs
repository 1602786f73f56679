//! The log of a restore Discourse runs, read the way the admin's Backups page reads it: from
//! the MessageBus channel `/admin/backups/logs` (see `restore_api` for why this channel).
//!
//! The protocol, from discourse/message_bus (`lib/message_bus/rack/middleware.rb`,
//! `lib/message_bus/client.rb`): `POST /message-bus/<client_id>/poll` with one form field per
//! channel, `<channel>=<last id seen>`; `?dlp=t` ("disable long polling") answers at once with
//! a JSON array of `{global_id, message_id, channel, data}`; a last id of -1 answers only a
//! `/__status` message whose `data` maps the channel to its current id. Discourse's
//! `BackupRestore::Logger` (`lib/backup_restore/logger.rb`) publishes each line as
//! `{timestamp, operation: "restore", message}` for the user and `client_id` that started the
//! restore, and `Restorer#run` (`lib/backup_restore/restorer.rb`) ends with `[SUCCESS]` or
//! `[FAILED]`, after `EXCEPTION: ...` or `ERROR: ...` lines when it failed.

use serde::Deserialize;

use super::restore_api::{Outcome, LOGS_CHANNEL};
use crate::source::api::{parse_json, ApiClient};

#[derive(Debug, Deserialize)]
struct BusMessage {
    message_id: i64,
    channel: String,
    data: serde_json::Value,
}

/// Reads the restore's log from MessageBus; failures are kept, not fatal (the outcome is then
/// unknown, never guessed).
pub(super) struct LogReader {
    url: String,
    last_id: i64,
    pub(super) lines: Vec<String>,
    pub(super) broken: Option<String>,
}

impl LogReader {
    pub(super) fn new(client: &ApiClient, client_id: &str) -> Self {
        LogReader {
            url: client.url(&format!("/message-bus/{client_id}/poll?dlp=t")),
            last_id: -1,
            lines: Vec::new(),
            broken: None,
        }
    }

    /// Before the POST: the channel's current id, so that no older restore's lines are read.
    pub(super) fn start(&mut self, client: &ApiClient) {
        self.poll(client);
    }

    pub(super) fn poll(&mut self, client: &ApiClient) {
        // Form field `<channel>=<last id>`, the channel name percent-encoded.
        let body = format!(
            "{}={}",
            percent_encoding::utf8_percent_encode(LOGS_CHANNEL, percent_encoding::NON_ALPHANUMERIC),
            self.last_id
        );
        let sent = client.send("POST", &self.url, || {
            client
                .http
                .post(&self.url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header("Dont-Chunk", "true")
                .body(body.clone())
        });
        let messages: Vec<BusMessage> = match sent.and_then(|r| parse_json(&self.url, r)) {
            Ok(m) => m,
            Err(e) => {
                self.broken = Some(crate::redact::string(&e.to_string()));
                return;
            }
        };
        self.broken = None;
        for m in messages {
            if m.channel == "/__status" {
                if let Some(id) = m.data.get(LOGS_CHANNEL).and_then(|v| v.as_i64()) {
                    self.last_id = self.last_id.max(id);
                }
                continue;
            }
            if m.channel != LOGS_CHANNEL || m.message_id <= self.last_id {
                continue;
            }
            self.last_id = m.message_id;
            if m.data.get("operation").and_then(|v| v.as_str()) == Some("backup") {
                continue;
            }
            if let Some(line) = m.data.get("message").and_then(|v| v.as_str()) {
                self.lines.push(line.to_string());
            }
        }
        if self.last_id < 0 {
            // Nothing on the channel yet: everything from now on is new.
            self.last_id = 0;
        }
    }

    /// `[SUCCESS]` / `[FAILED]`, with the failure's reason.
    pub(super) fn verdict(&self) -> Option<(Outcome, Option<String>)> {
        let i = self
            .lines
            .iter()
            .rposition(|l| l == "[SUCCESS]" || l == "[FAILED]")?;
        if self.lines[i] == "[SUCCESS]" {
            return Some((Outcome::Succeeded, None));
        }
        let reason = self.lines[..i]
            .iter()
            .rev()
            .find(|l| {
                l.starts_with("EXCEPTION: ")
                    || l.starts_with("ERROR: ")
                    || l.starts_with("Restore process was cancelled")
            })
            .cloned()
            .unwrap_or_else(|| "Discourse logged [FAILED]; see the log below".into());
        Some((Outcome::Failed, Some(reason)))
    }

    pub(super) fn tail(&self) -> Vec<String> {
        let from = self.lines.len().saturating_sub(20);
        self.lines[from..].to_vec()
    }

    pub(super) fn last_line_hint(&self) -> String {
        match self.lines.last() {
            Some(l) => format!(" (its last log line: {l:?})"),
            None => String::new(),
        }
    }
}
