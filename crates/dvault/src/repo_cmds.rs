//! Repository commands: `init`, `backup`, `snapshots`, `restore`, `check`, `forget`.
//!
//! Arguments, terminal output and progress bars live here; the work is done by
//! `dvault_core::repo`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dvault_core::repo::{
    self, BackupOutcome, ChunkerSizes, InitOptions, ProgressBar, ProgressBars, ProgressKind,
    ReadData, Repo,
};
use dvault_core::retention::{KeepWithin, Retention};
use dvault_core::snapshot::BackupMeta;
use indicatif::{MultiProgress, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::repo_args::{RepoArgs, ScratchArg};

/// The repository subcommands.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a new encrypted repository.
    Init(InitArgs),
    /// Store a Discourse backup file as a snapshot of its peeled tree.
    Backup(BackupArgs),
    /// List the dvault snapshots.
    Snapshots(SnapshotsArgs),
    /// Rebuild a snapshot's original file (--to) or write its plain tree (--expanded).
    Restore(RestoreArgs),
    /// Verify the repository's structure and, optionally, its data.
    Check(CheckArgs),
    /// Remove snapshots by a retention rule (and, with --prune, the data they alone used).
    Forget(ForgetArgs),
}

/// `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Minimum, average and maximum chunk size in bytes, e.g. 4096,16384,65536 (minimum at
    /// least 4096; default 4096,4096,16384, chosen by measurement: docs/repository.md).
    #[arg(long, value_parser = parse_chunker)]
    pub chunker: Option<ChunkerSizes>,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub scratch: ScratchArg,
    /// The backup file (.tar.gz, .sql.gz or .tar).
    pub file: PathBuf,
    /// Where the file came from (recorded in the snapshot; default: its absolute path).
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub cap: crate::peel_cmds::ExpansionCap,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `restore`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("dest").required(true).args(["to", "expanded", "to_discourse"])))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub scratch: ScratchArg,
    /// Snapshot id (a unique prefix) or `latest`.
    pub snapshot: String,
    /// Rebuild the original file here (checked against the recorded SHA-256 before it appears).
    /// An existing file is left alone unless --force is given.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Replace the file given to --to if it exists.
    #[arg(long, requires = "to")]
    pub force: bool,
    /// Write the plain tree (dump, uploads, .peel/recipe.json) into this new or empty folder.
    #[arg(long)]
    pub expanded: Option<PathBuf>,
    #[command(flatten)]
    pub discourse: crate::putback_cmd::PutBackArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Also read and decrypt every pack.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read a random subset of the packs, e.g. `10%`.
    #[arg(long, value_parser = parse_percent)]
    pub read_data_subset: Option<f64>,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Keep the N newest snapshots (of each site).
    #[arg(long)]
    pub keep_last: Option<u32>,
    /// Keep the last snapshot of each of the last N days.
    #[arg(long)]
    pub keep_daily: Option<u32>,
    /// Keep the last snapshot of each of the last N weeks.
    #[arg(long)]
    pub keep_weekly: Option<u32>,
    /// Keep the last snapshot of each of the last N months.
    #[arg(long)]
    pub keep_monthly: Option<u32>,
    /// Keep the last snapshot of each of the last N years.
    #[arg(long)]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot younger than this (e.g. 7d, 2w, 1y6m).
    #[arg(long)]
    pub keep_within: Option<KeepWithin>,
    /// Only show what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Afterwards delete the data no remaining snapshot uses.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

fn parse_chunker(s: &str) -> Result<ChunkerSizes, String> {
    let v: Vec<u64> = s
        .split(',')
        .map(|p| p.trim().parse::<u64>().map_err(|e| format!("`{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    let [min, avg, max] = v[..] else {
        return Err("expected MIN,AVG,MAX in bytes".to_string());
    };
    let c = ChunkerSizes { min, avg, max };
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix('%').unwrap_or(s);
    let p: f64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a percentage like 10%"))?;
    if !(p > 0.0 && p <= 100.0) {
        return Err(format!("`{s}`: must be above 0% and at most 100%"));
    }
    Ok(p)
}

impl RepoArgs {
    /// Takes this host's lock of the repository (the one `dvault run` takes), for a command
    /// that writes: two backups of the same file at once would both store it.
    pub(crate) fn lock(&self) -> Result<Option<dvault_core::lock::RepoLock>> {
        let r = self.resolved()?;
        let Some(dir) = &r.repo.state_dir else {
            return Ok(None);
        };
        // One spelling per repository, without any login (see `location_key`).
        let repository = dvault_core::lock::location_key(&r.location);
        Ok(Some(dvault_core::lock::RepoLock::acquire(
            dir,
            &repository,
            r.repo.lock_wait,
        )?))
    }

    /// Opens the repository with the password from a file, the environment or the config.
    pub(crate) fn open(&self) -> Result<Repo> {
        let cfg = self.config()?;
        let pw = self.password()?;
        Ok(Repo::open(&cfg, &pw, bars())?)
    }
}

/// Runs one repository command; errors are returned for `main` to print.
pub fn run(cmd: RepoCommand) -> Result<()> {
    match cmd {
        RepoCommand::Init(a) => init(&a.repo, &a),
        RepoCommand::Backup(a) => backup(&a.repo.clone().with_scratch(&a.scratch), &a),
        RepoCommand::Snapshots(a) => snapshots(&a.repo, a.out.json),
        RepoCommand::Restore(a) => restore(&a.repo.clone().with_scratch(&a.scratch), &a),
        RepoCommand::Check(a) => check(&a.repo, &a),
        RepoCommand::Forget(a) => forget(&a.repo, &a),
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn init(args: &RepoArgs, a: &InitArgs) -> Result<()> {
    let cfg = args.config()?;
    let mut generated = None;
    let pw = match &args.password_file_for_init()? {
        // A password file that does not exist yet is created (0600) with a random password.
        Some(f) if !f.exists() => {
            let p = repo::password::generate_into(f)?;
            generated = Some(f.clone());
            p
        }
        f => repo::password::resolve_for_new_repository(f.as_deref())?,
    };
    let opts = InitOptions { chunker: a.chunker };
    Repo::init(&cfg, &pw, &opts, bars())?;
    if a.out.json {
        print_json(&serde_json::json!({
            "initialized": cfg.location.to_string(),
            "password_file_created": generated,
        }))
    } else {
        println!("created dvault repository at {}", cfg.location);
        if let Some(f) = generated {
            println!("wrote a new random password to {} (mode 0600)", f.display());
        }
        println!("Keep the password safe: without it the backups cannot be read.");
        Ok(())
    }
}

fn backup(args: &RepoArgs, a: &BackupArgs) -> Result<()> {
    // Refused before the repository is opened: a FIFO or /dev/zero would be read forever.
    peel::input::open_file(&a.file).with_context(|| a.file.display().to_string())?;
    let _lock = args.lock()?;
    let repo = args
        .open()?
        .with_expansion_cap(a.cap.max_expansion_ratio, a.cap.expansion_slack)
        .with_layout(dvault_core::layout::Mode::from_env()?);
    let source = match &a.source {
        Some(s) => s.clone(),
        None => std::path::absolute(&a.file)
            .unwrap_or_else(|_| a.file.clone())
            .display()
            .to_string(),
    };
    let mut meta = BackupMeta::for_file(&a.file, &source)
        .with_context(|| format!("reading {}", a.file.display()))?;
    // Stored for a config site as `dvault run` stores it: retention groups them together.
    meta.site = args.site()?.map(str::to_string);
    let outcome = repo.backup_file(&a.file, &meta)?;
    if a.out.json {
        return print_json(&outcome);
    }
    match outcome {
        BackupOutcome::AlreadyStored { snapshot } => println!(
            "{} is already stored in snapshot {} (same SHA-256 {}); nothing to do",
            meta.file_name, snapshot.short_id, meta.sha256
        ),
        BackupOutcome::Stored(s) => {
            println!(
                "snapshot {} saved: {} ({} bytes, SHA-256 {})",
                s.snapshot.short_id, meta.file_name, meta.size, meta.sha256
            );
            // The figures of docs/figures.md: "read" is the file, "added" what the
            // repository grew by.
            use dvault_core::figures::{bytes, duration};
            println!(
                "read {} ({} files, {} peeled), added {} ({} new before compression), {}",
                bytes(meta.size),
                s.files,
                bytes(s.bytes_processed),
                bytes(s.bytes_added_packed),
                bytes(s.bytes_added_uncompressed),
                duration(std::time::Duration::from_secs_f64(s.seconds))
            );
        }
    }
    Ok(())
}

fn snapshots(args: &RepoArgs, json: bool) -> Result<()> {
    let repo = args.open()?;
    let list = repo.snapshots()?;
    if json {
        return print_json(&list);
    }
    println!(
        "{:<8}  {:<19}  {:<12}  {:<14}  {:<6}  {:>12}  {:<12}  file",
        "id", "time", "site", "version", "format", "size", "sha256"
    );
    for s in &list {
        println!(
            "{:<8}  {:<19}  {:<12}  {:<14}  {:<6}  {:>12}  {:<12}  {}",
            s.short_id,
            table_time(&s.time),
            s.meta.discourse.site.as_deref().unwrap_or("-"),
            s.meta.discourse.version.as_deref().unwrap_or("-"),
            s.meta.format.as_str(),
            s.meta.size,
            &s.meta.sha256[..12.min(s.meta.sha256.len())],
            s.meta.file_name
        );
    }
    println!("{} snapshots", list.len());
    Ok(())
}

/// A snapshot time for a text table: `2026-01-01 03:30:14` (seconds, no zone).
fn table_time(rfc3339: &str) -> String {
    rfc3339.get(..19).unwrap_or(rfc3339).replace('T', " ")
}

fn restore(args: &RepoArgs, a: &RestoreArgs) -> Result<()> {
    if let Some(to) = a.to.as_deref().filter(|t| t.exists() && !a.force) {
        bail!(
            "{}: the file exists; restore does not overwrite (remove it, choose another path or \
             add --force)",
            to.display()
        );
    }
    let repo = args.open()?;
    if let Some(target) = &a.discourse.to_discourse {
        return crate::putback_cmd::put_back(
            &repo,
            &a.snapshot,
            target,
            &a.discourse,
            a.out.json,
            args.scratch()?.as_deref(),
        );
    }
    let (info, dest): (_, &Path) = match (&a.to, &a.expanded) {
        (Some(to), None) => (repo.restore_file(&a.snapshot, to)?, to),
        (None, Some(dir)) => (repo.restore_expanded(&a.snapshot, dir)?, dir),
        _ => bail!("give exactly one of --to FILE or --expanded DIR"),
    };
    if a.out.json {
        return print_json(&serde_json::json!({
            "snapshot": info,
            "restored_to": dest,
            "verified_sha256": a.to.as_ref().map(|_| &info.meta.sha256),
        }));
    }
    match a.to {
        Some(_) => println!(
            "restored {} to {} (SHA-256 {} verified)",
            info.meta.file_name,
            dest.display(),
            info.meta.sha256
        ),
        None => println!(
            "wrote the plain tree of {} to {}",
            info.short_id,
            dest.display()
        ),
    }
    Ok(())
}

fn check(args: &RepoArgs, a: &CheckArgs) -> Result<()> {
    let repo = args.open()?;
    let read = match (a.read_data, a.read_data_subset) {
        (_, Some(p)) => ReadData::Percent(p),
        (true, None) => ReadData::All,
        (false, None) => ReadData::None,
    };
    let report = repo.check(read)?;
    if a.out.json {
        print_json(&report)?;
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        for e in &report.errors {
            eprintln!("error: {e}");
        }
        let c = &report.checked;
        let read = match c.read_data.as_str() {
            "none" => "no pack data read".to_string(),
            "all" => format!(
                "all pack data read and decrypted ({})",
                dvault_core::figures::bytes(c.pack_bytes)
            ),
            p => format!("about {p} of the pack data read and decrypted"),
        };
        println!(
            "checked {} snapshots and their trees, the index and {} packs ({}); {read}",
            c.snapshots,
            c.packs,
            dvault_core::figures::bytes(c.pack_bytes)
        );
        if report.is_ok() {
            println!("no errors were found");
        }
    }
    if !report.is_ok() {
        bail!(
            "check found {} errors in {}",
            report.errors.len(),
            repo.location()
        );
    }
    Ok(())
}

fn forget(args: &RepoArgs, a: &ForgetArgs) -> Result<()> {
    let _lock = if a.dry_run { None } else { args.lock()? };
    let repo = args.open()?;
    let rule = Retention {
        keep_last: a.keep_last,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        keep_yearly: a.keep_yearly,
        keep_within: a.keep_within.clone(),
        forget: true,
        prune: a.prune,
        // Only an explicit --site limits forget to that site's snapshots; without it every
        // site's group is handled, each on its own.
        only_site: a.repo.site.clone(),
    };
    let report = repo.forget(&rule, a.dry_run)?;
    if a.out.json {
        return print_json(&report);
    }
    for d in &report.decisions {
        let mut why = d.reasons.join(", ");
        if let Some(n) = &d.note {
            if !why.is_empty() {
                why.push_str("; ");
            }
            why.push_str(n);
        }
        println!(
            "{}  {:<19}  {:<6}  {}  {}",
            d.snapshot.short_id,
            table_time(&d.snapshot.time),
            if d.keep { "keep" } else { "remove" },
            d.snapshot.meta.file_name,
            why
        );
    }
    let n = report.decisions.iter().filter(|d| !d.keep).count();
    if report.dry_run {
        println!("dry run: {n} snapshots would be removed");
    } else {
        println!("removed {} snapshots", report.removed.len());
    }
    if let Some(p) = &report.prune {
        println!(
            "prune freed {} bytes: deleted {} unused pack(s) ({} bytes of blobs), repacked {}              partly used pack(s) ({} bytes, {} of them unused); {} unused bytes left (within              the 5 % tolerance)",
            p.freed_bytes,
            p.packs_deleted,
            p.bytes_deleted,
            p.packs_repacked,
            p.bytes_repacked,
            p.bytes_unused_dropped,
            p.unused_bytes_left
        );
    }
    Ok(())
}

/// Progress bars on stderr when it is a terminal; nothing otherwise.
pub(crate) fn bars() -> Option<Arc<dyn ProgressBars>> {
    (std::io::stderr().is_terminal() && !crate::quiet()).then(|| {
        Arc::new(TermBars {
            multi: MultiProgress::new(),
            added: Arc::new(AtomicU64::new(0)),
            byte_bars: std::sync::Mutex::new(Vec::new()),
        }) as Arc<dyn ProgressBars>
    })
}

#[derive(Debug)]
struct TermBars {
    multi: MultiProgress,
    /// Bytes written to new pack files so far (new data, compressed and encrypted, as the
    /// summary's "stored"); byte bars show it beside the bytes read.
    added: Arc<AtomicU64>,
    /// The byte bars, so that a pack written between two reads shows at once.
    byte_bars: std::sync::Mutex<Vec<indicatif::ProgressBar>>,
}

/// The "stored" message of a byte bar.
fn stored_message(added: &AtomicU64) -> String {
    format!(
        "stored {}",
        indicatif::HumanBytes(added.load(Ordering::Relaxed))
    )
}

impl ProgressBars for TermBars {
    fn start(&self, kind: ProgressKind, title: &str) -> Box<dyn ProgressBar> {
        let (bar, tmpl) = match kind {
            ProgressKind::Spinner => (
                indicatif::ProgressBar::new_spinner(),
                "{spinner} {prefix} [{elapsed}]",
            ),
            ProgressKind::Counter => (
                indicatif::ProgressBar::new(0),
                "{prefix:30} [{elapsed}] {bar:30} {pos}/{len}",
            ),
            ProgressKind::Bytes => (
                indicatif::ProgressBar::new(0),
                "{prefix:30} [{elapsed}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} eta {eta}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(tmpl) {
            bar.set_style(style);
        }
        bar.set_prefix(title.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        let bar = self.multi.add(bar);
        if kind == ProgressKind::Bytes {
            bar.set_message(stored_message(&self.added));
            if let Ok(mut bars) = self.byte_bars.lock() {
                bars.retain(|b| !b.is_finished());
                bars.push(bar.clone());
            }
        }
        Box::new(TermBar {
            bar,
            added: (kind == ProgressKind::Bytes).then(|| self.added.clone()),
        })
    }

    fn added(&self, bytes: u64) {
        self.added.fetch_add(bytes, Ordering::Relaxed);
        if let Ok(bars) = self.byte_bars.lock() {
            for b in bars.iter().filter(|b| !b.is_finished()) {
                b.set_message(stored_message(&self.added));
            }
        }
    }
}

#[derive(Debug)]
struct TermBar {
    bar: indicatif::ProgressBar,
    added: Option<Arc<AtomicU64>>,
}

impl ProgressBar for TermBar {
    fn set_length(&self, len: u64) {
        self.bar.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.bar.set_prefix(title.to_string());
    }
    fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(added) = &self.added {
            self.bar.set_message(stored_message(added));
        }
    }
    fn finish(&self) {
        self.bar.finish();
    }
}
