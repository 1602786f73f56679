//! `dvault expand`, `dvault rebuild`, `dvault inspect`: a backup file taken apart into a plain
//! tree plus recipe, and put back together bit for bit.

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
    #[arg(required_unless_present = "tar")]
    dir: Option<PathBuf>,
    /// Instead of a directory, write the tree as one tar stream to FILE (`-`: stdout; the
    /// report then goes to stderr). See docs/other-stores.md.
    #[arg(long, value_name = "FILE|-", conflicts_with = "dir")]
    tar: Option<PathBuf>,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cap: ExpansionCap,
}

/// The decompression-bomb cap (peel's defaults: 200 times the input plus 256 MiB).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct ExpansionCap {
    /// Refuse input whose entries grow beyond N times the compressed bytes read so far
    /// (plus --expansion-slack): a decompression bomb stops early [default: 200].
    #[arg(long, value_name = "N")]
    pub max_expansion_ratio: Option<u64>,
    /// Bytes allowed on top of the ratio, a number or a size like 512MiB [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub expansion_slack: Option<u64>,
}

/// A size in bytes, with or without a unit (`268435456`, `256MiB`, `1 GB`).
fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{s}`: {e}"))
}

impl ExpansionCap {
    /// Backup expansion settings with this cap.
    pub(crate) fn options(&self) -> peel::ExpandOptions {
        let mut o = backup_options();
        if let Some(r) = self.max_expansion_ratio {
            o.max_expansion_ratio = r;
        }
        if let Some(s) = self.expansion_slack {
            o.expansion_slack = s;
        }
        o
    }
}

/// Arguments of `dvault rebuild`.
#[derive(Args)]
pub struct RebuildArgs {
    /// A directory written by `dvault expand` (with `--tar`: the file to write).
    dir: PathBuf,
    /// The file to write (replaced only once its SHA-256 is proven).
    #[arg(required_unless_present = "tar")]
    out: Option<PathBuf>,
    /// Read the tree from the tar stream FILE (`-`: stdin) written by `expand --tar`; the one
    /// path argument is then the file to write (`-`: stdout).
    #[arg(long, value_name = "FILE|-")]
    tar: Option<PathBuf>,
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
pub(crate) struct Input {
    pub(crate) path: PathBuf,
    pub(crate) name: Option<String>,
    _spool: Option<tempfile::TempPath>,
}

fn open_input(arg: &Path) -> Result<Input> {
    if arg != Path::new("-") {
        // A FIFO or a device would be read forever: only a regular file, or stdin as `-`.
        if let Err(e) = peel::input::open_file(arg) {
            bail!(
                "{}: {e}{}",
                arg.display(),
                if e.kind() == io::ErrorKind::InvalidInput {
                    " (give `-` to read standard input)"
                } else {
                    ""
                }
            );
        }
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
    if let Some(tar) = &a.tar {
        return crate::tar_cmds::expand(&a.backup, &input, tar, a.json, &a.cap.options());
    }
    let dir = a.dir.context("DIR is required without --tar")?;
    dvault_core::interrupt::remove_on_interrupt(&peel::tree::temp_prefix(&dir));
    let (_, report) =
        peel::tree::expand_to_dir_as(&input.path, input.name.as_deref(), &dir, &a.cap.options())
            .with_context(|| format!("expanding {}", a.backup.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{report}");
        println!("tree written to {}", dir.display());
    }
    Ok(())
}

fn rebuild(a: RebuildArgs) -> Result<()> {
    if let Some(tar) = &a.tar {
        if let Some(extra) = &a.out {
            bail!(
                "with --tar give only the file to write, not also {}",
                extra.display()
            );
        }
        return crate::tar_cmds::rebuild(tar, &a.dir, a.json);
    }
    let out_path = a.out.context("OUT is required without --tar")?;
    // A tree that the stock restic restored from a dvault repository may hold dumps in the dedup
    // layout (docs/layout.md): put them back first.
    dvault_core::layout::undo(&a.dir)
        .with_context(|| format!("reassembling the dumps in {}", a.dir.display()))?;
    // Written beside OUT and renamed at the end ([`dvault_core::atomic_file`]): a failed
    // rebuild leaves nothing that looks complete.
    let file = dvault_core::atomic_file::AtomicFile::create(&out_path)?;
    let mut out = io::BufWriter::with_capacity(256 * 1024, file);
    let digest = peel::tree::rebuild_from_dir(&a.dir, &mut out)
        .with_context(|| format!("rebuilding from {}", a.dir.display()))?;
    out.into_inner().map_err(|e| e.into_error())?.commit()?;
    if a.json {
        println!("{}", serde_json::to_string(&digest)?);
    } else {
        println!(
            "rebuilt {}: {} bytes, sha256 {} (matches the recipe)",
            out_path.display(),
            digest.size,
            digest.sha256
        );
    }
    Ok(())
}

/// Expansion settings for backup files: plain (non-container) input is refused.
pub(crate) fn backup_options() -> peel::ExpandOptions {
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
