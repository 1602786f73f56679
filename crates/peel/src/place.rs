//! Where a layer sits in the original input: its name for messages and entries, its depth, and
//! the steps that read its bytes again from the start of the input (for a layer that has to be
//! kept as its original bytes after it has streamed by). Shared by the dispatcher (`layer/`)
//! and the layers it calls, so that they need not import each other.

use std::io::{self, Read};

/// One way down from the original input to a layer's bytes.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Decompress (all gzip members, concatenated).
    Gunzip,
    /// Skip `offset` bytes and take `size`.
    Slice { offset: u64, size: u64 },
}

/// Opens the original input again from its start.
pub(crate) type Reopen<'a> = &'a (dyn Fn() -> io::Result<Box<dyn Read + Send>> + Sync);

/// Where a layer sits.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// For messages and reports.
    pub location: String,
    /// The entry name the layer's bytes get when they are kept whole.
    pub leaf: String,
    /// The directory a tar layer's members go under ("" for the root).
    pub dir: String,
    /// How to read the layer again from the original input.
    pub steps: Vec<Step>,
    /// Nesting depth (the input is 0).
    pub depth: u32,
    /// Bytes known to remain in the layer, when known (a file's or a member's size).
    pub limit: Option<u64>,
}
