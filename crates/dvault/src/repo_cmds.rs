//! Repository commands: `init`, `backup`, `snapshots`, `restore`, `check`, `forget`.
//!
//! Arguments and terminal output live here (`forget` in `forget_cmd.rs`, the progress bars in
//! `term_bars.rs`); the work is done by `dvault_core::repo`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dvault_core::repo::{self, BackupOutcome, ChunkerSizes, InitOptions, ReadData, Repo};
use dvault_core::snapshot::BackupMeta;

use crate::term_bars::bars;

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
    Forget(crate::forget_cmd::ForgetArgs),
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
        RepoCommand::Forget(a) => crate::forget_cmd::forget(&a.repo, &a),
    }
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
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
pub(crate) fn table_time(rfc3339: &str) -> String {
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
