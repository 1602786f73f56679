//! `dvault key list|add|remove|passwd`: the repository's passwords, as restic's `key`.
//!
//! The repository is opened with the usual password (`--password-file`, `DVAULT_PASSWORD_FILE`
//! or `DVAULT_PASSWORD`); a new password comes from `--new-password-file`,
//! `DVAULT_NEW_PASSWORD_FILE` or `DVAULT_NEW_PASSWORD`, never from an argument value.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use dvault_core::repo::keys;

use crate::repo_cmds::{JsonArg, RepoArgs};

/// `dvault key ...`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// The key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the repository's keys (the one the password opened is marked `*`).
    List(ListArgs),
    /// Add a key: another password that opens the repository.
    Add(AddArgs),
    /// Remove a key (not the one the given password opened).
    Remove(RemoveArgs),
    /// Change the password: add a key for the new one, check it opens the repository, then
    /// remove the key of the old one.
    Passwd(PasswdArgs),
}

/// Where the new password comes from.
#[derive(Debug, Args)]
pub struct NewPassword {
    /// File whose first line is the new password (else DVAULT_NEW_PASSWORD_FILE or
    /// DVAULT_NEW_PASSWORD).
    #[arg(long)]
    pub new_password_file: Option<PathBuf>,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `key list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Arguments of `key passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub new: NewPassword,
}

/// Arguments of `key add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub new: NewPassword,
    /// Host name recorded in the key (default: this host's).
    #[arg(long)]
    pub host: Option<String>,
    /// User name recorded in the key (default: $USER).
    #[arg(long)]
    pub user: Option<String>,
}

/// Arguments of `key remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The key's id (a unique prefix), as `key list` shows it.
    pub id: String,
    #[command(flatten)]
    pub out: JsonArg,
}

/// Runs a key subcommand.
pub fn run(a: KeyArgs) -> Result<()> {
    match a.command {
        KeyCommand::List(o) => list(&o.repo, o.out.json),
        KeyCommand::Add(a) => {
            let args = &a.repo;
            let pw = keys::new_password(a.new.new_password_file.as_deref())?;
            let _lock = args.lock()?;
            let id = args.open()?.add_key(&pw, a.host, a.user)?;
            report(a.new.out.json, &serde_json::json!({ "added": id }), || {
                format!("added key {}", &id[..8])
            })
        }
        KeyCommand::Remove(r) => {
            let args = &r.repo;
            let _lock = args.lock()?;
            let id = args.open()?.remove_key(&r.id)?;
            report(r.out.json, &serde_json::json!({ "removed": id }), || {
                format!("removed key {}", &id[..8])
            })
        }
        KeyCommand::Passwd(p) => {
            let (args, n) = (&p.repo, &p.new);
            let pw = keys::new_password(n.new_password_file.as_deref())?;
            let _lock = args.lock()?;
            let (old, new) = args.open()?.change_password(&pw)?;
            report(
                n.out.json,
                &serde_json::json!({ "removed": old, "added": new }),
                || {
                    format!(
                        "password changed: key {} added for the new password, key {} of the \
                         old one removed",
                        &new[..8],
                        &old[..8]
                    )
                },
            )
        }
    }
}

fn report(json: bool, doc: &serde_json::Value, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(doc)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

fn list(args: &RepoArgs, json: bool) -> Result<()> {
    let list = args.open()?.keys()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(" {:<8}  {:<16}  {:<20}  created", "id", "user", "host");
    for k in &list {
        println!(
            "{}{:<8}  {:<16}  {:<20}  {}",
            if k.current { "*" } else { " " },
            &k.id[..8],
            k.user.as_deref().unwrap_or("-"),
            k.host.as_deref().unwrap_or("-"),
            k.created
                .as_deref()
                .map_or("-", |c| c.get(..19).unwrap_or(c))
        );
    }
    Ok(())
}
