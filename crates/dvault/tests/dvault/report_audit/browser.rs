//! The HTML report in a real browser: Debian's `chromium`, headless. `--dump-dom` gives the
//! DOM after the page loaded (so what a person sees, not just the file's text), and a
//! screenshot is kept next to the page under target/ as a test artefact.

use std::path::Path;
use std::process::Command;

fn chromium(args: &[&str], page: &Path) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        // Root (as in CI) needs --no-sandbox; no GPU on the test machines.
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (Debian package `chromium`, see scripts/deps) is installed")
}

/// Loads the page: its four plots are drawn SVG, its figures are there, it fetches nothing;
/// writes `report.png` beside it.
pub fn shows_report(page: &Path, snapshots: u64) {
    let text = std::fs::read_to_string(page).unwrap();
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(
            !text.contains(outside),
            "the page refers outside itself: {outside}"
        );
    }
    let out = chromium(&["--dump-dom"], page);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    for plot in ["size", "daily-growth", "durations", "timeline"] {
        let at = dom
            .find(&format!("data-plot=\"{plot}\""))
            .unwrap_or_else(|| panic!("no {plot} plot in the DOM"));
        let figure = &dom[at..at + dom[at..].find("</figure>").unwrap()];
        assert!(
            figure.contains("<svg") && figure.contains("<text"),
            "{plot}: {figure}"
        );
        assert!(
            figure.contains("<circle") || figure.contains("<rect"),
            "{plot} has no marks"
        );
    }
    assert!(
        dom.contains(&format!("data-figure=\"snapshots\">{snapshots}<")),
        "snapshot count missing"
    );
    for figure in [
        "repository-size",
        "dedup-ratio",
        "cost-storage",
        "cost-restore",
        "last-drill",
    ] {
        assert!(
            dom.contains(&format!("data-figure=\"{figure}\"")),
            "{figure} missing"
        );
    }
    let shot = page.with_file_name("report.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=900,2200",
        ],
        page,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}
