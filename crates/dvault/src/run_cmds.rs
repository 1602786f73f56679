//! `dvault run`: one pass over the sites of the config file, for a timer. Everything that
//! decides what happens lives in `dvault_core::run`; this module reads the arguments, prints
//! the log lines (text or JSON) and the report, and turns the outcome into the exit code
//! documented in docs/operations.md.

use std::io::Write as _;
use std::path::PathBuf;

use dvault_core::config::Config;
use dvault_core::drill::RepoDrillHook;
use dvault_core::run::{self, exit, LogEvent, Outcome, RunOptions, RunReport};

/// Arguments of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The config file (default: $DVAULT_CONFIG, else /etc/dvault/dvault.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this site.
    #[arg(long)]
    pub site: Option<String>,
    /// Log as JSON lines on stderr and print the report as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Show what the run would do (which backup it would store, what retention would
    /// remove) without storing, removing or recording anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `dvault run`; exits the process with the documented code (0 ok, 1 error, 2 usage, 3
/// some sites failed, 11 locked) after everything is written and every lock released.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let code = run_inner(args);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    if code != exit::OK {
        std::process::exit(code);
    }
    Ok(())
}

fn run_inner(args: RunArgs) -> i32 {
    // Stopped by a signal, the site being worked on still gets its failure recorded and
    // pinged, and the metrics are written (within this time).
    dvault_core::interrupt::allow_grace(std::time::Duration::from_secs(15));
    let json = args.json;
    let mut log = move |e: &LogEvent<'_>| {
        if crate::quiet() && e.level == "info" {
            return;
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}",
            crate::json_log::render(e, json)
        );
    };
    let say = |level: &str, message: &str| {
        let line = crate::json_log::render(
            &LogEvent {
                level,
                site: None,
                message,
            },
            json,
        );
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    };
    let path = Config::locate(args.config.as_deref());
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            say("error", &e.to_string());
            return exit::USAGE;
        }
    };
    if let Err(e) = run::select_sites(&config, args.site.as_deref()) {
        say("error", &e.to_string());
        return exit::USAGE;
    }
    if args.dry_run {
        return crate::run_plan_cmd::print(&config, args.site.as_deref(), json);
    }
    if let Some(reason) = service_user_check(&config) {
        say("error", &reason);
        return exit::ERROR;
    }
    let layout = match dvault_core::layout::Mode::from_env() {
        Ok(l) => l,
        Err(e) => {
            say("error", &e.to_string());
            return exit::USAGE;
        }
    };
    // On a terminal, the backup's bars (bytes read and stored, live) and a copy over SSH's.
    let bars = crate::term_bars::bars();
    if let Some(bars) = &bars {
        dvault_core::source::ssh::show_progress(bars.clone());
    }
    let opener = run::RepoOpener::new(&config)
        .with_layout(layout)
        .with_progress(bars);
    let drill_hook = RepoDrillHook {
        scratch_dir: config.scratch_dir.clone(),
    };
    let report = match run::run(
        &config,
        &opener,
        RunOptions {
            site: args.site.clone(),
            drill: Some(&drill_hook),
            log: &mut log,
        },
    ) {
        Ok(r) => r,
        Err(e) => {
            say("error", &format!("{e:#}"));
            return exit::ERROR;
        }
    };
    if let Err(e) = print_report(&report, json) {
        // The report is the last thing written (cron appends it to a log file, which a full
        // disk refuses): the pings went out already, so each site now gets a fail ping too.
        let text = format!("the run's report could not be written to standard output: {e}");
        say("error", &text);
        fail_pings(&config, &report, &text);
        return exit::ERROR;
    }
    report.exit_code
}

/// Root over the service user's folders (state, cache, scratch, local repositories): refused
/// with the reason (issue 20: a root run left files the timer could not read).
fn service_user_check(config: &Config) -> Option<String> {
    crate::service_user::refusal(&crate::service_user::config_dirs(config))
}

/// A fail ping for each site of the report (a later ping overrides an earlier success).
fn fail_pings(config: &Config, report: &RunReport, text: &str) {
    let pinger = dvault_core::monitor::Pinger::new();
    for s in &report.sites {
        let Some(site) = config.sites.get(&s.site) else {
            continue;
        };
        let urls = dvault_core::monitor::PingUrls::from_config(&site.monitoring);
        if let Some(url) = &urls.fail {
            let _ = pinger.ping(url, text);
        }
    }
}

fn print_report(report: &RunReport, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
        return out.flush();
    }
    for s in &report.sites {
        let what = match s.outcome {
            Outcome::Stored => format!(
                "stored {} as snapshot {}",
                s.file.as_deref().unwrap_or("?"),
                s.snapshot.as_deref().unwrap_or("?")
            ),
            Outcome::AlreadyStored => format!(
                "{} already stored (snapshot {})",
                s.file.as_deref().unwrap_or("?"),
                s.snapshot.as_deref().unwrap_or("?")
            ),
            Outcome::Failed => format!("FAILED: {}", s.error.as_deref().unwrap_or("?")),
            Outcome::Locked => format!("LOCKED: {}", s.error.as_deref().unwrap_or("?")),
        };
        let earlier = s.backfilled.iter().filter(|b| b.stored.is_some()).count();
        let earlier = match earlier {
            0 => String::new(),
            n => format!(", and {n} older backup(s)"),
        };
        let took = dvault_core::figures::duration(std::time::Duration::from_secs_f64(s.seconds));
        writeln!(out, "{}: {what}{earlier} ({took})", s.site)?;
    }
    out.flush()
}
