//! `dvault expand`, `dvault rebuild`, `dvault inspect`: a backup file taken apart into a plain
//! tree plus recipe, and put back together bit for bit.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

/// The commands of this group.
#[derive(Subcommand)]
pub enum PeelCommand {
    /// Take BACKUP apart into plain entries plus a recipe, in the new directory DIR.
    Expand(ExpandArgs),
    /// Rebuild the original file from DIR into OUT, checking its SHA-256.
    Rebuild(RebuildArgs),
    /// Show every layer of BACKUP, the exact method that reproduces it, sizes and the recipe's
    /// share (nothing is written).
    Inspect(InspectArgs),
}

/// Arguments of `dvault expand`.
#[derive(Args)]
pub struct ExpandArgs {
    /// The backup file (`-`: standard input, spooled to a temporary file first).
    backup: PathBuf,
    /// The directory to create (must not exist, or be empty).
    dir: PathBuf,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `dvault rebuild`.
#[derive(Args)]
pub struct RebuildArgs {
    /// A directory written by `dvault expand`.
    dir: PathBuf,
    /// The file to write (replaced only once its SHA-256 is proven).
    out: PathBuf,
    /// Print the result as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `dvault inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The backup file (`-`: standard input, spooled to a temporary file first).
    backup: PathBuf,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs one command of this group.
pub fn run(cmd: PeelCommand) -> Result<()> {
    match cmd {
        PeelCommand::Expand(a) => expand(a),
        PeelCommand::Rebuild(a) => rebuild(a),
        PeelCommand::Inspect(a) => inspect(a),
    }
}

/// A backup given on the command line: a file, or stdin spooled to a temporary file so that a
/// layer that must be kept as stored bytes can be read a second time.
struct Input {
    path: PathBuf,
    name: Option<String>,
    _spool: Option<tempfile::TempPath>,
}

fn open_input(arg: &Path) -> Result<Input> {
    if arg != Path::new("-") {
        let name = arg.file_name().map(|n| n.to_string_lossy().into_owned());
        return Ok(Input {
            path: arg.to_path_buf(),
            name,
            _spool: None,
        });
    }
    let mut spool = tempfile::NamedTempFile::new().context("creating a file to spool stdin")?;
    let n = io::copy(&mut io::stdin().lock(), spool.as_file_mut())
        .context("spooling stdin to a temporary file")?;
    tracing::info!("spooled {n} bytes of stdin to {}", spool.path().display());
    let path = spool.into_temp_path();
    Ok(Input {
        path: path.to_path_buf(),
        name: None,
        _spool: Some(path),
    })
}

fn expand(a: ExpandArgs) -> Result<()> {
    let input = open_input(&a.backup)?;
    let (_, report) = peel::tree::expand_to_dir_as(
        &input.path,
        input.name.as_deref(),
        &a.dir,
        &backup_options(),
    )
    .with_context(|| format!("expanding {}", a.backup.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
        println!("tree written to {}", a.dir.display());
    }
    Ok(())
}

fn rebuild(a: RebuildArgs) -> Result<()> {
    let name = a
        .out
        .file_name()
        .with_context(|| format!("{}: not a file name", a.out.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = a
        .out
        .with_file_name(format!(".{name}.dvault-tmp-{}", std::process::id()));
    let result = (|| -> Result<peel::Digest> {
        let file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = io::BufWriter::with_capacity(256 * 1024, file);
        let digest = peel::tree::rebuild_from_dir(&a.dir, &mut out)
            .with_context(|| format!("rebuilding from {}", a.dir.display()))?;
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &a.out)
            .with_context(|| format!("renaming {} to {}", tmp.display(), a.out.display()))?;
        Ok(digest)
    })();
    let digest = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&digest)?);
    } else {
        println!(
            "rebuilt {}: {} bytes, sha256 {} (matches the recipe)",
            a.out.display(),
            digest.size,
            digest.sha256
        );
    }
    Ok(())
}

/// Expansion settings for backup files: plain (non-container) input is refused.
fn backup_options() -> peel::ExpandOptions {
    peel::ExpandOptions {
        allow_plain_root: false,
        ..Default::default()
    }
}

/// A sink that reads every entry and keeps nothing: inspect does all the work of an expansion
/// (including proving each method) without writing a tree.
struct CountingSink;

impl peel::EntrySink for CountingSink {
    fn entry(&mut self, _path: &str, data: &mut dyn Read) -> io::Result<u64> {
        io::copy(data, &mut io::sink())
    }
}

fn inspect(a: InspectArgs) -> Result<()> {
    let input = open_input(&a.backup)?;
    let (_, report) = peel::expand_path_as(
        &input.path,
        input.name.as_deref(),
        &mut CountingSink,
        &backup_options(),
    )
    .with_context(|| format!("inspecting {}", a.backup.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
    }
    if report.layers.is_empty() && report.original.size == 0 {
        bail!("{}: empty input", a.backup.display());
    }
    Ok(())
}
