//! Rebuilding a node of the recipe: plain entries copied, a tar layer written by the tar
//! module, a gzip layer recompressed on this thread while its content is rebuilt on another.
//! Where independent gzip members can be recompressed side by side (tar members that are gzip
//! layers, the members of one gzip stream), the tar and gzip modules do so, up to
//! `RebuildOptions::parallel_jobs` at once; a member rebuilt that way rebuilds what it holds
//! one part after another, so the threads stay within one job count per nesting level.

use std::io::{self, Read, Write};

use super::gzip::gzip_calls;
use super::{is_broken_pipe, PIPE_BUFFER};
use crate::entries::EntrySource;
use crate::error::{Error, Result};
use crate::options::RebuildOptions;
use crate::recipe::Node;
use crate::stream::CountWrite;

/// Rebuilds the bytes of `node` into `out`.
pub(crate) fn rebuild_node(
    node: &Node,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
    location: &str,
    opts: &RebuildOptions,
) -> Result<()> {
    match node {
        Node::Entry { path, size } | Node::Stored { path, size, .. } => {
            copy_entry(path, *size, source, out)
        }
        Node::Tar(t) => crate::tar::rebuild(t, source, out, location, &rebuild_node, opts),
        Node::Gzip { gzip, inner } => {
            let (reader, writer) = io::pipe().map_err(|e| Error::Io {
                context: "creating a pipe".to_string(),
                source: e,
            })?;
            let (inner_res, gz_res) = std::thread::scope(|s| {
                let t = s.spawn(move || {
                    // Buffered: the tar layer writes 512-byte header blocks.
                    let mut writer = io::BufWriter::with_capacity(PIPE_BUFFER, writer);
                    let at = format!("{location}>gunzip");
                    rebuild_node(inner, source, &mut writer, &at, opts)?;
                    writer.flush().map_err(|e| Error::Io {
                        context: format!("{location}: writing to the gzip layer"),
                        source: e,
                    })
                });
                let mut reader = reader;
                let gz = gzip_calls::rebuild(gzip, &mut reader, out, location, opts);
                drop(reader);
                let inner = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                (inner, gz)
            });
            match (gz_res, inner_res) {
                (Ok(()), Ok(())) => Ok(()),
                (Err(g), Err(i)) if !is_broken_pipe(&i) => {
                    // The content could not be produced; that is the cause.
                    let _ = g;
                    Err(i)
                }
                (Err(g), _) => Err(g),
                (Ok(()), Err(i)) => Err(i),
            }
        }
    }
}

fn copy_entry(
    path: &str,
    size: u64,
    source: &mut dyn EntrySource,
    out: &mut (dyn Write + Send),
) -> Result<()> {
    let mut r = source.open(path).map_err(|e| Error::Io {
        context: format!("opening entry {path}"),
        source: e,
    })?;
    let mut w = CountWrite {
        inner: out,
        count: 0,
    };
    io::copy(&mut (&mut r).take(size.saturating_add(1)), &mut w).map_err(|e| Error::Io {
        context: format!("copying entry {path}"),
        source: e,
    })?;
    if w.count != size {
        return Err(Error::Recipe(format!(
            "entry {path}: the recipe says {size} bytes, the entry has {}{}",
            w.count,
            if w.count > size { " or more" } else { "" }
        )));
    }
    Ok(())
}
