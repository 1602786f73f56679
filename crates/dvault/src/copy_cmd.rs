//! `dvault copy --to REPO2`: snapshots copied into a second repository (the off-site copy of
//! the 3-2-1 rule), encrypted for that repository's key; see `dvault_core::repo::copy`.
//!
//! The target's password comes from `--to-password-file`, `DVAULT_TO_PASSWORD_FILE` or
//! `DVAULT_TO_PASSWORD`, never from an argument value.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use dvault_core::repo::{password, Location, Password, Repo, RepoConfig};

use crate::repo_cmds::{JsonArg, RepoArgs};

/// Environment variable naming the target's password file.
const ENV_TO_PASSWORD_FILE: &str = "DVAULT_TO_PASSWORD_FILE";
/// Environment variable holding the target's password.
const ENV_TO_PASSWORD: &str = "DVAULT_TO_PASSWORD";

/// Arguments of `copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Snapshot ids (unique prefixes) or `latest` to copy (default: every dvault snapshot).
    pub snapshots: Vec<String>,
    /// The target repository: a folder, rest:http://host:port/path or
    /// s3:http://host:port/bucket[/prefix].
    #[arg(long, env = "DVAULT_TO_REPOSITORY")]
    pub to: String,
    /// File whose first line is the target's password (else DVAULT_TO_PASSWORD_FILE or
    /// DVAULT_TO_PASSWORD).
    #[arg(long)]
    pub to_password_file: Option<PathBuf>,
    /// For an s3: target: file with the access key id and secret (two lines); default:
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long)]
    pub to_s3_credentials_file: Option<PathBuf>,
    /// For a rest: target: file whose first line is the REST server's password.
    #[arg(long)]
    pub to_rest_password_file: Option<PathBuf>,
    /// Create the target first, with this repository's chunker parameters (so later backups
    /// straight into it deduplicate against the copied data).
    #[arg(long)]
    pub init: bool,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Runs `copy`.
pub fn run(a: CopyArgs) -> Result<()> {
    let args = &a.repo;
    // The target shares this host's cache, state folder and lock wait with the source.
    let from = args.config()?;
    let mut cfg = RepoConfig::new(Location::parse(&a.to)?);
    cfg.cache_dir.clone_from(&from.cache_dir);
    cfg.s3_credentials_file
        .clone_from(&a.to_s3_credentials_file);
    cfg.rest_password_file.clone_from(&a.to_rest_password_file);
    let state_dir = from
        .state_dir
        .clone()
        .unwrap_or_else(dvault_core::defaults::default_state_dir);
    cfg.state_dir = Some(state_dir.clone());
    cfg.lock_wait = from.lock_wait;
    let to_password = target_password(a.to_password_file.as_ref(), a.init)?;
    let source = args.open()?;
    if dvault_core::lock::location_key(&a.to)
        == dvault_core::lock::location_key(&source.location().to_string())
    {
        bail!("--to names the repository the snapshots come from");
    }
    // This host's lock of the target, as `backup` takes it: a run storing into it meanwhile
    // would look for snapshots the copy is writing.
    let _lock = dvault_core::lock::RepoLock::acquire(
        &state_dir,
        &dvault_core::lock::location_key(&a.to),
        cfg.lock_wait,
    )?;
    let target = if a.init {
        source.init_copy_target(&cfg, &to_password, crate::term_bars::bars())?
    } else {
        Repo::open(&cfg, &to_password, crate::term_bars::bars())?
    };
    let report = source.copy_to(&target, &a.snapshots)?;
    if a.out.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for c in &report.copied {
        println!(
            "copied {} -> {}  {}",
            &c.source_id[..8],
            &c.target_id[..8],
            c.file_name
        );
    }
    for c in &report.already_there {
        println!(
            "already there {} = {}  {}",
            &c.source_id[..8],
            &c.target_id[..8],
            c.file_name
        );
    }
    println!(
        "{} snapshot(s) copied to {}, {} were there already",
        report.copied.len(),
        report.to,
        report.already_there.len()
    );
    if !report.same_chunker {
        eprintln!(
            "warning: {} cuts chunks differently from {}: the copied data deduplicates, but \
             backups made straight into it will not deduplicate against it (a target made \
             with `copy --init` cuts alike)",
            report.to, report.from
        );
    }
    Ok(())
}

/// The target's password: the file given, else `DVAULT_TO_PASSWORD_FILE`, else
/// `DVAULT_TO_PASSWORD`. For a new target the file must read the same for the stock restic.
fn target_password(file: Option<&PathBuf>, new: bool) -> Result<Password> {
    let file = file
        .cloned()
        .or_else(|| std::env::var_os(ENV_TO_PASSWORD_FILE).map(PathBuf::from));
    if let Some(f) = file {
        return Ok(if new {
            password::resolve_for_new_repository(Some(&f))?
        } else {
            password::read_file(&f)?
        });
    }
    match std::env::var(ENV_TO_PASSWORD) {
        Ok(p) if !p.is_empty() => Ok(Password::new(p)),
        _ => bail!(
            "no password for the target repository: give --to-password-file, \
             {ENV_TO_PASSWORD_FILE} or {ENV_TO_PASSWORD}"
        ),
    }
}
