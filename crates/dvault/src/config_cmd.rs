//! `dvault config validate` and `dvault config generate`, as borgmatic's `config validate` and
//! `config generate`: check a config file before the timer runs it, and start from the
//! annotated example (`contrib/dvault.toml`, built into the binary so it always matches this
//! version's keys).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use dvault_core::config::Config;

/// The annotated example config shipped in contrib/.
pub const EXAMPLE: &str = include_str!("../../../contrib/dvault.toml");

/// `dvault config ...`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// The config subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read the config file and check every key and every file it names (password files,
    /// credentials, source folders); exit code 1 names each problem.
    Validate(ValidateArgs),
    /// Print the annotated example config (every key, its default and what it is for).
    Generate,
}

/// Arguments of `config validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The config file (default: $DVAULT_CONFIG, else /etc/dvault/dvault.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a config subcommand.
pub fn run(a: ConfigArgs) -> Result<()> {
    match a.command {
        ConfigCommand::Generate => {
            print!("{EXAMPLE}");
            Ok(())
        }
        ConfigCommand::Validate(v) => validate(&v),
    }
}

fn validate(v: &ValidateArgs) -> Result<()> {
    let path = Config::locate(v.config.as_deref());
    // Key errors: the file cannot be used at all.
    let config = Config::load(&path)?;
    // File errors: one per site, all of them, so one pass fixes everything.
    let problems: Vec<String> = config
        .sites
        .keys()
        .filter_map(|name| config.check_site_files(name).err())
        .map(|e| e.to_string())
        .collect();
    if v.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "config": path,
                "valid": problems.is_empty(),
                "sites": config.sites.keys().collect::<Vec<_>>(),
                "problems": problems,
            }))?
        );
    } else if problems.is_empty() {
        println!(
            "{}: valid; {} site(s): {}",
            path.display(),
            config.sites.len(),
            config
                .sites
                .iter()
                .map(|(name, s)| format!("{name} ({})", where_stored(s)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        bail!(
            "{}: {} problem(s) with the files the config names",
            path.display(),
            problems.len()
        );
    }
    Ok(())
}

/// Where a site's snapshots go, for the summary line (password hidden).
fn where_stored(s: &dvault_core::config::SiteConfig) -> String {
    dvault_core::redact::string(&s.store_id())
}
