//! The expanded tree as one uncompressed, deterministic tar stream, and the rebuild from such a
//! stream read once: how a peeled backup goes into any store that deduplicates a tar (Tarsnap,
//! borg, restic) and comes back out bit for bit.
//!
//! # The stream
//! A plain GNU-format tar (GNU `././@LongLink` records for paths over 100 bytes),
//! members in this order:
//! 1. `.peel/recipe.json`: the recipe (the same JSON as in a tree on disk);
//! 2. every tar layer's header entry (`.peel/tar/N.headers`), in the order the rebuild needs
//!    them;
//! 3. every other entry, in exactly the order the rebuild consumes them (the recipe's order);
//! 4. two zero blocks.
//!
//! Every member header is the same function of path and size: mode 0644, uid/gid 0, empty
//! owner names, mtime 0. Nothing in the stream depends on the day or the machine, so two days of
//! a forum differ only where their entries differ. `tar -x` of the stream gives the tree that
//! [`crate::tree::rebuild_from_dir`] reads.
//!
//! # Why the recipe comes first, and what that costs
//! A tar header needs the size before the data, and a rebuild that reads its input once needs
//! the recipe and the original tar header blocks before the member data they precede. The
//! expansion only knows those at its end (a tar layer's header blocks are collected while its
//! members go by; the content size of a gzip layer is known only after decompressing it).
//! Holding the entries back until then would need a temporary copy of the whole tree, on
//! expansion or on rebuild. Instead [`expand_to_tar`] reads the input twice:
//! - pass 1 is the ordinary, proving expansion ([`crate::expand_path_as`]); it keeps only the
//!   small internal entries (header blocks, in an anonymous temporary file each) and the size
//!   and SHA-256 of every other entry, and yields the recipe;
//! - pass 2 follows the recipe through the input again, only decompressing (no recompression,
//!   no method search), and writes each entry to the stream as it comes out, its size already
//!   known from the recipe. Each entry's SHA-256 must equal pass 1's, and the input's SHA-256 the
//!   recipe's, or the stream is left unfinished (no end blocks) and an error returned.
//!
//! Costs: one extra decompression of the input (cheap next to pass 1's recompression), disk for
//! the header entries only (about 1 KiB per tar member), memory for one digest per entry.
//! The input must be a file (a stream to expand is spooled by the caller: its compressed size,
//! not the tree's).
//!
//! [`rebuild_from_tar`] then streams: it reads the recipe into memory (at most
//! [`MAX_RECIPE_BYTES`]), spools the header entries to a temporary directory, and pipes every
//! other entry straight from the stream into [`crate::rebuild`] through a bounded channel.
//! Directories and other non-file members a store may add (borg's `export-tar`) are skipped;
//! an entry out of order, missing or left over is an error naming it.

mod read;
mod replay;
mod write;

use crate::recipe::{Node, Recipe};

pub use read::rebuild_from_tar;
pub use write::expand_to_tar;

/// Largest recipe [`rebuild_from_tar`] accepts (it is held in memory).
pub const MAX_RECIPE_BYTES: u64 = 512 << 20;

/// The tar block size.
const BLOCK: usize = 512;
/// Bytes read per step from an entry.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the stream reader and the rebuild: bounds the rebuild's memory.
const CHANNEL_CHUNKS: usize = 16;

/// The header entries of every tar layer in `recipe`, in the order a rebuild opens them.
pub fn header_entries(recipe: &Recipe) -> Vec<String> {
    fn walk(node: &Node, out: &mut Vec<String>) {
        match node {
            Node::Entry { .. } | Node::Stored { .. } => {}
            Node::Gzip { inner, .. } => walk(inner, out),
            Node::Tar(t) => {
                out.push(t.headers.clone());
                for m in &t.members {
                    if let Some(d) = &m.data {
                        walk(d, out);
                    }
                }
                if let Some(a) = &t.after {
                    walk(a, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&recipe.root, &mut out);
    out
}
