//! Failure and recovery hooks of a site: a command and/or a webhook run after `dvault run`
//! finished the site, as borgmatic's `on_error` hooks are, for alerting beyond the pings.
//!
//! `on_failure` / `failure_webhook` fire when the site's run failed (or found its repository
//! locked); `on_recovery` / `recovery_webhook` when it succeeded after a failed run. The
//! command runs with `sh -c` and these environment variables (the webhook gets the same as a
//! JSON body): `DVAULT_EVENT` (`failure` or `recovery`), `DVAULT_SITE`, `DVAULT_OUTCOME`
//! (stored, already_stored, failed, locked), `DVAULT_ERROR` (empty on recovery),
//! `DVAULT_SNAPSHOT`, `DVAULT_REPORT` (the HTML report's path, when `report_html` is set),
//! `DVAULT_HOST`. A hook that fails or hangs is logged; it never changes the run's outcome.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::run::{Outcome, SiteReport};

/// `[sites.NAME.hooks]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Shell command run when the site's run fails.
    #[serde(default)]
    pub on_failure: Option<String>,
    /// Shell command run when the site's run succeeds after a failed one.
    #[serde(default)]
    pub on_recovery: Option<String>,
    /// URL that gets a JSON POST when the site's run fails.
    #[serde(default)]
    pub failure_webhook: Option<String>,
    /// URL that gets a JSON POST on recovery.
    #[serde(default)]
    pub recovery_webhook: Option<String>,
    /// How long a hook may take (default 60s); a command still running then is killed.
    #[serde(default, deserialize_with = "de_timeout")]
    pub timeout: Option<Duration>,
}

fn de_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    crate::config::parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// Runs the hooks that apply to a finished site. `was_failing`: the previous run of the site
/// failed. `log(level, message)` receives what the hooks did.
pub fn after_site(
    hooks: Option<&HookConfig>,
    report: &SiteReport,
    was_failing: bool,
    report_html: Option<&PathBuf>,
    log: &mut dyn FnMut(&str, &str),
) {
    let Some(h) = hooks else { return };
    let failed = matches!(report.outcome, Outcome::Failed | Outcome::Locked);
    let (event, command, webhook) = match (failed, was_failing) {
        (true, _) => ("failure", &h.on_failure, &h.failure_webhook),
        (false, true) => ("recovery", &h.on_recovery, &h.recovery_webhook),
        (false, false) => return,
    };
    let outcome = serde_json::to_value(report.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let vars: Vec<(&str, String)> = vec![
        ("DVAULT_EVENT", event.to_string()),
        ("DVAULT_SITE", report.site.clone()),
        ("DVAULT_OUTCOME", outcome),
        ("DVAULT_ERROR", report.error.clone().unwrap_or_default()),
        (
            "DVAULT_SNAPSHOT",
            report.snapshot.clone().unwrap_or_default(),
        ),
        (
            "DVAULT_REPORT",
            report_html.map_or(String::new(), |p| p.display().to_string()),
        ),
        ("DVAULT_HOST", crate::snapshot::hostname()),
    ];
    let timeout = h.timeout.unwrap_or(Duration::from_secs(60));
    if let Some(cmd) = command {
        match run_command(cmd, &vars, timeout) {
            Ok(out) => log("info", &format!("{event} hook ran: {out}")),
            Err(e) => log("warn", &format!("{event} hook `{cmd}`: {e}")),
        }
    }
    if let Some(url) = webhook {
        let body: serde_json::Map<String, serde_json::Value> = vars
            .iter()
            .map(|(k, v)| {
                let key = k.trim_start_matches("DVAULT_").to_ascii_lowercase();
                (key, serde_json::Value::String(v.clone()))
            })
            .collect();
        let shown = crate::redact::string(url);
        match post(url, &body, timeout) {
            Ok(()) => log("info", &format!("{event} webhook {shown} called")),
            Err(e) => log("warn", &format!("{event} webhook {shown}: {e}")),
        }
    }
}

/// Runs `sh -c cmd`; returns its exit status and first output line.
fn run_command(cmd: &str, vars: &[(&str, String)], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(vars.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "killed after {}",
                    humantime::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut text = String::new();
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read>),
    ]
    .into_iter()
    .flatten()
    {
        let _ = pipe.take(4096).read_to_string(&mut text);
    }
    let first = text.lines().next().unwrap_or("").to_string();
    if status.success() {
        Ok(format!("exit 0 {first}").trim_end().to_string())
    } else {
        Err(format!("{status} {first}").trim_end().to_string())
    }
}

fn post(
    url: &str,
    body: &serde_json::Map<String, serde_json::Value>,
    timeout: Duration,
) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(url)
        .json(body)
        .send()
        .map_err(|e| crate::redact::string(&e.to_string()))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    Ok(())
}
