//! Starting Discourse's own restore of a backup through the forum's admin API, and following it
//! to its end: what an admin does on the Backups page, for `dvault restore --to-discourse ...
//! --api URL` and for the end-to-end drill (`[sites.NAME.drill.put_back_restore]`).
//!
//! What Discourse does, read from its source:
//! - `GET /admin/backups/status.json` answers `BackupRestore.operations_status`:
//!   `is_operation_running`, `can_rollback` and `allow_restore` (`lib/backup_restore.rb`; the
//!   route in `config/routes.rb`). Responses of a forum in read-only mode carry
//!   `Discourse-Readonly: true` (`lib/read_only_mixin.rb`, `add_readonly_header`); the
//!   `/admin/backups` routes work in read-only mode (`block_if_readonly_mode` skips them).
//! - `POST /admin/backups/:id/restore` (`config/routes.rb`) runs
//!   `Admin::BackupsController#restore` (`app/controllers/admin/backups_controller.rb`): it
//!   needs the form field `client_id` (`params.fetch(:client_id)`), starts the restore in a
//!   separate process (`BackupRestore.restore!` -> `spawn_process!`, `script/spawn_backup_restore.rb`)
//!   and answers `{"success":"OK"}`; `OperationRunningError` is rescued by `render_error` into
//!   HTTP **200** `{"failed":"FAILED","message":...}` (the message is in the site's locale, so it
//!   is only quoted).
//! - The spawned process builds `BackupRestore::Restorer`, whose constructor raises
//!   `RestoreDisabledError` unless `SiteSetting.allow_restore` (`lib/backup_restore/restorer.rb`).
//!   That happens after the POST was answered "OK", and the process then ends without a word:
//!   so `allow_restore` is checked in `status.json` first, and a forum that does not allow
//!   restores is refused with Discourse's fix (`discourse enable_restore`, `script/discourse`,
//!   or the `allow_restore` site setting).
//! - `Restorer#run` marks the operation as running (a Redis key with a 60 s expiry refreshed
//!   every 30 s, `lib/backup_restore/system_interface.rb`), restores, and in its `ensure` first
//!   cleans up (which marks the operation as finished), then notifies the user, and only then
//!   logs `"Finished!"` and `"[SUCCESS]"` or `"[FAILED]"`. So `is_operation_running` going false
//!   says the restore ended, not how.
//!
//! How the outcome is read: `status.json` has no outcome, and no JSON route returns it.
//! Discourse's `BackupRestore::Logger` (`lib/backup_restore/logger.rb`) publishes every log
//! line of the restore as `{timestamp, operation: "restore", message}` on the MessageBus
//! channel `/admin/backups/logs` to the user and the `client_id` that started it; that is how
//! the admin's Backups page shows the log, ending with `[SUCCESS]` or `[FAILED]`. The page's
//! own route, `GET /admin/backups/logs`, only renders the HTML shell with the log preloaded, so
//! dvault reads the channel as the page does: MessageBus's poll route
//! `POST /message-bus/<client_id>/poll?dlp=t` with the form field `<channel>=<last id>`
//! (`lib/message_bus/rack/middleware.rb` and `client.rb` of discourse/message_bus: `dlp=t`
//! answers at once, a JSON array of `{global_id, message_id, channel, data}`; a last id of -1
//! answers the channel's current id as a `/__status` message). The API key identifies the user
//! there too (`config/initializers/004-message_bus.rb`, `CurrentUser.lookup_from_env`).
//!
//! The restore replaces the forum's database, API keys included: once it switched, the key
//! works only if the backup's database holds it too (a key made on the forum the backup comes
//! from, before the backup). When the forum stops accepting the key, or the log cannot be read,
//! the outcome is "unknown" and the report says why; it is never guessed.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::restore_log::LogReader;
use crate::source::api::{operation_answer, parse_json, ApiClient, ApiError};

/// The MessageBus channel of backup and restore logs (`BackupRestore::LOGS_CHANNEL`).
pub const LOGS_CHANNEL: &str = "/admin/backups/logs";

/// Characters encoded in the backup's name in the URL: all but RFC 3986's unreserved ones, so
/// a Discourse name (`[a-zA-Z0-9._-]`, `valid_filename?` in the backups controller) goes as is.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How a restore ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Discourse logged `[SUCCESS]`.
    Succeeded,
    /// Discourse logged `[FAILED]`.
    Failed,
    /// The restore ended (or could no longer be followed) without a readable verdict.
    Unknown,
}

/// What [`RestoreApi::restore`] saw.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The backup's file name.
    pub name: String,
    /// The forum (its base URL, passwords masked).
    pub forum: String,
    /// How it ended.
    pub outcome: Outcome,
    /// For a failure: Discourse's reason (its `EXCEPTION:` or `ERROR:` line); for an unknown
    /// outcome: why it is unknown.
    pub reason: Option<String>,
    /// From the POST to the end (seconds).
    pub seconds: f64,
    /// The last lines of Discourse's restore log.
    pub log_tail: Vec<String>,
    /// Things the admin should know (read-only mode, a wait for another operation).
    pub notes: Vec<String>,
}

impl Restored {
    /// One line for logs and the terminal.
    pub fn summary(&self) -> String {
        let how = match self.outcome {
            Outcome::Succeeded => "restored it ([SUCCESS])".to_string(),
            Outcome::Failed => format!(
                "failed to restore it ([FAILED]: {})",
                self.reason.as_deref().unwrap_or("no reason logged")
            ),
            Outcome::Unknown => format!(
                "ended the restore with an unknown outcome: {}",
                self.reason.as_deref().unwrap_or("no reason")
            ),
        };
        format!(
            "{} {how} in {:.1} s: {}",
            self.forum, self.seconds, self.name
        )
    }
}

/// Why the restore could not be started or followed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreApiError {
    /// A request failed (the message names the URL and the HTTP status).
    #[error("{}", crate::redact::string(&.0.to_string()))]
    Api(#[from] ApiError),
    /// No API key in the file or the environment.
    #[error(
        "no Discourse API key for the restore: give a key file (--api-key-file, or key_file in \
         [sites.NAME.drill.put_back_restore]) or set {}",
        crate::config::API_KEY_ENV
    )]
    NoKey,
    /// The forum does not allow restores.
    #[error(
        "{url}: the forum does not allow restores (allow_restore is false); nothing was \
         started. Allow them as Discourse says: inside the container (cd /var/discourse && \
         ./launcher enter app) run `discourse enable_restore`, or set the site setting \
         \"allow restore\" in Admin > Settings > Backups"
    )]
    Disabled {
        /// The status URL.
        url: String,
    },
    /// Discourse answered the POST with `failed`.
    #[error("POST {url}: Discourse did not start the restore: {message}")]
    Refused {
        /// The restore URL.
        url: String,
        /// Discourse's message (in the site's language).
        message: String,
    },
    /// Another operation, or the restore, was still running after the timeout.
    #[error("{url}: {what} was still running after {waited:?} (the restore's timeout)")]
    Timeout {
        /// The status URL.
        url: String,
        /// What was waited for.
        what: &'static str,
        /// How long.
        waited: Duration,
    },
}

#[derive(Debug, Deserialize)]
struct Status {
    #[serde(alias = "isOperationRunning")]
    is_operation_running: bool,
    /// Absent in Discourse versions before restores had to be allowed.
    #[serde(default, alias = "allowRestore")]
    allow_restore: Option<bool>,
}

/// Starts and follows restores on one forum.
pub struct RestoreApi {
    client: ApiClient,
    /// After `status.json` says the restore ended, how long to wait for its last log line
    /// (Discourse notifies the user before it logs `[SUCCESS]`): six polls.
    pub grace: Duration,
}

impl RestoreApi {
    /// Restores through `client` (its `timeout` bounds each wait, its `poll_interval` the
    /// polls).
    pub fn new(client: ApiClient) -> Self {
        RestoreApi {
            grace: client.poll_interval.saturating_mul(6),
            client,
        }
    }

    /// A client from admin-API settings: the key from `key_file` or `DVAULT_DISCOURSE_API_KEY`
    /// (never from the command line), the username from the settings,
    /// `DVAULT_DISCOURSE_API_USERNAME` or `system`.
    pub fn from_config(cfg: &crate::config::ApiConfig) -> Result<Self, RestoreApiError> {
        let client = ApiClient::from_config(cfg).map_err(|e| match e {
            ApiError::NoKey => RestoreApiError::NoKey,
            e => e.into(),
        })?;
        Ok(Self::new(client))
    }

    fn status_url(&self) -> String {
        self.client.url("/admin/backups/status.json")
    }

    /// `status.json`, and whether the answer said the forum is read-only.
    fn status(&self) -> Result<(Status, bool), ApiError> {
        let url = self.status_url();
        let resp = self
            .client
            .send("GET", &url, || self.client.http.get(&url))?;
        let readonly = resp
            .headers()
            .get("Discourse-Readonly")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        Ok((parse_json(&url, resp)?, readonly))
    }

    /// Asks `status.json` whether the key is accepted and the forum allows restores, before
    /// anything is written (a put-back is not repeated: its file would exist then).
    pub fn preflight(&self) -> Result<(), RestoreApiError> {
        if self.status()?.0.allow_restore == Some(false) {
            return Err(RestoreApiError::Disabled {
                url: crate::redact::string(&self.status_url()),
            });
        }
        Ok(())
    }

    /// Starts Discourse's restore of backup `name` (a file in the forum's backup store) and
    /// follows it until it ends, bounded by the client's timeout.
    pub fn restore(
        &mut self,
        name: &str,
        note: &mut dyn FnMut(&str),
    ) -> Result<Restored, RestoreApiError> {
        let mut notes = Vec::new();
        let (status, readonly) = self.status()?;
        if status.allow_restore == Some(false) {
            return Err(RestoreApiError::Disabled {
                url: crate::redact::string(&self.status_url()),
            });
        }
        if readonly {
            let n = "the forum is in read-only mode; Discourse's restore leaves it so afterwards \
                     (lib/backup_restore/system_interface.rb keeps a read-only mode it found): \
                     turn it off on the admin Backups page once the forum is checked";
            note(n);
            notes.push(n.to_string());
        }
        if status.is_operation_running {
            let n = "a backup or restore is running on the forum (status.json); waiting for it \
                     to end before starting the restore";
            note(n);
            notes.push(n.to_string());
            self.wait_idle()?;
        }
        let client_id = new_client_id();
        let mut log = LogReader::new(&self.client, &client_id);
        log.start(&self.client);
        self.start(name, &client_id)?;
        note(&format!(
            "Discourse started restoring {name}; following it (status.json and the restore's log)"
        ));
        let started = Instant::now();
        let (outcome, reason) = self.follow(&mut log, started)?;
        Ok(Restored {
            name: name.to_string(),
            forum: crate::redact::string(&self.client.url("")),
            outcome,
            reason,
            seconds: started.elapsed().as_secs_f64(),
            log_tail: log.tail(),
            notes,
        })
    }

    fn wait_idle(&self) -> Result<(), RestoreApiError> {
        let started = Instant::now();
        loop {
            if !self.status()?.0.is_operation_running {
                return Ok(());
            }
            if started.elapsed() >= self.client.timeout {
                return Err(RestoreApiError::Timeout {
                    url: crate::redact::string(&self.status_url()),
                    what: "the forum's other operation",
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(self.client.poll_interval);
        }
    }

    /// The POST, sent once: a retried POST could start a second restore process, whose
    /// "operation running" failure would be logged to the same client id.
    fn start(&mut self, name: &str, client_id: &str) -> Result<(), RestoreApiError> {
        let url = self.client.url(&format!(
            "/admin/backups/{}/restore",
            percent_encoding::utf8_percent_encode(name, PATH_SEGMENT)
        ));
        let body = format!("client_id={client_id}");
        let retry = std::mem::replace(
            &mut self.client.retry,
            crate::source::api::RetryPolicy {
                attempts: 1,
                ..Default::default()
            },
        );
        let sent = self.client.send("POST", &url, || {
            self.client
                .http
                .post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone())
        });
        self.client.retry = retry;
        match operation_answer(&url, sent?)? {
            None => Ok(()),
            Some(message) => Err(RestoreApiError::Refused {
                url: crate::redact::string(&url),
                message,
            }),
        }
    }

    /// Polls the log and `status.json` until the log says `[SUCCESS]` or `[FAILED]`, or the
    /// restore ended without saying so (then after [`RestoreApi::grace`]), or the forum no
    /// longer takes the key.
    fn follow(
        &self,
        log: &mut LogReader,
        started: Instant,
    ) -> Result<(Outcome, Option<String>), RestoreApiError> {
        let mut seen_running = false;
        let mut idle_polls = 0u32;
        let mut ended: Option<Instant> = None;
        loop {
            log.poll(&self.client);
            if let Some(verdict) = log.verdict() {
                return Ok(verdict);
            }
            match self.status() {
                Ok((s, _)) if s.is_operation_running => {
                    seen_running = true;
                    idle_polls = 0;
                    ended = None;
                }
                Ok(_) => {
                    idle_polls += 1;
                    // The spawned process marks itself running a moment after the POST: "not
                    // running" means ended once it was seen running, or after a few polls.
                    if (seen_running || idle_polls >= 3) && ended.is_none() {
                        ended = Some(Instant::now());
                    }
                }
                Err(ApiError::Refused {
                    status: 401 | 403,
                    url,
                    ..
                }) => {
                    return Ok((
                        Outcome::Unknown,
                        Some(format!(
                            "{} refused the API key during the restore: the forum's database \
                             was replaced by the backup's, which does not hold this key (a key \
                             made on the forum the backup comes from works before and after); \
                             see the result on the forum's admin Backups page{}",
                            crate::redact::string(&url),
                            log.last_line_hint()
                        )),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            if let Some(t) = ended {
                if t.elapsed() >= self.grace {
                    let why = match (&log.broken, seen_running, log.lines.is_empty()) {
                        (Some(b), _, _) => format!(
                            "the restore ended (status.json) but its log could not be read \
                             ({b}); see the result on the forum's admin Backups page"
                        ),
                        (None, false, true) => "status.json never showed the restore running \
                             and it logged nothing: Discourse's restore process did not start \
                             (see the forum's log, e.g. \
                             /var/discourse/shared/standalone/log/rails/production.log)"
                            .to_string(),
                        (None, _, _) => format!(
                            "the restore ended (status.json) without logging [SUCCESS] or \
                             [FAILED]{}",
                            log.last_line_hint()
                        ),
                    };
                    return Ok((Outcome::Unknown, Some(why)));
                }
            }
            if started.elapsed() >= self.client.timeout {
                return Err(RestoreApiError::Timeout {
                    url: crate::redact::string(&self.status_url()),
                    what: "the restore",
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(self.client.poll_interval);
        }
    }
}

/// A fresh MessageBus client id: Discourse sends the restore's log to this id only.
fn new_client_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the system's random source");
    hex::encode(b)
}
