//! `dvault restore SNAP --to-discourse TARGET`: the original file put back where Discourse's
//! restore finds it, then Discourse's own steps to restore it (see `dvault_core::putback`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use dvault_core::putback::{self, Target};
use dvault_core::repo::Repo;

/// The put-back options of `restore`.
#[derive(Debug, Args)]
pub struct PutBackArgs {
    /// Put the original file back into a Discourse backups folder (e.g.
    /// /var/discourse/shared/standalone/backups/default) or S3 backup bucket
    /// (s3:http://host:port/bucket/prefix) under its own name and time; never replaces a file.
    #[arg(long, value_name = "TARGET")]
    pub to_discourse: Option<String>,
    /// The site's schema version (14 digits, `SELECT max(version) FROM schema_migrations`):
    /// refuse a backup Discourse would refuse as too new.
    #[arg(long, requires = "to_discourse", value_name = "MIGRATION")]
    pub site_migration: Option<String>,
}

/// Puts snapshot `id` back and prints what was done and the steps that restore it.
pub fn put_back(
    repo: &Repo,
    id: &str,
    target: &str,
    a: &PutBackArgs,
    json: bool,
    scratch: Option<&Path>,
) -> Result<()> {
    let target = Target::parse(target)?;
    let opts = putback::Options {
        site_migration: a.site_migration.clone(),
        s3_credentials_file: None,
        scratch: scratch.map(PathBuf::from),
    };
    let done = putback::put_back(repo, id, &target, &opts)?;
    let s3 = matches!(target, Target::S3 { .. });
    let steps = putback::restore_steps(&done.name, s3);
    for note in &done.notes {
        tracing::warn!("{note}");
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "put_back": done,
                "verified_sha256": done.snapshot.meta.sha256,
                "restore_steps": steps,
            }))?
        );
        return Ok(());
    }
    println!(
        "put {} back at {} (SHA-256 {} verified{})",
        done.name,
        done.placed_at,
        done.snapshot.meta.sha256,
        done.mtime
            .as_deref()
            .map(|t| format!(", modified time {t}"))
            .unwrap_or_default()
    );
    println!("To restore it with Discourse's own commands, on the forum's host:");
    for step in steps {
        println!("  {step}");
    }
    Ok(())
}
