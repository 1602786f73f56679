//! `dvault forget`: its flags, parsed straight into the one retention rule of core
//! ([`dvault_core::retention::Retention`], the type the config's `[retention]` is read into), and
//! the printing of what it decided. Apart from the other repository commands (`repo_cmds.rs`)
//! because retention is its own job: the only command that removes snapshots.

use anyhow::Result;
use clap::Args;
use dvault_core::retention::{KeepWithin, Retention};

use crate::repo_cmds::{print_json, table_time, JsonArg, RepoArgs};

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

/// Runs `forget`: the rule from the flags, then the decisions (and the prune) printed.
pub(crate) fn forget(args: &RepoArgs, a: &ForgetArgs) -> Result<()> {
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
            "prune freed {} bytes: deleted {} unused pack(s) ({} bytes of blobs), repacked {} \
             partly used pack(s) ({} bytes, {} of them unused); {} unused bytes left (within \
             the 5 % tolerance)",
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        forget: ForgetArgs,
    }

    #[test]
    fn keep_within_is_parsed_by_the_flag_into_the_rule_type() {
        let cli =
            Cli::try_parse_from(["forget", "--keep-within", "1y6m", "--keep-daily", "7"]).unwrap();
        assert_eq!(cli.forget.keep_within, Some("1y6m".parse().unwrap()));
        let e = Cli::try_parse_from(["forget", "--keep-within", "2 weeks"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--keep-within") && e.contains("\"2 weeks\": expected a duration"),
            "{e}"
        );
    }
}
