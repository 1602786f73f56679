//! `dvault drill`: prove that a backup restores into a real PostgreSQL (see
//! `dvault_core::drill`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{ArgGroup, Args};
use dvault_core::drill::{self, DrillInput, DrillOptions, PostgresTarget};

use crate::repo_cmds::RepoArgs;

/// Arguments of `dvault drill`.
#[derive(Args)]
#[command(group(ArgGroup::new("server").required(true).args(["postgres", "postgres_temp"])))]
#[command(group(ArgGroup::new("input").args(["snapshot", "file", "tree"])))]
pub struct DrillArgs {
    /// A snapshot of the repository (--repo) to drill: an id, a unique prefix of one, or
    /// `latest` (the default when neither --file nor --tree is given).
    #[arg(value_name = "SNAPSHOT")]
    snapshot: Option<String>,
    /// An original backup file to drill (`.tar.gz`, `.sql.gz`, `.tar`).
    #[arg(long, value_name = "BACKUP")]
    file: Option<PathBuf>,
    /// A peeled tree (from `dvault expand`): the original is rebuilt and its SHA-256 checked
    /// against the recipe first.
    #[arg(long, value_name = "DIR")]
    tree: Option<PathBuf>,
    /// The SHA-256 the backup file must have (with --file).
    #[arg(long, value_name = "HEX", requires = "file")]
    sha256: Option<String>,
    /// Load into this PostgreSQL server: a new database is created there and dropped
    /// afterwards. Give the password with PGPASSWORD or PGPASSFILE, never in the URL.
    #[arg(long, value_name = "URL", env = "DVAULT_DRILL_POSTGRES")]
    postgres: Option<String>,
    /// Load into a throwaway cluster (initdb and pg_ctl on a free 127.0.0.1 port), removed
    /// afterwards.
    #[arg(long)]
    postgres_temp: bool,
    /// Folder for temporary files (a rebuilt original, an unpacked directory dump).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// The decompression-bomb cap, as for expand and backup.
    #[command(flatten)]
    cap: crate::peel_cmds::ExpansionCap,
}

/// Runs `dvault drill`; a failed drill prints its report and returns an error (exit code 1).
pub fn run(a: DrillArgs, repo: &RepoArgs) -> Result<()> {
    let target = match (&a.postgres, a.postgres_temp) {
        (_, true) => PostgresTarget::Temp,
        (Some(url), false) => {
            if url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
                bail!(
                    "--postgres: the URL holds a password; pass it with PGPASSWORD or PGPASSFILE \
                     instead (command lines are visible to other users)"
                );
            }
            PostgresTarget::Url(url.clone())
        }
        (None, false) => bail!("give --postgres URL or --postgres-temp"),
    };
    let opts = DrillOptions {
        target,
        work_dir: a.work_dir.clone(),
        cap: {
            let o = a.cap.options();
            drill::ExpansionLimit {
                max_expansion_ratio: o.max_expansion_ratio,
                expansion_slack: o.expansion_slack,
            }
        },
    };
    let report = match (&a.file, &a.tree) {
        (Some(path), _) => drill::drill(
            &DrillInput::File {
                path: path.clone(),
                expected_sha256: a.sha256.clone(),
            },
            &opts,
        )?,
        (None, Some(dir)) => drill::drill(&DrillInput::Tree(dir.clone()), &opts)?,
        (None, None) => {
            let id = a.snapshot.as_deref().filter(|id| *id != "latest");
            drill::drill_snapshot(&repo.open()?, id, &opts)?
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.summary());
    }
    if !report.ok {
        bail!(
            "restore drill failed: {} problem(s), first: {}",
            report.failures.len(),
            report.failures.first().map_or("-", String::as_str)
        );
    }
    Ok(())
}
