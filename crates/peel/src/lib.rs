//! Bit-exact expand and rebuild of nested containers (gzip, tar).
//!
//! [`expand_reader`] and [`expand_path`] take a byte stream apart into plain entries (handed to
//! an [`EntrySink`] in stream order) plus a [`Recipe`]; [`rebuild`] turns the entries (from an
//! [`EntrySource`]) and the recipe back into the original bytes, and checks them against the
//! SHA-256 in the recipe. [`tree`] does both with a directory on disk.
//! This crate knows nothing of Discourse or of repositories.

mod entries;
pub mod error;
pub mod gzip;
pub mod input;
pub mod layer;
pub mod names;
mod options;
mod ordered;
mod place;
pub mod recipe;
pub mod report;
pub mod stream;
pub mod tar;
pub mod tarstream;
pub mod tree;

pub use entries::{EntrySink, EntrySource};
pub use error::{Error, Result};
pub use options::{ExpandOptions, RebuildOptions};
pub use recipe::{Digest, Node, Recipe, RECIPE_VERSION};
pub use report::{LayerProfile, LayerReport, Profile, Report};

use std::io::{self, Read, Write};
use std::path::Path;

use layer::Expander;
use place::Place;
use stream::{HashRead, HashWrite};

/// The name used for an input whose file name is unknown (stdin).
pub const UNNAMED: &str = "data";

/// Expands a stream that can be read only once.
///
/// `name` (the original file name, if known) names the root entry and appears in messages.
/// When a layer has to be kept as its original bytes (no exact method reproduces a gzip
/// layer), those bytes cannot be read again from a stream and this fails; use
/// [`expand_path`] for files.
pub fn expand_reader(
    input: &mut (dyn Read + Send),
    name: Option<&str>,
    sink: &mut dyn EntrySink,
    opts: &ExpandOptions,
) -> Result<(Recipe, Report)> {
    expand_with(input, name, None, None, sink, opts)
}

/// Expands the file at `path`, reading it again where a layer must be kept as stored bytes.
pub fn expand_path(
    path: &Path,
    sink: &mut dyn EntrySink,
    opts: &ExpandOptions,
) -> Result<(Recipe, Report)> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    expand_path_as(path, name.as_deref(), sink, opts)
}

/// Like [`expand_path`], with the original name given (`None`: unknown, as for a spooled
/// stdin) instead of taken from `path`.
pub fn expand_path_as(
    path: &Path,
    name: Option<&str>,
    sink: &mut dyn EntrySink,
    opts: &ExpandOptions,
) -> Result<(Recipe, Report)> {
    let open = || input::open_file(path);
    let io_err = |e| Error::Io {
        context: format!("opening {}", path.display()),
        source: e,
    };
    let mut file = io::BufReader::with_capacity(256 * 1024, open().map_err(io_err)?);
    let len = file.get_ref().metadata().map_err(io_err)?.len();
    let reopen = move || -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(io::BufReader::with_capacity(256 * 1024, open()?)))
    };
    expand_with(&mut file, name, Some(&reopen), Some(len), sink, opts)
}

fn expand_with(
    input: &mut (dyn Read + Send),
    name: Option<&str>,
    reopen: Option<place::Reopen<'_>>,
    limit: Option<u64>,
    sink: &mut dyn EntrySink,
    opts: &ExpandOptions,
) -> Result<(Recipe, Report)> {
    let shown = name.unwrap_or(UNNAMED);
    let leaf = names::normalize_member(shown.as_bytes())
        .ok()
        .filter(|l| !l.contains('/'))
        .unwrap_or_else(|| UNNAMED.to_string());
    let place = Place {
        location: shown.to_string(),
        leaf,
        dir: String::new(),
        steps: Vec::new(),
        depth: 0,
        limit,
    };
    let started = std::time::Instant::now();
    let read = std::sync::atomic::AtomicU64::new(0);
    let reading = std::sync::atomic::AtomicU64::new(0);
    let mut timed = stream::TimedRead {
        inner: input,
        nanos: &reading,
    };
    let mut counted = stream::SharedCount {
        inner: &mut timed,
        count: &read,
    };
    let mut hashed = HashRead::new(&mut counted);
    // Proven in parallel only when the input can be read again, for the rare case below.
    let proofs = match reopen {
        Some(_) if opts.parallel_proofs > 0 => {
            gzip::proof::Proofs::with_limit(opts.parallel_proofs)
        }
        _ => gzip::proof::Proofs::sequential(),
    };
    let mut exp = Expander::new(sink, opts, reopen, &read, &proofs);
    let root = exp.expand(&mut hashed, place);
    let root = match exp.settle(root) {
        Some(root) => root?,
        None => {
            // A member proven in parallel is not reproducible: expand again one member after
            // another, which stores that layer exactly as it would have from the start.
            tracing::info!("{shown}: a gzip member is not reproducible; expanding again");
            exp.discard_all()?;
            drop(exp);
            let reopen = reopen.expect("parallel proofs need an input that can be read again");
            let mut again = reopen().map_err(|e| Error::Io {
                context: format!("{shown}: reading the input again"),
                source: e,
            })?;
            let sequential = ExpandOptions {
                parallel_proofs: 0,
                ..opts.clone()
            };
            return expand_with(&mut *again, name, Some(reopen), limit, sink, &sequential);
        }
    };
    let extra = stream::drain(&mut hashed).map_err(|e| Error::Io {
        context: format!("{shown}: reading"),
        source: e,
    })?;
    if extra != 0 {
        // Every layer reads its input to the end; this guards the exactness contract.
        return Err(Error::Format {
            location: shown.to_string(),
            problem: format!("{extra} bytes at the end were not taken by any layer"),
        });
    }
    let original = hashed.digest();
    let recipe = Recipe {
        version: RECIPE_VERSION,
        original: original.clone(),
        name: name.map(str::to_string),
        root,
    };
    let json_len = serde_json::to_vec(&recipe).map_or(0, |v| v.len() as u64 + 1);
    let mut report = exp.finish(original, json_len);
    report.profile.read_input_s = reading.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
    report.profile.wall_s = started.elapsed().as_secs_f64();
    Ok((recipe, report))
}

/// Whether an error comes from [`stream::Limit`] (somewhere in its source chain).
fn hashed_overflowed(e: &Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.to_string().contains(stream::Limit::<()>::MESSAGE) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Rebuilds the original bytes of `recipe` into `out`, taking entries from `source`, with
/// [`RebuildOptions::default`] (gzip members recompressed on every core at once where `source`
/// allows it).
///
/// Fails with [`Error::Mismatch`] when the bytes written do not have the recorded size and
/// SHA-256 (they have been written to `out` by then: write to a temporary file and rename
/// only on success).
pub fn rebuild(
    recipe: &Recipe,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
) -> Result<Digest> {
    rebuild_with(recipe, source, out, &RebuildOptions::default())
}

/// Like [`rebuild`], with the given options. The bytes written are the same whatever they are.
pub fn rebuild_with(
    recipe: &Recipe,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
    opts: &RebuildOptions,
) -> Result<Digest> {
    if recipe.version != RECIPE_VERSION {
        return Err(Error::Recipe(format!(
            "version {} is not supported (this build reads version {RECIPE_VERSION})",
            recipe.version
        )));
    }
    // A damaged or hostile recipe (huge sizes, endless end-of-archive zeros) must not write
    // past the original's size: stop there instead of filling the disk.
    let mut hashed = HashWrite::new(stream::Limit {
        inner: out,
        left: recipe.original.size,
    });
    let location = recipe.name.as_deref().unwrap_or(UNNAMED);
    layer::rebuild_node(&recipe.root, source, &mut hashed, location, opts).map_err(|e| {
        if hashed_overflowed(&e) {
            Error::Recipe(format!(
                "the rebuild writes more than the original's {} bytes: the recipe is damaged",
                recipe.original.size
            ))
        } else {
            e
        }
    })?;
    hashed.flush().map_err(|e| Error::Io {
        context: "writing the rebuilt file".to_string(),
        source: e,
    })?;
    let got = hashed.digest();
    if got != recipe.original {
        return Err(Error::Mismatch {
            expected: format!(
                "{} bytes, sha256 {}",
                recipe.original.size, recipe.original.sha256
            ),
            actual: format!("{} bytes, sha256 {}", got.size, got.sha256),
        });
    }
    Ok(got)
}
