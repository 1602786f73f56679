//! `dvault generate-assets DIR` (hidden): writes the man pages (one per command, roff) and the
//! bash, zsh and fish completions, generated from the same clap definition that parses the
//! command line, so they can never describe options that do not exist. The Debian package's
//! build (scripts/package) runs it on the binary it is about to ship.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap_complete::Shell;

/// Arguments of `generate-assets`.
#[derive(clap::Args, Debug)]
pub struct AssetsArgs {
    /// Folder to write into: man/dvault.1, man/dvault-COMMAND.1, completions/dvault.bash,
    /// completions/_dvault (zsh), completions/dvault.fish.
    pub dir: PathBuf,
}

/// Writes every page and completion file; errors name the file.
pub fn run(args: AssetsArgs, cmd: clap::Command) -> Result<()> {
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let man = args.dir.join("man");
    let completions = args.dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).with_context(|| format!("{}: cannot create", d.display()))?;
    }
    write_man_pages(&cmd, &man)?;
    for (shell, file) in [
        (Shell::Bash, "dvault.bash"),
        (Shell::Zsh, "_dvault"),
        (Shell::Fish, "dvault.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "dvault", &mut out);
        write(&completions.join(file), &out)?;
    }
    Ok(())
}

/// `dvault.1` for the whole tool and `dvault-NAME.1` for each visible subcommand (as git and
/// cargo name theirs), so `man dvault-setup` works.
fn write_man_pages(cmd: &clap::Command, dir: &Path) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    write(&dir.join("dvault.1"), &out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // clap takes a command name as a 'static str (without its `string` feature); this
        // one-shot command leaks a few short names.
        let name: &'static str = Box::leak(format!("dvault-{}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).version(env!("CARGO_PKG_VERSION"));
        let mut out = Vec::new();
        clap_mangen::Man::new(sub).render(&mut out)?;
        write(&dir.join(format!("{name}.1")), &out)?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    // Man pages and completions are read by every user; the process umask (077) is for backups.
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("{}: cannot set mode 0644", path.display()))
}
