//! Pings reach a real HTTP server on 127.0.0.1 with the log tail as body, and the textfile is
//! valid Prometheus text exposition format, replaced atomically.

use dvault_core::config::SiteMonitoring;
use dvault_core::monitor::{
    render_metrics, tail, write_textfile, LogTail, PingUrls, Pinger, SiteMetrics,
};

/// Checks every line against the text format: `# HELP name text`, `# TYPE name type`, or
/// `name{label="value",...} number`; HELP/TYPE come once per family, before its samples.
pub fn assert_prometheus_text(text: &str) {
    let name = regex::Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
    let sample = regex::Regex::new(
        r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? ([-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf|NaN))( -?[0-9]+)?$"#,
    )
    .unwrap();
    let mut typed = std::collections::HashSet::new();
    assert!(text.ends_with('\n'), "ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (n, t) = rest.split_once(' ').expect(line);
            assert!(name.is_match(n), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                "{line}"
            );
            assert!(typed.insert(n.to_string()), "TYPE twice: {line}");
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (n, _) = rest.split_once(' ').expect(line);
            assert!(name.is_match(n), "{line}");
        } else {
            let c = sample
                .captures(line)
                .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
            assert!(typed.contains(&c[1]), "sample before its TYPE: {line}");
        }
    }
}

#[test]
fn metrics_render_as_prometheus_text_with_one_series_per_site() {
    let sites = vec![
        SiteMetrics {
            site: "forum1".into(),
            last_run_success: true,
            last_run_time: Some(1_700_000_100.5),
            last_success_time: Some(1_700_000_100.5),
            duration_seconds: Some(12.25),
            bytes_read: Some(1_000_000),
            bytes_added: Some(40_000),
            snapshots: Some(3),
            dedup_ratio: Some(25.0),
            last_check_success_time: Some(1_699_000_000.0),
            last_drill_success_time: Some(1_698_000_000.0),
            unusable_files: Some(1),
            last_drill_restore_seconds: Some(42.5),
            transfer_bytes: Some(5_000),
            transfer_seconds: Some(2.5),
            last_copy_success_time: Some(1_700_000_099.0),
            copy_snapshots: Some(7),
        },
        SiteMetrics {
            site: "we\"ird\\site".into(),
            last_run_success: false,
            last_run_time: Some(1_700_000_200.0),
            ..SiteMetrics::default()
        },
    ];
    let text = render_metrics(&sites);
    assert_prometheus_text(&text);
    assert!(
        text.contains("dvault_last_success_timestamp_seconds{site=\"forum1\"} 1700000100.5\n"),
        "{text}"
    );
    assert!(
        text.contains("dvault_dedup_ratio{site=\"forum1\"} 25\n"),
        "{text}"
    );
    assert!(
        text.contains("dvault_copy_snapshots{site=\"forum1\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains("dvault_last_copy_success_timestamp_seconds{site=\"forum1\"} 1700000099\n"),
        "{text}"
    );
    assert!(
        text.contains("dvault_last_drill_restore_seconds{site=\"forum1\"} 42.5\n")
            && text.contains("dvault_last_transfer_bytes{site=\"forum1\"} 5000\n")
            && text.contains("dvault_last_transfer_duration_seconds{site=\"forum1\"} 2.5\n"),
        "{text}"
    );
    assert!(
        text.contains("dvault_last_run_success{site=\"we\\\"ird\\\\site\"} 0\n"),
        "{text}"
    );
    assert!(
        !text.contains("dvault_last_success_timestamp_seconds{site=\"we"),
        "a site that never succeeded has no last-success sample: {text}"
    );
    for m in [
        "dvault_last_run_duration_seconds",
        "dvault_last_backup_bytes_read",
        "dvault_last_backup_bytes_added",
        "dvault_snapshots",
        "dvault_last_drill_success_timestamp_seconds",
    ] {
        assert!(
            text.contains(&format!("{m}{{site=\"forum1\"}} ")),
            "{m} missing: {text}"
        );
    }
}

#[test]
fn textfile_is_replaced_atomically_and_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dvault.prom");
    std::fs::write(&path, "old").unwrap();
    let m = SiteMetrics {
        site: "f".into(),
        last_run_success: true,
        ..Default::default()
    };
    write_textfile(&path, &[m]).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_prometheus_text(&text);
    assert!(text.contains("dvault_last_run_success{site=\"f\"} 1"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
}

#[test]
fn ping_urls_follow_healthchecks_conventions() {
    let p = PingUrls::from_config(&SiteMonitoring {
        ping_url: Some("https://hc.example/ping/abc/".into()),
        ping_fail: Some("https://other.example/f".into()),
        ..Default::default()
    });
    assert_eq!(
        p.start.as_deref(),
        Some("https://hc.example/ping/abc/start")
    );
    assert_eq!(p.success.as_deref(), Some("https://hc.example/ping/abc"));
    assert_eq!(p.fail.as_deref(), Some("https://other.example/f"));
    assert_eq!(
        PingUrls::from_config(&SiteMonitoring::default()),
        PingUrls::default()
    );
}

#[test]
fn a_ping_posts_the_body_and_a_dead_endpoint_is_an_error_not_a_panic() {
    let server = dvault_testkit::ping_server();
    Pinger::new()
        .ping(&format!("{}/ping/uuid/fail", server.url), "line 1\nboom\n")
        .unwrap();
    assert_eq!(
        server.request_lines.lock().unwrap()[0],
        "POST /ping/uuid/fail HTTP/1.1"
    );
    assert_eq!(server.got.lock().unwrap()[0].1, "line 1\nboom\n");

    // Port 9 on loopback: nothing listens; the error names the host but not the secret path.
    let e = Pinger::new()
        .ping("http://127.0.0.1:9/secret-uuid", "")
        .unwrap_err();
    assert!(e.contains("127.0.0.1:9"), "{e}");
    assert!(!e.contains("secret-uuid"), "{e}");
}

#[test]
fn log_tail_keeps_the_end() {
    let mut t = LogTail::default();
    for i in 0..5000 {
        t.push(format!("line {i}"));
    }
    let text = t.text();
    assert!(text.len() <= dvault_core::monitor::PING_BODY_MAX);
    assert!(text.ends_with("line 4999\n"));
    assert!(!text.contains("line 0\n"));
    assert_eq!(tail("héllo", 4), "llo");
}
