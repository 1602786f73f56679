//! Log lines from tracing events (dvault's own warnings, rustic_core's) in the shape of the
//! run's own lines: `run --json`'s JSON objects (`time`, `level`, `message`), and otherwise
//! the text line `2026-01-01T03:00:00.123Z warn message` (as [`render`] writes the run's own),
//! so a log shipper or a reader of cron mail sees one kind of line. tracing-subscriber's JSON formatter names the time `timestamp` and writes
//! levels in capitals, and cannot be told otherwise: hence this small formatter.
//!
//! rustic_core logs through the `log` crate; tracing-subscriber's `init` routes those records
//! here (tracing-log), where they carry their origin in `log.target`, `log.module_path`,
//! `log.file` and `log.line` fields. Those are not written: the target is the record's own
//! (`rustic_core::...`), and a line says what happened, not where in rustic's source.
//! rustic_core's complaints about its local cache (a pack to remove that was never cached, as
//! after a prune with a fresh cache) concern only this host's copy of repository metadata,
//! never the repository: they are written as `info`, not `warn` (and the default filter in
//! `main.rs` shows them only with `-v`).
//! rustic_core's "Note: additional entries exist in destination" is not written at all: a
//! restore of the original brings the tree back in batches into one folder
//! (`store/restic/restore_stream.rs`), so from the second batch on the folder always holds the
//! earlier batches' files, which is what the note reports; it would be a warning on every restore.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one JSON object: `time`, `level` (lower case), `message`, `target`.
pub struct RunJson;

#[derive(Default)]
struct Fields {
    message: String,
    /// The `log` record's target, for events from the `log` crate (rustic_core's).
    log_target: Option<String>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn field(&mut self, name: &str, text: String) {
        match name {
            "message" => self.message = text,
            "log.target" => self.log_target = Some(text),
            // Where in the logging crate's source the line comes from.
            "log.module_path" | "log.file" | "log.line" => {}
            _ => {
                self.extra.insert(name.into(), text.into());
            }
        }
    }
}

/// Targets whose warnings concern only this host's cache, written as `info` (module docs).
const LOCAL_CACHE_TARGET: &str = "rustic_core::backend::cache";

/// rustic_core's note that a restore folder holds files the restore did not write: true of every
/// batch after the first of dvault's restores (module docs), so never written.
const BATCH_NOTE: (&str, &str) = (
    "rustic_core::commands::restore",
    "Note: additional entries exist in destination",
);

/// Whether the line is one that is never written (module docs).
fn dropped(target: &str, fields: &Fields) -> bool {
    target == BATCH_NOTE.0 && fields.message == BATCH_NOTE.1
}

/// The event's target (the `log` record's own for rustic_core's lines) and level as written.
fn target_and_level(event: &Event<'_>, fields: &Fields) -> (String, String) {
    let target = fields
        .log_target
        .clone()
        .unwrap_or_else(|| event.metadata().target().to_string());
    let level = *event.metadata().level();
    let level = if level == tracing::Level::WARN && target.starts_with(LOCAL_CACHE_TARGET) {
        tracing::Level::INFO
    } else {
        level
    };
    (target, level.as_str().to_ascii_lowercase())
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field.name(), value.to_string());
    }
}

impl<S, N> FormatEvent<S, N> for RunJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let (time, fields) = stamp(event);
        let (target, level) = target_and_level(event, &fields);
        if dropped(&target, &fields) {
            return Ok(());
        }
        let mut v = serde_json::Map::new();
        v.insert("time".into(), time.to_string().into());
        v.insert("level".into(), level.into());
        v.insert("message".into(), fields.message.into());
        v.insert("target".into(), target.into());
        v.extend(fields.extra);
        writeln!(writer, "{}", serde_json::Value::Object(v))
    }
}

/// The event's time (to the millisecond, as the run's own lines) and its fields.
fn stamp(event: &Event<'_>) -> (jiff::Timestamp, Fields) {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let now = jiff::Timestamp::now();
    (now.round(jiff::Unit::Millisecond).unwrap_or(now), fields)
}

/// Formats each event as one text line: time, level (lower case), message, then any other
/// fields as `name=value`.
pub struct RunText;

impl<S, N> FormatEvent<S, N> for RunText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let (time, fields) = stamp(event);
        let (target, level) = target_and_level(event, &fields);
        if dropped(&target, &fields) {
            return Ok(());
        }
        write!(writer, "{time} {level} {}", fields.message)?;
        for (k, v) in &fields.extra {
            match v.as_str() {
                Some(text) => write!(writer, " {k}={text}")?,
                None => write!(writer, " {k}={v}")?,
            }
        }
        writeln!(writer)
    }
}

/// One line of `dvault run`'s log: `2025-01-01T03:00:00.123Z info [site] message`, or with
/// `json` one JSON object with `time`, `level`, `site` and `message` (the same shapes as the
/// tracing events above).
pub fn render(e: &dvault_core::run::LogEvent<'_>, json: bool) -> String {
    let now = jiff::Timestamp::now();
    let time = now.round(jiff::Unit::Millisecond).unwrap_or(now);
    if json {
        let mut v = serde_json::to_value(e).unwrap_or_default();
        v["time"] = serde_json::Value::String(time.to_string());
        v.to_string()
    } else {
        match e.site {
            Some(site) => format!("{time} {} [{site}] {}", e.level, e.message),
            None => format!("{time} {} {}", e.level, e.message),
        }
    }
}
