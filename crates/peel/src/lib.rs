//! Bit-exact expand and rebuild of nested containers (gzip, tar).
//!
//! [`expand`] takes a byte stream apart into plain entries (handed to an [`EntrySink`] in stream
//! order) plus a [`Recipe`]; [`rebuild`] turns the entries (from an [`EntrySource`]) and the
//! recipe back into the original bytes, and checks them against the SHA-256 in the recipe.
//! This crate knows nothing of Discourse or of repositories.

pub mod error;
pub mod gzip;
pub mod layer;
pub mod recipe;
pub mod tar;
pub mod tree;

pub use error::{Error, Result};
pub use recipe::{Digest, Node, Recipe, RECIPE_VERSION};

use std::io::Read;

/// Receives the plain entries of an expansion, one at a time, in stream order.
pub trait EntrySink {
    /// Stores the entry `path` (relative, `/`-separated, already checked to be safe), reading
    /// `data` to its end. Returns the number of bytes read.
    fn entry(&mut self, path: &str, data: &mut dyn Read) -> std::io::Result<u64>;
}

/// Gives back the plain entries of a tree for a rebuild, in any order.
pub trait EntrySource: Send {
    /// Opens the entry `path` for reading.
    fn open(&mut self, path: &str) -> std::io::Result<Box<dyn Read + Send>>;
}
