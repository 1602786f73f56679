//! Root over the service user's folders, caught before a command opens anything (issue 20: a
//! backup by hand as root left root-owned files in the repository and state folder, and the
//! next timer run, as `dvault`, failed with "Permission denied" and called a snapshot damaged).
//!
//! Chosen behaviour: refuse, with the folder, its owner and the command to run instead
//! (`sudo -u dvault dvault ...`). Not a silent switch to the service user: a command started as
//! root may rightly read or write root's own files (`restore --to /root/forum.tar`, `backup
//! /root/upload.tar.gz`, a password file only root reads), and those would then fail for a
//! reason the admin cannot see; a refusal says exactly what to do and changes nothing.
//!
//! The service user is whoever owns the folders the command would write: this host's state
//! folder (locks, ledgers), the metadata cache, the scratch folder and a local repository (the
//! Debian package and `dvault setup` give them all to `dvault`). Even `snapshots` and `ls`
//! write: they fill the cache. The metrics textfile and the HTML report are left out: dvault
//! writes them world-readable (0644) by rename, so a root-made one stands in nobody's way.
//! `--allow-root` or `DVAULT_ALLOW_ROOT=1` lets an expert write there as root anyway.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use dvault_core::config::Config;
use dvault_core::repo::Location;
use dvault_core::setup::owner;

use crate::repo_args::RepoArgs;
use crate::{browse_cmds, key_cmd, repo_cmds, Command};

/// Set by the global `--allow-root`.
static ALLOWED: AtomicBool = AtomicBool::new(false);

/// `--allow-root` was given.
pub fn allow_root() {
    ALLOWED.store(true, Ordering::Relaxed);
}

fn allowed() -> bool {
    ALLOWED.load(Ordering::Relaxed)
        || std::env::var(owner::ALLOW_ROOT_ENV)
            .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "no"))
}

/// Why this process must not write into `dirs`, if it must not (see the module doc).
pub fn refusal(dirs: &[PathBuf]) -> Option<String> {
    if allowed() {
        return None;
    }
    let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    owner::root_over_service_files(&refs, &command_line())
}

/// Refuses `command` when it would write into the service user's folders as root. `run` checks
/// for itself, after its config is read (see `run_cmds`).
pub fn check(command: &Command) -> anyhow::Result<()> {
    match refusal(&dirs_of(command)) {
        Some(reason) => anyhow::bail!(reason),
        None => Ok(()),
    }
}

/// The folders `command` writes into (none for the commands that write only where told).
fn dirs_of(command: &Command) -> Vec<PathBuf> {
    use repo_cmds::RepoCommand as R;
    match command {
        Command::Repo(c) => match c {
            R::Init(a) => repo_dirs(&a.repo),
            R::Backup(a) => repo_dirs(&a.repo.clone().with_scratch(&a.scratch)),
            R::Snapshots(a) => repo_dirs(&a.repo),
            R::Restore(a) => repo_dirs(&a.repo.clone().with_scratch(&a.scratch)),
            R::Check(a) => repo_dirs(&a.repo),
            R::Forget(a) => repo_dirs(&a.repo),
        },
        Command::Drill { repo, .. } => repo_dirs(repo),
        Command::Browse(c) => match c {
            browse_cmds::BrowseCommand::Stats(a) => repo_dirs(&a.repo),
            browse_cmds::BrowseCommand::Ls(a) => repo_dirs(&a.repo),
            browse_cmds::BrowseCommand::Find(a) => repo_dirs(&a.repo),
            browse_cmds::BrowseCommand::Diff(a) => repo_dirs(&a.repo),
        },
        Command::Key(k) => match &k.command {
            key_cmd::KeyCommand::List(a) => repo_dirs(&a.repo),
            key_cmd::KeyCommand::Add(a) => repo_dirs(&a.repo),
            key_cmd::KeyCommand::Remove(a) => repo_dirs(&a.repo),
            key_cmd::KeyCommand::Passwd(a) => repo_dirs(&a.repo),
        },
        Command::Copy(a) => {
            let mut dirs = repo_dirs(&a.repo);
            if let Ok(Location::Local(p)) = Location::parse(&a.to) {
                dirs.push(p);
            }
            dirs
        }
        Command::Report(a) if a.repo.repo.is_none() => {
            Config::load(&Config::locate(a.repo.config.as_deref()))
                .map(|c| config_dirs(&c))
                .unwrap_or_default()
        }
        Command::Report(a) => repo_dirs(&a.repo),
        Command::Audit(a) => repo_dirs(&a.repo),
        Command::Peel(_)
        | Command::Run(_)
        | Command::Config(_)
        | Command::Setup(_)
        | Command::GenerateAssets(_) => Vec::new(),
    }
}

/// State, cache and scratch folder and a local repository of a repository command. Settings
/// that do not resolve give none: the command itself then reports what is wrong with them.
fn repo_dirs(args: &RepoArgs) -> Vec<PathBuf> {
    let Ok(cfg) = args.config() else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = [cfg.state_dir, cfg.cache_dir, cfg.scratch_dir]
        .into_iter()
        .flatten()
        .collect();
    if let Location::Local(p) = cfg.location {
        dirs.push(p);
    }
    dirs
}

/// State, cache and scratch folder and every local repository of a config (`run`, `report`).
pub fn config_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs = vec![config.state_dir(), config.cache_dir()];
    dirs.extend(config.scratch_dir.clone());
    for site in config.sites.values() {
        if let Some(r) = &site.repository {
            if let Ok(Location::Local(p)) = Location::parse(&r.location) {
                dirs.push(p);
            }
        }
    }
    dirs
}

/// This command line as the admin would type it again (`dvault backup ...`), quoted for a
/// shell where needed.
fn command_line() -> String {
    let mut out = String::from("dvault");
    for a in std::env::args().skip(1) {
        out.push(' ');
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
        if plain {
            out.push_str(&a);
        } else {
            out.push('\'');
            out.push_str(&a.replace('\'', r"'\''"));
            out.push('\'');
        }
    }
    out
}
