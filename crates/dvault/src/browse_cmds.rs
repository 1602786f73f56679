//! Looking at what a repository holds: `stats`, `ls`, `find`, `diff`.
//!
//! Paths are the original backup's (`dump.sql.gz`, `uploads/default/original/…`), as the
//! recipe records them, not the peeled tree's or the dedup layout's (see
//! `dvault_core::repo::original_paths`). The work is in `dvault_core::repo`; this module
//! prints.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use dvault_core::repo::browse::TableRows;
use dvault_core::repo::original_paths::{self, OriginalEntry};
use indicatif::HumanBytes;
use serde::Serialize;

use crate::repo_cmds::{JsonArg, RepoArgs};

/// The commands that look inside the repository.
#[derive(Debug, Subcommand)]
pub enum BrowseCommand {
    /// Repository size, snapshots and deduplication (original bytes per stored byte).
    Stats(StatsArgs),
    /// List a snapshot's paths as they are in the original backup, or its dump's tables.
    Ls(LsArgs),
    /// Find paths of the original backups matching a glob pattern.
    Find(FindArgs),
    /// What changed between two snapshots: rows per table, uploads added and removed.
    Diff(DiffArgs),
}

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Snapshot id (a unique prefix) or `latest`.
    pub snapshot: String,
    /// Only this folder or file of the original backup (e.g. `uploads/default`).
    pub path: Option<String>,
    /// Show type and size of each path.
    #[arg(short, long)]
    pub long: bool,
    /// List the tables of the backup's dump with their row counts (COPY rows) instead.
    #[arg(long, conflicts_with_all = ["path", "long"])]
    pub tables: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `find`: `find SNAPSHOT PATTERN` or `find --all PATTERN`.
#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// A snapshot id (a unique prefix) or `latest`, then the glob pattern (`*`, `?`, `[...]`,
    /// `**`), matched against the whole path and against the file name alone (`*.png`,
    /// `uploads/**/1X/*`); with --all only the pattern.
    #[arg(value_name = "SNAPSHOT PATTERN", num_args = 1..=2, required = true)]
    pub args: Vec<String>,
    /// Search every dvault snapshot.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The older snapshot.
    pub from: String,
    /// The newer snapshot.
    pub to: String,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Runs one of these commands.
pub fn run(cmd: BrowseCommand) -> Result<()> {
    match cmd {
        BrowseCommand::Stats(a) => stats(&a.repo, a.out.json),
        BrowseCommand::Ls(a) => ls(&a.repo, &a),
        BrowseCommand::Find(a) => find(&a.repo, &a),
        BrowseCommand::Diff(a) => diff(&a.repo, &a),
    }
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn stats(args: &RepoArgs, json: bool) -> Result<()> {
    let s = args.open()?.stats()?;
    if json {
        return print_json(&s);
    }
    println!("repository:   {}", s.location);
    println!(
        "snapshots:    {}{}",
        s.snapshots,
        if s.other_snapshots > 0 {
            format!(" (and {} of other tools, not counted)", s.other_snapshots)
        } else {
            String::new()
        }
    );
    println!(
        "original:     {} ({} bytes) of backup files",
        HumanBytes(s.original_bytes),
        s.original_bytes
    );
    println!(
        "peeled:       {} ({} bytes) of plain trees; {} in {} unique blobs",
        HumanBytes(s.peeled_bytes),
        s.peeled_bytes,
        HumanBytes(s.unique_bytes),
        s.unique_blobs
    );
    println!(
        "stored:       {} ({} bytes) in the repository's files, {} of them in {} packs",
        HumanBytes(s.stored_bytes),
        s.stored_bytes,
        HumanBytes(s.pack_bytes),
        s.packs
    );
    println!(
        "dedup ratio:  {:.2}x (original bytes / stored bytes)",
        s.dedup_ratio
    );
    Ok(())
}

fn ls(args: &RepoArgs, a: &LsArgs) -> Result<()> {
    let repo = args.open()?;
    if a.tables {
        let (info, tables) = repo.tables(&a.snapshot)?;
        if a.out.json {
            return print_json(&serde_json::json!({ "snapshot": info, "tables": tables }));
        }
        let width = tables.iter().map(|t| t.table.len()).max().unwrap_or(5);
        for t in &tables {
            println!("{:<width$}  {:>12}  {}", t.table, t.rows, t.file);
        }
        println!(
            "{} tables, {} rows in snapshot {} ({})",
            tables.len(),
            tables.iter().map(|t| t.rows).sum::<u64>(),
            info.short_id,
            info.meta.file_name
        );
        return Ok(());
    }
    let (info, entries) = repo.original_paths(&a.snapshot)?;
    let under = a.path.as_deref().unwrap_or("");
    let shown: Vec<&OriginalEntry> = entries
        .iter()
        .filter(|e| original_paths::is_under(&e.path, under))
        .collect();
    if shown.is_empty() && !under.is_empty() {
        anyhow::bail!(
            "snapshot {} ({}) has no path {under}",
            info.short_id,
            info.meta.file_name
        );
    }
    if a.out.json {
        return print_json(&serde_json::json!({ "snapshot": info, "entries": shown }));
    }
    for e in shown {
        print_entry(e, a.long);
    }
    Ok(())
}

fn print_entry(e: &OriginalEntry, long: bool) {
    let link = e
        .link
        .as_deref()
        .map(|l| format!(" -> {l}"))
        .unwrap_or_default();
    if long {
        println!("{:<8}  {:>12}  {}{link}", e.kind.as_str(), e.size, e.path);
    } else {
        println!("{}", e.path);
    }
}

/// One path `find` matched.
#[derive(Serialize)]
struct Found<'a> {
    snapshot: &'a str,
    file_name: &'a str,
    #[serde(flatten)]
    entry: &'a OriginalEntry,
}

fn find(args: &RepoArgs, a: &FindArgs) -> Result<()> {
    let (snapshot, pattern) = match (a.all, a.args.as_slice()) {
        (true, [p]) => (None, p.as_str()),
        (false, [s, p]) => (Some(s.clone()), p.as_str()),
        (true, _) => anyhow::bail!("find --all takes only a PATTERN"),
        (false, _) => anyhow::bail!("find takes a SNAPSHOT and a PATTERN (or --all PATTERN)"),
    };
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .with_context(|| format!("pattern `{pattern}`"))?
        .compile_matcher();
    let repo = args.open()?;
    let ids: Vec<String> = match snapshot {
        Some(id) => vec![id],
        None => repo.snapshots()?.into_iter().map(|s| s.id).collect(),
    };
    let mut found = Vec::new();
    for id in &ids {
        let (info, entries) = repo.original_paths(id)?;
        for e in entries {
            let name = e.path.rsplit('/').next().unwrap_or(&e.path);
            if glob.is_match(&e.path) || glob.is_match(name) {
                found.push((info.clone(), e));
            }
        }
    }
    if a.out.json {
        let list: Vec<Found<'_>> = found
            .iter()
            .map(|(i, e)| Found {
                snapshot: &i.id,
                file_name: &i.meta.file_name,
                entry: e,
            })
            .collect();
        return print_json(&list);
    }
    for (i, e) in &found {
        println!(
            "{}  {:>12}  {}  ({})",
            i.short_id, e.size, e.path, i.meta.file_name
        );
    }
    println!("{} matches in {} snapshot(s)", found.len(), ids.len());
    Ok(())
}

/// A table whose row count differs between the two snapshots.
#[derive(Debug, Serialize)]
struct TableChange {
    table: String,
    /// Rows in the older snapshot (`None`: the table is not in its dump).
    before: Option<u64>,
    /// Rows in the newer snapshot.
    after: Option<u64>,
}

/// An upload added, removed or changed.
#[derive(Debug, Serialize)]
struct UploadChange {
    path: String,
    size: u64,
}

fn diff(args: &RepoArgs, a: &DiffArgs) -> Result<()> {
    let repo = args.open()?;
    let (from, from_paths) = repo.original_paths(&a.from)?;
    let (to, to_paths) = repo.original_paths(&a.to)?;
    let (_, from_tables) = repo.tables(&a.from)?;
    let (_, to_tables) = repo.tables(&a.to)?;
    let tables = table_changes(&from_tables, &to_tables);
    let before = original_paths::uploads(&from_paths);
    let after = original_paths::uploads(&to_paths);
    let change = |m: &BTreeMap<&str, u64>, other: &BTreeMap<&str, u64>| -> Vec<UploadChange> {
        m.iter()
            .filter(|(p, _)| !other.contains_key(*p))
            .map(|(p, s)| UploadChange {
                path: (*p).to_string(),
                size: *s,
            })
            .collect()
    };
    let added = change(&after, &before);
    let removed = change(&before, &after);
    let changed: Vec<UploadChange> = after
        .iter()
        .filter(|(p, s)| before.get(*p).is_some_and(|b| b != *s))
        .map(|(p, s)| UploadChange {
            path: (*p).to_string(),
            size: *s,
        })
        .collect();
    if a.out.json {
        return print_json(&serde_json::json!({
            "from": from,
            "to": to,
            "tables": tables,
            "uploads_added": added,
            "uploads_removed": removed,
            "uploads_changed": changed,
        }));
    }
    println!(
        "from {} ({})\nto   {} ({})",
        from.short_id, from.meta.file_name, to.short_id, to.meta.file_name
    );
    println!("tables with other row counts: {}", tables.len());
    let width = tables.iter().map(|t| t.table.len()).max().unwrap_or(5);
    let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for t in &tables {
        let delta = t.after.unwrap_or(0) as i128 - t.before.unwrap_or(0) as i128;
        println!(
            "  {:<width$}  {:>10} -> {:<10}  ({delta:+})",
            t.table,
            n(t.before),
            n(t.after)
        );
    }
    println!(
        "uploads: {} added, {} removed, {} changed",
        added.len(),
        removed.len(),
        changed.len()
    );
    for (sign, list) in [("+", &added), ("-", &removed), ("M", &changed)] {
        for u in list {
            println!("  {sign} {}  ({} bytes)", u.path, u.size);
        }
    }
    Ok(())
}

/// Tables whose row counts differ (or that only one dump has), by name.
fn table_changes(from: &[TableRows], to: &[TableRows]) -> Vec<TableChange> {
    let sum = |list: &[TableRows]| {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for t in list {
            *m.entry(t.table.clone()).or_default() += t.rows;
        }
        m
    };
    let (a, b) = (sum(from), sum(to));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| TableChange {
            table: n.clone(),
            before: a.get(n).copied(),
            after: b.get(n).copied(),
        })
        .collect()
}
