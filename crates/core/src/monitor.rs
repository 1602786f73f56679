//! Telling the outside how runs went: healthchecks.io-style pings and a Prometheus textfile.
//!
//! Pings follow healthchecks.io's protocol (also served by its open-source server and by
//! compatible services): `<url>/start` when a site's run starts, `<url>` on success, `<url>/fail`
//! on failure, each a POST whose body is the tail of the site's log, so the failure e-mail says
//! what went wrong. A ping that fails is logged and never changes the run's outcome.
//!
//! The textfile is for node_exporter's textfile collector: written to a temporary file in the
//! same directory and renamed over the old one, so the collector never reads half a file.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::config::SiteMonitoring;

/// Most log text sent with a ping (healthchecks.io keeps the first 100 KB of a body).
pub const PING_BODY_MAX: usize = 10_000;

/// The three ping URLs of a site, resolved from `ping_url` and the overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PingUrls {
    /// Pinged when the site's run starts.
    pub start: Option<String>,
    /// Pinged when it succeeded.
    pub success: Option<String>,
    /// Pinged when it failed, with the log tail.
    pub fail: Option<String>,
}

impl PingUrls {
    /// Resolves a site's monitoring settings.
    pub fn from_config(m: &SiteMonitoring) -> Self {
        let base = m.ping_url.as_deref().map(|u| u.trim_end_matches('/'));
        PingUrls {
            start: m
                .ping_start
                .clone()
                .or_else(|| base.map(|b| format!("{b}/start"))),
            success: m.ping_success.clone().or_else(|| base.map(str::to_string)),
            fail: m
                .ping_fail
                .clone()
                .or_else(|| base.map(|b| format!("{b}/fail"))),
        }
    }
}

/// Sends pings; one HTTP client for the whole run.
#[derive(Debug, Clone)]
pub struct Pinger {
    http: reqwest::blocking::Client,
}

impl Default for Pinger {
    fn default() -> Self {
        Self::new()
    }
}

impl Pinger {
    /// A pinger with a short timeout: monitoring must never hold up a backup for long.
    pub fn new() -> Self {
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("dvault/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client with rustls");
        Pinger { http }
    }

    /// POSTs `body` to `url`, retrying twice; returns a description of the failure, if any.
    pub fn ping(&self, url: &str, body: &str) -> Result<(), String> {
        // The body goes to a third party: no URL password in it, whatever the caller passed.
        let body = crate::redact::text(body);
        let body = tail(&body, PING_BODY_MAX);
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500 * attempt));
            }
            match self
                .http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body.to_string())
                .send()
            {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => {
                    // The URL holds the check's secret UUID: keep it out of logs.
                    let e = e.without_url();
                    last = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(c) = src {
                        last.push_str(&format!(": {c}"));
                        src = c.source();
                    }
                }
            }
        }
        Err(format!("ping {}: {last}", redact(url)))
    }
}

/// A ping URL's UUID or key is a secret of sorts: logs show only scheme, host and path start.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or("");
            // A login in the URL (`user:pass@host`) stays out too.
            let host = authority.rsplit('@').next().unwrap_or("");
            format!("{scheme}://{host}/...")
        }
        None => "<ping url>".into(),
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A site's log lines kept in memory (bounded), for the failure ping's body.
#[derive(Debug, Default, Clone)]
pub struct LogTail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl LogTail {
    /// Appends a line, dropping the oldest ones beyond [`PING_BODY_MAX`] bytes.
    pub fn push(&mut self, line: String) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.bytes > PING_BODY_MAX && self.lines.len() > 1 {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len() + 1;
            }
        }
    }

    /// The kept lines, newline-separated.
    pub fn text(&self) -> String {
        let mut s = String::with_capacity(self.bytes);
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// One site's figures for the textfile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteMetrics {
    /// The site name (label `site`).
    pub site: String,
    /// 1 if the last run of this site succeeded, else 0.
    pub last_run_success: bool,
    /// When the last run of this site ended, Unix seconds.
    pub last_run_time: Option<f64>,
    /// When a run of this site last succeeded, Unix seconds.
    pub last_success_time: Option<f64>,
    /// Duration of the last run in seconds.
    pub duration_seconds: Option<f64>,
    /// Bytes of the backup file read by the last run that stored one.
    pub bytes_read: Option<u64>,
    /// Bytes the repository grew by in that run (new data, compressed and encrypted).
    pub bytes_added: Option<u64>,
    /// Snapshots of this site in the repository.
    pub snapshots: Option<u64>,
    /// bytes_read / bytes_added of the last stored backup: how much deduplication saved.
    pub dedup_ratio: Option<f64>,
    /// When a repository check last succeeded, Unix seconds.
    pub last_check_success_time: Option<f64>,
    /// When a restore drill last succeeded, Unix seconds.
    pub last_drill_success_time: Option<f64>,
    /// Files in the backups folder or bucket named like backups that the last run could not
    /// use (each is also a warning in the run's log and report).
    pub unusable_files: Option<u64>,
    /// How long the last restore drill's restore took (database, pre-data, data, post-data),
    /// in seconds: the time to get the forum's database back.
    pub last_drill_restore_seconds: Option<f64>,
    /// Bytes the last copy over SSH (`source.ssh`) moved across the network.
    pub transfer_bytes: Option<u64>,
    /// Seconds that copy took.
    pub transfer_seconds: Option<f64>,
}

/// One gauge of the textfile: its name, help text, and where its value comes from. The value
/// sits beside the name, so adding a metric cannot shift another one's value.
struct Metric {
    name: &'static str,
    help: &'static str,
    value: fn(&SiteMetrics) -> Option<f64>,
}

fn count(n: Option<u64>) -> Option<f64> {
    n.map(|n| n as f64)
}

const METRICS: &[Metric] = &[
    Metric {
        name: "dvault_last_run_success",
        help: "1 if the last run of the site succeeded, else 0.",
        value: |s| Some(if s.last_run_success { 1.0 } else { 0.0 }),
    },
    Metric {
        name: "dvault_last_run_timestamp_seconds",
        help: "When the last run of the site ended.",
        value: |s| s.last_run_time,
    },
    Metric {
        name: "dvault_last_success_timestamp_seconds",
        help: "When a run of the site last succeeded.",
        value: |s| s.last_success_time,
    },
    Metric {
        name: "dvault_last_run_duration_seconds",
        help: "How long the last run of the site took.",
        value: |s| s.duration_seconds,
    },
    Metric {
        name: "dvault_last_backup_bytes_read",
        help: "Size of the last backup file stored.",
        value: |s| count(s.bytes_read),
    },
    Metric {
        name: "dvault_last_backup_bytes_added",
        help: "New bytes the last stored backup added to the repository.",
        value: |s| count(s.bytes_added),
    },
    Metric {
        name: "dvault_snapshots",
        help: "Snapshots of the site in its repository.",
        value: |s| count(s.snapshots),
    },
    Metric {
        name: "dvault_dedup_ratio",
        help: "Bytes read divided by bytes added for the last stored backup.",
        value: |s| s.dedup_ratio,
    },
    Metric {
        name: "dvault_last_check_success_timestamp_seconds",
        help: "When a repository check last succeeded.",
        value: |s| s.last_check_success_time,
    },
    Metric {
        name: "dvault_last_drill_success_timestamp_seconds",
        help: "When a restore drill last succeeded.",
        value: |s| s.last_drill_success_time,
    },
    Metric {
        name: "dvault_unusable_backup_files",
        help: "Files named like Discourse backups that the last run could not use.",
        value: |s| count(s.unusable_files),
    },
    Metric {
        name: "dvault_last_drill_restore_seconds",
        help: "How long the restore of the last restore drill took (database, pre-data, data, post-data).",
        value: |s| s.last_drill_restore_seconds,
    },
    Metric {
        name: "dvault_last_transfer_bytes",
        help: "Bytes the last copy of a backup over SSH moved across the network.",
        value: |s| count(s.transfer_bytes),
    },
    Metric {
        name: "dvault_last_transfer_duration_seconds",
        help: "How long the last copy of a backup over SSH took.",
        value: |s| s.transfer_seconds,
    },
];

/// Renders the Prometheus text exposition format (version 0.0.4) for all sites.
pub fn render_metrics(sites: &[SiteMetrics]) -> String {
    let mut out = String::new();
    for m in METRICS {
        let values: Vec<(&str, f64)> = sites
            .iter()
            .filter_map(|s| Some((s.site.as_str(), (m.value)(s)?)))
            .collect();
        if values.is_empty() {
            continue;
        }
        let name = m.name;
        let _ = writeln!(out, "# HELP {name} {}", m.help);
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (site, v) in values {
            let _ = writeln!(
                out,
                "{name}{{site=\"{}\"}} {}",
                escape_label(site),
                format_value(v)
            );
        }
    }
    out
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Writes the textfile atomically: a temporary file in the same directory, fsync, rename.
pub fn write_textfile(path: &Path, sites: &[SiteMetrics]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".dvault-metrics")
        .suffix(".tmp")
        .tempfile_in(dir)
        // The folder is what needs fixing (Debian's node_exporter textfile folder is root's):
        // name it, not only the file.
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create a file in the folder {}: {e}", dir.display()),
            )
        })?;
    tmp.write_all(render_metrics(sites).as_bytes())?;
    tmp.as_file().sync_all()?;
    // node_exporter runs as another user: the file must be world-readable, as textfiles are.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_ping_url_in_a_message_shows_neither_its_key_nor_a_login() {
        assert_eq!(
            super::redact("https://user:pw@hc.example.org/ping/0f1e-uuid"),
            "https://hc.example.org/..."
        );
    }
}
