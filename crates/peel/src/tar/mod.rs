//! The tar layer: header blocks kept byte for byte, data as entries, padding and the end kept
//! exactly.
//!
//! All header material of an archive (each member's header block, preceded by its GNU long
//! name/link blocks and PAX headers with their data) is written, in order, to one internal entry
//! `.peel/tar/N.headers`. Header blocks of a big uploads tree are many but alike from day to
//! day, so as an entry they deduplicate, and the JSON recipe stays small: per member only the
//! number of header blocks, the data size, where the data went, and the padding when it is not
//! zeros.
//!
//! A member's data may itself be a container. The tar layer does not know the other layers: it
//! hands the data to its caller through [`Nest`] (expand) or a [`RebuildNested`] function
//! (rebuild), so this module and the dispatcher in `layer/` do not import each other.

mod expand;
pub mod header;
mod links;
mod rebuild;

use std::io::{Read, Write};

use crate::entries::EntrySource;
use crate::error::Result;
use crate::options::RebuildOptions;
use crate::place::Place;
use crate::recipe::Node;
pub use crate::recipe::{TarMember as Member, TarRecipe};
use crate::report::LayerReport;

pub(crate) use expand::expand;
pub(crate) use rebuild::rebuild;

/// What the tar layer needs from the expansion it is part of (implemented by the dispatcher,
/// `layer::Expander`).
pub(crate) trait Nest {
    /// Expands a member's data (a nested layer, or a plain entry).
    fn expand_member(&mut self, input: &mut (dyn Read + Send), place: Place) -> Result<Node>;
    /// Hands an internal entry (header blocks, bytes after the end) to the sink.
    fn emit_internal(&mut self, path: &str, data: &mut dyn Read) -> Result<u64>;
    /// A fresh number for this archive's internal entries.
    fn next_tar_index(&mut self) -> u32;
    /// Starts this layer's report; returns its index for [`Nest::layer_mut`].
    fn begin_layer(&mut self, location: &str, kind: &str) -> usize;
    /// The report begun with [`Nest::begin_layer`].
    fn layer_mut(&mut self, index: usize) -> &mut LayerReport;
}

/// Rebuilds a member's data (`layer::rebuild_node`), passed in by the dispatcher; called from
/// several threads at once when members are rebuilt in parallel.
pub(crate) type RebuildNested<'a> = &'a (dyn Fn(
    &Node,
    &mut dyn EntrySource,
    &mut (dyn Write + Send),
    &str,
    &RebuildOptions,
) -> Result<()>
         + Sync);

/// Zero bytes after `size` data bytes up to the next block boundary.
fn padding(size: u64) -> u64 {
    (header::BLOCK as u64 - size % header::BLOCK as u64) % header::BLOCK as u64
}
