//! The report as one self-contained static HTML page: figures in tables, plots as inline SVG,
//! no scripts, no style sheets or fonts from elsewhere, so any web server can publish it and
//! a browser shows it without a network.

use std::fmt::Write as _;
use std::path::Path;

use super::text::{bytes, last_backup, when};
use super::{plots, Event, Report, SiteReport};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;\
text-align:left}th{font-weight:normal;color:#555}.failed{color:#c81e1e;font-weight:bold}\
.ok{color:#1e8c3c}figure{margin:1em 0}section{margin-bottom:3em}";

/// The page.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>dvault report</title><style>{STYLE}</style></head><body>\n\
         <h1>dvault report</h1><p>Made {} (UTC). Figures come from the repositories and this \
         host's run state; see docs/report.md for what each means.</p>\n",
        esc(&when(&report.generated))
    );
    if report.sites.is_empty() {
        out.push_str("<p id=\"no-snapshots\">No dvault snapshots.</p>\n");
    }
    for s in &report.sites {
        site(&mut out, s);
    }
    out.push_str("</body></html>\n");
    out
}

fn row(out: &mut String, key: &str, label: &str, value: &str) {
    let _ = writeln!(
        out,
        "<tr><th>{}</th><td data-figure=\"{key}\">{}</td></tr>",
        esc(label),
        esc(value)
    );
}

fn event(e: &Option<Event>) -> (String, &'static str) {
    match e {
        None => ("never".into(), "failed"),
        Some(e) => {
            let mut s = when(&e.time);
            if let Some(r) = e.restore_seconds {
                s += &format!(", restore {r:.1} s");
            }
            if let Some(t) = e.seconds {
                s += &format!(", {t:.1} s in all");
            }
            (s, if e.ok { "ok" } else { "failed" })
        }
    }
}

fn site(out: &mut String, s: &SiteReport) {
    let _ = writeln!(
        out,
        "<section class=\"site\" data-site=\"{0}\"><h2>Site {0}</h2><p>Repository {1}</p><table>",
        esc(&s.site),
        esc(&s.repository)
    );
    row(out, "snapshots", "Snapshots", &s.snapshots.to_string());
    row(
        out,
        "oldest",
        "Oldest",
        &s.oldest.as_deref().map_or("-".into(), when),
    );
    row(
        out,
        "newest",
        "Newest",
        &s.newest.as_deref().map_or("-".into(), when),
    );
    if let Some(b) = &s.last_backup {
        row(out, "last-backup", "Last backup", &last_backup(b));
    }
    row(
        out,
        "repository-size",
        "Repository size",
        &bytes(s.repository_bytes as f64),
    );
    row(
        out,
        "original-size",
        "Original backups",
        &bytes(s.original_bytes as f64),
    );
    row(
        out,
        "dedup-ratio",
        "Dedup ratio",
        &s.dedup_ratio.map_or("-".into(), |r| format!("{r:.1}x")),
    );
    row(
        out,
        "growth",
        "Growth (last 30 days)",
        &s.growth_per_day
            .map_or("-".into(), |g| format!("{}/day", bytes(g))),
    );
    for (key, label, e) in [
        ("last-check", "Last successful check", &s.last_check),
        ("last-drill", "Last successful drill", &s.last_drill),
    ] {
        let (text, class) = event(e);
        let _ = writeln!(
            out,
            "<tr><th>{label}</th><td data-figure=\"{key}\" class=\"{class}\">{}</td></tr>",
            esc(&text)
        );
    }
    if let Some(f) = &s.last_failure {
        let _ = writeln!(
            out,
            "<tr><th>Failed since</th><td data-figure=\"last-failure\" class=\"failed\">{} {}: {}</td></tr>",
            esc(&f.operation),
            esc(&when(&f.time)),
            esc(f.detail.as_deref().unwrap_or(""))
        );
    }
    match &s.cost {
        Some(c) => {
            row(
                out,
                "cost-storage",
                "Storage cost",
                &format!("{:.2} {}/month", c.storage_per_month, c.currency),
            );
            row(
                out,
                "cost-restore",
                "One full restore",
                &format!(
                    "{:.2} {} ({}, {} requests)",
                    c.full_restore,
                    c.currency,
                    bytes(c.restore_bytes as f64),
                    c.restore_requests
                ),
            );
        }
        None => row(out, "cost-storage", "Cost", "no [pricing] in the config"),
    }
    out.push_str("</table>\n");
    let h = &s.history;
    type Plot<'a> = Box<dyn Fn() -> Result<String, String> + 'a>;
    let drawn: [(&str, bool, Plot<'_>); 4] = [
        ("size", !h.size.is_empty(), Box::new(|| plots::size(h))),
        (
            "daily-growth",
            !h.daily_growth.is_empty(),
            Box::new(|| plots::daily_growth(h)),
        ),
        (
            "durations",
            !(h.backup_seconds.is_empty() && h.restore_seconds.is_empty()),
            Box::new(|| plots::durations(h)),
        ),
        (
            "timeline",
            !h.events.is_empty(),
            Box::new(|| plots::timeline(&h.events)),
        ),
    ];
    for (name, has_data, draw) in drawn {
        let body = match has_data.then(draw) {
            None => "<p>no data yet</p>".to_string(),
            Some(Ok(svg)) => svg,
            Some(Err(e)) => format!("<p>the plot could not be drawn: {}</p>", esc(&e)),
        };
        let _ = writeln!(
            out,
            "<figure class=\"plot\" data-plot=\"{name}\">{body}</figure>"
        );
    }
    out.push_str("</section>\n");
}

/// Writes the page to `path` atomically, readable by a web server (mode 0644: the page is
/// meant to be published; it holds figures and file names, no secrets).
pub fn write(path: &Path, report: &Report) -> anyhow::Result<()> {
    // Served by a web server running as another user: world-readable.
    crate::atomic_file::write_with_mode(path, render(report).as_bytes(), 0o644)?;
    Ok(())
}
