//! Log lines from tracing events (dvault's own warnings, rustic_core's) in the shape of the
//! run's own lines: `run --json`'s JSON objects (`time`, `level`, `message`), and otherwise
//! the text line `2026-01-01T03:00:00.123Z warn message` (as [`render`] writes the run's own),
//! so a log shipper or a reader of cron mail sees one kind of line. tracing-subscriber's JSON formatter names the time `timestamp` and writes
//! levels in capitals, and cannot be told otherwise: hence this small formatter.

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
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.extra.insert(field.name().into(), text.into());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.extra.insert(field.name().into(), value.into());
        }
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
        let mut v = serde_json::Map::new();
        v.insert("time".into(), time.to_string().into());
        v.insert(
            "level".into(),
            event
                .metadata()
                .level()
                .as_str()
                .to_ascii_lowercase()
                .into(),
        );
        v.insert("message".into(), fields.message.into());
        v.insert("target".into(), event.metadata().target().into());
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
        let level = event.metadata().level().as_str().to_ascii_lowercase();
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
