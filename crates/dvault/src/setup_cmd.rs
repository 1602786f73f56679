//! `dvault setup`: sets dvault up on a standard Discourse Docker host in one command. The steps
//! that touch files are worked out and carried out by `dvault_core::setup`; this module reads
//! the flags (or asks), prints every step, tells the admin once where to keep the password,
//! and starts the first backup and the timer through systemd, so that they run as the service
//! user exactly as every later run will.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use dvault_core::setup::{self, owner, Options};

/// Arguments of `setup`.
#[derive(clap::Args, Debug)]
pub struct SetupArgs {
    /// Show every step without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Work on the root file system in DIR instead of / (tests, preparing an image): every
    /// path is taken inside it; nothing is started.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// The config file to write.
    #[arg(long, value_name = "FILE", default_value = dvault_core::defaults::CONFIG_FILE)]
    pub config: PathBuf,
    /// Repository location; {site} is replaced by the site's name. A local folder,
    /// rest:http://host:8000/{site}/ or s3:http://host:3900/bucket/{site}. Asked for when
    /// not given and a person is at the terminal.
    #[arg(long, value_name = "LOCATION")]
    pub repository: Option<String>,
    /// The repository password file ({site} replaced); created with a random password when
    /// missing.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/dvault/{site}.password"
    )]
    pub site_password_file: String,
    /// For a rest: repository with a login: the file holding its password.
    #[arg(long, value_name = "FILE")]
    pub rest_password_file: Option<PathBuf>,
    /// For an s3: repository: two lines, access key id and secret.
    #[arg(long, value_name = "FILE")]
    pub s3_credentials_file: Option<PathBuf>,
    /// A healthchecks.io-style ping URL ({site} replaced).
    #[arg(long, value_name = "URL")]
    pub ping_url: Option<String>,
    /// Only this site (the container's name, e.g. app); repeat for several. Default: all.
    #[arg(long = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// Configure no restore drills (default: configured when PostgreSQL's server is
    /// installed).
    #[arg(long)]
    pub no_drill: bool,
    /// Neither run the first backup nor enable the timer.
    #[arg(long)]
    pub no_start: bool,
    /// Ask nothing; take the defaults for what is not given.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

const DEFAULT_REPOSITORY: &str = "/srv/dvault/{site}";

/// Runs `dvault setup`.
pub fn run(a: SetupArgs) -> Result<()> {
    if !a.root.is_absolute() {
        bail!("--root {}: must be an absolute path", a.root.display());
    }
    let on_host = a.root == Path::new("/");
    let repository = match &a.repository {
        Some(r) => r.clone(),
        None if !a.yes && !a.dry_run && std::io::stdin().is_terminal() => ask(
            "Where should the backups go? A local folder, rest:http://HOST:8000/{site}/ or \
             s3:http://HOST/BUCKET/{site}",
            DEFAULT_REPOSITORY,
        )?,
        None => DEFAULT_REPOSITORY.to_string(),
    };
    let opts = Options {
        root: a.root.clone(),
        config_path: a.config.clone(),
        repository,
        password_file: a.site_password_file.clone(),
        rest_password_file: a.rest_password_file.clone(),
        s3_credentials_file: a.s3_credentials_file.clone(),
        ping_url: a.ping_url.clone(),
        sites: a.sites.clone(),
        drill: !a.no_drill && postgres_server_installed(&a.root),
        // The system service's folder, which `run` then finds by the same default.
        state_dir: PathBuf::from(dvault_core::defaults::DEFAULT_STATE_DIR),
    };
    // Root gives what setup makes to the service user (found in the root's own passwd file);
    // anyone else keeps it, as the user the service will then have to run as.
    let owner = if owner::can_chown() {
        match owner::lookup(&a.root, setup::SERVICE_USER) {
            Some(o) => Some(o),
            None => bail!(
                "no user {user} in {}: the Debian package creates it (or run \
                 `systemd-sysusers` with contrib/dvault.sysusers); setup gives the files it \
                 makes to that user, which the timer runs as",
                a.root.join("etc/passwd").display(),
                user = setup::SERVICE_USER
            ),
        }
    } else {
        None
    };
    let plan = setup::plan(&opts, owner)?;
    for s in &plan.sites {
        println!(
            "found site {}: {} (backups in {})",
            s.site.name,
            s.site.hostname,
            s.site.backups.display()
        );
        if !opts.at_root(&s.site.backups).is_dir() {
            println!(
                "note  {} does not exist yet: Discourse creates it with its first backup \
                 (Admin > Backups, or its daily job)",
                s.site.backups.display()
            );
        }
    }
    if !opts.drill {
        println!(
            "note  no restore drills configured ({}): install PostgreSQL (apt install \
             postgresql) and add a [sites.NAME.drill] section",
            if a.no_drill {
                "--no-drill"
            } else {
                "no PostgreSQL server binaries found"
            }
        );
    }
    for n in &plan.notes {
        println!("note  {n}");
    }
    let start = on_host && !a.no_start;
    if a.dry_run {
        for step in &plan.steps {
            match &step.done {
                Some(reason) => println!("ok    {}: {reason}", step.describe()),
                None => println!("would {}", step.describe()),
            }
        }
        if start {
            println!("would run the first backup and restore drill (systemctl start dvault)");
            println!("would enable the daily timer (systemctl enable --now dvault.timer)");
        }
        println!("dry run: nothing was changed");
        return Ok(());
    }
    let mut say = |line: &str| println!("{line}");
    let applied = setup::apply(&opts, &plan, owner, &mut say)?;
    for p in &applied.new_passwords {
        println!();
        println!(
            "IMPORTANT: {} is the only key to these backups.",
            p.display()
        );
        println!(
            "Copy it now to a safe place off this server (a password manager, or printed and \
             locked away). If this server is lost and the copy is too, the backups cannot be \
             read by anyone."
        );
    }
    if !applied.new_passwords.is_empty() {
        println!();
    }
    if !start {
        if !on_host {
            println!("skip  first backup and timer: not started under --root");
        } else {
            println!("skip  first backup and timer: --no-start");
        }
        return Ok(());
    }
    if applied.new_repositories.is_empty() {
        println!("ok    first backup: the repositories existed before this run");
    } else {
        first_run(&a.config)?;
    }
    enable_timer()
}

/// One question on the terminal; an empty answer takes the default.
fn ask(question: &str, default: &str) -> Result<String> {
    print!("{question}\n[{default}]: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    Ok(if line.is_empty() { default } else { line }.to_string())
}

/// The drill's throwaway cluster needs `initdb` (Debian: /usr/lib/postgresql/N/bin).
fn postgres_server_installed(root: &Path) -> bool {
    std::fs::read_dir(root.join("usr/lib/postgresql"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.path().join("bin/initdb").is_file())
        })
        .unwrap_or(false)
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The first backup and drill, as the service user: through the service itself where systemd
/// runs, else `dvault run` as that user.
fn first_run(config: &Path) -> Result<()> {
    println!("do    first backup and restore drill (this can take a while)");
    let status = if systemd_running() {
        Command::new("systemctl")
            .args(["start", "dvault.service"])
            .status()
            .context("systemctl start dvault.service")?
    } else {
        let exe = std::env::current_exe().context("finding dvault's own path")?;
        let mut cmd = if owner::can_chown() {
            let mut c = Command::new("runuser");
            c.args(["-u", setup::SERVICE_USER, "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.arg("run").arg("--config").arg(config);
        cmd.status().context("starting dvault run")?
    };
    if !status.success() {
        bail!(
            "the first backup failed ({status}); read why with `journalctl -u dvault` (or the \
             output above), fix it and run `systemctl start dvault` again"
        );
    }
    println!("ok    first backup and drill passed");
    Ok(())
}

fn enable_timer() -> Result<()> {
    if !systemd_running() {
        println!(
            "note  systemd is not running here: schedule `dvault run` with cron instead \
             (/usr/share/doc/dvault/examples/dvault.cron)"
        );
        return Ok(());
    }
    let enabled = Command::new("systemctl")
        .args(["is-enabled", "--quiet", "dvault.timer"])
        .status()
        .is_ok_and(|s| s.success());
    if enabled {
        println!("ok    daily timer: enabled");
        return Ok(());
    }
    println!("do    enable the daily timer (systemctl enable --now dvault.timer)");
    let status = Command::new("systemctl")
        .args(["enable", "--now", "dvault.timer"])
        .status()
        .context("systemctl enable --now dvault.timer")?;
    if !status.success() {
        bail!("systemctl enable --now dvault.timer failed ({status})");
    }
    Ok(())
}
