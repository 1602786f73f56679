//! Carrying out the steps of a setup plan that are not done yet: folders with their modes,
//! password files, the config, ACLs and repositories, each given to the service user.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{owner, Action, Options, Plan, Step};
use crate::repo::{self, InitOptions, Location, Repo, RepoConfig, RepoError};

/// What [`apply()`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Password files created now (host paths): the admin must copy them somewhere safe.
    pub new_passwords: Vec<PathBuf>,
    /// Repositories created now (site names).
    pub new_repositories: Vec<String>,
}

/// Carries out the steps that are not done yet, in order; stops at the first failure (the
/// error names the step). Files and folders it creates are given to `owner` when set (setup
/// runs as root; the service runs as the dvault user).
pub fn apply(
    opts: &Options,
    plan: &Plan,
    owner: Option<owner::Owner>,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Applied> {
    let mut applied = Applied::default();
    for step in &plan.steps {
        if let Some(reason) = &step.done {
            say(&format!("ok    {}: {reason}", step.describe()));
            continue;
        }
        say(&format!("do    {}", step.describe()));
        run_step(opts, step, owner, &mut applied)
            .with_context(|| format!("setup step failed: {}", step.describe()))?;
    }
    Ok(applied)
}

fn run_step(
    opts: &Options,
    step: &Step,
    owner: Option<owner::Owner>,
    applied: &mut Applied,
) -> anyhow::Result<()> {
    match &step.action {
        Action::CreateDir { path, mode } => {
            let p = opts.at_root(path);
            // Missing folders above it (/srv, /var/lib in a bare root) get the usual 0755, not
            // what dvault's umask 077 would give them.
            let missing: Vec<PathBuf> = p
                .ancestors()
                .skip(1)
                .take_while(|a| !a.exists())
                .map(Path::to_path_buf)
                .collect();
            for (dir, m) in missing
                .iter()
                .rev()
                .map(|d| (d, 0o755))
                .chain(std::iter::once((&p, *mode)))
            {
                std::fs::create_dir(dir)
                    .with_context(|| format!("{}: cannot create", dir.display()))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m))
                    .with_context(|| format!("{}: cannot set mode {m:04o}", dir.display()))?;
            }
            owner::give(owner, &p)?;
        }
        Action::WritePassword { path, .. } => {
            let p = opts.at_root(path);
            repo::password::generate_into(&p)?;
            owner::give(owner, &p)?;
            applied.new_passwords.push(path.clone());
        }
        Action::WriteConfig { path, text } => {
            let p = opts.at_root(path);
            repo::password::create_secret_file(&p, text.as_bytes())
                .with_context(|| format!("{}: cannot write", p.display()))?;
            owner::give(owner, &p)?;
        }
        Action::Grant { path, access } => {
            if let Some(o) = owner {
                owner::grant(&opts.at_root(path), o, *access)?;
            }
        }
        Action::InitRepository {
            site,
            location,
            password_file,
        } => {
            let loc = match Location::parse(location)? {
                Location::Local(p) => Location::Local(opts.at_root(&p)),
                other => other,
            };
            let local = match &loc {
                Location::Local(p) => Some(p.clone()),
                _ => None,
            };
            let mut cfg = RepoConfig::new(loc);
            cfg.rest_password_file = opts.rest_password_file.as_ref().map(|f| opts.at_root(f));
            cfg.s3_credentials_file = opts.s3_credentials_file.as_ref().map(|f| opts.at_root(f));
            let pw = repo::password::read_file(&opts.at_root(password_file))?;
            match Repo::init(&cfg, &pw, &InitOptions::default(), None) {
                Ok(_) => applied.new_repositories.push(site.clone()),
                // A remote repository made earlier (by a setup run before this one).
                Err(RepoError::AlreadyExists(_)) if local.is_none() => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(p) = local {
                owner::give_tree(owner, &p)?;
            }
        }
    }
    Ok(())
}
