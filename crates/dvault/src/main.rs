//! The `dvault` command line: a small clap dispatcher. Each command group lives in its own
//! module (`peel_cmds` for expand, rebuild and inspect); add a group with one variant in
//! [`Command`] and one arm in [`run`].

mod assets_cmd;
mod browse_cmds;
mod config_cmd;
mod copy_cmd;
mod drill_cmds;
mod forget_cmd;
mod json_log;
mod key_cmd;
mod peel_cmds;
mod putback_cmd;
mod repo_args;
mod repo_cmds;
mod report_cmd;
mod run_cmds;
mod run_plan_cmd;
mod service_user;
mod setup_cmd;
mod tar_cmds;
mod term_bars;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Encrypted, deduplicated, restore-proven backups of Discourse forums.
#[derive(Parser)]
#[command(name = "dvault", disable_version_flag = true)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Print the version, and the versions of the compressors exactness depends on.
    #[arg(short = 'V', long)]
    version: bool,
    /// A secret file (password, key or credentials file, config) that its group or other
    /// users can read is an error (exit code 1) instead of a warning.
    #[arg(long, global = true)]
    strict: bool,
    /// Print only errors and what was asked for (lists, --json): no progress, no log lines,
    /// no summary of a command that changes something.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Started as root, write into folders of the service user (state, cache, scratch, a local
    /// repository) anyway, which is otherwise refused: the files would be root's and the
    /// timer's runs could not read them (also DVAULT_ALLOW_ROOT=1; docs/operations.md).
    #[arg(long, global = true)]
    allow_root: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Peel(peel_cmds::PeelCommand),
    #[command(flatten)]
    Repo(repo_cmds::RepoCommand),
    /// Prove that a backup restores: load it into a fresh PostgreSQL database and check every
    /// table, row count, sequence and upload file against the backup itself.
    Drill {
        #[command(flatten)]
        repo: repo_cmds::RepoArgs,
        #[command(flatten)]
        args: drill_cmds::DrillArgs,
    },
    /// Back up every site of the config file once (for a timer); see docs/operations.md.
    Run(run_cmds::RunArgs),
    #[command(flatten)]
    Browse(browse_cmds::BrowseCommand),
    /// Manage the repository's keys (passwords).
    Key(key_cmd::KeyArgs),
    /// Copy snapshots into a second repository (re-encrypted for it, deduplicated).
    Copy(copy_cmd::CopyArgs),
    /// Check the config file, or print the annotated example.
    Config(config_cmd::ConfigArgs),
    /// Set dvault up on a Discourse Docker host: find the sites, write the config and password
    /// files, create the repositories, run a first backup and drill, enable the timer.
    Setup(setup_cmd::SetupArgs),
    /// Write man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateAssets(assets_cmd::AssetsArgs),
    /// What the operator has, per site: snapshots, sizes, growth, last check and drill, costs;
    /// --html writes a static page with plots (docs/report.md).
    Report(report_cmd::ReportArgs),
    /// List the audit trail kept in the repository: every backup, restore, put-back, drill,
    /// check, forget and prune, with host, user and outcome.
    Audit(report_cmd::AuditArgs),
}

/// Set by `--quiet` (see [`Cli::quiet`]).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `--quiet` was given.
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

fn main() -> ExitCode {
    process_defaults();
    stop_on_signal();
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let json_logs = matches!(&cli.command, Some(Command::Run(a)) if a.json);
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    if cli.quiet {
        silence_summaries(&matches);
    }
    init_logging(cli.verbose, json_logs);
    dvault_core::secret_file::set_strict(cli.strict);
    if cli.allow_root {
        service_user::allow_root();
    }
    exit_on_any_panic();
    if cli.version {
        print!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let code = match run(command) {
        Ok(()) => 0,
        Err(e) => {
            // No URL password in a message, whatever layer wrote it.
            eprintln!(
                "error: {}",
                dvault_core::redact::text(&dvault_core::run::error_text(&e))
            );
            // Another dvault holds the repository: 11, as `run` and restic use for a lock.
            if dvault_core::lock::is_held(&e) {
                dvault_core::run::exit::LOCKED
            } else {
                1
            }
        }
    };
    if dvault_core::interrupt::stopping() {
        dvault_core::interrupt::exit_after_cleanup(dvault_core::interrupt::exit_code());
    }
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Settings std leaves at values wrong for this tool. Backups hold private messages and
/// e-mail addresses: every file and folder dvault creates (scratch trees, restored files,
/// caches, a local repository) is for its owner only (umask 077; the monitoring textfile sets
/// its own mode).
fn process_defaults() {
    // SAFETY: only changes the process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// SIGINT, SIGTERM and SIGHUP go to one thread that ends the process with 128 + the signal
/// (as a shell reports it) and has its scratch trees and temporary files removed once it is
/// gone (see `dvault_core::interrupt`). Written by hand on libc: `sigwait` in a thread is the
/// whole of it, and the mask is set before any other thread exists so that every thread
/// inherits it (std resets the mask for child processes such as gzip and PostgreSQL).
fn stop_on_signal() {
    // SAFETY: sigset_t is plain data initialised by sigemptyset; the calls only change this
    // process's signal mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || loop {
        let mut sig = 0;
        // SAFETY: `set` lives in this thread; sigwait writes the signal number to `sig`.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        dvault_core::interrupt::begin_stop(sig);
        let name = match sig {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "SIGHUP",
        };
        eprintln!("stopped by {name}; temporary files are removed as dvault ends");
        // `run` meanwhile stops its site at the next step and records the failure (and then
        // exits by itself).
        std::thread::sleep(dvault_core::interrupt::grace());
        dvault_core::interrupt::exit_after_cleanup(128 + sig);
    });
}

fn run(command: Command) -> anyhow::Result<()> {
    service_user::check(&command)?;
    match command {
        Command::Peel(c) => peel_cmds::run(c),
        Command::Repo(c) => repo_cmds::run(c),
        Command::Drill { repo, args } => drill_cmds::run(args, &repo),
        Command::Run(a) => run_cmds::run(a),
        Command::Browse(c) => browse_cmds::run(c),
        Command::Key(a) => key_cmd::run(a),
        Command::Copy(a) => copy_cmd::run(a),
        Command::Config(a) => config_cmd::run(a),
        Command::Setup(a) => setup_cmd::run(a),
        Command::GenerateAssets(a) => {
            use clap::CommandFactory;
            assets_cmd::run(a, Cli::command())
        }
        Command::Report(a) => report_cmd::report(&a),
        Command::Audit(a) => report_cmd::audit(&a),
    }
}

/// `--quiet` for a command that changes something (backup, restore, key add, copy, ...): its
/// text summary on stdout goes to /dev/null. What a command is asked to show (snapshots, ls,
/// stats, key list, config generate) and any `--json` document still print; errors go to
/// stderr either way.
fn silence_summaries(matches: &clap::ArgMatches) {
    let mut leaf = matches;
    let mut name = "";
    while let Some((n, m)) = leaf.subcommand() {
        name = n;
        leaf = m;
    }
    let json = matches!(leaf.try_get_one::<bool>("json"), Ok(Some(true)));
    let changes = [
        "init", "backup", "restore", "check", "forget", "copy", "drill", "run", "add", "remove",
        "passwd", "expand", "rebuild", "validate",
    ];
    if json || !changes.contains(&name) {
        return;
    }
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto stdout's descriptor; `null` stays open until it returns.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
        }
    }
}

/// A panic in a worker thread (rustic_core 0.13 panics on a truncated pack file) would leave the
/// main thread waiting forever: a hung `dvault check` reports nothing. Any panic ends the
/// process at once with exit code 1 and the message, so damage is always reported.
fn exit_on_any_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A signal is stopping the process: the signal thread reports and exits.
        if dvault_core::interrupt::stopping() {
            loop {
                std::thread::park();
            }
        }
        // A panic inside a call dvault guards (rustic_core's restore workers unwrap their
        // reads): it unwinds to that call, which reports the damage as a normal error. The
        // message and backtrace only with -vv.
        if dvault_core::panic_guard::catching() {
            tracing::debug!(
                "caught panic: {info}\n{}",
                std::backtrace::Backtrace::force_capture()
            );
            dvault_core::panic_guard::record(info.to_string());
            return;
        }
        // rustic_core's tree loaders are detached threads that unwrap their send: once the
        // main thread has stopped at an error (a damaged tree) and dropped the receiver, they
        // panic with SendError. Nobody waits for them, so they may end quietly; exiting here
        // would cut off the report of the real error.
        if info.to_string().contains("SendError") {
            return;
        }
        // `dvault snapshots | head`: the reader left. SIGPIPE stays ignored (as std sets it)
        // because peel writes into gzip processes and must see EPIPE as an error, so the
        // closed stdout shows up here; end quietly, as a shell pipeline expects.
        if info.to_string().contains("failed printing to stdout") {
            std::process::exit(141);
        }
        default(info);
        let thread = std::thread::current();
        eprintln!(
            "error: internal failure in thread {}; stopping (the repository is left as it was)",
            thread.name().unwrap_or("unnamed")
        );
        std::process::exit(1);
    }));
}

/// Log lines on stderr: text, or JSON lines for `run --json` (whose own lines are JSON); both in
/// the shape of `run`'s own lines.
fn init_logging(verbose: u8, json: bool) {
    // rustic_core logs every check finding and also returns it; `dvault check` prints the
    // returned list, so its log would show each finding twice.
    // rustic_core's complaints about the local cache are info lines (see `json_log`): shown
    // from `-v` on.
    let default = match verbose {
        _ if quiet() => "error,rustic_core::commands::check=off",
        0 => "warn,rustic_core::commands::check=off,rustic_core::backend::cache=error",
        1 => "info,rustic_core::commands::check=off",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // rustic_core's lines too in dvault's own line shape (see `json_log`), without colour
    // codes (cron mail and log files show them as garbage).
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if json {
        fmt.event_format(json_log::RunJson).init();
    } else {
        fmt.event_format(json_log::RunText).init();
    }
}

/// `dvault X.Y.Z`, then the bundled zlib's version and the first line of `gzip --version`:
/// both decide whether recompressed bytes match.
fn version_text() -> String {
    // SAFETY: zlibVersion returns a pointer to a static NUL-terminated string.
    let zlib = unsafe { std::ffi::CStr::from_ptr(libz_sys::zlibVersion()) }
        .to_string_lossy()
        .into_owned();
    let gzip = std::process::Command::new("gzip")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "not found on PATH".to_string());
    format!(
        "dvault {}\nzlib {zlib} (bundled)\ngzip: {gzip}\n",
        env!("CARGO_PKG_VERSION")
    )
}
