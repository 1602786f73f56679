//! `dvault expand --tar` and `dvault rebuild --tar`: the peeled tree as one tar stream, for
//! stores that take a tar (Tarsnap, borg, restic; see docs/other-stores.md).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dvault_core::atomic_file::AtomicFile;

use crate::peel_cmds::Input;

/// `-` means stdin or stdout.
fn is_std(p: &Path) -> bool {
    p == Path::new("-")
}

/// A file written under a temporary sibling name and renamed only on success
/// ([`dvault_core::atomic_file`]), so a failed command leaves nothing that looks complete.
struct Staged {
    dest: PathBuf,
}

impl Staged {
    fn new(dest: &Path) -> Result<Self> {
        Ok(Staged {
            dest: dest.to_path_buf(),
        })
    }

    /// Runs `write` on the temporary file, then syncs and renames it; removes it on failure.
    fn write<T>(
        self,
        write: impl FnOnce(&mut io::BufWriter<AtomicFile>) -> Result<T>,
    ) -> Result<T> {
        let file = AtomicFile::create(&self.dest)?;
        let mut w = io::BufWriter::with_capacity(256 * 1024, file);
        let value = write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.commit()?;
        Ok(value)
    }
}

/// `dvault expand BACKUP --tar FILE|-`.
pub(crate) fn expand(
    backup: &Path,
    input: &Input,
    tar: &Path,
    json: bool,
    opts: &peel::ExpandOptions,
) -> Result<()> {
    let run = |w: &mut dyn Write| {
        peel::tarstream::expand_to_tar(&input.path, input.name.as_deref(), w, opts)
            .with_context(|| format!("expanding {} to a tar stream", backup.display()))
    };
    let (_, report) = if is_std(tar) {
        let stdout = io::stdout();
        let mut w = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
        let r = run(&mut w)?;
        w.flush().context("writing the tar stream to stdout")?;
        r
    } else {
        Staged::new(tar)?.write(|w| run(w))?
    };
    // With the stream on stdout the report must not mix into it.
    let text = if json {
        format!("{}\n", serde_json::to_string(&report)?)
    } else if is_std(tar) {
        format!("{report}tar stream written to stdout\n")
    } else {
        format!("{report}tar stream written to {}\n", tar.display())
    };
    if is_std(tar) {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    Ok(())
}

/// `dvault rebuild --tar FILE|- OUT|-`.
pub(crate) fn rebuild(tar: &Path, out: &Path, json: bool) -> Result<()> {
    let run = |w: &mut (dyn Write + Send)| -> Result<peel::Digest> {
        let digest = if is_std(tar) {
            let mut stdin = io::BufReader::with_capacity(256 * 1024, io::stdin());
            peel::tarstream::rebuild_from_tar(&mut stdin, w)
        } else {
            let file = fs::File::open(tar).with_context(|| format!("opening {}", tar.display()))?;
            let mut r = io::BufReader::with_capacity(256 * 1024, file);
            peel::tarstream::rebuild_from_tar(&mut r, w)
        };
        digest.with_context(|| format!("rebuilding from the tar stream {}", tar.display()))
    };
    let digest = if is_std(out) {
        // Written as it is rebuilt: a mismatch is known only at the end (exit code 1).
        let mut w = io::BufWriter::with_capacity(256 * 1024, io::stdout());
        let d = run(&mut w)?;
        w.flush().context("writing to stdout")?;
        d
    } else {
        Staged::new(out)?.write(|w| run(w))?
    };
    let text = if json {
        format!("{}\n", serde_json::to_string(&digest)?)
    } else {
        format!(
            "rebuilt {}: {} bytes, sha256 {} (matches the recipe)\n",
            out.display(),
            digest.size,
            digest.sha256
        )
    };
    if is_std(out) {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    Ok(())
}
