//! Discourse's admin API, used to make a fresh backup before picking it up.
//!
//! Routes and answers as Discourse's `app/controllers/admin/backups_controller.rb` has them (the
//! same in every version read, from the 2014 controller to the current one):
//! - `GET /admin/backups/status.json`: `render_json_dump(BackupRestore.operations_status)`, i.e.
//!   `{"is_operation_running":bool,"can_rollback":bool,"allow_restore":bool}`
//!   (`lib/backup_restore.rb`; the admin UI camelizes it to `isOperationRunning`, which is read
//!   too). "Running" is a Redis key that the backup or restore process sets and refreshes every
//!   30 s with a 60 s expiry (`mark_as_running!`, `keep_it_running`), so it ends by itself when
//!   that process dies.
//! - `POST /admin/backups.json` with form field `with_uploads=true|false` (the controller reads
//!   `params.fetch(:with_uploads) == "true"`): `{"success":"OK"}`; when an operation runs,
//!   `BackupRestore::OperationRunningError` is rescued into HTTP **200** with
//!   `{"failed":"FAILED","message":I18n.t("backup.operation_already_running")}`, a message in the
//!   site's locale (`config/locales/server.<locale>.yml`). So dvault never reads the message
//!   beyond quoting it in an error: a `failed` answer (or a
//!   409/422 should a later Discourse send one) is followed by a status request, and
//!   `is_operation_running` decides.
//! - Errors: 403 `invalid_access` (bad key, not an admin, or backups disabled:
//!   `ensure_backups_enabled`), 404, and 429 with `Retry-After` from the rate limiter.
//!
//! The backup runs in a process Discourse forks after answering the POST
//! (`BackupRestore.start!`), and that process marks itself as running a moment later, so a first
//! "not running" right after the POST is not the end: the wait ends when the operation was seen
//! running and then stopped, or when nothing runs for a few polls. Authentication is the
//! `Api-Key` and `Api-Username` headers; the key comes from a file or the environment, never
//! from the command line, and is never logged.

use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::config::{ApiConfig, API_KEY_ENV, API_USERNAME_ENV};

/// Errors of the admin API; each names the URL and the HTTP status or cause.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No API key in the file or the environment.
    #[error("no Discourse API key: set source.api.key_file or {API_KEY_ENV}")]
    NoKey,
    /// The key file could not be read.
    #[error("API key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Discourse refused the request (4xx other than 429).
    #[error("{method} {url}: HTTP {status}: {hint}{body}")]
    Refused {
        /// HTTP method.
        method: &'static str,
        /// Full URL.
        url: String,
        /// Status code.
        status: u16,
        /// What the status usually means here.
        hint: String,
        /// Start of the response body.
        body: String,
    },
    /// Retries ran out on 429, 5xx or network errors.
    #[error("{method} {url}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// HTTP method.
        method: &'static str,
        /// Full URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The answer was not what Discourse sends.
    #[error("{url}: unexpected answer: {message}")]
    Unexpected {
        /// Full URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The backup (or the operation already running) did not finish in time.
    #[error("{url}: the forum's backup or restore was still running after {waited:?} (source.api.timeout)")]
    Timeout {
        /// The status URL.
        url: String,
        /// How long it waited.
        waited: Duration,
    },
}

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, first one included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Upper bound of one wait (also caps a server's Retry-After).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Deserialize)]
struct OperationsStatus {
    #[serde(alias = "isOperationRunning")]
    is_operation_running: bool,
}

/// How Discourse answered a request to start a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// It started one (`{"success":"OK"}`).
    Started,
    /// It did not, and `status.json` says an operation (a backup or a restore) is running.
    Busy,
    /// It did not, and nothing runs: the forum's message (for the error only).
    Refused(String),
}

/// Discourse's answer to starting an operation (a backup or a restore): `{"success":"OK"}`, or
/// `{"failed":"FAILED","message":...}` (`render_error`, app/controllers/admin/backups_controller.rb).
#[derive(Debug, Deserialize)]
struct OperationAnswer {
    #[serde(default)]
    success: Option<String>,
    #[serde(default)]
    failed: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads Discourse's answer to starting an operation at `url`: `Ok(None)` when it started,
/// `Ok(Some(message))` when Discourse refused (its message, maybe empty), an error when the
/// answer says neither.
pub(crate) fn operation_answer(url: &str, resp: Response) -> Result<Option<String>, ApiError> {
    let answer: OperationAnswer = parse_json(url, resp)?;
    match (answer.success, answer.failed) {
        (Some(_), _) => Ok(None),
        (None, Some(_)) => Ok(Some(answer.message.unwrap_or_default())),
        (None, None) => Err(ApiError::Unexpected {
            url: url.to_string(),
            message: "neither \"success\" nor \"failed\" in the answer".into(),
        }),
    }
}

/// A client for one forum's admin backup API.
pub struct ApiClient {
    pub(crate) http: Client,
    base: String,
    key: String,
    username: String,
    /// Retry behaviour for 429, 5xx and network errors.
    pub retry: RetryPolicy,
    /// How long to wait for the backup to finish.
    pub timeout: Duration,
    /// Time between status polls.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of debug output.
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client from the site's `source.api` settings; the key from `key_file` or
    /// `DVAULT_DISCOURSE_API_KEY`, the username from the config, `DVAULT_DISCOURSE_API_USERNAME`
    /// or `system`.
    pub fn from_config(cfg: &ApiConfig) -> Result<Self, ApiError> {
        let key = match &cfg.key_file {
            Some(path) => {
                let key_file_err = |e: std::io::Error| ApiError::KeyFile {
                    path: path.display().to_string(),
                    message: e.to_string(),
                };
                crate::secret_file::check(path, "Discourse API key file").map_err(key_file_err)?;
                let text = std::fs::read_to_string(path).map_err(key_file_err)?;
                let key = text.lines().next().unwrap_or("").trim().to_string();
                if key.is_empty() {
                    return Err(ApiError::KeyFile {
                        path: path.display().to_string(),
                        message: "the first line is empty".into(),
                    });
                }
                key
            }
            None => match std::env::var(API_KEY_ENV) {
                Ok(k) if !k.trim().is_empty() => k.trim().to_string(),
                _ => return Err(ApiError::NoKey),
            },
        };
        let username = cfg
            .username
            .clone()
            .or_else(|| {
                std::env::var(API_USERNAME_ENV)
                    .ok()
                    .filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| "system".into());
        let mut client = ApiClient::new(&cfg.url, &key, &username);
        client.timeout = cfg.timeout;
        client.poll_interval = cfg.poll_interval;
        Ok(client)
    }

    /// A client for `base_url` (e.g. `https://forum.example.com`) with default timings.
    pub fn new(base_url: &str, key: &str, username: &str) -> Self {
        let http = Client::builder()
            .user_agent(concat!("dvault/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            .build()
            // Building fails only when the TLS backend cannot initialise: nothing to recover.
            .expect("HTTP client with rustls");
        ApiClient {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            key: key.to_string(),
            username: username.to_string(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(4 * 3600),
            poll_interval: Duration::from_secs(10),
        }
    }

    /// `POST /admin/backups.json`, for messages.
    pub fn create_url(&self) -> String {
        format!("{}/admin/backups.json", self.base)
    }

    fn status_url(&self) -> String {
        self.url("/admin/backups/status.json")
    }

    /// The forum's URL for `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether a backup or restore runs on the forum now (`is_operation_running`).
    pub fn operation_running(&self) -> Result<bool, ApiError> {
        let status: OperationsStatus = self.get_json(&self.status_url())?;
        Ok(status.is_operation_running)
    }

    /// Waits until no operation runs, bounded by [`ApiClient::timeout`]; `Ok(true)` when one was
    /// running (its backup, if it made one, is then in the folder or bucket).
    pub fn wait_until_idle(&self, note: super::Note<'_>) -> Result<bool, ApiError> {
        let started = Instant::now();
        if !self.operation_running()? {
            return Ok(false);
        }
        note(
            "a backup or restore is already running on the forum (status.json); waiting for it \
             to end",
        );
        loop {
            if started.elapsed() >= self.timeout {
                return Err(ApiError::Timeout {
                    url: self.status_url(),
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(self.poll_interval);
            if !self.operation_running()? {
                note(&format!(
                    "the forum's operation ended after {:.0?}",
                    started.elapsed()
                ));
                return Ok(true);
            }
        }
    }

    /// Waits for the backup just started to end, bounded by [`ApiClient::timeout`].
    pub fn wait_for_backup(&self, note: super::Note<'_>) -> Result<(), ApiError> {
        let started = Instant::now();
        let mut seen_running = false;
        let mut polls_not_running = 0u32;
        loop {
            if self.operation_running()? {
                seen_running = true;
            } else {
                polls_not_running += 1;
                // The forked backup process marks itself running a moment after the POST; a
                // "not running" counts as done once it was seen running, or when it stays so for
                // a few polls (a very small backup can finish between two polls).
                if seen_running || polls_not_running >= 3 {
                    note(&format!(
                        "the forum's backup finished after {:.0?}",
                        started.elapsed()
                    ));
                    return Ok(());
                }
            }
            if started.elapsed() >= self.timeout {
                return Err(ApiError::Timeout {
                    url: self.status_url(),
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(self.poll_interval);
        }
    }

    /// POSTs the backup request. Whether a refusal means "an operation is running" is asked of
    /// `status.json`, never read from the (translated) message.
    pub fn start_backup(&self, with_uploads: bool) -> Result<Start, ApiError> {
        let url = self.create_url();
        let body = format!("with_uploads={with_uploads}");
        let sent = self.send("POST", &url, || {
            self.http
                .post(&url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone())
        });
        let message = match sent {
            Ok(resp) => match operation_answer(&url, resp)? {
                None => return Ok(Start::Started),
                Some(message) => message,
            },
            // A conflict status, should a Discourse answer with one: decided like `failed`.
            Err(ApiError::Refused {
                status: 409 | 422 | 423,
                body,
                ..
            }) => body,
            Err(e) => return Err(e),
        };
        Ok(if self.operation_running()? {
            Start::Busy
        } else {
            Start::Refused(message)
        })
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ApiError> {
        let resp = self.send("GET", url, || self.http.get(url))?;
        parse_json(url, resp)
    }

    /// Sends with the API headers, retrying 429 (after Retry-After), 5xx and network errors with
    /// exponential backoff; any other non-2xx status is a clear error at once.
    pub(crate) fn send(
        &self,
        method: &'static str,
        url: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ApiError> {
        let mut last = String::new();
        let attempts = self.retry.attempts.max(1);
        for attempt in 1..=attempts {
            let result = build()
                .header("Api-Key", &self.key)
                .header("Api-Username", &self.username)
                .header(reqwest::header::ACCEPT, "application/json")
                .send();
            let backoff = self
                .retry
                .base_delay
                .saturating_mul(1u32 << (attempt - 1).min(16))
                .min(self.retry.max_delay);
            let wait = match result {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let after = retry_after(&resp);
                    last = format!(
                        "HTTP 429 Too Many Requests{}",
                        after.map_or(String::new(), |d| format!(
                            " (Retry-After {}s)",
                            d.as_secs()
                        ))
                    );
                    after.unwrap_or(backoff).min(self.retry.max_delay)
                }
                Ok(resp) if resp.status().is_server_error() => {
                    last = format!("HTTP {}{}", resp.status(), body_excerpt(resp));
                    backoff
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    return Err(ApiError::Refused {
                        method,
                        url: url.to_string(),
                        status,
                        hint: status_hint(status).to_string(),
                        body: body_excerpt(resp),
                    });
                }
                Err(e) => {
                    last = error_chain(&e);
                    backoff
                }
            };
            if attempt < attempts {
                tracing::warn!(%url, attempt, wait_s = wait.as_secs_f64(), error = %last, "retrying");
                std::thread::sleep(wait);
            }
        }
        Err(ApiError::GaveUp {
            method,
            url: url.to_string(),
            attempts,
            last,
        })
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    url: &str,
    resp: Response,
) -> Result<T, ApiError> {
    let text = resp.text().map_err(|e| ApiError::Unexpected {
        url: url.to_string(),
        message: format!("reading the body: {}", error_chain(&e)),
    })?;
    serde_json::from_str(&text).map_err(|e| ApiError::Unexpected {
        url: url.to_string(),
        message: format!("{e} in {:?}", excerpt(&text)),
    })
}

fn retry_after(resp: &Response) -> Option<Duration> {
    // Discourse's rate limiter sends delta-seconds; an HTTP date is not used there.
    let v = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    v.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn status_hint(status: u16) -> &'static str {
    match status {
        400 => "bad request (is this a Discourse forum?)",
        401 | 403 => {
            "access denied: check that the API key is valid, has the admin backups scope (or is a \
             global key) and that the API username is an admin"
        }
        404 => "not found: check source.api.url, and that backups are enabled on the forum",
        _ => "request refused",
    }
}

fn body_excerpt(resp: Response) -> String {
    match resp.text() {
        Ok(t) if !t.trim().is_empty() => format!(": {}", excerpt(&t)),
        _ => String::new(),
    }
}

fn excerpt(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
