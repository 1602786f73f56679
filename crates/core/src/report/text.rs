//! The report as text for a terminal: one block per site.

use std::fmt::Write;

use super::{Event, LastBackup, Report, SiteReport};

/// Bytes for people: `1.5 MiB`.
pub fn bytes(n: f64) -> String {
    bytesize::ByteSize(n.max(0.0) as u64)
        .display()
        .iec()
        .to_string()
}

/// A time for a table: `2026-01-02 03:30` (UTC).
pub fn when(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

/// The last backup in one line, for the text and the HTML report alike.
pub fn last_backup(b: &LastBackup) -> String {
    format!(
        "{} {} ({}): {:.1} s, read {}, added {}, stored {}",
        when(&b.time),
        b.snapshot,
        b.file,
        b.seconds,
        bytes(b.bytes_read as f64),
        bytes(b.bytes_added as f64),
        bytes(b.bytes_stored as f64)
    )
}

fn event(e: &Option<Event>) -> String {
    let Some(e) = e else {
        return "never (no record)".to_string();
    };
    let mut s = format!("{} {}", when(&e.time), if e.ok { "ok" } else { "FAILED" });
    if let Some(r) = e.restore_seconds {
        s += &format!(", restore {r:.1} s");
    }
    if let Some(t) = e.seconds {
        s += &format!(", {t:.1} s in all");
    }
    if let Some(d) = e.detail.as_deref().filter(|_| !e.ok || e.seconds.is_none()) {
        s += &format!(" ({d})");
    }
    s
}

/// The whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for s in &report.sites {
        site(&mut out, s);
    }
    if report.sites.is_empty() {
        out.push_str("no dvault snapshots\n");
    }
    out
}

fn site(out: &mut String, s: &SiteReport) {
    let _ = writeln!(out, "site {} (repository {})", s.site, s.repository);
    let _ = writeln!(
        out,
        "  snapshots      {} (oldest {}, newest {})",
        s.snapshots,
        s.oldest.as_deref().map_or("-".into(), when),
        s.newest.as_deref().map_or("-".into(), when)
    );
    if let Some(b) = &s.last_backup {
        let _ = writeln!(out, "  last backup    {}", last_backup(b));
    }
    let _ = writeln!(
        out,
        "  repository     {} for {} of original backups (dedup ratio {})",
        bytes(s.repository_bytes as f64),
        bytes(s.original_bytes as f64),
        s.dedup_ratio.map_or("-".into(), |r| format!("{r:.1}x"))
    );
    let _ = writeln!(
        out,
        "  growth         {}",
        s.growth_per_day
            .map_or("- (one snapshot)".into(), |g| format!(
                "{}/day over the last 30 days",
                bytes(g)
            ))
    );
    let _ = writeln!(out, "  last check     {}", event(&s.last_check));
    let _ = writeln!(out, "  last drill     {}", event(&s.last_drill));
    if let Some(f) = &s.last_failure {
        let _ = writeln!(
            out,
            "  last failure   {} {}",
            f.operation,
            event(&Some(f.clone()))
        );
    }
    match &s.cost {
        Some(c) => {
            let _ = writeln!(
                out,
                "  cost           {:.2} {cur}/month storage; one full restore {:.2} {cur} ({}, {} requests){}",
                c.storage_per_month,
                c.full_restore,
                bytes(c.restore_bytes as f64),
                c.restore_requests,
                c.pricing.as_deref().map_or(String::new(), |p| format!(" at {p}")),
                cur = c.currency
            );
        }
        None => out.push_str("  cost           - (no [pricing] in the config)\n"),
    }
}
