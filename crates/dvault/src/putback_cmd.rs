//! `dvault restore SNAP --to-discourse TARGET`: the original file put back where Discourse's
//! restore finds it, then Discourse's own steps to restore it (see `dvault_core::putback`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use dvault_core::config::ApiConfig;
use dvault_core::discourse::restore_api::{Outcome, RestoreApi, Restored};
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
    /// Then start Discourse's restore through this forum's admin API (its base URL, e.g.
    /// https://forum.example.com) and follow it to its end. The admin API key comes from
    /// --api-key-file or DVAULT_DISCOURSE_API_KEY, the username from --api-username,
    /// DVAULT_DISCOURSE_API_USERNAME or `system`. The forum must allow restores
    /// (`discourse enable_restore`).
    #[arg(long, requires = "to_discourse", value_name = "URL")]
    pub api: Option<String>,
    /// File whose first line is the forum's admin API key (never on the command line).
    #[arg(long, requires = "api", value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// The API key's user (an admin, or `system`).
    #[arg(long, requires = "api", value_name = "USER")]
    pub api_username: Option<String>,
    /// Give up following the restore after this long (e.g. 4h, 30m).
    #[arg(long, requires = "api", value_name = "DURATION", default_value = "4h", value_parser = dvault_core::config::parse_duration)]
    pub api_timeout: Duration,
    /// How often to ask the forum how the restore is going.
    #[arg(long, requires = "api", value_name = "DURATION", default_value = "5s", value_parser = dvault_core::config::parse_duration)]
    pub api_poll_interval: Duration,
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
    // The key is read (and the file's permissions checked) before anything is written.
    let mut api = match &a.api {
        Some(url) => Some(RestoreApi::from_config(&ApiConfig {
            url: url.clone(),
            key_file: a.api_key_file.clone(),
            username: a.api_username.clone(),
            with_uploads: false,
            timeout: a.api_timeout,
            poll_interval: a.api_poll_interval,
        })?),
        None => None,
    };
    if let Some(api) = &api {
        api.preflight()?;
    }
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
    let restored = match api.as_mut() {
        Some(api) => {
            if !json {
                print_put_back(&done);
            }
            Some(api.restore(&done.name, &mut |n| tracing::info!("{n}"))?)
        }
        None => None,
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "put_back": done,
                "verified_sha256": done.snapshot.meta.sha256,
                "restore_steps": steps,
                "restore": restored,
            }))?
        );
        return outcome(restored.as_ref());
    }
    if let Some(r) = &restored {
        for n in &r.notes {
            println!("note: {n}");
        }
        println!("{}", r.summary());
        if r.outcome != Outcome::Succeeded {
            println!("Discourse's restore log (last lines):");
            for l in &r.log_tail {
                println!("  {l}");
            }
        }
        return outcome(restored.as_ref());
    }
    print_put_back(&done);
    println!("To restore it with Discourse's own commands, on the forum's host:");
    for step in steps {
        println!("  {step}");
    }
    Ok(())
}

/// An error (exit code 1) unless the restore, when there was one, succeeded.
fn outcome(restored: Option<&Restored>) -> Result<()> {
    match restored {
        Some(r) if r.outcome != Outcome::Succeeded => bail!("{}", r.summary()),
        _ => Ok(()),
    }
}

fn print_put_back(done: &putback::PutBack) {
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
}
